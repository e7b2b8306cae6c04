"""`hydra/sweeper=optuna`: an Optuna 5 search whose study persists, resumes and prunes.

    python -m pipelines.train -m sweep=optuna [hydra.sweeper.n_trials=40]
        [hydra.sweeper.sampler=tpe|random|grid] [hydra.sweeper.pruner=median|successive_halving|
        hyperband|none] [hydra.sweeper.n_jobs=2] [hydra.sweeper.storage=<URL>]

The search space is `hydra.sweeper.params` plus sweep overrides on the command line, in the
syntax of hydra-optuna-sweeper, parsed by Hydra's override parser: `interval(a, b)` (float, or
int when both ends are), `tag(log, interval(a, b))`, `int(interval(a, b))`, `choice(...)` and
`range(...)`; a plain value is fixed for every trial. Trials are asked `n_jobs` at a time and
launched as one batch through the chosen launcher (with hydra/launcher=stacked they train as
one stack, which a pruned trial leaves); each job gets its trial's number as
`tracking.trial` and reaches the study through its storage (experiments.sweep.trial), where it
reports its score every `train.report_every` epochs and may be pruned. The study, its storage,
resuming a killed search and what is refused: experiments.sweep.study and .resume.

A plugin must live in the `hydra_plugins` package for Hydra to accept it; Hydra executes it
outside `sys.modules` while scanning, so no `from __future__ import annotations` here.
"""

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from backprop_lab.errors import ConfigError

log = logging.getLogger(__name__)
MISSING = object()


def choices(override: Override) -> list[Any]:
    """A choice's or range's values, as Optuna's categorical choices (str, int, float, bool)."""
    from hydra.core.override_parser.types import Transformer

    return list(override.sweep_iterator(Transformer.encode))


def distribution(override: Override) -> Any:
    """The Optuna distribution of a sweep override (as hydra-optuna-sweeper's _impl.py reads
    them), or None for a plain value."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not override.is_sweep_override():
        return None
    value: Any = override.value()  # a ChoiceSweep, RangeSweep or IntervalSweep here
    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(choices(override))
    if override.is_range_sweep():
        values: list[Any] = choices(override)
        if not values:
            raise ConfigError(f"hydra.sweeper.params.{key}: {override.input_line} is empty")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return CategoricalDistribution(values)  # float steps: exactly the values it lists
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    raise ConfigError(f"hydra.sweeper.params.{key}: {override.input_line} is not a search "
                      "space Optuna can sample (interval, tag(log, interval), choice, range)")


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: str = "tpe", pruner: str = "median",
                 direction: str = "minimize", study_name: str | None = None,
                 storage: str | None = None, n_trials: int = 20, n_jobs: int = 1,
                 seed: int | None = None, n_startup_trials: int = 10,
                 params: dict[str, str] | None = None) -> None:
        self.sampler, self.pruner, self.direction = str(sampler), str(pruner), str(direction)
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.n_jobs, self.seed = n_trials, n_jobs, seed
        self.n_startup_trials = n_startup_trials
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def space(self, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
        """(key -> distribution, fixed overrides) of `params` and the command line."""
        assert self.config is not None
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space: dict[str, Any] = {}
        fixed: list[str] = []
        for override in OverridesParser.create().parse_overrides(lines):
            key = override.get_key_element()
            found = distribution(override)
            if found is None:
                fixed.append(override.input_line or f"{key}={override.value()}")
                space.pop(key, None)
                continue
            plain = key.lstrip("+~")
            if not key.startswith("+") and OmegaConf.select(self.config, plain,
                                                            default=MISSING) is MISSING:
                raise ConfigError(f"hydra.sweeper.params: {plain}: no such key in the config "
                                  "(a search may only vary keys that exist)")
            space[key] = found
        if not space:
            raise ConfigError("hydra.sweeper.params: nothing to search; give ranges such as "
                              "train.lr='tag(log, interval(1e-4, 1))'")
        return space, fixed

    def check(self) -> None:
        assert self.config is not None
        for key, value in (("n_trials", self.n_trials), ("n_jobs", self.n_jobs)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"hydra.sweeper.{key}: must be an integer >= 1, got {value!r}")

    def sweep(self, arguments: list[str]) -> Any:
        from backprop_lab.experiments.sweep import progress, resume, search
        from backprop_lab.experiments.sweep import study as studies
        from backprop_lab.experiments.sweep.parent import read_marker
        from backprop_lab.tracking.store import open_client, resolve_uri

        assert self.config is not None and self.launcher is not None
        cfg = self.config
        self.check()
        space, fixed = self.space(arguments)
        studies.make_pruner(self.pruner, 1, 1)  # a bad name fails before anything opens
        seed = int(self.seed if self.seed is not None else cfg.seed)
        sampler = studies.make_sampler(self.sampler, seed, space,
                                              self.n_startup_trials)
        n_trials = min(self.n_trials, studies.grid_size(space)) if self.sampler == "grid" \
            else self.n_trials
        epochs, every = int(cfg.train.epochs), int(cfg.train.report_every)
        uri = resolve_uri(cfg.tracking.uri)
        url = studies.storage_url(self.storage, uri)
        preset = (OmegaConf.select(cfg, "hydra.runtime.choices") or {}).get("sweep") or "cli"
        name = self.study_name or f"{cfg.tracking.experiment}-{preset}"
        storage = studies.open_storage(url)
        claim = resume.claim(url, name)
        study = studies.open_study(storage, name, self.direction, space, sampler,
                                   studies.make_pruner(self.pruner, epochs, every))
        client = open_client(uri)
        with claim.turn():
            resume.revive(study, client, claim.exclusive, float(cfg.tracking.stale_after))
        before = len(study.get_trials(deepcopy=False))
        counted = sum(resume.counted(t) for t in study.get_trials(deepcopy=False))
        progress.expect(max(n_trials - counted, 0))  # the trials this sweep still lacks
        if before:  # a resumed study: do not replay the start-up trials it already has
            seed = studies.sampler_seed(seed, before)
            study.sampler = studies.make_sampler(self.sampler, seed, space,
                                                 self.n_startup_trials)
        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        studies.write_pointer(sweep_dir, url, name, self.pruner, epochs, every)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")
        log.info("study %s in %s: %s sampler (seed %d), %s pruner, %d trials in all, %d at a "
                 "time", name, studies.shown_url(url), self.sampler, seed, self.pruner,
                 n_trials, self.n_jobs)
        returns = []
        while True:
            with claim.turn():  # another sweep on this study counts and asks in its turn
                trials = study.get_trials(deepcopy=False)
                done = sum(resume.counted(t) for t in trials)
                others = sum(resume.in_flight(t) for t in trials)  # this sweep has none now
                wanted = min(self.n_jobs, n_trials - done - others)
                batch = [study.ask(space) for _ in range(max(wanted, 0))]
            if not batch:
                if others:
                    log.info("study %s: the last %d of %d trials are another sweep's, in "
                             "flight", name, others, n_trials)
                break
            returns.append(self.run_batch(study, batch, fixed))
        text = search.summary(study)
        parent_id = read_marker(sweep_dir.resolve()).get("parent_run_id")
        search.record(client, parent_id, sweep_dir, study, text, studies.shown_url(url))
        log.info("%s", text)
        claim.release()
        return returns

    def run_batch(self, study: Any, batch: list[Any], fixed: Sequence[str]) -> Any:
        """Launch one batch of trials and tell the study how each ended."""
        from optuna.trial import TrialState

        from backprop_lab.experiments.sweep import resume

        overrides = [[*fixed, *(f"{k}={v}" for k, v in t.params.items()),
                      f"tracking.trial={t.number}"] for t in batch]
        self.validate_batch_is_legal(overrides)
        try:
            results = self.launcher.launch(overrides, initial_job_idx=batch[0].number)
        except BaseException:
            for t in batch:
                resume.kill(study, t._trial_id, "the sweep was interrupted while it ran")
            raise
        errors: list[Exception] = []
        for trial, result in zip(batch, results):
            attrs = study._storage.get_trial(trial._trial_id).user_attrs
            if resume.PRUNED_ATTR in attrs:
                tell(study, trial, state=TrialState.PRUNED)
                continue
            try:
                value = float(result.return_value)  # a job's error raises here
            except Exception as err:
                tell(study, trial, state=TrialState.FAIL)
                errors.append(err)
                continue
            if math.isfinite(value):
                tell(study, trial, value)
            else:  # diverged: a failed trial, not a value of infinity
                tell(study, trial, state=TrialState.FAIL)
        if errors:  # every trial of the batch is told first; then the search stops
            raise errors[0]
        return results


def tell(study: Any, trial: Any, value: float | None = None, state: Any = None) -> None:
    """study.tell, except that the grid sampler's `Study.stop` once every point is asked
    (meant for `optimize`) is not an error: the loop stops at n_trials anyway."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise
