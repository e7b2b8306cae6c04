"""The one wrapper every command runs in: any error the project can name becomes one line.

`run_command(main)` runs a `@hydra.main` entry and turns
- the project's errors (`backprop_lab.errors.BackpropLabError`) into `error: <message>` with the
  error's exit status (2 for a bad config, argument or input file, 1 for a run that failed);
- Hydra's and OmegaConf's own errors (an unknown key, a wrong type, `model=nope`, a bad
  override) into `error: <message>` with status 2, where Hydra alone would print several lines
  and exit 1;
- Ctrl-C or SIGTERM into `error: interrupted by SIGINT|SIGTERM; ...` with status 128 + the
  signal (the run itself is already marked KILLED, its metrics and weights so far saved);
- anything else into `error: internal error: ...` with status 1; HYDRA_FULL_ERROR=1 shows the
  traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

from backprop_lab.errors import BackpropLabError, Interrupted

COMMAND_ENVIRONMENT = {
    # hydra/launcher=ray_*: Ray reports no usage stats, and a driver joining a cluster sends
    # its token
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
}

T = TypeVar("T")
_failed: list[BaseException] = []  # the error a single run's task ended with, for run_command


def task(on_error: Any = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a Hydra task function: in a single run, the project's errors (and Ctrl-C) are
    handed to `run_command` instead of Hydra, which would print its own line about the failed
    job first. In a multirun they go to Hydra, which raises them in the launching process when
    the sweep ends (jobs may run in other processes); `on_error` is what the task returns then
    never, kept for typing."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> T:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode

            try:
                return fn(*args, **kwargs)
            except (BackpropLabError, KeyboardInterrupt) as err:
                if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                    raise
                _failed.append(err)
                return on_error

        return wrapped

    return decorate


# errors of the tracking store and its transport: a failed run, not a bug of ours
EXTERNAL = ("mlflow", "sqlalchemy", "requests", "urllib3")


def one_line(err: BaseException) -> str:
    """The error's message and its causes' first lines, on one line."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(err, OverrideParseException):
        return f"{err.override}: not a valid override: {' '.join(err.message.split())}"
    if isinstance(err, MissingConfigException) and err.options is not None:
        group = (err.missing_cfg_file or "").rsplit("/", 1)
        if len(group) == 2:
            return (f"{group[0]}={group[1]}: no such option; available: "
                    f"{', '.join(sorted(err.options))}")
    parts: list[str] = []
    cause: BaseException | None = err
    while cause is not None and len(parts) < 3:
        text = " ".join(str(cause).split())
        text = re.sub(r"\s*Set the environment variable HYDRA_FULL_ERROR=1.*$", "", text)
        text = re.sub(r"\s*(reference|object)_type=\S+", "", text)  # OmegaConf's internals
        if text and not any(text in p for p in parts):
            parts.append(text)
        cause = cause.__cause__
    return ": ".join(parts) or type(err).__name__


CLEANUPS: list[Callable[[str], None]] = []  # see on_failure


def on_failure(cleanup: Callable[[str], None]) -> None:
    """Have `cleanup(status)` end what the command started (a sweep's parent run) when it fails,
    with KILLED for a signal, else FAILED: here, before the exit, while MLflow can still start
    the download threads that an exiting interpreter (atexit) refuses."""
    CLEANUPS.append(cleanup)


def fail(message: str, status: int) -> NoReturn:
    while CLEANUPS:
        CLEANUPS.pop()("KILLED" if status in (130, 143) else "FAILED")
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


# Hydra's flags after which a command trains several jobs, or none at all
NOT_ONE_RUN = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info",
               "-sc", "--shell-completion", "hydra.mode=MULTIRUN"}


def one_run(args: list[str]) -> bool:
    """Whether a command line asks for a single run (no -m, no --help, --cfg, ...)."""
    return not any(arg.split("=")[0] in NOT_ONE_RUN or arg in NOT_ONE_RUN for arg in args)


def run_command(hydra_main: Callable[[], Any], plots: bool = False,
                imports: tuple[str, ...] = ()) -> None:
    """Run a Hydra entry point under the project's error policy (see the module docstring).
    `plots`: the command draws a run's plots, so a single run starts the plot worker first
    (plots.worker: matplotlib is imported and warmed up on the other core meanwhile, so the
    earlier it starts the better on a busy machine); `imports`: the modules its task imports
    (MLflow and the rest, ~1.3 s here), imported after the worker started and before the
    import graph is frozen."""
    from backprop_lab.plots import worker

    if plots and one_run(sys.argv[1:]):
        worker.start()  # first: the imports below take MLflow's second or so

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from backprop_lab.pipeline.compose import register_schemas
    from backprop_lab.tracking.store import MLFLOW_ENVIRONMENT

    for key, value in {**MLFLOW_ENVIRONMENT, **COMMAND_ENVIRONMENT}.items():
        os.environ.setdefault(key, value)
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, so the errors below reach us
    register_schemas()
    for module in imports:
        importlib.import_module(module)
    # The command's imports (MLflow, pandas, Hydra, ...: ~250,000 objects the collector
    # tracks) live as long as the process: frozen, every later full collection skips them
    # instead of walking them all again (~0.2 s of a single run's start, bench/README.md
    # "startup.py"). The price: a frozen object that later becomes cyclic garbage is never
    # freed, which for module-level objects of a process that ends with its run is nothing.
    gc.freeze()
    try:
        hydra_main()
        if _failed:
            raise _failed.pop()
    except BackpropLabError as err:  # its message is whole: no causes appended
        fail(" ".join(str(err).split()), err.exit_status)
    except (HydraException, OmegaConfBaseException) as err:
        fail(one_line(err), 2)
    except KeyboardInterrupt as err:
        if isinstance(err, Interrupted):
            fail(f"{err}; the run is marked KILLED", err.exit_status)
        fail("interrupted by SIGINT; the run is marked KILLED", 130)
    except Exception as err:
        if show_traceback:
            raise
        if isinstance(err, OSError) or type(err).__module__.split(".")[0] in EXTERNAL:
            fail(f"{type(err).__name__}: {one_line(err)}", 1)  # the store, the server, a disk
        fail(f"internal error: {type(err).__name__}: {one_line(err)} "
             "(HYDRA_FULL_ERROR=1 shows the traceback)", 1)


@contextlib.contextmanager
def machine_output(output: str) -> Iterator[bool]:
    """`output=json`: the command prints nothing but the JSON document its caller writes (the
    library's own lines are held back); yields whether it is JSON. Any other value than text or
    json is a bad argument."""
    from backprop_lab.errors import ConfigError
    from backprop_lab.experiments.run.report import QUIET

    if output not in ("text", "json"):
        raise ConfigError(f"output: must be text or json, got {output!r}")
    token = QUIET.set(output == "json")
    try:
        yield output == "json"
    finally:
        QUIET.reset(token)
