"""`hydra/sweeper=racing`, the sweeper of `pipelines.train`: Hydra's basic sweeper, plus rounds
when `eval.race=true` and `eval.repeats` is 2 or more.

    python -m pipelines.train -m sweep=lr_depth eval.cv_folds=5 eval.repeats=3 eval.race=true

Without racing it is the basic sweeper, unchanged. With it, every job of the grid trains its
repeat 0 (`eval.repeats=1 eval.first_repeat=0`) as one batch through the chosen launcher
(stacked, joblib, Ray, ...); the jobs still undecided after a round, and the best, train the
next repeat; the rest stop (`backprop_lab.experiments.sweep.racing`). When the race ends each
job becomes one child run of the sweep holding all its rounds' cells.

A plugin must live in the `hydra_plugins` package for Hydra to accept it; Hydra executes it
outside `sys.modules` while scanning, so no `from __future__ import annotations` here.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


@dataclass
class RacingSweeperConf:
    _target_: str = "hydra_plugins.backprop_lab_launcher.racing_sweeper.RacingSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="racing", node=RacingSweeperConf,
                             provider="backprop-lab")


class RacingSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        repeats = int(OmegaConf.select(self.config, "eval.repeats") or 1)
        if not OmegaConf.select(self.config, "eval.race") or repeats < 2:
            if OmegaConf.select(self.config, "eval.race"):
                log.warning("eval.race=true with eval.repeats=%d: nothing to race, every job "
                            "trains its one repeat (race with eval.repeats=K, K >= 2)", repeats)
            return super().sweep(arguments)
        from backprop_lab.experiments.sweep.parent import read_marker
        from backprop_lab.experiments.sweep.racing import Race, job_key, round_overrides
        from backprop_lab.tracking.store import resolve_uri

        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        jobs = self.split_arguments(overrides, None)[0]
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        marker = read_marker(sweep_dir.resolve())
        race = Race(resolve_uri(self.config.tracking.uri), marker["parent_run_id"],
                    float(OmegaConf.select(self.config, "eval.equivalence") or 0.01))
        by_key = {job_key(job): job for job in jobs}
        running, returns, index = list(by_key), [], 0
        for repeat in range(repeats):
            batch = [round_overrides(by_key[key], repeat) for key in running]
            self.validate_batch_is_legal(batch)
            log.info("racing: round %d of %d, %d of %d jobs", repeat + 1, repeats, len(batch),
                     len(jobs))
            results = self.launcher.launch(batch, initial_job_idx=index)
            for result in results:
                _ = result.return_value  # a job's error raises here, as in the basic sweeper
            returns.append(results)
            index += len(batch)
            if repeat + 1 < repeats:
                running = race.judge(running)
                if not running:
                    break
        folds = int(OmegaConf.select(self.config, "eval.cv_folds") or 0)
        log.info("%s", race.finish(list(by_key), repeats, folds))
        return returns
