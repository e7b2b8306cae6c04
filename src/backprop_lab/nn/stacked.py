"""K networks of one shape as one: parameters held as (K, out, in) stacks, one pass for all.

A Boston-sized training step is overhead, not arithmetic: ~100 numpy calls of a few µs each, for a
few µs of floating-point work. Stacking K networks makes it the same ~100 calls on arrays K times
larger. Network k's layer l is W_l[k] of shape (out, in) and b_l[k] of shape (out,); over its own
batch of n examples, in the transposed layout of `network.py` (one row per neuron, one column
per example), the equations are the tutorial's with a leading network axis:

    forward   z_lᵀ[k] = W_l[k] a_{l−1}ᵀ[k] + b_l[k],      a_lᵀ[k] = f_l(z_lᵀ[k]),   a_0 = X_k
    backward  δ_Lᵀ[k] = (a_Lᵀ[k] − y_kᵀ) ⊙ f_L'(z_L) / n
              δ_{l−1}ᵀ[k] = (W_l[k]ᵀ δ_lᵀ[k]) ⊙ f_{l−1}'(z_{l−1})
              ∂C_k/∂W_l[k] = δ_lᵀ[k] a_{l−1}[k],       ∂C_k/∂b_l[k] = δ_lᵀ[k] · 1

`np.matmul` on a stack calls, for each slice, the GEMM that a 2-D product with the same strides
calls, and elementwise passes do not depend on the array's shape (the optimiser updates all of
a network's parameters, held in one row of `Stack.flat`, in one pass per operation); so network
k's numbers are exactly those of training it alone (tests/nn/test_stacked.py checks every
optimiser and activation bit for bit). `Network.backprop` is the same pass for one network,
kept as the readable reference that the gradient checks test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backprop_lab.nn.activations import ACTIVATE, BACKPROP
from backprop_lab.nn.network import Network, Workspace, cost_from_error

Array = np.ndarray
CHUNK = 8192  # rows per forward pass when scoring a whole set: memory stays O(CHUNK × width)


def layer_views(flat: Array, sizes: list[int]) -> tuple[list[Array], list[Array]]:
    """W_l (K, out, in) and b_l (K, out) as views into the rows of flat (K, P): each network's
    parameters are one contiguous row [W_0, b_0, W_1, b_1, ...], so that an optimiser updates
    all of them in one pass per operation, and each W_l[k] is a C-ordered matrix (a GEMM
    operand as it is for one network)."""
    K, weights, biases, offset = len(flat), [], [], 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        weights.append(flat[:, offset : offset + n_out * n_in].reshape(K, n_out, n_in))
        offset += n_out * n_in
        biases.append(flat[:, offset : offset + n_out])
        offset += n_out
    return weights, biases


def n_parameters(sizes: list[int]) -> int:
    return sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes, sizes[1:]))


@dataclass
class Stack:
    """The parameters of K networks with the same layer sizes, activations and dtype, in one
    (K, P) array `flat`; `weights` and `biases` are its per-layer views."""

    flat: Array  # (K, P): network k's [W_0, b_0, W_1, b_1, ...], flattened
    sizes: list[int]  # [n_inputs, *hidden, n_outputs]
    activations: list[str]  # one per layer: hidden layers, then the output layer

    def __post_init__(self) -> None:
        self.weights, self.biases = layer_views(self.flat, self.sizes)

    @classmethod
    def of(cls, nets: Sequence[Network]) -> Stack:
        """A stack holding copies of `nets`' parameters; `get` copies them back."""
        first = nets[0]
        for k, net in enumerate(nets):
            if (net.sizes, net.activations, net.dtype) != (first.sizes, first.activations,
                                                           first.dtype):
                raise ValueError(f"network {k} has layers {net.sizes} ({net.activation}, "
                                 f"{net.dtype}); network 0 has {first.sizes} "
                                 f"({first.activation}, {first.dtype}): they cannot be stacked")
        stack = cls(np.empty((len(nets), n_parameters(first.sizes)), first.dtype), first.sizes,
                    first.activations)
        for k, net in enumerate(nets):
            stack.set(k, net)
        return stack

    def __len__(self) -> int:
        return len(self.flat)

    @property
    def dtype(self) -> np.dtype:
        return self.flat.dtype

    @property
    def parameters(self) -> list[Array]:
        """[W_0, b_0, W_1, b_1, ...] stacked: views into `flat`."""
        return [p for W, b in zip(self.weights, self.biases) for p in (W, b)]

    def member(self, k: int) -> Network:
        """Network k as a `Network` whose arrays are views into the stack."""
        return Network([W[k] for W in self.weights], [b[k] for b in self.biases],
                       self.activations[0], self.activations[-1])

    def set(self, k: int, net: Network) -> None:
        """Copy `net`'s parameters into slot k."""
        for stacked, p in zip(self.parameters, net.parameters):
            np.copyto(stacked[k], p)

    def get(self, k: int, net: Network) -> None:
        """Copy slot k's parameters into `net` (in place: its arrays stay its own)."""
        for p, stacked in zip(net.parameters, self.parameters):
            np.copyto(p, stacked[k])

    def costs(self, X: Array, y: Array, s: slice) -> list[float]:
        """C_k = ½‖a_L − y‖² / n on one shared set (X (n, in), y (n, out)) for the networks of `s`:
        the products of `Network.cost`, broadcast over the stack, CHUNK rows at a time."""
        n = len(X)
        total = np.zeros(len(range(*s.indices(len(self)))))
        for i in range(0, n, CHUNK):
            a = X[i : i + CHUNK]
            for W, b, f in zip(self.weights, self.biases, self.activations):
                z = np.matmul(a, W[s].swapaxes(1, 2))  # z_l = a_{l-1} W_lᵀ, per network
                z += b[s][:, None, :]
                a = ACTIVATE[f](z)
            err = a - y[i : i + CHUNK]
            total += [cost_from_error(e, 1) for e in err]
        return (total / n).tolist() if n > CHUNK else [float(t) / n for t in total]

    def backprop(self, s: slice, xT: Array, y: Array, ws: StackWorkspace) -> list[float]:
        """One forward and backward pass for the networks of `s`, each on its own batch; returns
        their costs C_k, gradients in `ws` (its first m slices, m = the networks in `s`).

        xT: (m, n_inputs, n), the batches with one column per example; y: (m, n, n_outputs).
        """
        v = ws.views(self, s)
        n, acts = xT.shape[2], self.activations
        if v.single:  # one network: its 2-D slices, the same GEMMs with less call overhead
            xT, y = xT[0], y[0]
        aT = xT
        for W, b, zT, f in zip(v.W, v.b, v.zT, acts):
            np.matmul(W, aT, out=zT)  # z_lᵀ = W_l a_{l-1}ᵀ + b_l
            zT += b
            aT = ACTIVATE[f](zT)  # z's buffer now holds a_l
        deltaT = v.deltaT[-1]
        np.subtract(aT, y.swapaxes(-1, -2), out=deltaT)
        costs = [cost_from_error(d, n) for d in (deltaT[None] if v.single else deltaT)]
        deltaT *= deltaT.dtype.type(1 / n)  # every gradient below is then a mean over examples
        BACKPROP[acts[-1]](aT, deltaT, v.tmp[-1])
        for l in range(len(acts) - 1, -1, -1):
            a_prev = xT.swapaxes(-1, -2) if l == 0 else v.z[l - 1]  # a_{l-1}, (m, n, neurons)
            np.matmul(deltaT, a_prev, out=v.gW[l])
            np.matmul(deltaT, ws.ones, out=v.gb[l])  # Σ over examples, as δᵀ·1
            if l > 0:
                if v.WT[l].shape[-1] == 1:  # one neuron: W_lᵀ δ_lᵀ is an outer product
                    np.multiply(v.WT[l], deltaT, out=v.deltaT[l - 1])
                else:
                    np.matmul(v.WT[l], deltaT, out=v.deltaT[l - 1])
                deltaT = BACKPROP[acts[l - 1]](v.zT[l - 1], v.deltaT[l - 1], v.tmp[l - 1])
        return costs


@dataclass
class PassViews:
    """The arrays one pass over networks s = a..b-1 reads and writes: their parameters and the
    first m = b − a slices of a workspace's buffers. Views cost ~0.3 µs each to make; a pass
    needs ~10 per layer, so they are made once per (a, b) and kept (the stack's arrays never
    move: a permutation of the networks rewrites them in place)."""

    W: list[Array]  # W_l[s], (m, out, in)
    WT: list[Array]  # W_l[s]ᵀ per network, (m, in, out)
    b: list[Array]  # b_l[s] as (m, out, 1), to add to z_lᵀ
    zT: list[Array]  # z_lᵀ, then a_lᵀ: (m, out, n)
    z: list[Array]  # the same buffers as (m, n, out)
    deltaT: list[Array]  # δ_lᵀ, (m, out, n)
    gW: list[Array]  # ∂C/∂W_l, (m, out, in)
    gb: list[Array]  # ∂C/∂b_l, (m, out)
    tmp: list[Array]  # scratch like zT, for f'(z_l)
    single: bool = False  # m = 1: every view is the network's 2-D slice (no leading axis)
    grad: Array = field(default_factory=lambda: np.empty(0))  # all of ∂C/∂θ, (m, P)
    decay: list[tuple[Array, Array]] = field(default_factory=list)  # (W_l, ∂C/∂W_l (m, ...))


@dataclass
class StackWorkspace:
    """Buffers for a batch size n and up to K networks: `a_T[l]`, `delta_T[l]` of shape
    (K, neurons, n), and the gradients in `grad` (K, P), laid out as `Stack.flat` with per-layer
    views `grad_W`, `grad_b`; a pass over m networks uses the first m slices."""

    batch_size: int
    a_T: list[Array]
    delta_T: list[Array]
    grad: Array
    sizes: list[int]
    ones: Array

    def __post_init__(self) -> None:
        self.grad_W, self.grad_b = layer_views(self.grad, self.sizes)
        self.passes: dict[tuple[int, int], PassViews] = {}
        self.tmp = [np.empty_like(a) for a in self.a_T]  # scratch for the activations' slopes

    @classmethod
    def for_stack(cls, stack: Stack, n: int) -> StackWorkspace:
        dt, K = stack.dtype, len(stack)
        return cls(n,
                   [np.empty((K, len(b[0]), n), dt) for b in stack.biases],
                   [np.empty((K, len(b[0]), n), dt) for b in stack.biases],
                   np.empty_like(stack.flat), stack.sizes, np.ones(n, dt))

    def views(self, stack: Stack, s: slice) -> PassViews:
        """The views of a pass over the networks of `s` (made on first use)."""
        key = (s.start, s.stop)
        if key not in self.passes:
            m = s.stop - s.start
            v = PassViews(
                [W[s] for W in stack.weights], [W[s].swapaxes(1, 2) for W in stack.weights],
                [b[s][:, :, None] for b in stack.biases], [a[:m] for a in self.a_T],
                [a[:m].swapaxes(1, 2) for a in self.a_T], [d[:m] for d in self.delta_T],
                [g[:m] for g in self.grad_W], [g[:m] for g in self.grad_b],
                [t[:m] for t in self.tmp])
            if m == 1:
                def first(views: list[Array]) -> list[Array]:
                    return [x[0] for x in views]

                v = PassViews(first(v.W), first(v.WT), first(v.b), first(v.zT), first(v.z),
                              first(v.deltaT), first(v.gW), first(v.gb), first(v.tmp),
                              single=True)
            v.grad = self.grad[:m]  # what the optimiser updates the pass's networks with
            v.decay = [(W, g[:m]) for W, g in zip(stack.weights, self.grad_W)]
            self.passes[key] = v
        return self.passes[key]

    def member(self, j: int) -> Workspace:
        """The pass's j-th network's buffers as a one-network `Workspace` (for diagnostics)."""
        return Workspace(self.batch_size, [], [], [g[j] for g in self.grad_W],
                         [g[j] for g in self.grad_b], [a[j] for a in self.a_T],
                         [d[j] for d in self.delta_T], self.ones)
