"""Which rows a run logs as its dataset inputs (`tracking.datasets`), and their digests now.

A run on one split logs its training, validation and test rows (an empty part, e.g.
`data.test_fraction=0`, is left out). A run scored on cells (folds, repeats) logs the data set
once, its context naming the cells (`5-fold cv`, `5-fold cv x 3 repeats`, `3 repeated splits`):
every row is training, validation and test data in some cell. `digests_now` splits the data as
the config does today, for `rerun` to compare with what the run logged.
"""

from __future__ import annotations

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset
from backprop_lab.data.splits import Split
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.config import Config
from backprop_lab.tracking import datasets
from backprop_lab.tracking.store import Run

TRAINING, VALIDATION, TEST = "training", "validation", "test"


def split_parts(split: Split) -> list[datasets.Part]:
    return [datasets.Part(TRAINING, split.X_train, split.y_train),
            datasets.Part(VALIDATION, split.X_val, split.y_val),
            datasets.Part(TEST, split.X_test, split.y_test)]


def cells_context(config: Config) -> str:
    """How a run scored on cells used the data: `5-fold cv x 3 repeats`."""
    folds, repeats = config.eval.cv_folds, config.eval.repeats
    if folds >= 2:
        return f"{folds}-fold cv" + (f" x {repeats} repeats" if repeats > 1 else "")
    return f"{repeats} repeated splits" if repeats > 1 else "repeated split"


def parts(config: Config, ds: Dataset, split: Split | None) -> list[datasets.Part]:
    """The parts a run logs: its split's three, or (split None: scored on cells) the whole set."""
    if split is not None:
        return split_parts(split)
    return [datasets.Part(cells_context(config), ds.X, ds.y)]


def log_inputs(run: Run, config: Config, ds: Dataset, split: Split | None) -> None:
    datasets.log_datasets(run, ds, parts(config, ds, split), config.data.name)


def digests_now(config: Config, ds: Dataset, cells: bool) -> dict[str, str]:
    """{context: digest} of the parts the config makes of `ds` today."""
    split = None
    if not cells:
        split_rng = stages.streams(config.seed)[0]
        split = splits.split(ds, config.data.val_fraction, config.data.test_fraction, split_rng)
    return {part.context: datasets.digest(ds, part) for part in parts(config, ds, split)
            if len(part.X)}
