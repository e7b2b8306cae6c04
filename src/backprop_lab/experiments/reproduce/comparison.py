"""Reproducibility: a run's content hash, and how two runs of one config compare.

`config_hash` names what determines a run's result: the resolved config without the keys that
only say where to log or how to print (`HASH_EXCLUDED`), the sha256 of the data as loaded, the
git commit, the dirty diff and the untracked files' bytes, and the bytes of a `model.init_from`
file. Two runs with the same
hash on the same machine must produce the same bits; a resumed sweep reuses such runs.

`compare` sets the final metrics and the weight arrays of an original run and its rerun side by
side and gives a verdict: identical (bit for bit), within tolerance, or different.
No Hydra here; the MLflow helpers take a client and read runs only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backprop_lab.paths import PROJECT_ROOT

# top-level sections and dotted keys that never change a result
HASH_EXCLUDED = ("tracking", "rerun", "diag", "train.progress", "eval.n_examples")
IDENTICAL, WITHIN, DIFFERENT = "identical", "within tolerance", "different"
VERDICTS = (IDENTICAL, WITHIN, DIFFERENT)  # best to worst
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


# ---------------------------------------------------------------- provenance differences


def provenance_warnings(logged: Mapping[str, str], now: Mapping[str, str],
                        logged_diff: str | None, diff_now: str) -> list[str]:
    """What differs between the environment a run logged (its tags) and this one: the commit,
    the uncommitted changes, package versions, BLAS and platform."""
    warnings: list[str] = []
    commit = logged.get("git_commit")
    if commit and commit != now.get("git_commit"):
        warnings.append(f"git commit differs: run {commit[:12]}, now {now.get('git_commit')}")
    if logged.get("git_dirty") in ("true", "false"):
        before = logged_diff if logged.get("git_dirty") == "true" else ""
        if before is not None and sha256_text(before) != sha256_text(diff_now):
            warnings.append("uncommitted changes differ from the run's git_diff.patch "
                            f"(run dirty={logged.get('git_dirty')}, now dirty="
                            f"{str(bool(diff_now)).lower()})")
    keys = sorted(k for k in logged if k.startswith("version.")) + ["blas", "platform"]
    for key in keys:
        if key in logged and _parts(logged[key]) != _parts(now.get(key, "")):
            warnings.append(f"{key} differs: run {logged[key]!r}, now {now.get(key)!r}")
    return warnings


def _parts(value: str) -> list[str]:
    """'a; b' and 'b; a' are the same libraries (threadpoolctl's order varies with imports)."""
    return sorted(value.split("; "))


# ---------------------------------------------------------------- comparing two runs


@dataclass
class Difference:
    """One compared item: a final metric or a weight/scaler array."""

    kind: str  # "metric" or "array"
    name: str
    verdict: str
    max_abs: float = math.nan  # the largest absolute difference (nan: not comparable)
    max_rel: float = math.nan
    note: str = ""


@dataclass
class Comparison:
    original: str
    rerun: str
    rtol: float
    atol: float
    items: list[Difference] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.items:
            return DIFFERENT
        return max((d.verdict for d in self.items), key=VERDICTS.index)

    def largest(self, kind: str) -> float:
        """The largest |difference| among the items of `kind` (nan: none compared)."""
        values = [d.max_abs for d in self.items if d.kind == kind and not math.isnan(d.max_abs)]
        return max(values, default=math.nan)

    def table(self) -> str:
        width = max([len(d.name) for d in self.items] + [10])
        lines = [f"{'':<7}{'name':<{width}}  {'max |diff|':>12}  {'max rel':>10}  verdict"]
        for d in self.items:
            lines.append(f"{d.kind:<7}{d.name:<{width}}  {d.max_abs:>12.3g}  {d.max_rel:>10.3g}"
                         f"  {d.verdict}{'  (' + d.note + ')' if d.note else ''}")
        return "\n".join(lines)

    def tags(self) -> dict[str, str]:
        return {"rerun_verdict": self.verdict,
                "rerun_max_abs_diff.metrics": f"{self.largest('metric'):.6g}",
                "rerun_max_abs_diff.weights": f"{self.largest('array'):.6g}",
                "rerun_tolerance": f"rtol={self.rtol:g},atol={self.atol:g}"}

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "rerun": self.rerun, "verdict": self.verdict,
                "rtol": self.rtol, "atol": self.atol,
                "items": [vars(d) for d in self.items]}


def compare_values(kind: str, name: str, a: Any, b: Any, rtol: float, atol: float) -> Difference:
    """Identical means the same dtype, shape and bytes (NaN where NaN); numbers within
    |a - b| <= atol + rtol |a| everywhere are within tolerance; anything else differs."""
    if a is None or b is None:
        return Difference(kind, name, DIFFERENT, note="only in the " +
                          ("rerun" if a is None else "original"))
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return Difference(kind, name, DIFFERENT, note=f"shape {x.shape} vs {y.shape}")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        same = x.dtype.kind == y.dtype.kind and bool(np.array_equal(x, y))
        return Difference(kind, name, IDENTICAL if same else DIFFERENT, 0.0 if same else math.nan,
                          0.0 if same else math.nan, "" if same else f"{x!s} vs {y!s}")
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    both_nan = np.isnan(xf) & np.isnan(yf)
    diff = np.where(both_nan, 0.0, np.abs(xf - yf))
    max_abs = float(np.max(diff, initial=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(xf))
    max_rel = float(np.max(rel, initial=0.0))
    if x.dtype == y.dtype and x.tobytes() == y.tobytes():
        return Difference(kind, name, IDENTICAL, max_abs, max_rel)
    note = "" if x.dtype == y.dtype else f"dtype {x.dtype} vs {y.dtype}"
    close = bool(np.allclose(xf, yf, rtol=rtol, atol=atol, equal_nan=True))
    return Difference(kind, name, WITHIN if close else DIFFERENT, max_abs, max_rel, note)


def compare(original: str, rerun: str, metrics: tuple[Mapping[str, float], Mapping[str, float]],
            arrays: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
            rtol: float = 1e-6, atol: float = 1e-9) -> Comparison:
    """Every final metric and every array (weights, biases, scalers, names) of two runs."""
    result = Comparison(original, rerun, rtol, atol)
    for kind, (before, after) in (("metric", metrics), ("array", arrays)):
        for name in sorted(set(before) | set(after), key=_natural):
            result.items.append(compare_values(kind, name, before.get(name), after.get(name),
                                               rtol, atol))
    return result


def _natural(name: str) -> tuple[str, int]:
    """W2 before W10."""
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return head, int(tail) if tail else -1


# ---------------------------------------------------------------- MLflow lookups


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
