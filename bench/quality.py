"""Quality beyond Boston: the network's CV R² against the baselines, on every built-in data set.

    .venv/bin/python bench/quality.py [--data boston diabetes friedman1] [--folds 5]
                                      [--repeats 3] [--config NAME=OVERRIDES ...]

For each data set, a table of CV R² (mean over the folds x repeats cells, and its 95% interval
with Nadeau and Bengio's correction for cells that share training rows) of:

- `default`: `python -m pipelines.train data=<name> eval.cv_folds=5 eval.repeats=3`;
- `preset`: the same with `experiment=<name>` when conf/experiment/<name>.yaml exists (the
  data set's documented preset), and every `--config NAME="k=v k=v"` given;
- the baselines `eval.baselines=true` scores (linear, ridge, sklearn_mlp), and scikit-learn's
  `HistGradientBoostingRegressor` (defaults, seeded), each on exactly the network's cells: the
  same training (+ validation) and test rows of every (repeat, fold).

Every row names the command that made it. No MLflow: the pipeline's stages only, so the numbers
are the ones a run logs as `test_r2` (its mean over the cells).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backprop_lab.data.metrics import regression_metrics  # noqa: E402
from backprop_lab.experiments.run.cells import mean_ci  # noqa: E402
from backprop_lab.pipeline import baselines, crossval, stages  # noqa: E402
from backprop_lab.pipeline.compose import compose, to_config  # noqa: E402

CONF_EXPERIMENT = ROOT / "conf" / "experiment"


def network_cells(overrides: list[str]) -> tuple[list[crossval.Cell], np.ndarray]:
    """The cells of `pipelines.train <overrides>` and their test R² (one per cell)."""
    config = to_config(compose(overrides))
    cells = crossval.run_cells(config, stages.load(config.data))
    return cells, np.array([c.result.evaluation.metrics["test_r2"] for c in cells])


def gradient_boosting_r2(cells: list[crossval.Cell], seed: int) -> np.ndarray:
    """HistGradientBoostingRegressor (defaults) fitted on each cell's training + validation rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    out = []
    for cell in cells:
        split = cell.result.prepared.split
        X_fit = np.concatenate([split.X_train, split.X_val])
        y_fit = np.concatenate([split.y_train, split.y_val])[:, 0]
        model = HistGradientBoostingRegressor(random_state=seed + cell.repeat).fit(X_fit, y_fit)
        predicted = model.predict(split.X_test).reshape(-1, 1)
        out.append(regression_metrics(split.y_test, predicted)["r2"])
    return np.array(out)


def row(name: str, r2: np.ndarray, ratio: float, command: str) -> str:
    ci = mean_ci(r2, ratio)
    return f"| {name} | {ci.mean:.3f} | [{ci.low:.3f}, {ci.high:.3f}] | {command} |"


def table(data: str, folds: int, repeats: int, configs: dict[str, str]) -> list[str]:
    base = [f"data={data}", f"eval.cv_folds={folds}", f"eval.repeats={repeats}"]
    runs = {"default": base}
    if (CONF_EXPERIMENT / f"{data}.yaml").is_file():
        runs["preset"] = [*base, f"experiment={data}"]
    runs.update({name: [*base, *extra.split()] for name, extra in configs.items()})
    lines = [f"### {data} ({folds}-fold CV x {repeats} repeats)", "",
             "| model | CV R² | 95% CI | command |", "|---|---|---|---|"]
    cells = None
    for name, overrides in runs.items():
        t0 = time.perf_counter()
        found, r2 = network_cells(overrides)
        cells = cells or found
        seconds = time.perf_counter() - t0
        command = f"`pipelines.train {' '.join(overrides)}` ({seconds:.0f} s)"
        lines.append(row(name, r2, ratio(found), command))
    assert cells is not None
    config = to_config(compose(base))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = baselines.score(cells, config.seed)
    for name in baselines.BASELINES:
        r2 = scored.loc[scored["baseline"] == name, "test_r2"].to_numpy()
        lines.append(row(name, r2, ratio(cells), f"`... {' '.join(base)} eval.baselines=true`"))
    lines.append(row("gradient boosting", gradient_boosting_r2(cells, config.seed), ratio(cells),
                     "HistGradientBoostingRegressor() on the same cells"))
    return lines


def ratio(cells: list[crossval.Cell]) -> float:
    """n_test / n_train of the cells (the Nadeau-Bengio correction); one repeat is independent."""
    return cells[0].n_test / (cells[0].n_train + cells[0].n_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["boston", "diabetes", "friedman1"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", nargs="*", default=[], metavar="NAME=OVERRIDES",
                        help='extra network rows, e.g. wd=\'train.weight_decay=0.01\'')
    args = parser.parse_args()
    configs = dict(c.split("=", 1) for c in args.config)
    print(f"load average {os.getloadavg()[0]:.2f} at start")
    for data in args.data:
        print("\n".join(table(data, args.folds, args.repeats, configs)), "\n", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
