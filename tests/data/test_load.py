from pathlib import Path

import numpy as np
import pytest

from backprop_lab.data.load import (
    DataError,
    Dataset,
    fingerprint,
    load_boston,
    load_csv,
    load_sklearn,
)
from backprop_lab.data.splits import kfold, split
from backprop_lab.paths import DATA_DIR

DATA = DATA_DIR
BOSTON = DATA / "boston_house_prices.csv"
BOSTON_FEATURES = [
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
]


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- Boston -------------------------------------------------------------------------------------


def test_boston_shape_first_row_and_target() -> None:
    ds = load_boston(BOSTON)
    assert ds.X.shape == (506, 13) and ds.y.shape == (506, 1)
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.float64
    assert ds.feature_names == BOSTON_FEATURES
    assert ds.target_names == ["MEDV"]
    np.testing.assert_array_equal(
        ds.X[0], [0.00632, 18, 2.31, 0, 0.538, 6.575, 65.2, 4.09, 1, 296, 15.3, 396.9, 4.98]
    )
    assert ds.y[0, 0] == 24.0 and ds.y[1, 0] == 21.6 and ds.y[-1, 0] == 11.9
    assert ds.y.sum() == pytest.approx(11401.6)
    assert ds.feature_dtypes["CHAS"] == "int64" and ds.feature_dtypes["TAX"] == "int64"
    assert ds.feature_dtypes["RM"] == "float64" and set(ds.feature_dtypes) == set(BOSTON_FEATURES)
    assert ds.source == str(BOSTON)
    assert len(ds.fingerprint) == 64


def test_boston_file_checksum() -> None:
    import hashlib

    digest = hashlib.sha256(BOSTON.read_bytes()).hexdigest()
    assert digest == "d98212636026544fc9b9c0f372e5f819872e6fa6fa757ab025efdda22180f2d6"


def test_boston_drop_b() -> None:
    full = load_boston(BOSTON)
    ds = load_boston(BOSTON, drop_b=True)
    assert ds.X.shape == (506, 12)
    assert "B" not in ds.feature_names and "B" not in ds.feature_dtypes
    b = BOSTON_FEATURES.index("B")
    np.testing.assert_array_equal(ds.X, np.delete(full.X, b, axis=1))
    np.testing.assert_array_equal(ds.y, full.y)
    assert ds.fingerprint != full.fingerprint


def test_boston_truncated_file_fails_counts_check(tmp_path: Path) -> None:
    lines = BOSTON.read_text().splitlines(keepends=True)
    p = write(tmp_path, "".join(lines[:12]), "short.csv")
    with pytest.raises(DataError, match=r"short\.csv.*506 rows"):
        load_boston(p)


def test_dataset_arrays_are_read_only() -> None:
    ds = load_boston(BOSTON)
    with pytest.raises(ValueError):
        ds.X[0, 0] = 1.0


# --- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_stable_and_sensitive() -> None:
    a, b = load_boston(BOSTON), load_boston(BOSTON)
    assert a.fingerprint == b.fingerprint
    assert fingerprint(a.X, a.y, a.feature_names, a.target_names) == a.fingerprint
    X = a.X.copy()
    X[100, 5] += 1e-9
    assert fingerprint(X, a.y, a.feature_names, a.target_names) != a.fingerprint
    y = a.y.copy()
    y[0, 0] = 24.1
    assert fingerprint(a.X, y, a.feature_names, a.target_names) != a.fingerprint
    renamed = ["x" + n for n in a.feature_names]
    assert fingerprint(a.X, a.y, renamed, a.target_names) != a.fingerprint
    # dtype/layout of the input does not matter, only the float64 values
    assert (
        fingerprint(np.asfortranarray(a.X), a.y, a.feature_names, a.target_names) == a.fingerprint
    )


def test_fingerprint_includes_shape() -> None:
    X = np.arange(12.0)
    y = np.zeros((1, 1))
    assert fingerprint(X.reshape(3, 4), y, [], []) != fingerprint(X.reshape(4, 3), y, [], [])


# --- sklearn ------------------------------------------------------------------------------------


def test_diabetes() -> None:
    ds = load_sklearn("diabetes")
    assert ds.X.shape == (442, 10) and ds.y.shape == (442, 1)
    assert ds.feature_names[:3] == ["age", "sex", "bmi"]
    assert ds.source == "sklearn:diabetes"
    assert ds.y[0, 0] == 151.0
    assert set(ds.feature_dtypes.values()) == {"float64"}
    assert load_sklearn("diabetes").fingerprint == ds.fingerprint


def test_unknown_sklearn_name_lists_valid() -> None:
    with pytest.raises(DataError, match="diabetes"):
        load_sklearn("iris2")


# --- load_csv -----------------------------------------------------------------------------------

GOOD = "a,b,c,t\n1,2.5,3,10\n4,5.5,6,20\n7,8.5,9,30\n"


def test_load_csv_good(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, GOOD), target="t")
    assert ds.feature_names == ["a", "b", "c"] and ds.target_names == ["t"]
    np.testing.assert_array_equal(ds.X, [[1, 2.5, 3], [4, 5.5, 6], [7, 8.5, 9]])
    np.testing.assert_array_equal(ds.y, [[10], [20], [30]])
    assert ds.feature_dtypes == {"a": "int64", "b": "float64", "c": "int64"}


def test_load_csv_features_subset_drop_and_multi_target(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    ds = load_csv(p, target="t", features=["c", "a"])
    assert ds.feature_names == ["c", "a"]
    np.testing.assert_array_equal(ds.X[:, 0], [3, 6, 9])
    ds = load_csv(p, target="t", drop=["b"])
    assert ds.feature_names == ["a", "c"]
    ds = load_csv(p, target=["c", "t"])
    assert ds.y.shape == (3, 2) and ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.y[:, 0], [3, 6, 9])


def test_load_csv_skiprows_and_trailing_blank_lines(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "3,3\n" + GOOD + "\n\n"), target="t", skiprows=1)
    assert ds.X.shape == (3, 3)


def test_bad_column_in_unused_column_is_ignored(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "a,note,t\n1,hello,2\n3,,4\n"), target="t", drop=["note"])
    assert ds.X.shape == (2, 1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        load_csv(tmp_path / "nope.csv", target="t")
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        load_boston(tmp_path / "nope.csv")


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match=r"empty\.csv.*empty file"):
        load_csv(write(tmp_path, text, "empty.csv"), target="t")


def test_only_header(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"header\.csv.*no data rows"):
        load_csv(write(tmp_path, "a,b,t\n", "header.csv"), target="t")


def test_missing_target_lists_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_csv(write(tmp_path, GOOD, "good.csv"), target="MEDV")
    msg = str(e.value)
    assert "good.csv" in msg and "MEDV" in msg and "['a', 'b', 'c', 't']" in msg


def test_missing_feature_and_drop(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD, "good.csv")
    with pytest.raises(DataError, match=r"good\.csv.*feature.*'zz'"):
        load_csv(p, target="t", features=["a", "zz"])
    with pytest.raises(DataError, match=r"good\.csv.*drop.*'B'"):
        load_csv(p, target="t", drop=["B"])
    with pytest.raises(DataError, match="both feature and target"):
        load_csv(p, target="t", features=["a", "t"])


def test_non_numeric_cell(tmp_path: Path) -> None:
    # line 1 header, data rows on lines 2..; "abc" sits on line 4 (data row 3), column RM
    text = "CRIM,RM,MEDV\n1,6.5,24\n2,6.1,21\n3,abc,30\n4,xyz,31\n"
    with pytest.raises(DataError) as e:
        load_csv(write(tmp_path, text, "bad.csv"), target="MEDV")
    msg = str(e.value)
    assert "bad.csv" in msg and "'RM'" in msg and "line 4" in msg and "data row 3" in msg
    assert "'abc'" in msg


def test_non_numeric_line_number_counts_skipped_rows(tmp_path: Path) -> None:
    text = "2,2\nCRIM,RM,MEDV\n1,6.5,24\n2,oops,21\n"
    with pytest.raises(DataError, match=r"bad\.csv: column 'RM', line 4 \(data row 2\).*'oops'"):
        load_csv(write(tmp_path, text, "bad.csv"), target="MEDV", skiprows=1)


def test_non_numeric_target(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'MEDV', line 3 .*'n/a!'"):
        load_csv(write(tmp_path, "RM,MEDV\n6,24\n7,n/a!\n"), target="MEDV")


@pytest.mark.parametrize("cell", ["", "NaN", "NA"])
def test_missing_cell(tmp_path: Path, cell: str) -> None:
    text = f"CRIM,RM,MEDV\n1,6.5,24\n2,{cell},21\n3,6.2,30\n"
    with pytest.raises(DataError) as e:
        load_csv(write(tmp_path, text, "nan.csv"), target="MEDV")
    msg = str(e.value)
    assert "nan.csv" in msg and "'RM'" in msg and "line 3" in msg and "missing value" in msg


def test_first_bad_cell_is_reported_row_major(tmp_path: Path) -> None:
    text = "a,b,t\n1,2,3\n4,,6\nx,8,9\n"
    with pytest.raises(DataError, match=r"column 'b', line 3"):
        load_csv(write(tmp_path, text), target="t")


def test_blank_line_inside_data_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'a', line 3 .*missing"):
        load_csv(write(tmp_path, "a,t\n1,2\n\n3,4\n"), target="t")


def test_infinite_value(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'a', line 2 .*non-finite"):
        load_csv(write(tmp_path, "a,t\ninf,2\n"), target="t")


def test_ragged_row_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"rag\.csv"):
        load_csv(write(tmp_path, "a,t\n1,2\n3,4,5,6\n", "rag.csv"), target="t")


# --- split / kfold ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boston() -> Dataset:
    return load_boston(BOSTON)


def test_split_sizes_disjoint_and_consistent(boston: Dataset) -> None:
    s = split(boston, 0.15, 0.2, np.random.default_rng(0))
    assert (len(s.test_idx), len(s.val_idx), len(s.train_idx)) == (101, 76, 329)
    all_idx = np.concatenate([s.train_idx, s.val_idx, s.test_idx])
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(506))
    np.testing.assert_array_equal(s.X_train, boston.X[s.train_idx])
    np.testing.assert_array_equal(s.y_val, boston.y[s.val_idx])
    np.testing.assert_array_equal(s.X_test, boston.X[s.test_idx])
    assert s.y_train.shape == (329, 1)


def test_split_deterministic_per_seed(boston: Dataset) -> None:
    a = split(boston, 0.1, 0.2, np.random.default_rng(42))
    b = split(boston, 0.1, 0.2, np.random.default_rng(42))
    c = split(boston, 0.1, 0.2, np.random.default_rng(43))
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    np.testing.assert_array_equal(a.test_idx, b.test_idx)
    assert not np.array_equal(a.test_idx, c.test_idx)
    np.testing.assert_array_equal(a.test_idx, np.random.default_rng(42).permutation(506)[:101])


def test_split_zero_fractions(boston: Dataset) -> None:
    s = split(boston, 0.0, 0.0, np.random.default_rng(0))
    assert s.X_train.shape == (506, 13)
    assert s.X_val.shape == (0, 13) and s.y_test.shape == (0, 1)


@pytest.mark.parametrize("val,test", [(-0.1, 0.2), (0.2, 1.0), (0.5, 0.5), (0.6, 0.5)])
def test_split_bad_fractions(boston: Dataset, val: float, test: float) -> None:
    with pytest.raises(DataError):
        split(boston, val, test, np.random.default_rng(0))


def test_split_no_train_rows_left(tmp_path: Path) -> None:
    ds = load_csv(write(tmp_path, "a,t\n1,2\n3,4\n"), target="t")
    with pytest.raises(DataError, match="no training rows"):
        split(ds, 0.3, 0.45, np.random.default_rng(0))  # round(0.6)=1 val, round(0.9)=1 test


def test_kfold_covers_each_index_once() -> None:
    folds = kfold(103, 5, seed=7)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(103))
    for tr, te in folds:
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 103
        assert len(te) in (20, 21)
    again = kfold(103, 5, seed=7)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = kfold(103, 5, seed=8)
    assert not np.array_equal(folds[0][1], other[0][1])


@pytest.mark.parametrize("k", [1, 11])
def test_kfold_bad_k(k: int) -> None:
    with pytest.raises(DataError):
        kfold(10, k, seed=0)


def test_friedman1_is_built_in_and_the_same_every_time() -> None:
    ds = load_sklearn("friedman1")
    assert ds.X.shape == (500, 10) and ds.y.shape == (500, 1) and ds.target_names == ["y"]
    assert ds.source.startswith("sklearn:make_friedman1")
    assert load_sklearn("friedman1").fingerprint == ds.fingerprint  # seeded: the same rows
    x = ds.X
    truth = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3]
             + 5 * x[:, 4])
    assert 0.8 < float(np.std(ds.y[:, 0] - truth)) < 1.2  # the noise is N(0, 1)

