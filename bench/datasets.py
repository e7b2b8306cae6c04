"""What logging a run's datasets costs a job: `tracking.datasets.log_datasets` (three parts of
Boston, one `log_inputs` call) against a whole job of the `lr_depth` sweep, on a sqlite store.

    .venv/bin/python bench/datasets.py [--runs 30]

Prints the median milliseconds of building the entities and of logging them, and the load
average; a job of `sweep=lr_depth` (20 jobs, no models) takes ~2 s here, so the share is the
logging's median over 2000 ms. Numbers, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from backprop_lab.experiments.run.inputs import split_parts
    from backprop_lab.pipeline import stages
    from backprop_lab.pipeline.compose import compose, to_config
    from backprop_lab.tracking import datasets
    from backprop_lab.tracking.store import Run, Store

    config = to_config(compose([]))
    ds = stages.load(config.data)
    parts = split_parts(stages.set_up(config, ds).prepared.split)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/mlflow.db", "bench")
        build, log = [], []
        for _ in range(args.runs):
            run = Run.start(store, "r", {})
            started = time.perf_counter()
            for part in parts:
                datasets.entity(ds, part, "boston")
            built = time.perf_counter()
            datasets.log_datasets(run, ds, parts, "boston")
            build.append(built - started)
            log.append(time.perf_counter() - built)
    print(f"entities {1000 * statistics.median(build):.1f} ms, entities + log_inputs "
          f"{1000 * statistics.median(log):.1f} ms per run (median of {args.runs}); "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
