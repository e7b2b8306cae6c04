"""Update rules: given parameters and their gradients, change the parameters in place.

Every rule works on stacks (`nn.stacked`): a parameter has shape (K, ...), one slice per network,
and `step(params, grads, s)` updates the networks of the slice `s` only, with `grads` holding
theirs. A single network is the K = 1 stack. Each network has its own learning rate and weight
decay (arrays of shape (K,)) and, for Adam, its own step count: a network that stopped early or
sat out a step (its fold had one batch fewer) does not move its neighbours' counters.

Weight decay applies to the weight matrices W_l only, never to the biases b_l (as in
scikit-learn; with PyTorch, pass the biases in a parameter group with `weight_decay=0`):

    L2 (gd, sgd, momentum, adam)   g ← g + λ·W                  (torch.optim.Adam(weight_decay=λ))
    decoupled (adamw)              W ← W·(1 − lr·λ), then the step  (torch.optim.AdamW)

`step` may overwrite the gradient arrays, which the next backward pass refills anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray
OPTIMIZERS = ("gd", "sgd", "momentum", "adam", "adamw")
Weights = list[tuple[Array, Array]]  # (W_l stacked (K, out, in), ∂C/∂W_l of the updated networks)


def per_network(values: Array, p: Array) -> Array:
    """values of shape (m,) as p's dtype, shaped (m, 1, ...) to broadcast over p (m, ...)."""
    return values.astype(p.dtype).reshape(-1, *(1,) * (p.ndim - 1))


def is_weight(p: Array) -> bool:
    """A stacked W_l is (K, out, in); a stacked b_l is (K, out)."""
    return p.ndim == 3


@dataclass
class Rule:
    """What every rule shares: one learning rate and one weight decay per network (scalars or
    arrays of shape (K,); a scalar weight decay applies to every network)."""

    lr: Any
    weight_decay: Any = 0.0

    def __post_init__(self) -> None:
        self.lr = np.atleast_1d(np.asarray(self.lr, dtype=np.float64))
        self.weight_decay = np.broadcast_to(np.asarray(self.weight_decay, dtype=np.float64),
                                            self.lr.shape).copy()
        if not np.isfinite([*self.lr, *self.weight_decay]).all():
            raise ValueError("train.lr and train.weight_decay must be finite")
        self.decaying = bool(self.weight_decay.any())

    def step(self, params: list[Array], grads: list[Array], s: slice | None = None,
             weights: Weights | None = None) -> None:
        """Update the networks of the slice `s` of stacked `params` with their `grads`; without
        `s`, `params` are one network's [W_0, b_0, ...] (a stack of one). `weights` are the
        (W_l, ∂C/∂W_l) pairs weight decay applies to: by default the 3-D (stacked W) ones among
        `params`; a stack whose parameters are one flat array names them."""
        if s is None:
            params, grads, s = [p[None] for p in params], [g[None] for g in grads], slice(0, 1)
        if weights is None:
            weights = [(p, g) for p, g in zip(params, grads) if is_weight(p)]
        self.update(params, grads, s, weights)

    def update(self, params: list[Array], grads: list[Array], s: slice,
               weights: Weights) -> None:
        raise NotImplementedError

    def permute(self, perm: list[int]) -> None:
        """Reorder the networks as their parameters were: slot s gets the state of perm[s]."""
        for state in self.state():
            state[:] = state[perm]

    def state(self) -> list[Array]:
        """Every array with one entry per network."""
        return [self.lr, self.weight_decay]

    def decay(self, weights: Weights, s: slice) -> None:
        """L2: g ← g + λ·W for the networks of `s` whose λ is not 0 (for λ = 0 the gradient
        is left untouched rather than given + 0·W, so no bit differs from no decay)."""
        if not self.decaying:
            return
        lam = self.weight_decay[s]
        if not lam.any():
            return
        for p, g in weights:
            if lam.all():
                g += per_network(lam, p) * p[s]
            else:
                for j in np.flatnonzero(lam):
                    g[j] += p.dtype.type(lam[j]) * p[s][j]


@dataclass
class GradientDescent(Rule):
    """p ← p − lr·g: the tutorial's rule (full batch), and plain SGD on mini-batches."""

    def update(self, params: list[Array], grads: list[Array], s: slice,
               weights: Weights) -> None:
        self.decay(weights, s)
        for p, g in zip(params, grads):
            g *= per_network(self.lr[s], p)
            p[s] -= g


@dataclass
class Momentum(Rule):
    """v ← μ·v − lr·g;  p ← p + v (classical momentum; torch.optim.SGD(momentum=μ) to 1e-16)."""

    momentum: float = 0.9
    velocity: list[Array] = field(default_factory=list)

    def update(self, params: list[Array], grads: list[Array], s: slice,
               weights: Weights) -> None:
        self.decay(weights, s)
        if not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.velocity):
            v[s] *= p.dtype.type(self.momentum)
            g *= per_network(self.lr[s], p)
            v[s] -= g
            p[s] += v[s]

    def state(self) -> list[Array]:
        return [*super().state(), *self.velocity]


@dataclass
class Adam(Rule):
    """Adam (Kingma & Ba, 2015) as `torch.optim.Adam` computes it, operation for operation:

        m ← m + (1 − β1)·(g − m)                  (torch's lerp)
        v ← β2·v + (1 − β2)·g·g
        p ← p − (lr / (1 − β1ᵗ))·m / (√v / √(1 − β2ᵗ) + ε)

    ε is added after the bias correction of √v (as PyTorch and Optax do; scikit-learn adds it to
    the uncorrected √v, which differs by ~1e-6 relative over 20 steps). With `decoupled`, the
    weight decay is AdamW's W ← W·(1 − lr·λ) before the step instead of L2.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decoupled: bool = False
    t: Array = field(default_factory=lambda: np.zeros(0, np.int64))  # steps taken, (K,)
    m: list[Array] = field(default_factory=list)
    v: list[Array] = field(default_factory=list)
    scratch: list[Array] = field(default_factory=list, repr=False)

    def update(self, params: list[Array], grads: list[Array], s: slice,
               weights: Weights) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
            self.scratch = [np.empty_like(p) for p in params]
            self.t = np.zeros(len(params[0]), np.int64)
        if self.decoupled:
            self.shrink(weights, s)
        else:
            self.decay(weights, s)
        self.t[s] += 1
        # the bias corrections in Python floats, per network, as torch computes them
        t = self.t[s].tolist()
        step_size = np.array([lr / (1 - self.beta1**k) for lr, k in zip(self.lr[s], t)])
        root_bc2 = np.array([(1 - self.beta2**k) ** 0.5 for k in t])
        for p, g, m, v, tmp in zip(params, grads, self.m, self.v, self.scratch):
            dt = p.dtype.type
            m, v, tmp = m[s], v[s], tmp[s]
            np.multiply(g, dt(1 - self.beta2), out=tmp)  # v ← β2·v + ((1 − β2)·g)·g
            tmp *= g
            v *= dt(self.beta2)
            v += tmp
            lerp(m, g, 1 - self.beta1, tmp)  # m ← m + (1 − β1)·(g − m)
            np.sqrt(v, out=tmp)  # √v / √(1 − β2ᵗ) + ε
            tmp /= per_network(root_bc2, p)
            tmp += dt(self.eps)
            np.multiply(m, per_network(-step_size, p), out=g)
            g /= tmp
            p[s] += g

    def state(self) -> list[Array]:
        return [*super().state(), *self.m, *self.v, *([self.t] if self.m else [])]

    def shrink(self, weights: Weights, s: slice) -> None:
        """AdamW: W ← W·(1 − lr·λ) for the networks of `s` whose λ is not 0."""
        lam = self.weight_decay[s]
        for p, _ in weights:
            for j in np.flatnonzero(lam):
                p[s][j] *= p.dtype.type(1 - self.lr[s][j] * lam[j])


def lerp(start: Array, end: Array, w: float, tmp: Array) -> None:
    """start ← start + w·(end − start) in place, as torch.lerp computes it: from `end` when
    w ≥ 0.5 (end − (end − start)·(1 − w)), for accuracy. Overwrites `end` or `tmp`."""
    dt = start.dtype.type
    if abs(w) < 0.5:
        end -= start
        end *= dt(w)
        start += end
    else:
        np.subtract(end, start, out=tmp)
        tmp *= dt(1 - w)
        np.subtract(end, tmp, out=start)


Optimizer = GradientDescent | Momentum | Adam


def make_optimizer(
    name: str,
    lr: float | Sequence[float],
    momentum: float = 0.9,
    weight_decay: float | Sequence[float] = 0.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    """The optimiser called `name` for a stack of networks: `lr` and `weight_decay` one per
    network (a scalar: a stack of one). `gd` and `sgd` are the same rule (batching decides)."""
    if name in ("gd", "sgd"):
        return GradientDescent(lr, weight_decay)
    if name == "momentum":
        return Momentum(lr, weight_decay, momentum)
    if name in ("adam", "adamw"):
        return Adam(lr, weight_decay, beta1, beta2, eps, decoupled=name == "adamw")
    raise ValueError(f"train.optimizer: unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
