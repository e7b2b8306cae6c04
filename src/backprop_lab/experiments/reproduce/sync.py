"""Upload what runs spooled while their tracking server was away: `python -m pipelines.sync`.

A run that lost its server mid-training kept its writes in `mlflow-spool/<run id>/` in its output
folder (`backprop_lab.tracking.spool`) and, when the server stayed away past
`tracking.spool_wait`, ended with a line naming that folder. Here every spool found under the
given folder (or the project's outputs/ and multirun/) is sent to the server it names, in order,
with the original timestamps and steps. A spool already delivered sends nothing: twice uploads
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backprop_lab.errors import NotFound, TrackingLost
from backprop_lab.experiments.run.report import say
from backprop_lab.paths import PROJECT_ROOT
from backprop_lab.pipeline.config import SyncCommand
from backprop_lab.tracking.spool import Spool, find_spools
from backprop_lab.tracking.store import check_server, open_client


@dataclass
class Synced:
    """One spool's upload: how many writes it sent now, and how many it had in all."""

    folder: str
    uri: str
    run_id: str
    sent_now: int
    total: int


def roots(path: str | None) -> list[Path]:
    """The folders to search: `path`, or outputs/ and multirun/ of the current folder and of the
    project (Hydra writes a command's output folder under the folder it was started in)."""
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise NotFound(f"path: no such folder {folder}")
        return [folder]
    found = [base / name for base in (Path.cwd(), PROJECT_ROOT) for name in ("outputs", "multirun")]
    return list(dict.fromkeys(p.resolve() for p in found if p.is_dir()))


def upload(spool: Spool) -> Synced:
    """Send `spool`'s pending writes to its server; a server still away is an error."""
    meta = spool.meta
    before = spool.sent
    total = len(spool.ops())
    if before < total:
        if meta["uri"].startswith(("http://", "https://")):
            check_server(meta["uri"])  # away or refusing: one line, before anything is sent
        left = spool.deliver(open_client(meta["uri"]))
        if left:
            raise TrackingLost(f"the MLflow server {meta['uri']} stopped answering while "
                               f"{spool.folder} was uploaded: {spool.describe()} still wait; "
                               "run the same command again")
    return Synced(str(spool.folder), meta["uri"], meta["run_id"], spool.sent - before, total)


def sync(cmd: SyncCommand) -> list[Synced]:
    """Upload every spool under `cmd.path`; print one line per spool and return what each sent."""
    spools = [s for root in roots(cmd.path) for s in find_spools([root])]
    if not spools and cmd.path is not None:
        raise NotFound(f"path: no spooled run (mlflow-spool/*/spool.json) under {cmd.path}")
    done = []
    for spool in spools:
        synced = upload(spool)
        state = (f"sent {synced.sent_now} of {synced.total} writes" if synced.sent_now
                 else "already uploaded, nothing sent")
        say(f"run {synced.run_id} -> {synced.uri}: {state} ({synced.folder})")
        done.append(synced)
    say(f"{len(done)} spool(s) uploaded" if done else "no spooled runs found")
    return done
