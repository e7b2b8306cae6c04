"""Tests of the weights file: round trip, extras, and clear errors for bad files."""

import zipfile

import numpy as np
import pytest

from backprop_lab.nn.network import Network
from backprop_lab.nn.weights import (
    load_arrays,
    load_network,
    network_arrays,
    network_from_arrays,
    save_network,
)


def make_net(sizes, dtype="float64", activation="tanh", output_activation="linear"):
    return Network.create(sizes, np.random.default_rng(0), activation, output_activation,
                          init="uniform", dtype=dtype)


def write_npz(path, arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [[4, 2], [4, 5, 3, 2]], ids=["0-hidden", "2-hidden"])
def test_roundtrip_identical_predictions(tmp_path, sizes, dtype):
    net = make_net(sizes, dtype, "sigmoid", "tanh")
    path = save_network(net, tmp_path / "sub" / "net.npz")  # creates the folder
    assert path == tmp_path / "sub" / "net.npz" and path.is_file()
    loaded = load_network(path)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.sizes == sizes
    assert (loaded.activation, loaded.output_activation) == ("sigmoid", "tanh")
    for a, b in zip(net.parameters, loaded.parameters):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(1).normal(size=(9, sizes[0]))
    out, out_loaded = net.predict(X), loaded.predict(X)
    assert out_loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, out_loaded)


def test_save_keeps_the_exact_file_name(tmp_path):
    net = make_net([3, 1])
    for name in ("weights", "w.bin", "w.npz"):
        path = save_network(net, tmp_path / name)
        assert path.name == name and path.is_file()
        np.testing.assert_array_equal(load_network(path).weights[0], net.weights[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin", "w.npz", "weights"]


def test_load_accepts_str_path(tmp_path):
    net = make_net([3, 2, 1])
    save_network(net, str(tmp_path / "n.npz"))
    assert load_network(str(tmp_path / "n.npz")).sizes == [3, 2, 1]


def test_extra_arrays_are_kept_and_ignored(tmp_path):
    net = make_net([4, 3, 1])
    extras = {"scaler_mean": np.arange(4.0), "scaler_scale": np.ones(4), "note": np.array("hi")}
    path = save_network(net, tmp_path / "net.npz", extras)
    arrays = load_arrays(path)
    np.testing.assert_array_equal(arrays["scaler_mean"], np.arange(4.0))
    assert str(arrays["note"]) == "hi"
    loaded = load_network(path)
    assert loaded.sizes == [4, 3, 1]
    X = np.random.default_rng(2).normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_network_arrays_contents():
    net = make_net([3, 2, 1], "float32", "relu", "sigmoid")
    arrays = network_arrays(net)
    assert set(arrays) == {"W0", "b0", "W1", "b1", "activation", "output_activation", "dtype"}
    assert str(arrays["activation"]) == "relu"
    assert str(arrays["output_activation"]) == "sigmoid"
    assert str(arrays["dtype"]) == "float32"


def test_file_holds_no_pickles(tmp_path):
    path = save_network(make_net([3, 2, 1]), tmp_path / "n.npz", {"extra": np.zeros(2)})
    with np.load(path, allow_pickle=False) as data:  # would raise on object arrays
        assert all(data[k].dtype != object for k in data.files)


def test_shapes_that_do_not_chain_name_array_and_shapes(tmp_path):
    arrays = network_arrays(make_net([4, 3, 2]))
    arrays["W1"] = np.zeros((2, 5))  # should have 3 columns
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError) as exc:
        load_network(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "W1" in msg and "(2, 5)" in msg
    assert "W0" in msg and "(3, 4)" in msg


def test_bias_of_wrong_shape_named(tmp_path):
    arrays = network_arrays(make_net([4, 3, 2]))
    arrays["b0"] = np.zeros(4)
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError) as exc:
        load_network(path)
    msg = str(exc.value)
    assert str(path) in msg and "b0" in msg and "(4,)" in msg and "(3, 4)" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(ValueError, match="not found") as exc:
        load_network(path)
    assert str(path) in str(exc.value)
    with pytest.raises(ValueError, match="not found"):
        load_network(tmp_path)  # a folder is not a weights file


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(0).bytes(1000),
        b"",
        b"PK\x03\x04" + np.random.default_rng(1).bytes(300),
        b"\x93NUMPY" + np.random.default_rng(2).bytes(300),
    ],
    ids=["random", "empty", "zip-magic", "npy-magic"],
)
def test_corrupted_file(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable") as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_truncated_file(tmp_path):
    path = save_network(make_net([4, 3, 2]), tmp_path / "net.npz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError) as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_bit_flip_in_array_data(tmp_path):
    path = save_network(make_net([4, 3, 2]), tmp_path / "net.npz")
    raw = bytearray(path.read_bytes())
    raw[150] ^= 0xFF  # inside W0's data: the zip checksum no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_npy_file_instead_of_npz(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="not a readable") as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_pickled_content_refused(tmp_path):
    path = tmp_path / "obj.npz"
    arrays = network_arrays(make_net([3, 1]))
    arrays["W0"] = np.array([[object()]], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as exc:
        load_network(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("drop", ["b1", "b0", "W0", "dtype", "activation"])
def test_file_missing_an_array(tmp_path, drop):
    arrays = network_arrays(make_net([4, 3, 2]))
    del arrays[drop]
    path = write_npz(tmp_path / "partial.npz", arrays)
    with pytest.raises(ValueError) as exc:
        load_network(path)
    msg = str(exc.value)
    assert str(path) in msg
    if drop != "b1":
        assert drop in msg
    else:
        assert "b{l}" in msg and "W1" in msg  # lists what it found


def test_extra_bias_without_weight(tmp_path):
    arrays = network_arrays(make_net([4, 3, 2]))
    arrays["b2"] = np.zeros(2)
    path = write_npz(tmp_path / "extra_b.npz", arrays)
    with pytest.raises(ValueError, match="needs a b") as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_dtype_metadata_disagreeing_with_arrays(tmp_path):
    arrays = network_arrays(make_net([4, 3, 2], "float64"))
    arrays["dtype"] = np.array("float32")
    path = write_npz(tmp_path / "dt.npz", arrays)
    with pytest.raises(ValueError, match="W0 has dtype float64") as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_unsupported_dtype_in_file(tmp_path):
    arrays = network_arrays(make_net([4, 2]))
    arrays = {**arrays, "W0": arrays["W0"].astype(np.float16),
              "b0": arrays["b0"].astype(np.float16), "dtype": np.array("float16")}
    path = write_npz(tmp_path / "f16.npz", arrays)
    with pytest.raises(ValueError, match="dtype") as exc:
        load_network(path)
    assert str(path) in str(exc.value)


def test_unknown_activation_in_file(tmp_path):
    arrays = network_arrays(make_net([4, 3, 2]))
    arrays["activation"] = np.array("swish")
    path = write_npz(tmp_path / "act.npz", arrays)
    with pytest.raises(ValueError, match="swish") as exc:
        load_network(path)
    assert str(path) in str(exc.value)
    assert "relu" in str(exc.value)  # lists the valid names


def test_network_from_arrays_names_source():
    arrays = network_arrays(make_net([4, 3, 2]))
    del arrays["b0"]
    with pytest.raises(ValueError, match="^my-source: missing arrays"):
        network_from_arrays(arrays, "my-source")


def test_zip_that_is_not_npz_members(tmp_path):
    """A valid zip holding no arrays at all: reads as a file missing W0/b0."""
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError) as exc:
        load_network(path)
    assert str(path) in str(exc.value)
