"""The files a run leaves behind: what a reader looks at and what a rerun needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from backprop_lab.data.load import Dataset
from backprop_lab.nn import diagnostics
from backprop_lab.nn.ensemble import Model
from backprop_lab.nn.weights import save_network
from backprop_lab.pipeline.stages import Prepared, Result
from backprop_lab.plots.worker import Plots
from backprop_lab.tracking import provenance
from backprop_lab.tracking.redact import hide_passwords_in


def write_artifacts(folder: Path, config: DictConfig, result: Result,
                    git_diff: str, hydra_dir: Path | None, best_kept: bool = False) -> Path:
    """Everything a reader or a rerun needs, written to `folder`; returns the model .npz path:
    config.yaml and provenance, model.npz (weights, scalers, column names), scaler.npz,
    predictions_test.csv, learning_curve.png (its best epoch marked when `best_kept`: the
    network holds that epoch's weights), predicted_vs_actual.png and, when the first network's
    gradient flow was recorded, gradient_flow.png. The plots are handed out first (a single
    run's plot worker draws them while the files are written: plots.worker) and all are drawn
    when this returns."""
    ds, preds, first = result.dataset, result.evaluation.predictions, result.histories[0]
    target = ds.target_names[0]
    with Plots() as plots:
        plots.draw("learning_curve", result.histories, folder / "learning_curve.png", best_kept)
        if f"actual_{target}" in preds:
            plots.draw("predicted_vs_actual", preds[f"actual_{target}"].to_numpy(),
                       preds[f"predicted_{target}"].to_numpy(), target,
                       folder / "predicted_vs_actual.png")
        if first.diag:
            plots.draw("gradient_flow", first.diag, folder / "gradient_flow.png",
                       diagnostics.flags(first.diag))
        write_provenance(folder, config, git_diff, hydra_dir)
        model_npz = write_model(folder, ds, result.prepared, result.network)
        preds.to_csv(folder / "predictions_test.csv", index=False)
    return model_npz


def write_model(folder: Path, ds: Dataset, prepared: Prepared, network: Model) -> Path:
    """model.npz (weights, both scalers, column names: all a prediction needs) and scaler.npz."""
    scalers = {**prepared.x_scaler.to_arrays("x_"), **prepared.y_scaler.to_arrays("y_")}
    names = {"feature_names": np.array(ds.feature_names), "target_names": np.array(ds.target_names)}
    model_npz = save_network(network, folder / "model.npz", {**scalers, **names})
    arrays: dict[str, Any] = {**scalers, **names}
    np.savez(folder / "scaler.npz", **arrays)
    return model_npz


def write_provenance(folder: Path, config: DictConfig, git_diff: str,
                     hydra_dir: Path | None) -> None:
    """What a rerun needs of any run (cross-validation too): config.yaml, environment.json,
    git_diff.patch when the tree is dirty, and Hydra's .hydra/ folder."""
    OmegaConf.save(config, folder / "config.yaml", resolve=True)
    (folder / "environment.json").write_text(json.dumps(provenance.environment(), indent=2))
    if git_diff:
        (folder / "git_diff.patch").write_text(git_diff)
    if hydra_dir is not None and (hydra_dir / ".hydra").is_dir():
        shutil.copytree(hydra_dir / ".hydra", folder / ".hydra")
        hide_passwords_in(folder / ".hydra")  # e.g. hydra.sweeper.storage=postgresql://u:pw@
