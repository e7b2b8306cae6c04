"""The two pictures of a run: its learning curve and its predictions against the truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from backprop_lab.nn.training import History


def learning_curve(histories: Sequence[History], path: Path, best_kept: bool = False) -> Path:
    """learning_curve.png (`learning_curve_figure`)."""
    fig = learning_curve_figure(histories, best_kept)
    fig.savefig(path, dpi=100)
    return path


def learning_curve_figure(histories: Sequence[History], best_kept: bool = False) -> Figure:
    """Train and validation cost per epoch; an ensemble's members after the first are drawn
    as thin lines in the same colours. The best epoch is marked only when `best_kept` (the
    network holds its weights: early stopping, or a divergence that restored them); a diverged
    member's blow-up is marked with a red × (10x above the highest finite cost when it
    overflowed)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for k, history in enumerate(histories):
        first = k == 0
        width, alpha = (1.5, 1.0) if first else (0.6, 0.5)
        train_label = "train" if first else ("train, other members" if k == 1 else None)
        val_label = "validation" if first else ("validation, other members" if k == 1 else None)
        ax.plot(np.arange(len(history.train_cost)), history.train_cost, color="C0",
                label=train_label, linewidth=width, alpha=alpha)
        if history.val_cost:
            ax.plot(np.arange(len(history.val_cost)), history.val_cost, color="C1",
                    label=val_label, linewidth=width, alpha=alpha)
    if best_kept and histories[0].best_epoch >= 0:
        ax.axvline(histories[0].best_epoch, color="grey", linestyle=":",
                   label="best epoch (weights kept)" if len(histories) == 1 else
                   "best epoch of member 0 (weights kept)")
    blown = [(h, h.diverged_epoch) for h in histories if h.diverged_epoch is not None]
    for k, (history, epoch) in enumerate(blown):
        at = [c[epoch] for c in (history.train_cost, history.val_cost) if epoch < len(c)]
        finite = [c for c in history.train_cost + history.val_cost if np.isfinite(c) and c > 0]
        shown = [c for c in at if np.isfinite(c)]
        top = max(shown) if shown else max(finite, default=1.0) * 10
        ax.plot([epoch], [top], marker="x", color="red", markersize=10,
                linestyle="none", label=f"diverged (epoch {epoch})"
                if k == 0 else None)
    ax.set(xlabel="epoch", ylabel="cost C = ½·mean‖y − a‖² (training units)", yscale="log",
           title="Learning curve" if len(histories) == 1 else
           f"Learning curves of {len(histories)} ensemble members")
    ax.legend()
    fig.tight_layout()
    return fig


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, target: str, path: Path) -> Path:
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
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
    return path


def gradient_flow(diag: dict[int, dict[str, float]], path: Path,
                  flagged: dict[str, str] | None = None) -> Path:
    """Per-layer gradient norm and update ratio against epoch (log y), one line per layer, from
    `History.diag`; the flags raised are named in the title."""
    epochs = sorted(diag)
    layers = sorted({int(k.rsplit(".l", 1)[1]) for k in diag[epochs[0]]
                     if k.startswith("diag.grad_norm")}) if epochs else []
    fig = Figure(figsize=(9, 3.8))
    axes = fig.subplots(1, 2)
    for ax, name, label in ((axes[0], "grad_norm", "‖∂C/∂W_l‖ (mean over batches)"),
                            (axes[1], "update_ratio", "‖ΔW_l‖ / ‖W_l‖ per epoch")):
        for l in layers:
            values = np.array([diag[e][f"diag.{name}.l{l}"] for e in epochs])
            shown = np.where(values > 0, values, np.nan)
            ax.plot(epochs, shown, marker="." if len(epochs) < 30 else None, label=f"layer {l}")
        ax.set(xlabel="epoch", ylabel=label, yscale="log")
        if layers:
            ax.legend(fontsize="small")
    title = "Gradient flow"
    if flagged:
        title += ": " + "; ".join(f"{flag} ({where})" for flag, where in flagged.items())
    elif epochs:
        title += ": no flags"
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
