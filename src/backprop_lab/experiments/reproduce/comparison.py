"""How a run and its rerun compare, and what differs between the environments they ran in.

`compare` sets the final metrics and the weight arrays of an original run and its rerun side by
side and gives a verdict: identical (bit for bit), within tolerance, or different.
`provenance_warnings` lists what changed since the run: commit, diff, packages, BLAS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop_lab.experiments.run.identity import sha256_text

IDENTICAL, WITHIN, DIFFERENT = "identical", "within tolerance", "different"
VERDICTS = (IDENTICAL, WITHIN, DIFFERENT)  # best to worst


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




