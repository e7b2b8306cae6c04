"""The two pictures of a run: its learning curve and its predictions against the truth."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from backprop_lab.train import History  # noqa: E402


def learning_curve(history: History, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(len(history.train_cost))
    ax.plot(epochs, history.train_cost, label="train")
    if history.val_cost:
        ax.plot(np.arange(len(history.val_cost)), history.val_cost, label="validation")
    if history.best_epoch >= 0:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
    ax.set(xlabel="epoch", ylabel="cost C = ½·mean‖y − a‖² (training units)", yscale="log",
           title="Learning curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, target: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(actual, predicted, s=12, alpha=0.7)
    if len(actual):
        lo = float(min(actual.min(), predicted.min()))
        hi = float(max(actual.max(), predicted.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", label="perfect")
        ax.legend()
    ax.set(xlabel=f"actual {target}", ylabel=f"predicted {target}",
           title="Test split: predicted vs actual")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
