"""A fully connected network, its forward pass and its backward pass (the chain rule).

Layer l holds W_l of shape (neurons, inputs), one row per neuron as in the tutorial, and b_l of
shape (neurons,). Over a batch X of shape (n_samples, n_inputs), in matrix form:

    forward   z_l = a_{l-1} @ W_l.T + b_l,      a_l = f_l(z_l),      a_0 = X
    cost      C = ½ Σ (a_L − y)² / n             (the tutorial's cost, averaged over examples)
    backward  δ_L = (a_L − y) ⊙ f_L'(z_L)
              δ_l = (δ_{l+1} @ W_{l+1}) ⊙ f_l'(z_l)
              ∂C/∂W_l = δ_lᵀ @ a_{l−1} / n,      ∂C/∂b_l = Σ_rows δ_l / n

There is no loop over examples. The training path writes into a `Workspace` allocated once per
batch size, so an epoch allocates nothing large. `backprop` works on the transposes, one row per
neuron and one column per example (z_lᵀ = W_l a_{l−1}ᵀ + b_l, δ_{l−1}ᵀ = W_lᵀ δ_lᵀ, ∂C/∂W_l = δ_lᵀ
a_{l−1} / n): the same products, but adding b_l and summing δ_l over examples then run along
contiguous rows, which is what makes small layers fast. `Workspace.a` and `.delta` are
(n, neurons) views of those buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backprop_lab.nn.activations import ACTIVATE, BACKPROP, check_activation

Array = np.ndarray
INITS = ("uniform", "xavier", "he")
DTYPES = ("float64", "float32")


def cost_from_error(err: Array, n: int) -> float:
    """C = ½‖err‖² / n: the tutorial's cost for err = a − y over n examples, summed over outputs.

    err may have shape (n, n_outputs) or its transpose; this is the only place the rule lives.
    """
    return 0.5 * float(np.vdot(err, err)) / n


def check_dtype(dtype: str, key: str = "dtype") -> np.dtype:
    if str(dtype) not in DTYPES:
        raise ValueError(f"{key}: unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    return np.dtype(str(dtype))


def init_layer(
    n_out: int, n_in: int, init: str, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Initial (W, b) in float64; `uniform` is the tutorial's U[-1, 1] for weights and biases."""
    if init == "uniform":
        return rng.uniform(-1, 1, (n_out, n_in)), rng.uniform(-1, 1, n_out)
    if init == "xavier":
        limit = np.sqrt(6 / (n_in + n_out))
        return rng.uniform(-limit, limit, (n_out, n_in)), np.zeros(n_out)
    if init == "he":
        return rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in)), np.zeros(n_out)
    raise ValueError(f"model.init: unknown init {init!r}; valid: {', '.join(INITS)}")


@dataclass
class Network:
    """Weights, biases and activation names; every array shares one dtype."""

    weights: list[Array]
    biases: list[Array]
    activation: str = "relu"
    output_activation: str = "linear"

    def __post_init__(self) -> None:
        check_activation(self.activation, "model.activation")
        check_activation(self.output_activation, "model.output_activation")
        check_shapes(self.weights, self.biases)
        dtypes = {p.dtype for p in self.parameters}
        if len(dtypes) != 1 or str(dtypes.pop()) not in DTYPES:
            raise ValueError(f"parameters must share one dtype of {DTYPES}")

    @classmethod
    def create(
        cls,
        sizes: list[int],
        rng: np.random.Generator,
        activation: str = "relu",
        output_activation: str = "linear",
        init: str = "he",
        dtype: str = "float64",
    ) -> Network:
        """A network with layer widths `sizes` = [n_inputs, *hidden, n_outputs]."""
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 1 with inputs and outputs, got {sizes}")
        dt = check_dtype(dtype, "model.dtype")
        layers = [init_layer(n_out, n_in, init, rng) for n_in, n_out in zip(sizes, sizes[1:])]
        return cls(
            [W.astype(dt) for W, _ in layers],
            [b.astype(dt) for _, b in layers],
            activation,
            output_activation,
        )

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1]] + [W.shape[0] for W in self.weights]

    @property
    def activations(self) -> list[str]:
        """The activation name of each layer: hidden layers, then the output layer."""
        return [self.activation] * (len(self.weights) - 1) + [self.output_activation]

    @property
    def parameters(self) -> list[Array]:
        """[W_0, b_0, W_1, b_1, ...], the arrays an optimiser updates in place."""
        return [p for W, b in zip(self.weights, self.biases) for p in (W, b)]

    def copy(self) -> Network:
        return Network(
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
            self.activation,
            self.output_activation,
        )

    def predict(self, X: Array) -> Array:
        """Output a_L of shape (n_samples, n_outputs) for X of shape (n_samples, n_inputs)."""
        a = np.asarray(X, dtype=self.dtype)
        for W, b, f in zip(self.weights, self.biases, self.activations):
            z = a @ W.T
            z += b
            a = ACTIVATE[f](z)
        return a

    def cost(self, X: Array, y: Array) -> float:
        """C = ½‖y − a‖² averaged over examples."""
        err = self.predict(X) - np.asarray(y, dtype=self.dtype).reshape(len(X), -1)
        return cost_from_error(err, len(X))

    def backprop(self, X: Array, y: Array, ws: Workspace | None = None) -> float:
        """One forward and backward pass over the batch; returns C, gradients in `ws`.

        X has shape (n, n_inputs) and y shape (n, n_outputs), both of the network's dtype.
        """
        n = len(X)
        if ws is None:
            ws = Workspace.for_network(self, n)
        elif ws.batch_size != n:  # gradients would land in buffers the caller never reads
            raise ValueError(f"workspace is for batches of {ws.batch_size}, got {n} rows")
        acts = self.activations
        aT = X.T
        for W, b, zT, f in zip(self.weights, self.biases, ws.a_T, acts):
            np.matmul(W, aT, out=zT)  # z_lᵀ = W_l a_{l-1}ᵀ + b_l
            zT += b[:, None]
            aT = ACTIVATE[f](zT)  # z's buffer now holds a_l
        deltaT = ws.delta_T[-1]
        np.subtract(aT, y.T, out=deltaT)
        cost = cost_from_error(deltaT, n)
        deltaT *= deltaT.dtype.type(1 / n)  # every gradient below is then a mean over examples
        BACKPROP[acts[-1]](aT, deltaT, None)
        for l in range(len(self.weights) - 1, -1, -1):
            a_prevT = X.T if l == 0 else ws.a_T[l - 1]
            np.matmul(deltaT, a_prevT.T, out=ws.grad_W[l])
            np.matmul(deltaT, ws.ones, out=ws.grad_b[l])  # Σ over examples, as δᵀ·1
            if l > 0:
                W = self.weights[l]
                if len(W) == 1:  # one neuron: W_lᵀ δ_lᵀ is an outer product, slow as a GEMM
                    np.multiply(W.T, deltaT, out=ws.delta_T[l - 1])
                else:
                    np.matmul(W.T, deltaT, out=ws.delta_T[l - 1])
                deltaT = BACKPROP[acts[l - 1]](a_prevT, ws.delta_T[l - 1], None)
        return cost


@dataclass
class Workspace:
    """Buffers for one batch size: activations, deltas and gradients of every layer.

    `a_T[l]` and `delta_T[l]` are C-ordered (neurons, n) buffers; `a[l]` and `delta[l]` are their
    (n, neurons) transposed views.
    """

    batch_size: int
    a: list[Array] = field(default_factory=list)
    delta: list[Array] = field(default_factory=list)
    grad_W: list[Array] = field(default_factory=list)
    grad_b: list[Array] = field(default_factory=list)
    a_T: list[Array] = field(default_factory=list, repr=False)
    delta_T: list[Array] = field(default_factory=list, repr=False)
    ones: Array = field(default_factory=lambda: np.empty(0), repr=False)

    def __post_init__(self) -> None:
        self.a_T = self.a_T or [a.T for a in self.a]
        self.delta_T = self.delta_T or [d.T for d in self.delta]
        if len(self.ones) != self.batch_size:
            dt = self.grad_b[0].dtype if self.grad_b else np.float64
            self.ones = np.ones(self.batch_size, dt)

    @classmethod
    def for_network(cls, net: Network, batch_size: int) -> Workspace:
        dt = net.dtype
        a_T = [np.empty((W.shape[0], batch_size), dt) for W in net.weights]
        delta_T = [np.empty((W.shape[0], batch_size), dt) for W in net.weights]
        return cls(
            batch_size,
            [aT.T for aT in a_T],
            [dT.T for dT in delta_T],
            [np.empty_like(W) for W in net.weights],
            [np.empty_like(b) for b in net.biases],
            a_T,
            delta_T,
            np.ones(batch_size, dt),
        )

    @property
    def grads(self) -> list[Array]:
        """[∂C/∂W_0, ∂C/∂b_0, ...], in the order of `Network.parameters`."""
        return [g for gW, gb in zip(self.grad_W, self.grad_b) for g in (gW, gb)]


def check_shapes(weights: list[Array], biases: list[Array]) -> None:
    """Raise if the layers do not chain; the message names the arrays and their shapes."""
    if not weights or len(weights) != len(biases):
        raise ValueError(f"need one bias per weight matrix, got {len(weights)} W, {len(biases)} b")
    for l, (W, b) in enumerate(zip(weights, biases)):
        if W.ndim != 2:
            raise ValueError(f"W{l} must be 2-D (neurons, inputs), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(f"b{l} has shape {b.shape} but W{l} has shape {W.shape}: "
                             f"b{l} must have shape ({W.shape[0]},)")
        if l > 0 and W.shape[1] != weights[l - 1].shape[0]:
            raise ValueError(f"W{l} has shape {W.shape} but W{l - 1} has shape "
                             f"{weights[l - 1].shape}: W{l} must have "
                             f"{weights[l - 1].shape[0]} columns")
