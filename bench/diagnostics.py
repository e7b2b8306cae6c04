"""Overhead of gradient-flow diagnostics: an epoch with `diag.every=1` against none.

    .venv/bin/python bench/diagnostics.py [--repeats 7]

Two workloads on standardised Boston: W2 (13-64-64-1 relu, full-batch gradient descent) and the
default run (13-64-64-1 relu, Adam, batches of 64). For each, alternating plain and diagnosed
calls of 200 epochs from the same weights, the median seconds per epoch and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from backprop_lab import Network, Scaler, TrainConfig, load_dataset, train
from backprop_lab.nn.diagnostics import Diagnostics

WORKLOADS = {
    "W2 (GD, full batch)": TrainConfig(optimizer="gd", lr=0.05, epochs=200, batch_size=None),
    "default (Adam, batch 64)": TrainConfig(optimizer="adam", lr=3e-3, epochs=200,
                                            batch_size=64, weight_decay=3e-3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    ds = load_dataset("boston")
    X, y = Scaler.fit("standard", ds.X).transform(ds.X), Scaler.fit("standard", ds.y).transform(
        ds.y)
    start = Network.create([13, 64, 64, 1], np.random.default_rng(0), "relu")
    print(f"{'workload':<26}{'plain ms/ep':>12}{'diag ms/ep':>12}{'ratio':>8}")
    for name, config in WORKLOADS.items():
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.repeats):
            for diagnosed in ((False, True) if r % 2 == 0 else (True, False)):
                net = start.copy()
                t = time.perf_counter()
                train(net, X, y, config, np.random.default_rng(1),
                      diagnostics=Diagnostics(1) if diagnosed else None)
                times[diagnosed].append((time.perf_counter() - t) / config.epochs * 1000)
        plain, diag = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:<26}{plain:>12.3f}{diag:>12.3f}{diag / plain:>8.3f}")
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
