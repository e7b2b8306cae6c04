"""A sweep's result on a terminal: one table that fits 100 columns, the jobs ranked with their
verdicts (the words of the parent's description), then the best run's and the parent's links
once. The columns that do not fit stay in the `jobs.csv` that `compare` writes.

Numbers are rounded to what they can tell: scores to 4 significant digits, intervals, ratios
and p-values to 2.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import Any

import pandas as pd

WIDTH = 100
NAME = 30  # the widest job name shown; longer ones are cut with "…"


def _num(value: Any, digits: int = 4) -> str:
    """`digits` significant digits, without exponents below 1e6 (124.4 -> "120" at 2)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    x = float(value)
    if x == 0 or not math.isfinite(x) or not 1e-4 <= abs(x) < 1e6:
        return f"{x:.{digits}g}"
    places = digits - 1 - math.floor(math.log10(abs(x)))
    text = f"{round(x, places):.{max(places, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def verdict_text(job: Mapping[Any, Any]) -> str:
    """"worse !" for an unstable job; "undecided (+3 rep.)" with the repeats that decide it."""
    tier = str(job.get("tier") or "")
    if job.get("unstable"):
        tier += " !"
    repeats = job.get("repeats_to_decide")
    if tier.startswith("undecided") and isinstance(repeats, float) and not math.isnan(repeats):
        tier += " (never)" if math.isinf(repeats) else f" (+{int(repeats)} rep.)"
    return tier


def table_text(table: pd.DataFrame, metric: str) -> str:
    """The ranked jobs as fixed-width text (finished first, best first, as `table` is)."""
    if table.empty:
        return "(no jobs)"
    centre = "centre" in table and table["centre"].notna().any()
    value = "centre" if centre else metric
    rows = [["#", "job", f"{metric}{' centre' if centre else ''}", "95% CI", "× best",
             "p worse", "verdict"]]
    for rank, job in enumerate(table.to_dict("records"), start=1):
        low, high = job.get("ci_low", math.nan), job.get("ci_high", math.nan)
        ci = "" if low is None or math.isnan(low) else f"{_num(low, 2)}–{_num(high, 2)}"
        ratio = job.get("ratio_vs_best", math.nan)
        status = str(job.get("status", "FINISHED"))
        rows.append([str(rank), _cut(str(job.get("run_name", "")), NAME),
                     _num(job.get(value)) if status == "FINISHED" else status.lower(),
                     ci, "" if ratio is None or math.isnan(ratio) else f"{ratio:.2g}×",
                     _num(job.get("p_vs_best"), 2),
                     verdict_text(job) if "tier" in job else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (1, 6) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    return "\n".join(_cut(line, WIDTH) for line in lines)


def end_text(table: pd.DataFrame, metric: str, links: dict[str, str], notes: list[str]) -> str:
    """The table, a legend line, the notes (verdict test, racing) and each link once."""
    parts = [table_text(table, metric)]
    if "unstable" in table and table["unstable"].fillna("").astype(bool).any():
        parts.append("! unstable: some cells blew up (more than 10x the job's median error)")
    parts += [textwrap.fill(note, WIDTH, subsequent_indent="    ") if len(note) > WIDTH
              else note for line in notes for note in line.splitlines()]
    parts += [f"{name}: {url}" for name, url in links.items()]
    return "\n".join(parts)
