"""Start-up cost of a training run: how much more wall time than importing its libraries.

    .venv/bin/python bench/startup.py [--pairs 3]

Times, alternately and `--pairs` times each, two fresh processes on the same (already migrated)
sqlite store in a temporary folder:
- baseline: `import mlflow, hydra, numpy, pandas` and open the store (one search_experiments)
- train:    `python -m pipelines.train train.epochs=1 tracking.log_model=false`
and prints the median wall time of each and their ratio (the issue's target: <= 1.3), with the
load average beside them. Numbers, not pass/fail: see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ("import mlflow, hydra, numpy, pandas, sys; "
            "from mlflow.tracking import MlflowClient; "
            "MlflowClient(sys.argv[1]).search_experiments()")


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    # A user's interpreter reads compiled bytecode; a shell that sets PYTHONDONTWRITEBYTECODE would
    # time the compiler instead (both processes ~3 s slower here), so the warm-up writes the caches.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        baseline = [sys.executable, "-c", BASELINE, uri]
        train = [sys.executable, "-m", "pipelines.train", "train.epochs=1",
                 "tracking.log_model=false", f"tracking.uri={uri}"]
        wall(train, folder, env)  # migrates the store, writes bytecode caches, warms the disk cache
        wall(baseline, folder, env)
        times: dict[str, list[float]] = {"baseline": [], "train": []}
        load_before = os.getloadavg()[0]
        for pair in range(args.pairs):
            order = ("baseline", "train") if pair % 2 == 0 else ("train", "baseline")
            for name in order:
                times[name].append(wall(baseline if name == "baseline" else train, folder, env))
        load_after = os.getloadavg()[0]
    base, run = statistics.median(times["baseline"]), statistics.median(times["train"])
    print(f"{'process':<10}{'median s':>10}   all (s)")
    for name, values in times.items():
        print(f"{name:<10}{statistics.median(values):>10.2f}   "
              + " ".join(f"{v:.2f}" for v in values))
    print(f"ratio train / baseline: {run / base:.2f}  (load average {load_before:.1f} before, "
          f"{load_after:.1f} after; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
