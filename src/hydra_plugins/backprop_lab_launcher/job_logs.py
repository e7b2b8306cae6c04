"""Each job of the stacked launcher logs into its own Hydra output folder.

Hydra configures logging per job (`hydra.core.utils.run_job` -> `configure_log`): the root
logger gets a FileHandler on `<job output dir>/<job name>.log`, replacing the previous job's.
The stacked launcher runs its jobs as threads that live side by side, so every job's records
went to the file of the job set up last. `JobLogs` is one root handler that sends a record to
the file of the job whose thread logged it: each job, in its own thread and right after Hydra
configured logging for it, hands its file handler over (`adopt`). Records of other threads (the
launcher's, the stack's workers) go to the console only.
"""

import logging
import threading
from typing import Any


class JobLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.files: dict[int, list[logging.Handler]] = {}  # thread id -> its job's handlers
        self.lock_files = threading.Lock()

    def adopt(self) -> None:
        """In a job's thread: take the root's file handlers (this job's, just configured by
        Hydra) off the root, and route this thread's records to them."""
        root = logging.getLogger()
        files: list[logging.Handler] = [h for h in root.handlers
                                        if isinstance(h, logging.FileHandler)]
        for handler in files:
            root.removeHandler(handler)
        with self.lock_files:
            self.files[threading.get_ident()] = files
        if self not in root.handlers:
            root.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self.files.get(record.thread or 0, ()):
            if record.levelno >= handler.level:
                handler.handle(record)

    def close(self) -> None:
        root = logging.getLogger()
        if self in root.handlers:
            root.removeHandler(self)
        with self.lock_files:
            for handlers in self.files.values():
                for handler in handlers:
                    handler.close()
            self.files.clear()
        super().close()


def routed(task_function: Any, logs: JobLogs) -> Any:
    """`task_function`, first handing this job's log file to `logs` (run_job calls the task
    after configuring logging, in the job's thread)."""

    def task(cfg: Any) -> Any:
        logs.adopt()
        return task_function(cfg)

    return task
