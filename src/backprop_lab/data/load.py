"""Loading, validating and fingerprinting tabular regression data.

Everything is checked at load time so that a bad file fails loudly with the file, column and line
of the first bad cell, instead of surfacing later as NaN losses. No Hydra or MLflow here: the
pipeline passes plain values in, which keeps this module testable on its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backprop_lab.errors import DataError
from backprop_lab.paths import BOSTON_CSV

DATASETS = ("boston", "diabetes", "friedman1", "csv")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded table as float64 arrays; X and y are made read-only so the fingerprint stays true.

    eq=False: arrays make field-wise ``==`` ambiguous; compare ``fingerprint`` instead.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    source: str
    fingerprint: str
    feature_dtypes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.y.ndim != 2 or len(self.X) != len(self.y):
            raise DataError(
                f"{self.source}: X {self.X.shape} and y {self.y.shape} must be 2-D with equal rows"
            )
        if self.X.shape[1] != len(self.feature_names) or self.y.shape[1] != len(self.target_names):
            raise DataError(f"{self.source}: column names do not match the array widths")

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


def fingerprint(
    X: np.ndarray, y: np.ndarray, feature_names: list[str], target_names: list[str]
) -> str:
    """sha256 of names, shapes and little-endian float64 bytes: same data, same id anywhere."""
    xa = np.ascontiguousarray(X, dtype="<f8")
    ya = np.ascontiguousarray(y, dtype="<f8")
    header = {
        "features": list(feature_names),
        "targets": list(target_names),
        "X_shape": list(xa.shape),
        "y_shape": list(ya.shape),
    }
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode("utf-8"))
    h.update(xa.tobytes())
    h.update(ya.tobytes())
    return h.hexdigest()


def _make(
    X: Any, y: Any, feats: list[str], targets: list[str], src: str, dt: dict[str, str]
) -> Dataset:
    X = np.array(X, dtype=np.float64, order="C")
    y = np.array(y, dtype=np.float64, order="C").reshape(len(X), -1)
    X.flags.writeable = y.flags.writeable = False
    return Dataset(X, y, list(feats), list(targets), src, fingerprint(X, y, feats, targets), dt)


def _read(path: Path, skiprows: int) -> pd.DataFrame:
    """read_csv keeping blank lines as rows, so row i sits on file line skiprows + i + 2."""
    _check_file(path)
    try:
        df = pd.read_csv(path, skiprows=skiprows, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (nothing after skipping {skiprows} lines)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as CSV: {exc}") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    _check_header(path, skiprows)
    empty = df.isna().all(axis=1).to_numpy()
    n = len(df)
    while n and empty[n - 1]:  # trailing blank lines are not data
        n -= 1
    df = df.iloc[:n]
    if n == 0:
        raise DataError(f"{path}: no data rows (only a header) after skipping {skiprows} lines")
    return df


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a data file")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")


def _check_header(path: Path, skiprows: int) -> None:
    """Refuse repeated column names: pandas would rename a second `y` to `y.1` and train with it
    as a feature, a silent copy of the target when the name is the target's."""
    header = pd.read_csv(path, skiprows=skiprows, header=None, nrows=1, dtype=str).iloc[0]
    names = [str(n) for n in header.tolist()]
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(position)
    repeated = {name: at for name, at in seen.items() if len(at) > 1}
    if repeated:
        where = "; ".join(f"{name!r} at columns {', '.join(map(str, at))}"
                          for name, at in repeated.items())
        raise DataError(f"{path}: repeated column names ({where}): every column needs its own "
                        "name")


def _raw_cell(path: Path, skiprows: int, row: int, column: str) -> str:
    """The cell as written in the file (pandas would show 1e400 as inf)."""
    raw = pd.read_csv(path, skiprows=skiprows, skip_blank_lines=False, dtype=str,
                      keep_default_na=False)
    return str(raw[column].iloc[row])


def _numeric(df: pd.DataFrame, columns: list[str], path: Path, skiprows: int) -> np.ndarray:
    """Columns as float64; raise on the first (row-major) missing/non-numeric/infinite cell,
    quoting it as the file writes it."""
    conv = {c: pd.to_numeric(df[c], errors="coerce").astype(np.float64).to_numpy() for c in columns}
    bad = np.column_stack([~np.isfinite(conv[c]) for c in columns])
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = columns[col]
        raw = df[name].iloc[row]
        if pd.isna(raw):
            what = "missing value (empty cell or NA)"
        elif np.isinf(conv[name][row]):
            what = f"non-finite value {_raw_cell(path, skiprows, int(row), name)!r}"
        else:
            what = f"non-numeric value {_raw_cell(path, skiprows, int(row), name)!r}"
        line = skiprows + int(row) + 2
        raise DataError(f"{path}: column {name!r}, line {line} (data row {row + 1}): {what}")
    return np.column_stack([conv[c] for c in columns])


def load_csv(
    path: str | Path,
    target: str | list[str],
    features: list[str] | None = None,
    drop: list[str] | None = None,
    skiprows: int = 0,
) -> Dataset:
    """Load a numeric CSV; features default to every column not a target and not dropped."""
    p = Path(path)
    df = _read(p, skiprows)
    cols = [str(c) for c in df.columns]
    targets = [target] if isinstance(target, str) else list(target)
    drop = list(drop or [])
    if not targets:
        raise DataError(f"{p}: no target column given")
    for kind, names in (("target", targets), ("drop", drop), ("feature", features or [])):
        missing = [c for c in names if c not in cols]
        if missing:
            raise DataError(f"{p}: {kind} column(s) {missing} not found; available columns: "
                            f"{cols}{separator_hint(cols)}")
    if features is None:
        features = [c for c in cols if c not in targets and c not in drop]
    else:
        features = [c for c in features if c not in drop]
    leaked = [c for c in features if c in targets]
    if leaked:
        raise DataError(f"{p}: column(s) {leaked} are both feature and target")
    if not features:
        raise DataError(f"{p}: no feature columns left; available columns: {cols}")
    X = _numeric(df, features, p, skiprows)
    y = _numeric(df, targets, p, skiprows)
    dtypes = {c: str(df[c].dtype) for c in features}
    return _make(X, y, features, targets, str(p), dtypes)


def separator_hint(cols: list[str]) -> str:
    """When a file read as comma-separated has one column holding `;`, tabs or `|`, say so."""
    if len(cols) != 1:
        return ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if sep in cols[0]:
            return (f" (the file is separated by {name}, not commas: save it as comma-separated "
                    "CSV)")
    return ""


def load_boston(path: str | Path, drop_b: bool = False) -> Dataset:
    """Boston house prices, target MEDV; the counts line ("506,13") is checked against the data."""
    p = Path(path)
    _check_file(p)
    try:
        with p.open(encoding="utf-8") as fh:
            first = fh.readline().split(",")
        n_rows, n_feat = int(first[0]), int(first[1])
    except (ValueError, IndexError):  # UnicodeDecodeError is a ValueError
        raise DataError(f"{p}: line 1 should hold the counts 'n_samples,n_features'") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    ds = load_csv(p, target="MEDV", drop=["B"] if drop_b else None, skiprows=1)
    if ds.X.shape != (n_rows, n_feat - int(drop_b)):
        raise DataError(
            f"{p}: counts line says {n_rows} rows x {n_feat} features, read {ds.X.shape}"
        )
    return ds


def _diabetes() -> Dataset:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    names = [str(n) for n in bunch.feature_names]
    dtypes = dict.fromkeys(names, "float64")
    return _make(bunch.data, bunch.target, names, ["target"], "sklearn:diabetes", dtypes)


FRIEDMAN1 = {"n_samples": 500, "n_features": 10, "noise": 1.0, "random_state": 0}


def _friedman1() -> Dataset:
    """Friedman #1 (Friedman 1991; Breiman 1996): y = 10 sin(π x₁x₂) + 20 (x₃ − ½)² + 10 x₄ +
    5 x₅ + ε, ε ~ N(0, 1), x ~ U[0, 1]¹⁰ (x₆..x₁₀ are noise features); drawn by scikit-learn's
    `make_friedman1` with the fixed `FRIEDMAN1` arguments, so the same 500 rows every time."""
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(**FRIEDMAN1)
    names = [f"x{i + 1}" for i in range(X.shape[1])]
    return _make(X, y, names, ["y"], "sklearn:make_friedman1(n_samples=500, noise=1, "
                 "random_state=0)", dict.fromkeys(names, "float64"))


_SKLEARN: dict[str, Callable[[], Dataset]] = {"diabetes": _diabetes, "friedman1": _friedman1}


def load_sklearn(name: str) -> Dataset:
    """A dataset bundled with scikit-learn (no download), for runs that must not depend on files."""
    if name not in _SKLEARN:
        raise DataError(f"unknown sklearn dataset {name!r}; valid names: {sorted(_SKLEARN)}")
    return _SKLEARN[name]()


def load_dataset(
    name: str = "boston",
    path: str | Path | None = None,
    target: str | list[str] = "MEDV",
    features: list[str] | None = None,
    drop_b: bool = False,
) -> Dataset:
    """A dataset by name: `boston` (the shipped CSV, or `path`), `diabetes` (bundled with
    scikit-learn), `friedman1` (scikit-learn's make_friedman1, 500 rows, seeded) or `csv` (the
    file at `path`, with `target` and optionally `features`)."""
    if name == "boston":
        return load_boston(path or BOSTON_CSV, drop_b=drop_b)
    if name == "csv":
        if not path:
            raise DataError("data.path: set it to the CSV file for data=csv")
        return load_csv(path, target, features)
    return load_sklearn(name)
