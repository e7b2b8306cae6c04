from pathlib import Path

import numpy as np
import pytest

from backprop_lab.data.scaling import SCALERS, Scaler


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(loc=[5.0, -300.0, 0.01], scale=[2.0, 50.0, 0.001], size=(200, 3))


def test_standard_mean0_std1(data: np.ndarray) -> None:
    s = Scaler.fit("standard", data)
    z = s.transform(data)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.shift, data.mean(axis=0))
    np.testing.assert_allclose(s.scale, data.std(axis=0))


@pytest.mark.parametrize("kind", SCALERS)
def test_inverse_round_trip(data: np.ndarray, kind: str) -> None:
    s = Scaler.fit(kind, data)
    back = s.inverse_transform(s.transform(data))
    np.testing.assert_allclose(back, data, rtol=1e-12, atol=1e-12)


def test_minmax_in_unit_interval(data: np.ndarray) -> None:
    s = Scaler.fit("minmax", data)
    z = s.transform(data)
    assert z.min() >= 0.0 and z.max() <= 1.0
    np.testing.assert_allclose(z.min(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(z.max(axis=0), 1.0, rtol=1e-15)


def test_none_is_identity(data: np.ndarray) -> None:
    s = Scaler.fit("none", data)
    np.testing.assert_array_equal(s.transform(data), data)
    np.testing.assert_array_equal(s.shift, np.zeros(3))
    np.testing.assert_array_equal(s.scale, np.ones(3))


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_constant_column_is_finite(kind: str) -> None:
    # 0.1 repeated gives np.std ~1e-17 rather than exactly 0; it must still be treated as constant
    x = np.column_stack([np.full(7, 0.1), np.arange(7.0), np.zeros(7)])
    s = Scaler.fit(kind, x)
    z = s.transform(x)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(s.scale[[0, 2]], [1.0, 1.0])
    np.testing.assert_allclose(z[:, 0], 0.0, atol=1e-15)
    np.testing.assert_allclose(s.inverse_transform(z), x, atol=1e-15)


def test_save_load_round_trip(tmp_path: Path, data: np.ndarray) -> None:
    xs = Scaler.fit("standard", data)
    ys = Scaler.fit("minmax", data[:, :1])
    path = tmp_path / "scalers.npz"
    np.savez(path, **xs.to_arrays("x_"), **ys.to_arrays("y_"))
    with np.load(path, allow_pickle=False) as f:
        assert f["x_kind"].dtype.kind == "U" and f["x_kind"].shape == ()
        xs2 = Scaler.from_arrays(f, "x_")
        ys2 = Scaler.from_arrays(f, "y_")
    assert xs2 == xs and ys2 == ys and xs2 != ys2
    assert xs2.kind == "standard" and ys2.kind == "minmax"
    np.testing.assert_array_equal(xs2.transform(data), xs.transform(data))


def test_float32_preserved(data: np.ndarray) -> None:
    s = Scaler.fit("standard", data)
    x32 = data.astype(np.float32)
    z = s.transform(x32)
    assert z.dtype == np.float32
    assert s.inverse_transform(z).dtype == np.float32
    np.testing.assert_allclose(z, s.transform(data), rtol=1e-5, atol=1e-5)
    assert s.transform(data).dtype == np.float64
    assert s.transform(np.ones((2, 3), dtype=np.int64)).dtype == np.float64


def test_errors(data: np.ndarray) -> None:
    with pytest.raises(ValueError, match="standard.*minmax.*none"):
        Scaler.fit("robust", data)
    s = Scaler.fit("standard", data)
    with pytest.raises(ValueError, match="3 columns"):
        s.transform(data[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        Scaler.fit("standard", np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        Scaler.fit("standard", np.zeros((0, 3)))
    arrays = s.to_arrays("x_")
    with pytest.raises(ValueError, match="x_scale"):
        Scaler.from_arrays({k: v for k, v in arrays.items() if k != "x_scale"}, "x_")
    with pytest.raises(ValueError, match="valid kinds"):
        Scaler.from_arrays({**arrays, "x_kind": np.array("robust")}, "x_")
