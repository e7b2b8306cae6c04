"""Tests of the numerical core: forward pass, backprop gradients, one GD step, dtypes, init."""


import numpy as np
import pytest

from backprop_lab.nn.activations import ACTIVATE, BACKPROP, NAMES
from backprop_lab.nn.network import INITS, Network, Workspace, init_layer
from backprop_lab.nn.training import TrainConfig, train
from backprop_lab.paths import BOSTON_CSV

BOSTON = BOSTON_CSV


def boston() -> tuple[np.ndarray, np.ndarray]:
    """(X standardised, y raw MEDV) of Boston, or random data of the same shape."""
    if BOSTON.is_file():
        data = np.loadtxt(BOSTON, delimiter=",", skiprows=2)
        X, y = data[:, :13], data[:, 13]
    else:  # pragma: no cover - the data file ships with the repository
        rng = np.random.default_rng(506)
        X = rng.normal(size=(506, 13)) * rng.uniform(0.1, 100, 13)
        y = X @ rng.normal(size=13) / 50 + 22 + rng.normal(0, 4, 506)
    return (X - X.mean(0)) / X.std(0), y


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", NAMES)
def test_activation_derivative_matches_finite_difference(name):
    z = np.linspace(-3, 3, 41)
    z = z[np.abs(z) > 1e-3]  # keep away from the relu kink
    h = 1e-6
    numeric = (ACTIVATE[name](z + h) - ACTIVATE[name](z - h)) / (2 * h)
    a = ACTIVATE[name](z.copy())
    analytic = BACKPROP[name](a, np.ones_like(z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_keeps_dtype(name, dtype):
    z = np.linspace(-2, 2, 9).astype(dtype)
    a = ACTIVATE[name](z.copy())
    assert a.dtype == dtype
    assert BACKPROP[name](a, np.ones_like(a)).dtype == dtype


def test_activation_values():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(ACTIVATE["linear"](z.copy()), z)
    np.testing.assert_array_equal(ACTIVATE["relu"](z.copy()), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(ACTIVATE["leaky_relu"](z.copy()), [-0.02, -0.005, 0, 0.5, 2])
    np.testing.assert_allclose(ACTIVATE["sigmoid"](z.copy()), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(ACTIVATE["tanh"](z.copy()), np.tanh(z), rtol=1e-15)


# ---------------------------------------------------------------- gradient check


def numeric_gradients(net: Network, X: np.ndarray, y: np.ndarray, h: float) -> list[np.ndarray]:
    grads = []
    for p in net.parameters:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            c_plus = net.cost(X, y)
            p[i] = old - h
            c_minus = net.cost(X, y)
            p[i] = old
            g[i] = (c_plus - c_minus) / (2 * h)
        grads.append(g)
    return grads


# every depth x hidden activation x output activation x output size; with no hidden layer the
# hidden activation is unused, so that depth is run once per output activation
GRAD_CASES = [
    (n_hidden, act, out_act, n_out)
    for n_hidden in range(5)
    for act in (NAMES if n_hidden else ("relu",))
    for out_act in NAMES
    for n_out in (1, 2, 3)
]


@pytest.mark.parametrize(("n_hidden", "activation", "output_activation", "n_out"), GRAD_CASES)
def test_backprop_matches_finite_differences(n_hidden, activation, output_activation, n_out):
    seed = [n_hidden, NAMES.index(activation), NAMES.index(output_activation), n_out]
    rng = np.random.default_rng(seed)
    sizes = [3] + [4, 3, 4, 3][:n_hidden] + [n_out]  # non-square: W vs W.T mix-ups show
    net = Network.create(sizes, rng, activation, output_activation, init="uniform")
    n = 5
    X = rng.normal(size=(n, sizes[0]))
    y = rng.normal(size=(n, n_out))
    ws = Workspace.for_network(net, n)

    cost = net.backprop(X, y, ws)
    analytic = [g.copy() for g in ws.grads]
    numeric = numeric_gradients(net, X, y, h=1e-6)

    assert cost == pytest.approx(net.cost(X, y), rel=1e-13)
    assert [g.shape for g in analytic] == [p.shape for p in net.parameters]
    err = rel_err(np.concatenate([g.ravel() for g in numeric]),
                  np.concatenate([g.ravel() for g in analytic]))
    assert err < 1e-6, f"relative gradient error {err:.2e} for sizes {sizes}"
    for k, (num, ana) in enumerate(zip(numeric, analytic)):
        # per array too, with an absolute floor for the finite differences' round-off
        # (~eps * C / h) on arrays whose gradient is tiny (deep sigmoid stacks, dead relus)
        diff = np.linalg.norm(num - ana)
        assert diff <= 1e-6 * (np.linalg.norm(num) + np.linalg.norm(ana)) + 1e-9, (
            f"parameter {k}: |num - ana| = {diff:.2e}, relative {rel_err(num, ana):.2e}")


def test_gradients_are_not_trivially_zero():
    """Guards the gradient check: a generic network has a non-zero gradient everywhere."""
    rng = np.random.default_rng(1)
    net = Network.create([4, 3, 3, 2], rng, "tanh", "sigmoid", init="uniform")
    X, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    ws = Workspace.for_network(net, 5)
    net.backprop(X, y, ws)
    assert all(np.all(g != 0) for g in ws.grads)


def test_backprop_float32_close_to_float64():
    rng = np.random.default_rng(3)
    net64 = Network.create([5, 4, 3, 2], rng, "tanh", "linear", init="uniform")
    net32 = Network([W.astype(np.float32) for W in net64.weights],
                    [b.astype(np.float32) for b in net64.biases], "tanh", "linear")
    X, y = rng.normal(size=(6, 5)), rng.normal(size=(6, 2))
    ws64, ws32 = Workspace.for_network(net64, 6), Workspace.for_network(net32, 6)
    c64 = net64.backprop(X, y, ws64)
    c32 = net32.backprop(X.astype(np.float32), y.astype(np.float32), ws32)
    assert c32 == pytest.approx(c64, rel=1e-5)
    for g32, g64 in zip(ws32.grads, ws64.grads):
        assert g32.dtype == np.float32
        assert rel_err(g32, g64) < 1e-5


def test_backprop_reuses_workspace_and_accepts_none():
    rng = np.random.default_rng(4)
    net = Network.create([3, 4, 1], rng, "sigmoid")
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    X_before, y_before = X.copy(), y.copy()
    ws = Workspace.for_network(net, 7)
    c1 = net.backprop(X, y, ws)
    first = [g.copy() for g in ws.grads]
    ids = [id(g) for g in ws.grad_W + ws.grad_b]
    c2 = net.backprop(X, y, ws)
    assert c1 == c2
    assert ids == [id(g) for g in ws.grad_W + ws.grad_b]
    for a, b in zip(first, ws.grads):
        np.testing.assert_array_equal(a, b)
    assert net.backprop(X, y) == c1  # builds its own workspace
    np.testing.assert_array_equal(X, X_before)  # inputs are not modified
    np.testing.assert_array_equal(y, y_before)


# ---------------------------------------------------------------- tutorial loop


def _f(name: str, z: np.ndarray) -> np.ndarray:
    return {
        "linear": lambda: z,
        "relu": lambda: np.where(z > 0, z, 0.0),
        "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
        "sigmoid": lambda: 1 / (1 + np.exp(-z)),
        "tanh": lambda: np.tanh(z),
    }[name]()


def _fprime(name: str, z: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-z))
    return {
        "linear": lambda: np.ones_like(z),
        "relu": lambda: (z > 0).astype(float),
        "leaky_relu": lambda: np.where(z > 0, 1.0, 0.01),
        "sigmoid": lambda: s * (1 - s),
        "tanh": lambda: 1 - np.tanh(z) ** 2,
    }[name]()


def tutorial_gd_step(weights, biases, acts, X, Y, lr):
    """One full-batch GD step written as the tutorial does it: one example at a time."""
    L = len(weights)
    gW = [np.zeros_like(W) for W in weights]
    gb = [np.zeros_like(b) for b in biases]
    total_cost = 0.0
    for x, t in zip(X, Y):
        a_s, z_s = [x], []
        for W, b, f in zip(weights, biases, acts):
            z = W @ a_s[-1] + b
            z_s.append(z)
            a_s.append(_f(f, z))
        total_cost += 0.5 * np.sum((a_s[-1] - t) ** 2)
        delta = (a_s[-1] - t) * _fprime(acts[-1], z_s[-1])
        for l in range(L - 1, -1, -1):
            gW[l] += np.outer(delta, a_s[l])
            gb[l] += delta
            if l > 0:
                delta = (weights[l].T @ delta) * _fprime(acts[l - 1], z_s[l - 1])
    n = len(X)
    new_W = [W - lr * g / n for W, g in zip(weights, gW)]
    new_b = [b - lr * g / n for b, g in zip(biases, gb)]
    return new_W, new_b, total_cost / n


@pytest.mark.parametrize(
    ("sizes", "activation", "lr"),
    [
        ([13, 1], "relu", 0.1),
        ([13, 5, 3, 1], "relu", 0.01),
        ([13, 5, 3, 1], "linear", 0.001),
        ([13, 6, 2], "tanh", 0.01),
        ([13, 4, 4, 1], "sigmoid", 0.01),
        ([13, 5, 1], "leaky_relu", 0.01),
    ],
)
def test_one_gd_epoch_equals_tutorial_per_example_loop(sizes, activation, lr):
    X, y = boston()
    Y = np.column_stack([y] + [0.5 * y] * (sizes[-1] - 1))
    net = Network.create(sizes, np.random.default_rng(42), activation, "linear", init="uniform")
    W0 = [W.copy() for W in net.weights]
    b0 = [b.copy() for b in net.biases]

    want_W, want_b, want_cost = tutorial_gd_step(W0, b0, net.activations, X, Y, lr)
    history = train(net, X, Y, TrainConfig(optimizer="gd", lr=lr, epochs=1),
                    np.random.default_rng(0))

    assert history.train_cost[0] == pytest.approx(want_cost, rel=1e-12)
    moved = sum(np.abs(W - W_old).max() for W, W_old in zip(net.weights, W0))
    assert moved > 1e-4  # the step is not negligible, so the comparison means something
    for got, want in zip(net.weights + net.biases, want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(optimizer="gd", lr=0.01, epochs=5),
        TrainConfig(optimizer="sgd", lr=0.01, epochs=3, batch_size=50, weight_decay=1e-3),
        TrainConfig(optimizer="momentum", lr=0.01, epochs=3, batch_size=64),
        TrainConfig(optimizer="adam", lr=0.01, epochs=3, batch_size=100, weight_decay=1e-3),
    ],
    ids=["gd", "sgd", "momentum", "adam"],
)
def test_float32_network_stays_float32(config):
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0), dtype="float32")
    assert net.dtype == np.float32
    X_val, y_val = X[:50], y[:50]
    history = train(net, X, y, config, np.random.default_rng(1), X_val, y_val)
    assert np.isfinite(history.train_cost).all()
    assert net.dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.parameters)
    assert net.predict(X).dtype == np.float32
    assert net.predict(X.astype(np.float32)).dtype == np.float32


def test_float64_is_the_default():
    net = Network.create([3, 2, 1], np.random.default_rng(0))
    assert net.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.parameters)
    assert net.predict(np.ones((2, 3), dtype=np.float32)).dtype == np.float64
    train(net, np.ones((4, 3)), np.ones(4), TrainConfig(epochs=2), np.random.default_rng(0))
    assert all(p.dtype == np.float64 for p in net.parameters)


def test_unknown_dtype_rejected():
    with pytest.raises(ValueError, match="float64.*float32"):
        Network.create([3, 1], np.random.default_rng(0), dtype="float16")


def test_mixed_dtypes_rejected():
    W0 = np.zeros((2, 3))
    with pytest.raises(ValueError, match="dtype"):
        Network([W0], [np.zeros(2, dtype=np.float32)])
    with pytest.raises(ValueError, match="dtype"):
        Network([W0.astype(np.int64)], [np.zeros(2, dtype=np.int64)])


# ---------------------------------------------------------------- init


def test_uniform_init_in_unit_interval():
    net = Network.create([30, 40, 20], np.random.default_rng(0), init="uniform")
    for p in net.parameters:
        assert p.min() >= -1 and p.max() <= 1
        assert p.min() < -0.8 and p.max() > 0.8  # spread over the interval, not clustered
    allW = np.concatenate([W.ravel() for W in net.weights])
    assert abs(allW.mean()) < 0.05
    assert allW.std() == pytest.approx(1 / np.sqrt(3), rel=0.05)
    assert all(np.any(b != 0) for b in net.biases)


def test_xavier_init_shape_and_scale():
    rng = np.random.default_rng(0)
    W, b = init_layer(200, 300, "xavier", rng)
    assert W.shape == (200, 300) and b.shape == (200,)
    limit = np.sqrt(6 / 500)
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    np.testing.assert_array_equal(b, 0)


def test_he_init_shape_and_scale():
    rng = np.random.default_rng(0)
    W, b = init_layer(200, 300, "he", rng)
    assert W.shape == (200, 300) and b.shape == (200,)
    assert W.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    assert abs(W.mean()) < 0.005
    np.testing.assert_array_equal(b, 0)


@pytest.mark.parametrize("init", INITS)
def test_network_create_shapes(init):
    net = Network.create([7, 5, 4, 2], np.random.default_rng(0), init=init)
    assert [W.shape for W in net.weights] == [(5, 7), (4, 5), (2, 4)]
    assert [b.shape for b in net.biases] == [(5,), (4,), (2,)]
    assert net.sizes == [7, 5, 4, 2]
    assert net.activations == ["relu", "relu", "linear"]
    assert [p.shape for p in net.parameters] == [(5, 7), (5,), (4, 5), (4,), (2, 4), (2,)]


@pytest.mark.parametrize("init", INITS)
def test_same_seed_same_weights(init):
    a = Network.create([6, 5, 2], np.random.default_rng(123), init=init)
    b = Network.create([6, 5, 2], np.random.default_rng(123), init=init)
    c = Network.create([6, 5, 2], np.random.default_rng(124), init=init)
    for pa, pb in zip(a.parameters, b.parameters):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_float32_init_equals_rounded_float64_init():
    a = Network.create([6, 5, 2], np.random.default_rng(9), dtype="float64")
    b = Network.create([6, 5, 2], np.random.default_rng(9), dtype="float32")
    for pa, pb in zip(a.parameters, b.parameters):
        np.testing.assert_array_equal(pa.astype(np.float32), pb)


def test_unknown_init_lists_valid_names():
    with pytest.raises(ValueError, match="glorot") as exc:
        Network.create([3, 1], np.random.default_rng(0), init="glorot")
    for name in INITS:
        assert name in str(exc.value)


@pytest.mark.parametrize("key", ["activation", "output_activation"])
def test_unknown_activation_lists_valid_names(key):
    with pytest.raises(ValueError, match="softplus") as exc:
        Network.create([3, 2, 1], np.random.default_rng(0), **{key: "softplus"})
    msg = str(exc.value)
    assert key in msg
    for name in NAMES:
        assert name in msg


@pytest.mark.parametrize("sizes", [[3], [], [3, 0, 1], [0, 1]])
def test_bad_sizes_rejected(sizes):
    with pytest.raises(ValueError, match="sizes"):
        Network.create(sizes, np.random.default_rng(0))


# ---------------------------------------------------------------- predict and shapes


@pytest.mark.parametrize("sizes", [[4, 1], [4, 3, 2], [4, 5, 5, 3]])
def test_predict_shapes(sizes):
    net = Network.create(sizes, np.random.default_rng(0), "tanh")
    X = np.random.default_rng(1).normal(size=(7, 4))
    assert net.predict(X).shape == (7, sizes[-1])
    assert net.predict(X[:1]).shape == (1, sizes[-1])
    assert net.predict(X.tolist()).shape == (7, sizes[-1])


def test_predict_matches_explicit_formula_and_leaves_input_alone():
    rng = np.random.default_rng(2)
    net = Network.create([3, 4, 2], rng, "sigmoid", "tanh", init="uniform")
    X = rng.normal(size=(5, 3))
    X_before = X.copy()
    W0, W1 = net.weights
    b0, b1 = net.biases
    want = np.tanh(1 / (1 + np.exp(-(X @ W0.T + b0))) @ W1.T + b1)
    np.testing.assert_allclose(net.predict(X), want, rtol=1e-14)
    np.testing.assert_array_equal(X, X_before)


def test_cost_is_half_mean_squared_error():
    rng = np.random.default_rng(5)
    net = Network.create([3, 4, 2], rng)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    want = 0.5 * np.sum((net.predict(X) - y) ** 2) / 6
    assert net.cost(X, y) == pytest.approx(want, rel=1e-14)
    net1 = Network.create([3, 1], rng)
    y1 = rng.normal(size=6)
    assert net1.cost(X, y1) == pytest.approx(net1.cost(X, y1[:, None]), rel=1e-15)


def test_predict_wrong_input_width_raises():
    net = Network.create([4, 3, 1], np.random.default_rng(0))
    with pytest.raises(ValueError):
        net.predict(np.ones((5, 3)))


def test_mismatched_weight_chain_names_arrays():
    W0, W1 = np.zeros((3, 4)), np.zeros((2, 5))
    with pytest.raises(ValueError) as exc:
        Network([W0, W1], [np.zeros(3), np.zeros(2)])
    msg = str(exc.value)
    assert "W1" in msg and "W0" in msg
    assert "(2, 5)" in msg and "(3, 4)" in msg


def test_mismatched_bias_names_arrays():
    with pytest.raises(ValueError) as exc:
        Network([np.zeros((3, 4))], [np.zeros(4)])
    msg = str(exc.value)
    assert "b0" in msg and "W0" in msg and "(4,)" in msg and "(3, 4)" in msg


def test_weight_bias_count_and_ndim_checked():
    with pytest.raises(ValueError, match="bias"):
        Network([np.zeros((3, 4)), np.zeros((1, 3))], [np.zeros(3)])
    with pytest.raises(ValueError, match="bias"):
        Network([], [])
    with pytest.raises(ValueError, match="W0.*2-D"):
        Network([np.zeros(4)], [np.zeros(4)])


def test_copy_is_independent():
    net = Network.create([3, 2, 1], np.random.default_rng(0), "tanh", "sigmoid")
    twin = net.copy()
    assert (twin.activation, twin.output_activation) == ("tanh", "sigmoid")
    twin.weights[0][:] = 0
    assert np.any(net.weights[0] != 0)


def test_parameters_are_views_of_weights():
    net = Network.create([3, 2, 1], np.random.default_rng(0))
    params = net.parameters
    params[0] += 1.0
    params[3] -= 2.0
    np.testing.assert_array_equal(net.weights[0], params[0])
    np.testing.assert_array_equal(net.biases[1], params[3])


def test_backprop_refuses_a_workspace_of_another_batch_size():
    net = Network.create([3, 4, 1], np.random.default_rng(0))
    X, y = np.ones((6, 3)), np.ones((6, 1))
    with pytest.raises(ValueError, match="batches of 5, got 6"):
        net.backprop(X, y, Workspace.for_network(net, 5))
