"""Training plans on every core: `execute` trains plans `n_jobs` at a time, each large plan cut
into `n_jobs` pieces of consecutive networks (a network's numbers never depend on its neighbours,
so the cut changes no bit), the workers taking the pieces largest first.

Workers are forked processes by default: numpy releases the GIL inside its loops and BLAS calls,
but a narrow stack's step is mostly Python between them, and two threads trained two width-16
stacks only 1.2-1.4× faster than one thread, two processes 1.7-2.0× (bench/README.md, "Parallel
stacks"). A worker reports its epochs as it trains, and the epoch callbacks (MLflow, progress
bars, a search's pruner) run here (pipeline.workers); with `backend="threads"` they run in the
training threads, one at a time under a lock.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence

from backprop_lab.nn.stacked import n_parameters
from backprop_lab.nn.training import EpochCallback, History
from backprop_lab.pipeline import workers
from backprop_lab.pipeline.plan import Plan, split


def work(plan: Plan) -> int:
    """A piece's expected cost, to hand out the largest first: networks × (parameters + a
    per-layer overhead worth ~256 parameters: small networks are numpy-call bound)."""
    sizes = plan.nets[0].sizes
    return len(plan.nets) * (n_parameters(sizes) + 256 * (len(sizes) - 1))


def serialized(plan: Plan, lock: threading.Lock) -> Plan:
    """`plan` with every epoch callback run under `lock`: callbacks write MLflow runs and
    progress bars, which a job's code calls from one thread at a time."""
    def locked(callback: EpochCallback) -> EpochCallback:
        def call(epoch: int, values: dict[str, float]) -> None:
            with lock:
                callback(epoch, values)
        if hasattr(callback, "due"):  # called on the epochs it asks for only (nn.training)
            call.due = callback.due  # type: ignore[attr-defined]
        return call

    return Plan(plan.nets, plan.data, plan.configs, plan.rngs,
                {k: [locked(c) for c in cs] for k, cs in plan.callbacks.items()},
                plan.diagnostics, plan.observe)


Outcome = list[History] | Exception


MIN_PIECE = 512  # networks × widest layer, for threads: a smaller piece's numpy calls (K × width
# × batch elements) are too short to release the GIL for long, and two threads ran no faster
# than one (bench/README.md, "Parallel stacks"); processes cut every stack


def pieces_of(plan: Plan, n_jobs: int, min_piece: int) -> int:
    """How many pieces to cut `plan` into: n_jobs, fewer if they would fall below min_piece."""
    size = len(plan.nets) * max(plan.nets[0].sizes)
    return max(1, min(n_jobs, size // max(1, min_piece)))


BACKENDS = ("processes", "threads")


def execute(plans: Sequence[Plan], n_jobs: int = 1, min_piece: int | None = None,
            backend: str = "processes") -> list[Outcome]:
    """Train every plan: one after another (`n_jobs` <= 1), or `n_jobs` at a time in worker
    processes (`workers.in_processes`) or threads (`in_threads`), each plan cut into up to `n_jobs`
    pieces of at least `min_piece` networks × widest layer (default: 1 for processes,
    `MIN_PIECE` for threads). A plan whose training raised an `Exception` gets it as its
    outcome; any other exception (KeyboardInterrupt) propagates at once."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if n_jobs <= 1:
        return [attempt(plan.execute) for plan in plans]
    forked = backend == "processes" and FORK
    least = min_piece if min_piece is not None else 1 if forked else MIN_PIECE
    lock = threading.Lock()
    pieces = [(i, serialized(piece, lock)) for i, plan in enumerate(plans)
              for piece in split(plan, pieces_of(plan, n_jobs, least))]
    run = workers.in_processes if forked else in_threads
    done = run([piece for _, piece in pieces], [work(p) for _, p in pieces], n_jobs)
    for result in done:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    outcomes: list[Outcome] = []
    for i in range(len(plans)):
        mine = [result for (j, _), result in zip(pieces, done) if j == i]
        failed = [r for r in mine if isinstance(r, Exception)]
        outcomes.append(failed[0] if failed else
                        [h for r in mine if isinstance(r, list) for h in r])
    return outcomes


def attempt(task: Callable[[], list[History]]) -> Outcome:
    try:
        return task()
    except Exception as err:
        return err


def in_threads(plans: Sequence[Plan], costs: Sequence[int],
               n_jobs: int) -> list[list[History] | BaseException]:
    """Train `plans` in `n_jobs` threads, the costliest first; each one's result or exception.

    The threads are daemons and the wait is interruptible: on Ctrl-C or SIGTERM (raised here by
    the launcher's handler) the caller stops waiting, no new task starts, and the process can
    exit while a task is inside numpy."""
    tasks = [plan.execute for plan in plans]
    results: list[list[History] | BaseException | None] = [None] * len(tasks)
    queue = sorted(range(len(tasks)), key=lambda t: -costs[t])
    lock, stop = threading.Lock(), threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                t = queue.pop(0)
            try:
                results[t] = tasks[t]()
            except BaseException as err:  # handed to the caller, which decides
                results[t] = err

    threads = [threading.Thread(target=worker, name=f"stack-{w}", daemon=True)
               for w in range(min(n_jobs, len(tasks)))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


FORK = "fork" in multiprocessing.get_all_start_methods()  # else processes fall back to threads
