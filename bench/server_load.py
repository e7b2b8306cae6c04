"""Load on the shared tracking server: N simultaneous writers, what they lose and wait for.

    .venv/bin/python bench/server_load.py [--writers 1,2,4,8,16,32] [--epochs 300]
        [--modes epoch,pipeline] [--epoch-ms 0] [--server-workers 2]

Starts the real server (server/mlflow_server.py: `mlflow server` with logins and our auth rules,
on a throwaway PostgreSQL) on a free port, then for each mode and writer count forks that many
writer processes. Each logs one run as a training job does, through the library itself
(`Store`, `Run.start`, `log_params`, `MetricBuffer` over `train_loss`/`val_loss` each epoch,
`Run.end`), starting together (a barrier), as user `bench`:
- mode `epoch`: a metric batch (log_batch) every epoch, `MetricBuffer(every=2)`: the most
  requests a run can make, as a live loss curve would;
- mode `pipeline`: `MetricBuffer`'s default as `pipelines.train` uses it (a batch every 500
  values: one at epoch 250 and one at the end for 300 epochs).
No training is done between epochs unless `--epoch-ms`: a small network's epoch takes ~1 ms here,
so the writers log about as fast as the server answers. Each writer times each metric batch.

Prints one table row per configuration: runs finished, metric points lost (expected minus
those the server returns through its API; should be 0), runs that spooled (the client found
the server away), median and p99 seconds of a metric batch, metric batches per second, the CPU
the server used (mlflow processes and PostgreSQL) and the writers used, in cores (of
os.cpu_count(): the writers run on the same machine, so they compete with the server for it),
the whole machine's busy and disk-waiting CPU (anyone's processes: the machine may be shared)
and the 1-minute load average (it lags: after a long configuration, the next short ones show
its load). Numbers, not pass/fail: bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "server" / "mlflow_server.py"
USER = "bench"


@dataclass
class Server:
    url: str
    password: str
    server_pid: int
    postgres_pid: int
    process: subprocess.Popen[bytes]

    def api(self, endpoint: str, body: dict[str, Any] | None = None,
            query: dict[str, str] | None = None) -> Any:
        """The REST API as user `bench`, without MLflow's client: the writers are forked from
        this process, and a client session made here would share its sockets with them."""
        token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        url = f"{self.url}{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(
            url, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
            method="POST" if body is not None else "GET")
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read() or b"{}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, workers: int) -> Server:
    """server/mlflow_server.py with a throwaway PostgreSQL, user `bench` (EDIT), until READY."""
    password = secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_AUTH_ADMIN_PASSWORD=secrets.token_urlsafe(16),
               BACKPROP_LAB_USERS=f"{USER}:{password}:EDIT", MLFLOW_DISABLE_TELEMETRY="true")
    log = folder / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(free_port()), "--workers", str(workers),
             "--artifacts", str(folder / "artifacts")],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while "READY" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"error: the server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    info = json.loads(next(x for x in log.read_text().splitlines() if x.startswith('{"url"')))
    return Server(info["url"], password, int(info["server_pid"]), int(info["postgres_pid"]),
                  process)


def cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and its live descendants, plus what their ended children used
    (a PostgreSQL backend that exits is counted in the postmaster's children times)."""
    try:
        procs = [psutil.Process(root)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def writer(k: int, url: str, experiment_id: str, epochs: int, every: int, epoch_ms: float,
           barrier: Any, results: Any) -> None:
    """One run, logged as a training job logs it; reports its metric batches' seconds."""
    from backprop_lab.tracking.store import MetricBuffer, Run, Store

    outcome: dict[str, Any] = {"writer": k, "times": [], "spooled": False, "error": None}
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # MLflow prints a "View run ..." line per run; the table is the output
    try:
        store = Store(url, "server-load", experiment_id=experiment_id)
        barrier.wait(timeout=600)
        run = Run.start(store, f"writer-{k}", {"bench": "server_load"})
        run.log_params({"writer": str(k), "epochs": str(epochs), "every": str(every)})
        buffer = MetricBuffer(run, every=every)
        rng = random.Random(k)
        for epoch in range(epochs):
            if epoch_ms:
                time.sleep(epoch_ms / 1000)
            started = time.perf_counter()
            buffer(epoch, {"train_cost": rng.random(), "val_cost": rng.random()})
            if not buffer.pending:  # this epoch sent a batch
                outcome["times"].append(time.perf_counter() - started)
        if buffer.pending:
            started = time.perf_counter()
            buffer.flush()
            outcome["times"].append(time.perf_counter() - started)
        run.end("FINISHED")
        outcome["spooled"] = run.spool is not None
    except Exception as err:  # reported in the table, not raised: the other writers go on
        outcome["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        break_barrier(barrier)
    results.put(outcome)


def break_barrier(barrier: Any) -> None:
    """A writer that failed before the start lets the others (and the timer) go."""
    with contextlib.suppress(Exception):
        barrier.abort()


def points_found(server: Server, experiment_id: str) -> tuple[int, int]:
    """(runs FINISHED, metric points stored) in the experiment, through the server's API."""
    runs: list[dict[str, Any]] = []
    token = None
    while True:
        body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 1000}
        if token:
            body["page_token"] = token
        page = server.api("/api/2.0/mlflow/runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            break
    points = 0
    for run in runs:
        for key in ("train_loss", "val_loss"):
            history = server.api("/api/2.0/mlflow/metrics/get-history", query={
                "run_id": run["info"]["run_id"], "metric_key": key, "max_results": "100000"})
            points += len(history.get("metrics", []))
    finished = sum(run["info"]["status"] == "FINISHED" for run in runs)
    return finished, points


def one_load(server: Server, mode: str, writers: int, epochs: int, epoch_ms: float
             ) -> dict[str, Any]:
    every = 2 if mode == "epoch" else 500
    experiment_id = str(server.api("/api/2.0/mlflow/experiments/create", {
        "name": f"load-{mode}-{writers}-{secrets.token_hex(3)}"})["experiment_id"])
    context = mp.get_context("fork")  # the library is imported once, here
    barrier, results = context.Barrier(writers + 1), context.Queue()
    procs = [context.Process(target=writer, args=(k, server.url, experiment_id, epochs, every,
                                                  epoch_ms, barrier, results))
             for k in range(writers)]
    before = os.times()
    for proc in procs:
        proc.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=600)  # every writer has its store: the load starts now
    cpu_mlflow, cpu_pg = cpu_seconds(server.server_pid), cpu_seconds(server.postgres_pid)
    machine = psutil.cpu_times()
    started = time.perf_counter()
    outcomes = [results.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    cpu_mlflow = cpu_seconds(server.server_pid) - cpu_mlflow
    cpu_pg = cpu_seconds(server.postgres_pid) - cpu_pg
    machine_after = psutil.cpu_times()
    idle = machine_after.idle - machine.idle
    iowait = getattr(machine_after, "iowait", 0.0) - getattr(machine, "iowait", 0.0)
    busy = sum(machine_after) - sum(machine) - idle - iowait  # every process on the machine
    load = os.getloadavg()[0]
    for proc in procs:
        proc.join(60)
    after = os.times()  # the writers, reaped by join (their start-up included)
    cpu_writers = (after.children_user + after.children_system
                   - before.children_user - before.children_system)
    finished, found = points_found(server, experiment_id)
    times = sorted(t for o in outcomes for t in o["times"])
    errors = [o["error"] for o in outcomes if o["error"]]
    return {
        "mode": mode, "writers": writers, "finished": finished,
        "lost": writers * epochs * 2 - found, "spooled": sum(o["spooled"] for o in outcomes),
        "median": statistics.median(times) if times else float("nan"),
        "p99": times[min(len(times) - 1, int(0.99 * len(times)))] if times else float("nan"),
        "batches_per_s": len(times) / wall, "wall": wall,
        "cpu_mlflow": cpu_mlflow / wall, "cpu_pg": cpu_pg / wall, "load": load,
        "cpu_writers": cpu_writers / wall, "busy": busy / wall, "iowait": iowait / wall,
        "errors": errors,
    }


HEADER = (f"{'mode':>8} {'writers':>7} {'finished':>8} {'lost':>5} {'spooled':>7} "
          f"{'median s':>8} {'p99 s':>7} {'batch/s':>7} {'wall s':>6} "
          f"{'mlflow':>6} {'PG':>5} {'writers':>7} {'busy':>5} {'iowait':>6} {'load1':>5}")


def row(r: dict[str, Any]) -> str:
    return (f"{r['mode']:>8} {r['writers']:>7} {r['finished']:>4}/{r['writers']:<3} "
            f"{r['lost']:>5} {r['spooled']:>7} {r['median']:>8.3f} {r['p99']:>7.3f} "
            f"{r['batches_per_s']:>7.1f} {r['wall']:>6.1f} {r['cpu_mlflow']:>6.2f} "
            f"{r['cpu_pg']:>5.2f} {r['cpu_writers']:>7.2f} {r['busy']:>5.2f} {r['iowait']:>6.2f} "
            f"{r['load']:>5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,2,4,8,16,32")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--modes", default="epoch,pipeline")
    parser.add_argument("--epoch-ms", type=float, default=0.0,
                        help="training time to wait between epochs")
    parser.add_argument("--server-workers", type=int, default=2)
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.writers.split(",")]
    except ValueError:
        counts = []
    modes = args.modes.split(",")
    if not counts or min(counts) < 1 or not set(modes) <= {"epoch", "pipeline"} or args.epochs < 1:
        print("error: --writers takes counts like 1,8,16,32, --modes epoch and/or pipeline, "
              "--epochs a positive number", file=sys.stderr)
        raise SystemExit(2)
    from backprop_lab.tracking.store import quiet_mlflow_environment

    quiet_mlflow_environment()  # as the commands do: 3 retries of a failing request
    with tempfile.TemporaryDirectory(prefix="bench-server-load-") as tmp:
        started = time.monotonic()
        server = start_server(Path(tmp), args.server_workers)
        print(f"server (mlflow_server.py, {args.server_workers} workers, throwaway PostgreSQL) "
              f"ready in {time.monotonic() - started:.0f} s at {server.url}; {os.cpu_count()} "
              f"cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{args.epochs} epochs per run, 2 metrics per epoch, epoch time {args.epoch_ms} ms",
              flush=True)
        os.environ.update(MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=server.password)
        try:
            print(HEADER, flush=True)
            for mode in modes:
                for writers in counts:
                    result = one_load(server, mode, writers, args.epochs, args.epoch_ms)
                    print(row(result), flush=True)
                    for error in dict.fromkeys(result["errors"]):
                        print(f"  writer error: {error}", flush=True)
        finally:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(90)
    print("median/p99 s: seconds of one metric batch (log_batch) seen by a writer; batch/s: "
          "all writers together; mlflow, PG: CPU of the server's processes, writers: of the "
          "writer processes (start-up included), busy/iowait: the whole machine's CPU busy or "
          "waiting for the disk (other users' processes included), all in cores; load1: "
          "1-minute load average at the end of the configuration")


if __name__ == "__main__":
    main()
