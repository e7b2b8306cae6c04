"""Update rules: given parameters and their gradients, change the parameters in place.

L2 weight decay adds `weight_decay * W` to the gradient of every weight matrix (not the biases).
`step` may overwrite the gradient arrays, which the next backward pass refills anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray
OPTIMIZERS = ("gd", "sgd", "momentum", "adam")


def add_weight_decay(params: list[Array], grads: list[Array], weight_decay: float) -> None:
    if weight_decay:
        for p, g in zip(params, grads):
            if p.ndim == 2:
                g += p.dtype.type(weight_decay) * p


@dataclass
class GradientDescent:
    """p ← p − lr·g: the tutorial's rule (full batch), and plain SGD on mini-batches."""

    lr: float
    weight_decay: float = 0.0

    def step(self, params: list[Array], grads: list[Array]) -> None:
        add_weight_decay(params, grads, self.weight_decay)
        for p, g in zip(params, grads):
            g *= p.dtype.type(self.lr)
            p -= g


@dataclass
class Momentum:
    """v ← μ·v − lr·g;  p ← p + v (classical momentum)."""

    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    velocity: list[Array] = field(default_factory=list)

    def step(self, params: list[Array], grads: list[Array]) -> None:
        add_weight_decay(params, grads, self.weight_decay)
        if not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.velocity):
            v *= p.dtype.type(self.momentum)
            g *= p.dtype.type(self.lr)
            v -= g
            p += v


@dataclass
class Adam:
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    t: int = 0
    m: list[Array] = field(default_factory=list)
    v: list[Array] = field(default_factory=list)

    def step(self, params: list[Array], grads: list[Array]) -> None:
        add_weight_decay(params, grads, self.weight_decay)
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        lr_t = self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            dt = p.dtype.type
            m *= dt(self.beta1)
            m += dt(1 - self.beta1) * g
            v *= dt(self.beta2)
            g *= g
            v += dt(1 - self.beta2) * g
            p -= dt(lr_t) * m / (np.sqrt(v) + dt(self.eps))


Optimizer = GradientDescent | Momentum | Adam


def make_optimizer(
    name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> Optimizer:
    """The optimiser called `name`; `gd` and `sgd` are the same rule (batching decides)."""
    if name in ("gd", "sgd"):
        return GradientDescent(lr, weight_decay)
    if name == "momentum":
        return Momentum(lr, momentum, weight_decay)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    raise ValueError(f"train.optimizer: unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
