"""Affine column scaling ``x' = (x - shift) / scale``, fitted on training data only.

Written here rather than taken from scikit-learn so the fitted state is two plain float arrays and a
kind string, which save to ``.npz`` and load back with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SCALERS = ("standard", "minmax", "none")


def _check_kind(kind: str) -> None:
    if kind not in SCALERS:
        raise ValueError(f"unknown scaler kind {kind!r}; valid kinds: {list(SCALERS)}")


@dataclass(eq=False)
class Scaler:
    """Per-column shift/scale; a constant column gets scale 1 so it maps to 0 instead of inf/NaN."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, kind: str, data: np.ndarray) -> Scaler:
        """standard: mean/std (population); minmax: min/(max-min); none: identity."""
        _check_kind(kind)
        x = np.asarray(data, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"Scaler.fit needs a non-empty 2-D array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("Scaler.fit got NaN or infinite values")
        lo, hi = x.min(axis=0), x.max(axis=0)
        constant = lo == hi  # exact test: np.std of a constant column can be ~1e-17, not 0
        if kind == "standard":
            shift, scale = x.mean(axis=0), x.std(axis=0)
        elif kind == "minmax":
            shift, scale = lo, hi - lo
        else:
            shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        scale = np.where(constant | (scale == 0), 1.0, scale)
        return cls(kind, np.asarray(shift, dtype=np.float64), np.asarray(scale, dtype=np.float64))

    def _dtype(self, data: np.ndarray) -> np.dtype:
        if data.shape[-1:] != self.shift.shape:
            raise ValueError(
                f"expected {self.shift.shape[0]} columns, got data of shape {data.shape}"
            )
        # float32 training stays float32; anything else (ints, float16) goes to float64
        return data.dtype if data.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def transform(self, data: np.ndarray) -> np.ndarray:
        """(data - shift) / scale in data's float dtype."""
        data = np.asarray(data)
        dt = self._dtype(data)
        x, shift, scale = data.astype(dt, copy=False), self.shift.astype(dt), self.scale.astype(dt)
        out: np.ndarray = (x - shift) / scale
        return out

    def inverse_transform(self, data: np.ndarray) -> np.ndarray:
        """data * scale + shift, e.g. to report predictions in the target's original units."""
        data = np.asarray(data)
        dt = self._dtype(data)
        x, shift, scale = data.astype(dt, copy=False), self.shift.astype(dt), self.scale.astype(dt)
        out: np.ndarray = x * scale + shift
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays for np.savez; kind is a 0-d unicode array so no pickle is needed."""
        return {
            f"{prefix}shift": self.shift.copy(),
            f"{prefix}scale": self.scale.copy(),
            f"{prefix}kind": np.array(self.kind),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Scaler:
        """Inverse of to_arrays; validates kind and shapes so a corrupt file fails here."""
        keys = [f"{prefix}shift", f"{prefix}scale", f"{prefix}kind"]
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise ValueError(f"scaler arrays missing keys {missing}")
        shift = np.asarray(arrays[keys[0]], dtype=np.float64)
        scale = np.asarray(arrays[keys[1]], dtype=np.float64)
        kind = str(np.asarray(arrays[keys[2]]).item())
        _check_kind(kind)
        if shift.ndim != 1 or shift.shape != scale.shape:
            raise ValueError(
                f"scaler shift {shift.shape} and scale {scale.shape} must be equal 1-D"
            )
        if not (np.isfinite(shift).all() and np.isfinite(scale).all() and (scale != 0).all()):
            raise ValueError("scaler shift/scale must be finite with non-zero scale")
        return cls(kind, shift, scale)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scaler):
            return NotImplemented
        return (
            self.kind == other.kind
            and np.array_equal(self.shift, other.shift)
            and np.array_equal(self.scale, other.scale)
        )
