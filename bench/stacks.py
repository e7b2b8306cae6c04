"""Stacked training: K networks as one stack against the same K trained one by one.

    .venv/bin/python bench/stacks.py [--threads 1] [--ks 1 5 25 125] [--epochs 20] [--repeat 3]
    .venv/bin/python bench/stacks.py --job [--repeat 3]
    .venv/bin/python bench/stacks.py --parallel [--repeat 3]

Default table: per-network seconds per epoch of a 13-16-16-16-1 tanh network, Adam, batch 64,
on Boston's 404 training rows (standardised), for a stack of K against K separate `train` calls,
alternating the two within each repeat (medians over repeats). Both produce the same weights bit
for bit (tests/nn/test_stacked.py); the script checks it once per K.

`--job`: the pipeline's `seconds_training` for `model.ensemble=5 eval.cv_folds=5` (25 networks)
against one network on one split (`model.ensemble=1`, same config otherwise: the default Adam
with early stopping), with `train.stacked=true` and `false` in one process, and stacked on 2
cores (`pipeline.stacking.cores(2)`: the stack cut in two, trained in 2 forked processes, BLAS on
one thread: what a run on its own does by default, `train.n_jobs=null`, and
`hydra/launcher=stacked` with n_jobs=2). Stages only, no MLflow.

`--parallel`: two stacks of K width-16 tanh networks (depth 1 and 3) trained one after the
other in one thread, in two threads, and in two worker processes (BLAS at 1 thread each):
how much of a step numpy runs without the GIL (why the stacked launcher's workers are processes).

`--memory`: peak resident memory (above the interpreter's after imports; the data included) of
a 125-network stack on Boston, and of W3's network (100-256-256-1 relu, batch 1024) training one
epoch on 1,000,000 float32 rows held in memory; each in its own process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backprop_lab.data.load import load_boston  # noqa: E402
from backprop_lab.nn.network import Network  # noqa: E402
from backprop_lab.nn.training import TrainConfig, TrainData, train, train_many  # noqa: E402
from backprop_lab.paths import BOSTON_CSV  # noqa: E402


def boston() -> tuple[np.ndarray, np.ndarray]:
    ds = load_boston(BOSTON_CSV)
    X = (ds.X - ds.X.mean(0)) / ds.X.std(0)
    y = (ds.y - ds.y.mean(0)) / ds.y.std(0)
    return X[:404], y[:404]


def networks(k: int) -> list[Network]:
    return [Network.create([13, 16, 16, 16, 1], np.random.default_rng(i), "tanh", init="xavier")
            for i in range(k)]


def per_network(k: int, epochs: int, repeat: int) -> tuple[float, float]:
    """Median seconds per epoch per network: (stacked, separate)."""
    X, y = boston()
    cfg = TrainConfig(optimizer="adam", lr=1e-3, epochs=epochs, batch_size=64)
    data = TrainData(X, y)
    times: dict[str, list[float]] = {"stacked": [], "separate": []}
    for r in range(repeat):
        for how in (("stacked", "separate") if r % 2 == 0 else ("separate", "stacked")):
            nets = networks(k)
            rngs = [np.random.default_rng(100 + i) for i in range(k)]
            started = time.perf_counter()
            if how == "stacked":
                train_many(nets, [data] * k, cfg, rngs)
            else:
                for net, rng in zip(nets, rngs):
                    train(net, X, y, cfg, rng)
            times[how].append((time.perf_counter() - started) / (epochs * k))
            if r == 0:
                if how == "stacked":
                    first = nets
                else:
                    second = nets
    assert all(np.array_equal(p, q) for a, b in zip(first, second)
               for p, q in zip(a.parameters, b.parameters)), "stacked != separate"
    return statistics.median(times["stacked"]), statistics.median(times["separate"])


def stack_table(ks: list[int], epochs: int, repeat: int) -> None:
    print("| K | stacked µs/epoch/net | separate µs/epoch/net | speed-up |")
    print("|---|---:|---:|---:|")
    for k in ks:
        stacked, separate = per_network(k, max(2, epochs if k < 100 else epochs // 2), repeat)
        print(f"| {k} | {stacked * 1e6:.0f} | {separate * 1e6:.0f} | {separate / stacked:.2f}× |",
              flush=True)


def job_seconds(overrides: list[str]) -> float:
    """Seconds the job's stages take; `threads=N` (not a config key) trains on N cores."""
    from threadpoolctl import threadpool_limits

    from backprop_lab.pipeline import crossval, stacking, stages
    from backprop_lab.pipeline.compose import compose, to_config

    n = next((int(o.split("=")[1]) for o in overrides if o.startswith("threads=")), 1)
    config = to_config(compose([o for o in overrides if not o.startswith("threads=")]))
    ds = stages.load(config.data)
    blas = max(1, (os.cpu_count() or 1) // n) if n > 1 else None
    started = time.perf_counter()
    with stacking.cores(n), threadpool_limits(blas):
        if config.eval.cv_folds >= 2 or config.eval.repeats > 1:
            crossval.run_cells(config, ds)
        else:
            stages.run(config, dataset=ds)
    return time.perf_counter() - started


def job_table(repeat: int) -> None:
    variants = {
        "1 network, 1 split": ["model.ensemble=1", "diag.every=0"],
        "25 networks, stacked": ["model.ensemble=5", "eval.cv_folds=5", "diag.every=0"],
        "25 networks, one by one": ["model.ensemble=5", "eval.cv_folds=5", "diag.every=0",
                                    "train.stacked=false"],
        "25 networks, stacked, 2 processes": ["model.ensemble=5", "eval.cv_folds=5",
                                              "diag.every=0", "threads=2"],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeat):
        names = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in names:
            times[name].append(job_seconds(variants[name]))
    base = statistics.median(times["1 network, 1 split"])
    print("| job | seconds_training (median) | ratio to 1 network | load average |")
    print("|---|---:|---:|---:|")
    for name in variants:
        t = statistics.median(times[name])
        print(f"| {name} | {t:.2f} | {t / base:.1f} | {os.getloadavg()[0]:.2f} |")


def two_stacks(k: int, depth: int, width: int, epochs: int, seed: int) -> float:
    """Train one stack of k networks (BLAS at 1 thread); its thread's CPU seconds."""
    from threadpoolctl import threadpool_limits

    X, y = boston()
    cfg = TrainConfig(optimizer="adam", lr=1e-3, epochs=epochs, batch_size=64)
    with threadpool_limits(1):
        nets = [Network.create([13, *[width] * depth, 1], np.random.default_rng(seed * 1000 + i),
                               "tanh", init="xavier") for i in range(k)]
        started = time.thread_time()
        train_many(nets, [TrainData(X, y)] * k, cfg,
                   [np.random.default_rng(i) for i in range(k)])
        return time.thread_time() - started


def parallel_table(repeat: int) -> None:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from functools import partial

    print("| stack | 1 thread s | 2 threads s | speed-up | 2 processes s | speed-up | load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    cases = [(188, 3, 16, 20), (188, 1, 16, 20), (38, 3, 16, 40), (13, 2, 64, 100)]
    with ProcessPoolExecutor(2) as processes:
        list(processes.map(abs, range(2)))  # start the workers before timing
        for k, depth, width, epochs in cases:
            task = partial(two_stacks, k, depth, width, epochs)
            times: dict[str, list[float]] = {"one": [], "threads": [], "processes": []}
            for _ in range(repeat):
                started = time.perf_counter()
                [task(s) for s in range(2)]
                times["one"].append(time.perf_counter() - started)
                started = time.perf_counter()
                with ThreadPoolExecutor(2) as threads:
                    list(threads.map(task, range(2)))
                times["threads"].append(time.perf_counter() - started)
                started = time.perf_counter()
                list(processes.map(task, range(2)))
                times["processes"].append(time.perf_counter() - started)
            one, th, pr = (statistics.median(times[w]) for w in ("one", "threads", "processes"))
            print(f"| 2 × {k} nets, depth {depth}, width {width} | {one:.2f} | {th:.2f} | "
                  f"{one / th:.2f}× | {pr:.2f} | {one / pr:.2f}× | {os.getloadavg()[0]:.2f} |",
                  flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(case: str) -> None:
    """Run in a child process: print baseline and peak resident MiB and the data's MiB."""
    base = peak_rss_mib()  # the interpreter with numpy and the package imported
    if case == "stack125":
        X, y = boston()
        data_mib = (X.nbytes + y.nbytes) / 2**20
        nets = networks(125)
        train_many(nets, [TrainData(X, y)] * 125,
                   TrainConfig(optimizer="adam", lr=1e-3, epochs=3, batch_size=64),
                   [np.random.default_rng(i) for i in range(125)])
    else:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((1_000_000, 100), dtype=np.float32)
        y = (X[:, :5].sum(1, keepdims=True) + 0.1).astype(np.float32)
        data_mib = (X.nbytes + y.nbytes) / 2**20
        net = Network.create([100, 256, 256, 1], np.random.default_rng(1), "relu",
                             dtype="float32")
        train(net, X, y, TrainConfig(optimizer="adam", lr=1e-3, epochs=1, batch_size=1024), rng)
    peak = peak_rss_mib()
    print(f"{case} {base:.3f} {peak:.3f} {data_mib:.4f}")


def memory_table() -> None:
    print("| case | data MiB | peak above the interpreter's MiB (data included) | ratio to data |")
    print("|---|---:|---:|---:|")
    for case, label in (("stack125", "125 networks, Boston, batch 64"),
                        ("w3_1m", "W3 network, 1,000,000×100 float32, batch 1024")):
        out = subprocess.run([sys.executable, __file__, "--memory-case", case], check=True,
                             capture_output=True, text=True).stdout.split()
        base, peak, data = map(float, out[1:4])
        print(f"| {label} | {data:.2f} | {peak - base:.1f} | {(peak - base) / data:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 25, 125])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--job", action="store_true", help="the ensemble x CV job table")
    parser.add_argument("--memory", action="store_true", help="the peak memory table")
    parser.add_argument("--parallel", action="store_true", help="threads against processes")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        memory_case(args.memory_case)
        return
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = threadpool_info()[0] if threadpool_info() else {}
    print(f"numpy {np.__version__}, BLAS {blas.get('internal_api')} {blas.get('version')} "
          f"{blas.get('architecture')}, threads {args.threads or blas.get('num_threads')}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    with threadpool_limits(args.threads):
        if args.memory:
            memory_table()
        elif args.job:
            job_table(args.repeat)
        elif args.parallel:
            parallel_table(args.repeat)
        else:
            stack_table(args.ks, args.epochs, args.repeat)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
