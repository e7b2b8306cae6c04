"""An Optuna study that outlives its sweep: where it is stored, how it is opened, what it may
not change, and which sampler and pruner drive it (`hydra/sweeper=optuna`).

A search is resumable because the study lives in a database: by default `optuna.db` beside
a sqlite MLflow store (mlruns/optuna.db), otherwise the URL in `hydra.sweeper.storage` (a
PostgreSQL tracking server needs a database of its own: Optuna and MLflow both keep an
`alembic_version` table, so they cannot share one schema). Running the same command again opens
the same study (its name defaults to `<experiment>-<sweep preset>`) and continues it; a study
is tied to its search space and direction (kept as study attributes), and reusing its name with
others is refused rather than mixing incomparable trials. The sampler is seeded from the config,
so the same command on a fresh store asks the same trials. No Hydra here: the plugin
(hydra_plugins/backprop_lab_launcher/optuna_sweeper.py) parses the space and runs the trials.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
    distribution_to_json,
)

from backprop_lab.errors import ConfigError, InputError
from backprop_lab.tracking.redact import hide_passwords
from backprop_lab.tracking.store import sqlite_file

log = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
STUDY_FILE = "study.json"  # in the sweep dir: how a job finds its trial (see write_pointer)
SPACE_ATTR, DIRECTION_ATTR = "search_space", "direction"


def storage_url(configured: str | None, tracking_uri: str) -> str:
    """The study's database: `configured`, else optuna.db beside a sqlite MLflow store."""
    if configured:
        return configured
    db = sqlite_file(tracking_uri)
    if db is None:
        raise ConfigError(f"hydra.sweeper.storage: the tracking store {tracking_uri} is not a "
                          "sqlite file, so the study needs a database of its own (Optuna and "
                          "MLflow cannot share one), e.g. hydra.sweeper.storage="
                          "postgresql://user@host/optuna")
    return f"sqlite:///{db.parent / 'optuna.db'}"


def shown_url(url: str) -> str:
    """`url` without a password, for logs and tags."""
    return hide_passwords(url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage at `url` (a sqlite file's folder is created); an `InputError` naming the
    URL when it cannot be opened."""
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_options(url))
    except Exception as err:
        raise InputError(f"hydra.sweeper.storage: cannot open {shown_url(url)}: "
                         f"{type(err).__name__}: {' '.join(str(err).split())[:300]}") from err


def engine_options(url: str) -> dict[str, Any]:
    """sqlite: wait for a writer (jobs in other processes report to the same file)."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def make_sampler(name: str, seed: int, space: Mapping[str, BaseDistribution],
                 n_startup_trials: int = 10) -> optuna.samplers.BaseSampler:
    """tpe (Optuna 5's multivariate TPE with the constant liar, after `n_startup_trials`
    random ones), random, or grid (every combination of `choice(...)`/`range(...)` values, in
    a seeded order)."""
    if name == "tpe":
        if n_startup_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_startup_trials: must be >= 1, got "
                              f"{n_startup_trials}")
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          n_startup_trials=n_startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    raise ConfigError(f"hydra.sweeper.sampler: {name!r} is not allowed; choose one of "
                      f"{', '.join(SAMPLERS)}")


def sampler_seed(seed: int, n_before: int) -> int:
    """The sampler's seed for a sweep that finds `n_before` trials in its study: `seed` for a
    new study, else one drawn from (seed, n_before). A resumed study reseeded with `seed` would
    replay the random start-up trials it already has; this way the same command on the same
    study still asks the same trials."""
    if n_before == 0:
        return seed
    return int(np.random.SeedSequence([seed, n_before]).generate_state(1)[0])


def grid_values(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Each key's values for the grid sampler: a choice's, or an integer range's."""
    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise ConfigError(f"hydra.sweeper.params.{key}: the grid sampler needs choice(...) "
                              f"or an integer range, got {type(dist).__name__}")
    return grid


def grid_size(space: Mapping[str, BaseDistribution]) -> int:
    size = 1
    for values in grid_values(space).values():
        size *= len(values)
    return size


def make_pruner(name: str, epochs: int, report_every: int) -> optuna.pruners.BasePruner:
    """How trials are stopped early on the scores they report every `report_every` epochs:
    median (worse than the median of earlier trials at the same epoch, once 5 trials have
    finished), successive_halving and hyperband (rungs from `report_every` epochs up to
    `epochs`), or none."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=report_every)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=report_every, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"hydra.sweeper.pruner: {name!r} is not allowed; choose one of "
                      f"{', '.join(PRUNERS)}")


def space_json(space: Mapping[str, BaseDistribution]) -> str:
    return json.dumps({k: json.loads(distribution_to_json(d)) for k, d in sorted(space.items())},
                      sort_keys=True)


def space_text(stored: str) -> str:
    """"train.lr float 0.0001..1 (log), model.depth int 0..3" from `space_json`'s text."""
    parts = []
    for key, dist in json.loads(stored).items():
        a = dist["attributes"]
        if "choices" in a:
            parts.append(f"{key} one of {a['choices']}")
            continue
        kind = "int" if dist["name"].startswith("Int") else "float"
        step = a.get("step")
        extra = " (log)" if a.get("log") else (f" step {step}" if step not in (None, 1) else "")
        parts.append(f"{key} {kind} {a['low']:g}..{a['high']:g}{extra}")
    return ", ".join(parts)


def open_study(storage: optuna.storages.RDBStorage, name: str, direction: str,
               space: Mapping[str, BaseDistribution], sampler: optuna.samplers.BaseSampler,
               pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Create the study, or load it to continue; a study of that name with another search
    space or direction is an `InputError` (one line, exit 2)."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"hydra.sweeper.direction: {direction!r} is not allowed; choose one "
                          f"of {', '.join(DIRECTIONS)}")
    study = optuna.create_study(storage=storage, study_name=name,
                                direction=optuna.study.StudyDirection[direction.upper()],
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    attrs = study.user_attrs
    wanted = space_json(space)
    if SPACE_ATTR not in attrs:  # a new study: remember what it searches
        study.set_user_attr(SPACE_ATTR, wanted)
        study.set_user_attr(DIRECTION_ATTR, direction)
        return study
    stored = (attrs[SPACE_ATTR], attrs.get(DIRECTION_ATTR, study.direction.name.lower()))
    if stored != (wanted, direction):
        what = "search space" if stored[0] != wanted else "direction"
        raise InputError(f"hydra.sweeper.study_name: study {name!r} exists with another "
                         f"{what} ({stored[1]} over {space_text(stored[0])}; asked: "
                         f"{direction} over {space_text(wanted)}); choose another "
                         "hydra.sweeper.study_name")
    return study


def write_pointer(sweep_dir: Path, url: str, name: str, pruner: str, epochs: int,
                  report_every: int) -> None:
    """<sweep dir>/study.json: what a job needs to reach its trial through the storage (Hydra
    has no channel back from a job); the job gets its trial's number as `tracking.trial`."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    pointer = {"storage": url, "study_name": name, "pruner": pruner, "epochs": epochs,
               "report_every": report_every}
    path = sweep_dir / STUDY_FILE
    path.touch(mode=0o600)  # the storage URL may hold a password: for this user's jobs only
    path.write_text(json.dumps(pointer, indent=2))


def read_pointer(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / STUDY_FILE
    if not path.is_file():
        raise InputError(f"tracking.trial is set but {path} does not exist: tracking.trial is "
                         "set by hydra/sweeper=optuna only")
    return dict(json.loads(path.read_text()))
