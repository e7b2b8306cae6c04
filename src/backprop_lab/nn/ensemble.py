"""An ensemble: N networks of one architecture, trained independently, predicting their mean.

On a few hundred rows a small network's test score depends on its random initial weights and
batch order by about ±0.01 R²; averaging independently trained members cancels much of that
variance. Each member is an ordinary `Network` trained by the same `train`; only prediction
and the cost of the averaged output are the ensemble's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_lab.nn.network import Network, cost_from_error

Array = np.ndarray


def member_rngs(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """One generator per member: the first is `rng` itself, so a one-member ensemble draws
    exactly what a single network draws; the others are independent children of it."""
    return [rng, *rng.spawn(n - 1)]


@dataclass
class Ensemble:
    members: list[Network]

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(self.members)}")
        first = self.members[0]
        for k, net in enumerate(self.members[1:], start=1):
            if (net.sizes, net.activations, net.dtype) != (first.sizes, first.activations,
                                                           first.dtype):
                raise ValueError(f"ensemble member {k} has layers {net.sizes} "
                                 f"({net.activation}, {net.dtype}); member 0 has {first.sizes} "
                                 f"({first.activation}, {first.dtype})")

    @property
    def dtype(self) -> np.dtype:
        return self.members[0].dtype

    @property
    def sizes(self) -> list[int]:
        return self.members[0].sizes

    def predict(self, X: Array) -> Array:
        """The members' mean output, shape (n_samples, n_outputs)."""
        total = self.members[0].predict(X)  # a fresh array: safe to add into
        for net in self.members[1:]:
            total += net.predict(X)
        total /= len(self.members)
        return total

    def cost(self, X: Array, y: Array) -> float:
        """C = ½‖y − ā‖² averaged over examples, ā being the members' mean output."""
        err = self.predict(X) - np.asarray(y, dtype=self.dtype).reshape(len(X), -1)
        return cost_from_error(err, len(X))


Model = Network | Ensemble


def members(model: Model) -> list[Network]:
    """The networks that make up `model` (a single network is its own only member)."""
    return model.members if isinstance(model, Ensemble) else [model]
