"""Run a logged run again and check that it matches, bit for bit where it should.

The config comes from the run's `config.yaml` artifact (never from today's `conf/`), merged into
the typed schema and run through the same `experiments.run.job.run_job` as training, as a new run
tagged `rerun_of=<id>`. Before that: the data is loaded and its sha256 checked against the run's
`data_fingerprint` and the digests of its dataset inputs as the data splits now (a mismatch
refuses, unless force=true), and a changed commit, uncommitted
diff, package version, BLAS or platform is warned about. After: the final metrics and every
array of model.npz are compared, the verdict (identical / within tolerance / different) printed
with the largest difference per metric and per array, and tagged on the new run
(`rerun_verdict`; the full table is its `rerun_comparison.json` artifact).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from backprop_lab.data.load import Dataset
from backprop_lab.errors import InputError, RerunRefused
from backprop_lab.experiments.reproduce import comparison
from backprop_lab.experiments.reproduce.logged_runs import LoggedRun
from backprop_lab.experiments.run import identity, inputs
from backprop_lab.experiments.run.job import run_job
from backprop_lab.experiments.run.report import say
from backprop_lab.experiments.sweep import readback
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import Config, RerunCommand, scored_on_cells
from backprop_lab.tracking import datasets, provenance
from backprop_lab.tracking.store import Run, Store, resolve_uri

log = logging.getLogger(__name__)
REFUSED = "refused"


def check_data(original: LoggedRun, config: Config, force: bool) -> list[str]:
    """Refuse (or, with force, warn) when the data as loaded now is not the run's data."""
    logged = original.tags.get("data_fingerprint")
    if logged is None:
        return [f"run {original.run_id} logged no data_fingerprint: the data cannot be checked"]
    ds = stages.load(config.data)
    if ds.fingerprint == logged:
        return check_parts(original, config, ds, force)
    message = (f"the data changed since run {original.run_id}: it trained on data with sha256 "
               f"{logged[:16]}... ({original.tags.get('data_source', '?')}), the data loaded now "
               f"({ds.source}) has sha256 {ds.fingerprint[:16]}...")
    if not force:
        raise RerunRefused(f"{message}. A rerun would not reproduce the run: restore the data, "
                           "or pass force=true to rerun on the new data")
    return [message + " (force=true: rerunning anyway)"]


def check_parts(original: LoggedRun, config: Config, ds: Dataset, force: bool) -> list[str]:
    """Refuse (or, with force, warn) when the rows of a part the run logged as a dataset input
    (training, validation, test; or the cells' whole set) have another digest as split now."""
    logged = datasets.logged_digests(original.run)
    if not logged:
        return []  # a run logged before its datasets were: the fingerprint was all there is
    now = inputs.digests_now(config, ds, scored_on_cells(config))
    changed = [f"{context} (logged {digest}, now {now.get(context, 'absent')})"
               for context, digest in sorted(logged.items()) if now.get(context) != digest]
    if not changed:
        return []
    message = (f"the same data splits differently than in run {original.run_id}: the digests of "
               f"its dataset inputs differ for {'; '.join(changed)}")
    if not force:
        raise RerunRefused(f"{message}. A rerun would not train on the same rows: pass "
                           "force=true to rerun anyway")
    return [message + " (force=true: rerunning anyway)"]


def rerun_one(store: Store, run_id: str, cmd: RerunCommand, folder: Path,
              extra_tags: dict[str, str] | None = None) -> comparison.Comparison:
    """Rerun one logged run, compare it with the original, tag and report the verdict."""
    original = LoggedRun(store.client, run_id, folder)
    cfg = original.config(store.uri, cmd.tracking.experiment)
    config = to_config(cfg)
    warnings = check_data(original, config, cmd.force)
    git = provenance.git_state()
    now = {"git_commit": git["commit"], **provenance.environment()}
    diff_path = original.fetch("git_diff.patch")
    logged_diff = diff_path.read_text() if diff_path is not None else None
    warnings += comparison.provenance_warnings(original.tags, now, logged_diff, git["diff"])
    for line in warnings:
        log.warning(line)
    hydra_dir = original.fetch(".hydra")
    tags = {"rerun_of": run_id, **(extra_tags or {})}
    if warnings:
        tags["rerun_warnings"] = "; ".join(warnings)
    name = f"rerun-{original.run.info.run_name or run_id[:8]}"
    outcome = run_job(cfg, original.overrides(), hydra_dir.parent if hydra_dir else None,
                      extra_tags=tags, name=name)
    rerun = LoggedRun(store.client, outcome.run_id, folder)
    verdict = comparison.compare(run_id, outcome.run_id, (original.metrics, rerun.metrics),
                                 (original.arrays(), rerun.arrays()), cmd.rtol, cmd.atol)
    same_hash = rerun.tags.get("config_hash") == original.tags.get("config_hash")
    if not same_hash:
        log.warning("the rerun's config_hash differs from the run's: its code, data or "
                    "model.init_from weights are not the same")
    run = Run(Store(store.uri, str(cfg.tracking.experiment)), outcome.run_id)
    run.set_tags({**verdict.tags(), "rerun_same_config_hash": str(same_hash).lower()})
    report = folder / f"verdict-{outcome.run_id}"
    report.mkdir()
    (report / "rerun_comparison.json").write_text(json.dumps(verdict.to_dict(), indent=2))
    run.log_artifacts(report)
    say(f"\nrerun {outcome.run_id} of run {run_id}:\n{verdict.table()}")
    largest = {k: verdict.largest(k) for k in ("metric", "array")}
    shown = {k: "none logged" if math.isnan(v) else f"{v:.3g}" for k, v in largest.items()}
    say(f"verdict: {verdict.verdict} (largest |difference|: metrics {shown['metric']}, "
          f"weights {shown['array']}; tolerance rtol={cmd.rtol:g}, atol={cmd.atol:g})",
          flush=True)
    return verdict


def sweep_runs(client: Any, sweep_id: str) -> tuple[str, list[str]]:
    """The sweep's full id and its jobs: its children, then the runs it reused."""
    parent = readback.find_parent(client, sweep_id)
    ids = [r.info.run_id for r in readback.children(client, parent.info.run_id)]
    ids += [k[len(identity.REUSE_TAG):] for k in sorted(parent.data.tags)
            if k.startswith(identity.REUSE_TAG)]
    return parent.data.tags["sweep_id"], list(dict.fromkeys(ids))


def rerun(cmd: RerunCommand) -> dict[str, str]:
    """Rerun `cmd.run_id`, or every job of `cmd.sweep_id`; the verdict of each run id
    (`refused` for a run that could not be rerun, its reason logged as an error)."""
    if bool(cmd.run_id) == bool(cmd.sweep_id):
        raise InputError("give run_id=<id> or sweep_id=<id> (one of them)")
    store = Store(resolve_uri(cmd.tracking.uri), "Default")
    extra: dict[str, str] = {}
    run_ids = [str(cmd.run_id)]
    if cmd.sweep_id:
        sweep_id, run_ids = sweep_runs(store.client, str(cmd.sweep_id))
        extra["rerun_of_sweep"] = sweep_id
        log.info("sweep %s: rerunning %d jobs", sweep_id, len(run_ids))
    if len(run_ids) == 1:  # one run: its refusal is the command's error
        with tempfile.TemporaryDirectory(prefix="backprop-rerun-") as tmp:
            return {run_ids[0]: rerun_one(store, run_ids[0], cmd, Path(tmp), extra).verdict}
    verdicts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="backprop-rerun-") as tmp:
        for run_id in run_ids:
            try:
                verdicts[run_id] = rerun_one(store, run_id, cmd, Path(tmp), extra).verdict
            except InputError as err:
                print(f"error: run {run_id}: {err}", file=sys.stderr)
                verdicts[run_id] = REFUSED
    say("\n" + "\n".join(f"{r}: {v}" for r, v in verdicts.items()))
    return verdicts


def exit_status(verdicts: dict[str, str]) -> int:
    """0 all identical or within tolerance, 1 any different, 2 any refused."""
    if REFUSED in verdicts.values():
        return 2
    return 1 if comparison.DIFFERENT in verdicts.values() else 0
