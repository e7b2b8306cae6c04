"""A run's identity: the content hash of what determines its result, and the run it may reuse.

`config_hash` names what determines a run's result: the resolved config without the keys that
only say where to log or how to print (`HASH_EXCLUDED`), the sha256 of the data as loaded, the
git commit, the dirty diff and the untracked files' bytes, and the bytes of a `model.init_from`
file. Two runs with the same hash on the same machine must produce the same bits; a resumed
sweep reuses such runs (`find_reusable`). `objective` is what a sweeper minimises.
No Hydra here; the MLflow helper takes a client and reads runs only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backprop_lab.paths import PROJECT_ROOT

# top-level sections and dotted keys that never change a result
HASH_EXCLUDED = ("tracking", "rerun", "diag", "train.progress", "train.n_jobs",
                 "eval.n_examples", "eval.equivalence", "eval.race")
UNTRACKED_MARKER = "\n# untracked files:\n"  # as provenance.git_state writes it
RANKING_METRICS = ("val_mse", "test_mse")  # a sweep's jobs rank by the first one they logged
REUSE_TAG = "reused."  # prefix of the sweep parent's tags `reused.<run_id>` = the job's overrides


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_config(resolved: Mapping[Any, Any]) -> dict[str, Any]:
    """The resolved config minus `HASH_EXCLUDED` (a deep copy through JSON)."""
    tree: dict[str, Any] = json.loads(json.dumps(resolved, sort_keys=True, default=str))
    for key in HASH_EXCLUDED:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None  # type: ignore[assignment]
        if isinstance(node, dict):
            node.pop(leaf, None)
    return tree


def config_hash(resolved: Mapping[Any, Any], data_fingerprint: str, git_commit: str,
                git_diff: str) -> str:
    """sha256 of what determines a run's result (see the module docstring)."""
    tree = hashed_config(resolved)
    init_from = (tree.get("model") or {}).get("init_from")
    init_sha = ""
    if init_from and Path(init_from).is_file():
        init_sha = hashlib.sha256(Path(init_from).read_bytes()).hexdigest()
    content = {"config": tree, "data_sha256": data_fingerprint, "git_commit": git_commit,
               "git_diff_sha256": sha256_text(git_diff) if git_diff else "",
               "untracked_sha256": untracked_sha256(git_diff), "init_from_sha256": init_sha}
    return sha256_text(json.dumps(content, sort_keys=True))


def untracked_sha256(git_diff: str, root: Path = PROJECT_ROOT) -> str:
    """sha256 of the names and bytes of the untracked files that `provenance.git_state` lists
    at the end of its diff (`git diff HEAD` itself holds no untracked file's content)."""
    _, found, listing = git_diff.partition(UNTRACKED_MARKER)
    if not found:
        return ""
    h = hashlib.sha256()
    for line in listing.splitlines():
        if line.startswith("#   "):
            path = root / line[4:]
            h.update(line.encode("utf-8") + b"\0")
            h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()


def find_reusable(client: Any, experiment_id: str, chash: str) -> Any | None:
    """The latest run of `experiment_id` with tag config_hash=`chash` that ran to the end:
    FINISHED, or FAILED because it diverged (deterministic too). Deleted runs (lifecycle
    stage `deleted`) are never searched; reruns (tag `rerun_of`) are checks, not reused."""
    runs = client.search_runs([experiment_id], f"tags.config_hash = '{chash}'", max_results=50,
                              order_by=["attributes.start_time DESC"])
    for run in runs:
        tags = run.data.tags
        done = run.info.status == "FINISHED" or (
            run.info.status == "FAILED" and tags.get("diverged") == "true")
        if done and "rerun_of" not in tags:
            return run
    return None


def objective(metrics: Mapping[str, float], status: str) -> float:
    """What a sweeper minimises: the first of `RANKING_METRICS` the run logged (a run with
    several cells logs each metric's mean over them under the plain name); NaN for a run that
    did not finish, which Optuna records as a failed trial (not as a value of infinity)."""
    if status != "FINISHED":
        return math.nan
    return next((float(metrics[key]) for key in RANKING_METRICS if key in metrics), math.nan)
