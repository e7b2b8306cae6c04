"""The one wrapper every command runs in: any error the project can name becomes one line.

`run_command(main)` runs a `@hydra.main` entry and turns
- the project's errors (`backprop_lab.errors.BackpropLabError`) into `error: <message>` with the
  error's exit status (2 for a bad config, argument or input file, 1 for a run that failed);
- Hydra's and OmegaConf's own errors (an unknown key, a wrong type, `model=nope`, a bad
  override) into `error: <message>` with status 2, where Hydra alone would print several lines
  and exit 1;
- Ctrl-C into `error: interrupted` with status 130 (the run itself is already marked KILLED);
- anything else into `error: internal error: ...` with status 1; HYDRA_FULL_ERROR=1 shows the
  traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from backprop_lab.errors import BackpropLabError

COMMAND_ENVIRONMENT = {
    # hydra/launcher=ray_*: Ray reports no usage stats, and a driver joining a cluster sends
    # its token
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
}

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


def fail(message: str, status: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def run_command(hydra_main: Callable[[], Any]) -> None:
    """Run a Hydra entry point under the project's error policy (see the module docstring)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from backprop_lab.pipeline.compose import register_schemas
    from backprop_lab.tracking.store import MLFLOW_ENVIRONMENT

    for key, value in {**MLFLOW_ENVIRONMENT, **COMMAND_ENVIRONMENT}.items():
        os.environ.setdefault(key, value)
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, so the errors below reach us
    register_schemas()
    try:
        hydra_main()
    except BackpropLabError as err:
        fail(one_line(err), err.exit_status)
    except (HydraException, OmegaConfBaseException) as err:
        fail(one_line(err), 2)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as err:
        if show_traceback:
            raise
        if isinstance(err, OSError) or type(err).__module__.split(".")[0] in EXTERNAL:
            fail(f"{type(err).__name__}: {one_line(err)}", 1)  # the store, the server, a disk
        fail(f"internal error: {type(err).__name__}: {one_line(err)} "
             "(HYDRA_FULL_ERROR=1 shows the traceback)", 1)
