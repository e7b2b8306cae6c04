"""Gradient flow, read off the backward pass: does the cost's gradient reach every layer?

Every `every` epochs, per layer l (0 = the first), from the gradients backprop already computed
(no second pass):

    grad_norm.l     ‖∂C/∂W_l‖, the Frobenius norm, averaged over the epoch's batches
    update_ratio.l  ‖W_l(end) − W_l(start)‖ / ‖W_l(end)‖ over the epoch
    weight_norm.l   ‖W_l‖ at the end of the epoch
    dead.l          relu layers: the share of units that output 0 for every example of the epoch;
                    read from ∂C/∂b_l, which is exactly 0 for a unit silent on the whole batch
    saturated.l     tanh/sigmoid layers: the share of units with |f'(z)| < `saturation` for most
                    of the epoch's examples (f' from a: 1 − a² and a(1 − a))

`flags` turns the per-epoch records into warnings a run carries as tags: `vanishing` (the first
layer's gradient below 1e-3 × the last layer's, sustained), `exploding` (a gradient 1e3 × its
first recorded value), `dead_units` and `saturated` (more than half a layer), `stalled` (the
median layer's update ratio below `STALLED` = 1e-4, sustained). Reading only, it changes no bit
of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backprop_lab.nn.network import Network, Workspace

Array = np.ndarray
SUSTAINED = 3  # diagnosed epochs in a row a condition must hold to raise `vanishing`/`stalled`
# The median layer's ‖ΔW‖/‖W‖ per epoch below this is `stalled`. Measured here: the tutorial's
# 13-5-3-1 at lr 8e-7 moves its layers by 2e-5, 7e-5 and 4e-4 per epoch; the default Adam run
# never below 1e-3. (The issue suggested 1e-6, which the tutorial presets never reach.)
STALLED = 1e-4
Record = dict[str, float]


@dataclass
class Diagnostics:
    """Accumulates one epoch's gradient flow; `start`, then `observe` after every backprop
    (before the optimiser step, which may overwrite the gradients), then `finish`."""

    every: int
    saturation: float = 0.05
    _start: list[Array] = field(default_factory=list, repr=False)
    _grad_norm: Array = field(default_factory=lambda: np.zeros(0), repr=False)
    _fired: list[Array] = field(default_factory=list, repr=False)
    _saturated: list[Array] = field(default_factory=list, repr=False)
    _batches: int = 0
    _examples: int = 0

    def due(self, epoch: int) -> bool:
        return self.every > 0 and epoch % self.every == 0

    def start(self, net: Network) -> None:
        self._start = [W.copy() for W in net.weights]
        self._grad_norm = np.zeros(len(net.weights))
        self._fired = [np.zeros(len(b), bool) for b in net.biases[:-1]]
        self._saturated = [np.zeros(len(b)) for b in net.biases[:-1]]
        self._batches = self._examples = 0

    def observe(self, net: Network, ws: Workspace) -> None:
        """One batch: its gradient norms, which units fired, which were saturated."""
        for l, gW in enumerate(ws.grad_W):
            self._grad_norm[l] += np.sqrt(np.vdot(gW, gW))
        for l, f in enumerate(net.activations[:-1]):
            if f == "relu":
                self._fired[l] |= ws.grad_b[l] != 0
            elif f in ("tanh", "sigmoid"):
                aT = ws.a_T[l]
                slope = 1 - aT * aT if f == "tanh" else aT * (1 - aT)
                self._saturated[l] += np.count_nonzero(np.abs(slope) < self.saturation, axis=1)
        self._batches += 1
        self._examples += ws.batch_size

    def finish(self, net: Network) -> Record:
        """The epoch's record, keys `diag.<name>.l<layer>`."""
        record: Record = {}
        for l, (W, W0) in enumerate(zip(net.weights, self._start)):
            norm = float(np.linalg.norm(W))
            record[f"diag.grad_norm.l{l}"] = float(self._grad_norm[l]) / max(self._batches, 1)
            record[f"diag.weight_norm.l{l}"] = norm
            record[f"diag.update_ratio.l{l}"] = float(np.linalg.norm(W - W0)) / max(norm, 1e-300)
        for l, f in enumerate(net.activations[:-1]):
            if f == "relu":
                record[f"diag.dead.l{l}"] = float(np.mean(~self._fired[l]))
            elif f in ("tanh", "sigmoid"):
                most = self._saturated[l] / max(self._examples, 1) > 0.5
                record[f"diag.saturated.l{l}"] = float(np.mean(most))
        return record


def flags(records: dict[int, Record]) -> dict[str, str]:
    """Warnings from the per-epoch records (epoch -> record): flag -> "layer L from epoch E"."""
    found: dict[str, str] = {}
    epochs = sorted(records)
    if not epochs:
        return found
    layers = sorted({int(k.rsplit(".l", 1)[1]) for k in records[epochs[0]]
                     if k.startswith("diag.grad_norm")})
    last = layers[-1]

    def sustained(flag: str, where: str, hits: list[bool]) -> None:
        need = min(SUSTAINED, len(hits))
        for i in range(len(hits) - need + 1):
            if all(hits[i:i + need]):
                found.setdefault(flag, f"{where} from epoch {epochs[i]}")
                return

    rows = [records[e] for e in epochs]
    if last > 0:
        sustained("vanishing", "layer 0", [r["diag.grad_norm.l0"]
                                           < 1e-3 * r[f"diag.grad_norm.l{last}"] for r in rows])
    median_ratio = [float(np.median([r[f"diag.update_ratio.l{l}"] for l in layers])) for r in rows]
    sustained("stalled", "the median layer", [m < STALLED for m in median_ratio])
    for l in layers:
        first = records[epochs[0]][f"diag.grad_norm.l{l}"]
        for e in epochs:
            if first > 0 and records[e][f"diag.grad_norm.l{l}"] > 1e3 * first:
                found.setdefault("exploding", f"layer {l} from epoch {e}")
                break
        for name, flag in (("dead", "dead_units"), ("saturated", "saturated")):
            key = f"diag.{name}.l{l}"
            hit = next((e for e in epochs if records[e].get(key, 0.0) > 0.5), None)
            if hit is not None:
                found.setdefault(flag, f"layer {l} from epoch {hit}")
    return found
