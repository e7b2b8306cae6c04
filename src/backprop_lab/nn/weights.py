"""Weights files: a network as `.npz` with arrays W0, b0, W1, b1, ... plus its activation names
and dtype, read back without pickle so a file from anywhere cannot run code. An ensemble of N
networks stores each member's arrays under a prefix (m0.W0, m0.b0, ..., m1.W0, ...) and
`ensemble_size`; a single network's file is the same as it always was.

Extra arrays (for example a fitted scaler, see `normalize.Scaler.to_arrays`) may share the file;
`load_network` ignores them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from backprop_lab.errors import WeightsError
from backprop_lab.nn.ensemble import Ensemble, Model
from backprop_lab.nn.network import Network

META_KEYS = ("activation", "output_activation", "dtype")


def network_arrays(net: Network) -> dict[str, np.ndarray]:
    """The arrays that describe `net`: W{l}, b{l}, and the names as 0-d string arrays."""
    arrays: dict[str, np.ndarray] = {}
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{l}"], arrays[f"b{l}"] = W, b
    arrays["activation"] = np.array(net.activation)
    arrays["output_activation"] = np.array(net.output_activation)
    arrays["dtype"] = np.array(str(net.dtype))
    return arrays


def model_arrays(model: Model) -> dict[str, np.ndarray]:
    """A network's arrays, or every member's under its `m{k}.` prefix plus `ensemble_size`."""
    if isinstance(model, Network):
        return network_arrays(model)
    arrays = {key: value for key, value in network_arrays(model.members[0]).items()
              if key in META_KEYS}
    arrays["ensemble_size"] = np.array(len(model.members))
    for k, net in enumerate(model.members):
        arrays.update({f"m{k}.{key}": value for key, value in network_arrays(net).items()
                       if key not in META_KEYS})
    return arrays


def save_network(
    net: Model, path: str | Path, extras: Mapping[str, np.ndarray] | None = None
) -> Path:
    """Write `net` (a network or an ensemble, and any `extras`) to `path` as an uncompressed
    .npz; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:  # a file handle keeps numpy from appending a second ".npz"
        arrays: dict[str, Any] = {**model_arrays(net), **dict(extras or {})}
        np.savez(fh, **arrays)
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array in a weights file, or a ValueError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if not zipfile.is_zipfile(path):  # numpy's own message would suggest unsafe loading
        raise WeightsError(f"{path}: not a readable .npz weights file (it is not an .npz "
                           "archive, the zip of arrays the pipeline saves as model.npz)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsError(f"{path}: not a readable .npz weights file ({err})") from err


def network_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "weights") -> Network:
    """Rebuild a Network, checking that every W{l}/b{l} exists and that the shapes chain."""
    missing = [key for key in ("W0", "b0", *META_KEYS) if key not in arrays]
    if missing:
        raise WeightsError(f"{source}: missing arrays {missing}")
    n_layers = 0
    while f"W{n_layers}" in arrays:
        n_layers += 1
    unpaired = [f"b{l}" for l in range(n_layers) if f"b{l}" not in arrays]
    if unpaired or f"b{n_layers}" in arrays:
        missing_or_extra = unpaired or [f"W{n_layers}"]
        raise WeightsError(f"{source}: every W{{l}} needs a b{{l}}; missing {missing_or_extra}, "
                         f"found {sorted(arrays)}")
    dtype = str(arrays["dtype"])
    weights = [np.asarray(arrays[f"W{l}"]) for l in range(n_layers)]
    biases = [np.asarray(arrays[f"b{l}"]) for l in range(n_layers)]
    for name, arr in [(f"W{l}", W) for l, W in enumerate(weights)] + [
        (f"b{l}", b) for l, b in enumerate(biases)
    ]:
        if str(arr.dtype) != dtype:
            raise WeightsError(f"{source}: {name} has dtype {arr.dtype}, the file says {dtype}")
    try:
        return Network(weights, biases, str(arrays["activation"]),
                       str(arrays["output_activation"]))
    except ValueError as err:
        raise WeightsError(f"{source}: {err}") from err


def model_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "weights") -> Model:
    """A Network, or an Ensemble when the arrays hold `ensemble_size` members."""
    if "ensemble_size" not in arrays:
        return network_from_arrays(arrays, source)
    n = int(arrays["ensemble_size"])
    meta = {key: arrays[key] for key in META_KEYS if key in arrays}
    nets = []
    for k in range(n):
        prefix = f"m{k}."
        own = {key.removeprefix(prefix): v for key, v in arrays.items() if key.startswith(prefix)}
        nets.append(network_from_arrays({**own, **meta}, f"{source} (ensemble member {k})"))
    try:
        return Ensemble(nets)
    except ValueError as err:
        raise WeightsError(f"{source}: {err}") from err


def load_network(path: str | Path, activation: str | None = None,
                 output_activation: str | None = None, dtype: str | None = None) -> Model:
    """Read a network or an ensemble saved by `save_network`.

    Given the activations and dtype a config asks for, the config is the source of truth: a
    bare file (W0, b0, W1, b1, ... only, e.g. written by another tool) takes them, cast to
    `dtype`; a file that records other values is refused, naming both."""
    arrays = load_arrays(path)
    wanted = {"activation": activation, "output_activation": output_activation, "dtype": dtype}
    for key, want in wanted.items():
        if want is None:
            continue
        if key in arrays and str(arrays[key]) != want:
            raise WeightsError(f"model.init_from: {path} was saved with {key} "
                               f"{str(arrays[key])!r}, the config says model.{key}={want}: "
                               f"set model.{key}={arrays[key]} or use another file")
        if key not in arrays:
            arrays[key] = np.array(want)
            if key == "dtype":
                arrays = {k: v.astype(want) if _is_parameter(k) else v for k, v in arrays.items()}
    return model_from_arrays(arrays, str(path))


def _is_parameter(key: str) -> bool:
    """W{l} and b{l}, plain or under an ensemble member's `m{k}.` prefix."""
    name = key.rsplit(".", 1)[-1]
    return name[:1] in ("W", "b") and name[1:].isdigit()

