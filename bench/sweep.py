"""Sweep speed: the `lr_depth` grid (20 jobs) on Boston with the basic and the joblib launcher.

    .venv/bin/python bench/sweep.py [--launchers basic joblib] [--repeat 1] [KEY=VALUE ...]
    .venv/bin/python bench/sweep.py --launchers basic --stacked true false -- eval.cv_folds=5
    .venv/bin/python bench/sweep.py --launchers stacked basic --n-jobs 2 1 --repeat 2 \
        -- eval.cv_folds=5 eval.repeats=3

Extra KEY=VALUE arguments are passed to every sweep (e.g. train.epochs=200,
tracking.log_model=true). Each sweep runs as a user would run it, `python -m pipelines.train -m
sweep=lr_depth hydra/launcher=...`, on a fresh copy of an already migrated store, and is read
back from MLflow. Reported per sweep:

  jobs/min      20 jobs / wall time
  training      sum of the jobs' `seconds_training` tags / (workers x wall)
  MLflow        sum of the jobs' `seconds_mlflow` tags / (workers x wall): every MLflow call a
                job makes (create run, params, metrics, artifacts, the pyfunc model, end)
  start-up      (first job's start - command start) / wall: interpreter, imports, Hydra
                composition, opening the store, the parent run; for joblib also starting the
                worker processes and their imports
  other         the rest: per-job Hydra composition and data loading, writing artifacts and
                plots, git provenance, the summary at the end, idle workers

`workers` is 1 for the basic launcher, n_jobs (all cores) for joblib; for the stacked launcher
(`--n-jobs 2 1` runs it with each `hydra.launcher.n_jobs`) training is the shared training's
wall time (every job's `seconds_training`) / wall. CPU is the sweep process's (and its
children's) CPU time: CPU / wall is how many cores it kept busy. Every sweep's metrics are
compared, run by run, with the first variant's: "identical" means every metric of every run is
the same float. The load average is printed beside each sweep. Numbers, not pass/fail;
machines are noisy, so run --repeat 3 and read the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def migrated_store(folder: Path) -> tuple[Path, float]:
    """A freshly migrated sqlite store (and the seconds migrating took: paid once per store)."""
    from mlflow.tracking import MlflowClient

    db = folder / "template.db"
    started = time.perf_counter()
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db, time.perf_counter() - started


def run_sweep(template: Path, folder: Path, launcher: str, extra: list[str]) -> dict[str, Any]:
    """One sweep as a user runs it; its timings, read back from MLflow."""
    from mlflow.tracking import MlflowClient

    folder.mkdir(parents=True)
    db = folder / "mlflow.db"
    shutil.copy(template, db)
    uri = f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "pipelines.train", "-m", "sweep=lr_depth",
           f"hydra/launcher={launcher}", f"tracking.uri={uri}",
           f"hydra.sweep.dir={folder / 'sweep'}", *extra]
    load_before = os.getloadavg()[0]
    started_ms = time.time() * 1000
    t0, cpu0 = time.perf_counter(), children_cpu()
    out = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if out.returncode != 0:
        raise SystemExit(f"sweep failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("backprop-lab")
    assert experiment is not None, "the sweep logged nothing"
    runs = client.search_runs([experiment.experiment_id])
    jobs = [r for r in runs if r.data.tags.get("sweep_role") != "parent"]
    workers = 1 if launcher == "basic" else (os.cpu_count() or 1)
    if launcher == "stacked":
        workers = next((int(e.split("=")[1]) for e in extra
                        if e.startswith("hydra.launcher.n_jobs=")), workers)
    training = sum(float(r.data.tags.get("seconds_training", 0)) for r in jobs)
    if launcher == "stacked":  # every job's seconds_training is the one shared training's wall
        training, workers = max(float(r.data.tags.get("seconds_training", 0)) for r in jobs), 1
    in_mlflow = sum(float(r.data.tags.get("seconds_mlflow", 0)) for r in jobs)
    startup = (min(r.info.start_time for r in jobs) - started_ms) / 1000
    capacity = workers * wall
    return {
        "launcher": launcher, "jobs": len(jobs), "workers": workers, "wall_s": wall,
        "jobs_per_min": 60 * len(jobs) / wall,
        "training_share": training / capacity, "mlflow_share": in_mlflow / capacity,
        "startup_share": startup / wall,
        "other_share": 1 - training / capacity - in_mlflow / capacity - startup / wall,
        "job_mean_s": statistics.mean((r.info.end_time - r.info.start_time) / 1000 for r in jobs),
        "training_per_job_s": training / (1 if launcher == "stacked" else len(jobs)),
        "mlflow_per_job_s": in_mlflow / len(jobs),
        "startup_s": startup, "statuses": sorted({r.info.status for r in jobs}),
        "metrics": {r.info.run_name: dict(sorted(r.data.metrics.items())) for r in jobs},
        "load": (load_before, os.getloadavg()[0]), "cpu_s": cpu,
    }


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by the finished child processes: a sweep's CPU
    time / its wall time is how many cores it kept busy."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def blas() -> str:
    from threadpoolctl import threadpool_info

    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"x{i.get('num_threads')}" for i in threadpool_info()
                     if i.get("user_api") == "blas") or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launchers", nargs="+", default=["basic", "joblib"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--stacked", nargs="+", default=[], metavar="true|false",
                        help="also alternate train.stacked=VALUE within each repeat")
    parser.add_argument("--n-jobs", nargs="+", default=[], metavar="N",
                        help="the stacked launcher with hydra.launcher.n_jobs=N, each in turn")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE passed to every sweep")
    args = parser.parse_args()
    import numpy  # noqa: F401  (loads BLAS for the report)

    print(f"{os.cpu_count()} cores; BLAS {blas()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '-')}; overrides: {' '.join(args.overrides)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        template, migrate_s = migrated_store(Path(tmp))
        print(f"creating a new store (migrations, once per store, not in the numbers): "
              f"{migrate_s:.1f} s")
        variants = [(f"{launcher}{f' stacked={v}' if v else ''}", launcher,
                     [f"train.stacked={v}"] if v else [])
                    for launcher in args.launchers for v in (args.stacked or [""])]
        if args.n_jobs and "stacked" in args.launchers:
            variants = [v for v in variants if v[1] != "stacked"]
            variants[:0] = [(f"stacked n_jobs={n}", "stacked", [f"hydra.launcher.n_jobs={n}"])
                            for n in args.n_jobs]
        for rep in range(args.repeat):
            order = variants if rep % 2 == 0 else variants[::-1]
            for label, launcher, extra in order:  # alternate variants within a repeat
                folder = Path(tmp) / f"{label.replace(' ', '-').replace('=', '-')}-{rep}"
                r = run_sweep(template, folder, launcher, [*args.overrides, *extra])
                r["launcher"] = label
                results.append(r)
                same = repr(r["metrics"]) == repr(results[0]["metrics"])  # NaN equals NaN
                print(f"{label:>7} #{rep}: {r['jobs']} jobs in {r['wall_s']:.1f} s "
                      f"(CPU {r['cpu_s']:.1f} s = {r['cpu_s'] / r['wall_s']:.2f} cores) "
                      f"= {r['jobs_per_min']:.1f} jobs/min | training {r['training_share']:.0%} "
                      f"MLflow {r['mlflow_share']:.0%} start-up {r['startup_share']:.0%} "
                      f"other {r['other_share']:.0%} | per job: {r['job_mean_s']:.2f} s, "
                      f"training {r['training_per_job_s']:.2f} s (stacked: all jobs), MLflow "
                      f"{r['mlflow_per_job_s']:.2f} s | {','.join(r['statuses'])} | "
                      f"metrics {'identical' if same else 'DIFFER'}"
                      f" | load average before/after {r['load'][0]:.2f}/{r['load'][1]:.2f}",
                      flush=True)
    print("\nmedians over repeats")
    print(f"{'variant':>8} {'wall s':>7} {'jobs/min':>9} {'training':>9} {'MLflow':>7} "
          f"{'start-up':>9} {'other':>6}")
    for launcher, _, _ in variants:
        mine = [r for r in results if r["launcher"] == launcher]
        med = {k: statistics.median(r[k] for r in mine) for k in
               ("wall_s", "jobs_per_min", "training_share", "mlflow_share", "startup_share",
                "other_share")}
        print(f"{launcher:>8} {med['wall_s']:>7.1f} {med['jobs_per_min']:>9.1f} "
              f"{med['training_share']:>9.0%} "
              f"{med['mlflow_share']:>7.0%} {med['startup_share']:>9.0%} "
              f"{med['other_share']:>6.0%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
