"""Mark stale runs across a store: what `python -m pipelines.cleanup` does."""

from __future__ import annotations

from backprop_lab.errors import NotFound
from backprop_lab.experiments.run.report import say
from backprop_lab.pipeline.config import CleanupCommand
from backprop_lab.tracking.liveness import mark_stale
from backprop_lab.tracking.store import open_client, resolve_uri


def cleanup(cmd: CleanupCommand) -> list[str]:
    """Mark the stale runs of `cmd.tracking.experiment` (every experiment when None); print
    and return their ids."""
    uri = resolve_uri(cmd.tracking.uri)
    client = open_client(uri)
    if cmd.tracking.experiment:
        found = client.get_experiment_by_name(cmd.tracking.experiment)
        if found is None:
            raise NotFound(f"tracking.experiment: no experiment {cmd.tracking.experiment!r} "
                           f"in {uri}")
        experiment_ids = [found.experiment_id]
    else:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    marked = mark_stale(client, experiment_ids, cmd.tracking.stale_after) if experiment_ids else []
    for run_id in marked:
        run = client.get_run(run_id)
        say(f"{run_id} ({run.info.run_name}): FAILED, {run.data.tags['stale_reason']}")
    say(f"{len(marked)} stale run(s) marked FAILED in {uri}")
    return marked
