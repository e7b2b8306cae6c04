"""This project's `train()` against scikit-learn, PyTorch and the tutorial's per-example loop.

Same network, initial weights and plain gradient descent on ½·mean squared error everywhere, no
shuffling. First checks that one step gives the same weights in all of them, then times epochs
with the implementations alternated in each repeat: median seconds per epoch, ratio to this
project (> 1: this project is faster) and, for W3, GFLOP/s against numpy's GEMM peak measured
right after each of this project's timed calls. Each timed call runs about `CALL_SECONDS` worth
of epochs. W3 trains on its first 25,600 rows by default, with times scaled to the 100,000-row
epoch (`--w3-rows 100000`: whole epochs). See bench/README.md.

    python bench/peers.py [--quick] [--repeats N] [--workloads W1,W2,W3] [--threads N]
                          [--w3-rows N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import sklearn
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_info, threadpool_limits

from backprop_lab.nn.network import Network
from backprop_lab.nn.training import TrainConfig, train

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None

BOSTON = Path(__file__).resolve().parents[1] / "data" / "boston_house_prices.csv"
Params = tuple[list[np.ndarray], list[np.ndarray]]  # ([W_l of shape (out, in)], [b_l])
Run = Callable[[int], Params]  # run(epochs) trains on and returns the current weights
TARGETS = {("W1", "scikit-learn"): 1.5, ("W1", "pytorch"): 5.0, ("W1", "per-example loop"): 100.0,
           ("W3", "scikit-learn"): 1.0, ("W3", "pytorch"): 1.0}
PEAK_TARGET = 0.75  # fraction of the GEMM peak this project should reach on W3 in float32
CALL_SECONDS = 0.4  # aimed duration of one timed call (at least one epoch)


@dataclass
class Workload:
    name: str
    X: np.ndarray
    y: np.ndarray  # (n, 1)
    hidden: list[int]
    activation: str  # "linear" or "relu"; the output layer is always linear
    batch_size: int | None  # None: full batch
    dtype: str
    max_epochs: int  # at most this many epochs per timed call
    epoch_rows: int  # rows of a full epoch; more than len(X) when X is a slice of it
    loop: bool = True  # whether to run the per-example loop too
    lr: float = 1e-3

    @property
    def sizes(self) -> list[int]:
        return [self.X.shape[1], *self.hidden, 1]

    @property
    def flops_per_epoch(self) -> float:
        """Forward 2·n·Σ in·out; backward 2·n·in·out for every ∂W and for every δ but the first."""
        pairs = [i * o for i, o in zip(self.sizes, self.sizes[1:])]
        return 2.0 * self.epoch_rows * (2 * sum(pairs) + sum(pairs[1:]))


def boston() -> tuple[np.ndarray, np.ndarray]:
    """The Boston housing table standardised (or random data of its shape when it is missing)."""
    if BOSTON.is_file():
        data = np.loadtxt(BOSTON, delimiter=",", skiprows=2)
    else:
        data = np.random.default_rng(0).normal(size=(506, 14))
    data = (data - data.mean(0)) / data.std(0)
    return data[:, :13], data[:, 13:]


def workloads(names: list[str], quick: bool, w3_rows: int) -> list[Workload]:
    X, y = boston()
    out = []
    if "W1" in names:
        out.append(Workload("W1", X, y, [5, 3], "linear", None, "float64", 2000, len(X)))
    if "W2" in names:
        out.append(Workload("W2", X, y, [64, 64], "relu", None, "float64", 500, len(X)))
    if "W3" in names:
        rng = np.random.default_rng(3)
        n = 100_000
        X3 = rng.standard_normal((n, 100))
        y3 = np.tanh(X3 @ rng.standard_normal((100, 1)) / 10) + 0.1 * rng.standard_normal((n, 1))
        rows = min(n, w3_rows or (10_240 if quick else 25_600))
        for dt in ("float32", "float64"):
            X3t, y3t = X3[:rows].astype(dt), y3[:rows].astype(dt)
            out.append(Workload("W3", X3t, y3t, [256, 256], "relu", 1024, dt, max(1, n // rows),
                                n, loop=False))
    return out


def initial_params(wl: Workload) -> Params:
    rng = np.random.default_rng(1)
    net = Network.create(wl.sizes, rng, wl.activation, "linear", init="he", dtype=wl.dtype)
    biases = [rng.uniform(-0.1, 0.1, b.shape).astype(wl.dtype) for b in net.biases]
    return net.weights, biases  # small non-zero biases so that the check covers them too


# ------------------------------------------------------------------ the implementations


def ours(wl: Workload, W0: list[np.ndarray], b0: list[np.ndarray]) -> Run:
    net = Network([W.copy() for W in W0], [b.copy() for b in b0], wl.activation, "linear")

    def run(epochs: int) -> Params:
        config = TrainConfig(optimizer="gd", lr=wl.lr, epochs=epochs, batch_size=wl.batch_size,
                             shuffle=False)
        history = train(net, wl.X, wl.y, config, np.random.default_rng(0))
        assert history.epochs_run == epochs and not history.diverged, history.stop_reason
        return net.weights, net.biases

    return run


def scikit_learn(wl: Workload, W0: list[np.ndarray], b0: list[np.ndarray]) -> Run:
    mlp = MLPRegressor(
        hidden_layer_sizes=wl.hidden, activation={"linear": "identity"}.get(wl.activation, "relu"),
        solver="sgd", alpha=0.0, batch_size=wl.batch_size or len(wl.X), learning_rate="constant",
        learning_rate_init=wl.lr, momentum=0.0, nesterovs_momentum=False, shuffle=False,
        warm_start=True, tol=0.0, n_iter_no_change=10**9, max_iter=1)
    y = wl.y.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.partial_fit(wl.X[:2], y[:2])  # sets up its attributes; the weights are replaced next
    mlp.coefs_ = [W.T.copy() for W in W0]  # sklearn's coefs_ are (inputs, neurons): Wᵀ
    mlp.intercepts_ = [b.copy() for b in b0]

    def run(epochs: int) -> Params:
        mlp.max_iter = epochs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            mlp.fit(wl.X, y)  # warm_start: continues from coefs_, one update per batch
        return [c.T for c in mlp.coefs_], list(mlp.intercepts_)

    return run


def pytorch(wl: Workload, W0: list[np.ndarray], b0: list[np.ndarray]) -> Run:
    layers: list[torch.nn.Module] = []
    for l, (W, b) in enumerate(zip(W0, b0)):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=getattr(torch, wl.dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))  # torch's weight is (out, in), as ours
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if l < len(W0) - 1 and wl.activation == "relu":
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=wl.lr)
    mse = torch.nn.MSELoss()
    X, y = torch.from_numpy(wl.X), torch.from_numpy(wl.y)
    bs = wl.batch_size or len(X)

    def run(epochs: int) -> Params:
        for _ in range(epochs):
            for i in range(0, len(X), bs):
                opt.zero_grad()
                loss = mse(model(X[i:i + bs]), y[i:i + bs]) / 2  # ½·mean, as the others
                loss.backward()
                opt.step()
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        return ([m.weight.detach().numpy().copy() for m in linears],
                [m.bias.detach().numpy().copy() for m in linears])

    return run


def per_example_loop(wl: Workload, W0: list[np.ndarray], b0: list[np.ndarray]) -> Run:
    """The tutorial's way: forward and backward one example at a time, average the gradients."""
    Ws, bs = [W.copy() for W in W0], [b.copy() for b in b0]
    relu = wl.activation == "relu"
    L, n = len(Ws), len(wl.X)

    def run(epochs: int) -> Params:
        for _ in range(epochs):
            gW, gb = [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs]
            for x, t in zip(wl.X, wl.y):
                acts, zs = [x], []
                for l in range(L):
                    z = Ws[l] @ acts[-1] + bs[l]
                    zs.append(z)
                    acts.append(np.maximum(z, 0) if relu and l < L - 1 else z)
                delta = acts[-1] - t
                for l in range(L - 1, -1, -1):
                    gW[l] += np.outer(delta, acts[l])
                    gb[l] += delta
                    if l > 0:
                        delta = Ws[l].T @ delta
                        if relu:
                            delta = delta * (zs[l - 1] > 0)
            for l in range(L):
                Ws[l] -= wl.lr * gW[l] / n
                bs[l] -= wl.lr * gb[l] / n
        return Ws, bs

    return run


def implementations(wl: Workload) -> dict[str, Callable[..., Run]]:
    impls: dict[str, Callable[..., Run]] = {"this project": ours, "scikit-learn": scikit_learn}
    if torch is not None:
        impls["pytorch"] = pytorch
    if wl.loop:
        impls["per-example loop"] = per_example_loop
    return impls


# ------------------------------------------------------------------ check and timing


def check_one_step(wl: Workload) -> bool:
    """One step on one batch from the shared weights: every implementation's weights must agree."""
    n = wl.batch_size or len(wl.X)
    wl1 = replace(wl, X=wl.X[:n], y=wl.y[:n])
    W0, b0 = initial_params(wl1)
    start = [*W0, *b0]
    results = {name: make(wl1, W0, b0)(1) for name, make in implementations(wl1).items()}
    ref = [*results["this project"][0], *results["this project"][1]]
    tol = 1e-10 if wl.dtype == "float64" else 1e-5
    ok = True
    for name, (Ws, bs) in results.items():
        got = [*Ws, *bs]
        rel_w = max(np.linalg.norm(g - r) / np.linalg.norm(r) for g, r in zip(got, ref))
        rel_step = max(np.linalg.norm(g - r) / np.linalg.norm(r - s)
                       for g, r, s in zip(got, ref, start))
        ok &= bool(rel_w <= tol)
        print(f"  {wl.name} {wl.dtype:7s} {name:17s} weights rel. diff {rel_w:8.1e}  "
              f"(of the step: {rel_step:8.1e})  {'ok' if rel_w <= tol else 'MISMATCH'}")
    return ok


def gemm_gflops(wl: Workload, seconds: float = CALL_SECONDS) -> float:
    """numpy GEMM rate at W3's hidden-layer size: (batch x 256) @ (256 x 256), repeated."""
    rng = np.random.default_rng(0)
    k = wl.hidden[0]
    A = rng.standard_normal((wl.batch_size or len(wl.X), k)).astype(wl.dtype)
    B = rng.standard_normal((k, k)).astype(wl.dtype)
    C = np.empty((len(A), k), wl.dtype)
    np.matmul(A, B, out=C)
    reps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        np.matmul(A, B, out=C)
        reps += 1
    return 2.0 * A.shape[0] * k * k * reps / elapsed / 1e9


def time_workload(wl: Workload, repeats: int) -> tuple[dict[str, float], float | None]:
    """Median seconds per epoch of each implementation and, for W3, the median GEMM peak."""
    W0, b0 = initial_params(wl)
    runs = {name: make(wl, W0, b0) for name, make in implementations(wl).items()}
    epochs = {}
    for name, run in runs.items():  # warm up (workspaces, first-call costs), then size the calls
        run(1)
        t0 = time.perf_counter()
        run(1)
        epochs[name] = max(1, min(wl.max_epochs, round(CALL_SECONDS / (time.perf_counter() - t0))))
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks, names, scale = [], list(runs), wl.epoch_rows / len(wl.X)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # alternate, rotate order
            time.sleep(0.1)  # let BLAS/OpenMP threads of the previous one go idle
            t0 = time.perf_counter()
            runs[name](epochs[name])
            times[name].append((time.perf_counter() - t0) / epochs[name] * scale)
            if wl.name == "W3" and name == "this project":
                peaks.append(gemm_gflops(wl))  # right after, for as long: same machine state
    print(f"  timed {wl.name} {wl.dtype} (epochs per call): "
          + ", ".join(f"{k} {statistics.median(ts):.3g}s ({epochs[k]})" for k, ts in times.items()))
    return ({name: statistics.median(ts) for name, ts in times.items()},
            statistics.median(peaks) if peaks else None)


def print_environment(threads: int | None) -> None:
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
          f"{sklearn.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"threads: {threads or 'library defaults'}"
          + (f", torch threads {torch.get_num_threads()}" if torch else ""))
    for var in set(os.environ) & {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"}:
        print(f"  {var}={os.environ[var]}")
    for lib in threadpool_info():
        print(f"  threadpoolctl: {lib['internal_api']} {lib.get('version')} "
              f"kernel={lib.get('architecture')} threads={lib['num_threads']} "
              f"({Path(lib['filepath']).name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, W3 on 10,240 rows")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5, 2)")
    parser.add_argument("--workloads", default="W1,W2,W3", help="comma-separated W1,W2,W3")
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads")
    parser.add_argument("--w3-rows", type=int, default=0,
                        help="rows per timed W3 call (default 25600; 100000: full epochs)")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    with threadpool_limits(limits=args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads or os.cpu_count() or 1)
        print_environment(args.threads)
        wls = workloads(args.workloads.split(","), args.quick, args.w3_rows)
        print("\none step from the same weights (rel. diff to this project; tolerance 1e-10 "
              "in float64, 1e-5 in float32):")
        checks_ok = all([check_one_step(wl) for wl in wls])
        print(f"  => {'all agree' if checks_ok else 'MISMATCH'}\n")
        rows = [(wl, *time_workload(wl, repeats)) for wl in wls]
    print_table(rows, repeats)
    if not checks_ok:
        raise SystemExit("the one-step check failed: the timings compare different computations")


def print_table(rows: list[tuple[Workload, dict[str, float], float | None]], repeats: int) -> None:
    print(f"\nseconds per epoch, median of {repeats}; ratio = time / this project's time")
    for wl in {wl.name: wl for wl, _, _ in rows if wl.epoch_rows != len(wl.X)}.values():
        print(f"{wl.name}: timed on the first {len(wl.X):,} of {wl.epoch_rows:,} rows per call, "
              f"scaled to the full epoch")
    print(f"{'workload':9s} {'dtype':8s} {'implementation':17s} {'s/epoch':>10s} {'ratio':>8s} "
          f"{'GFLOP/s':>8s} {'% peak':>7s}")
    verdicts = []
    for wl, medians, peak in rows:
        ours_t = medians["this project"]
        for name, t in medians.items():
            gflops = wl.flops_per_epoch / t / 1e9
            perf = f"{gflops:8.1f} {100 * gflops / peak:6.0f}%" if peak else ""
            print(f"{wl.name:9s} {wl.dtype:8s} {name:17s} {t:10.3g} {t / ours_t:8.2f} {perf}")
            if (need := TARGETS.get((wl.name, name))) is not None:
                verdicts.append(f"{wl.name} {wl.dtype} vs {name}: {t / ours_t:.2f}x (target >= "
                                f"{need:g}x) {'met' if t / ours_t >= need else 'NOT met'}")
        if peak:
            print(f"{wl.name:9s} {wl.dtype:8s} {'numpy GEMM peak':17s} {'':19s} {peak:8.1f}")
            frac = wl.flops_per_epoch / ours_t / 1e9 / peak
            if wl.dtype == "float32":
                verdicts.append(f"{wl.name} {wl.dtype} this project at {100 * frac:.0f}% of GEMM "
                                f"peak (target >= {100 * PEAK_TARGET:.0f}%) "
                                f"{'met' if frac >= PEAK_TARGET else 'NOT met'}")
    print("\ntargets:\n  " + "\n  ".join(verdicts))


if __name__ == "__main__":
    main()
