"""The optimisers against torch.optim: same start, same batches, 20 steps in float64.

`torch_optim_fixture.npz` holds what torch.optim (single-tensor, `foreach=False`) did
(`make_torch_fixture.py` regenerates it), so the check runs in CI without torch; with the
`torch` extra installed, the same comparison also runs against torch itself. Bit equality is
not possible from numpy: torch's CPU kernels use fused multiply-adds and a float64 `sqrt` that
is not always correctly rounded. Agreement is to 1e-14 relative (max |Δ| / max |p|); measured
1.2e-16 to 3.2e-16. The old Adam (ε on the uncorrected √v, as scikit-learn) was 1.6e-6 away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backprop_lab.nn.network import Network, Workspace
from backprop_lab.nn.optim import make_optimizer

FIXTURE = Path(__file__).with_name("torch_optim_fixture.npz")
CASES = {  # case: (our optimiser, lr, weight decay, beta1, beta2, eps)
    "sgd": ("sgd", 0.05, 0.0, 0.9, 0.999, 1e-8),
    "momentum": ("momentum", 0.05, 0.0, 0.9, 0.999, 1e-8),
    "adam": ("adam", 0.01, 0.0, 0.9, 0.999, 1e-8),
    "adam_wd": ("adam", 0.01, 0.01, 0.9, 0.999, 1e-8),
    "adamw": ("adamw", 0.01, 0.01, 0.9, 0.999, 1e-8),
    "adam_eps": ("adam", 0.01, 0.0, 0.8, 0.99, 1e-3),
}
TOLERANCE = 1e-14


def ours(ref: dict[str, np.ndarray], case: str) -> tuple[Network, list[float]]:
    name, lr, wd, beta1, beta2, eps = CASES[case]
    net = Network([ref[f"init_W{l}"].copy() for l in range(3)],
                  [ref[f"init_b{l}"].copy() for l in range(3)], "tanh", "linear")
    opt = make_optimizer(name, lr, 0.9, wd, beta1, beta2, eps)
    costs = []
    for idx in ref["batches"]:
        ws = Workspace.for_network(net, len(idx))
        costs.append(net.backprop(ref["X"][idx], ref["y"][idx], ws))
        opt.step(net.parameters, ws.grads)
    return net, costs


def relative(net: Network, expected: list[np.ndarray]) -> float:
    diff = max(float(np.abs(p - q).max()) for p, q in zip(net.parameters, expected))
    return diff / max(float(np.abs(q).max()) for q in expected)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", CASES)
def test_twenty_steps_agree_with_torch_optim(ref, case) -> None:
    net, costs = ours(ref, case)
    expected = [ref[f"{case}_{p}{l}"] for l in range(3) for p in ("W", "b")]
    assert relative(net, expected) <= TOLERANCE
    np.testing.assert_allclose(costs, ref[f"{case}_costs"], rtol=1e-13)
    assert relative(Network([ref[f"init_W{l}"] for l in range(3)],
                            [ref[f"init_b{l}"] for l in range(3)], "tanh"), expected) > 1e-3


def test_the_old_epsilon_placement_would_fail(ref) -> None:
    """ε on the uncorrected √v (scikit-learn's form) lands ~1e-6 away: the check can fail."""
    net = Network([ref[f"init_W{l}"].copy() for l in range(3)],
                  [ref[f"init_b{l}"].copy() for l in range(3)], "tanh", "linear")
    m = [np.zeros_like(p) for p in net.parameters]
    v = [np.zeros_like(p) for p in net.parameters]
    for t, idx in enumerate(ref["batches"], start=1):
        ws = Workspace.for_network(net, len(idx))
        net.backprop(ref["X"][idx], ref["y"][idx], ws)
        lr_t = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        for p, g, mp, vp in zip(net.parameters, ws.grads, m, v):
            mp[:] = 0.9 * mp + 0.1 * g
            vp[:] = 0.999 * vp + 0.001 * g * g
            p -= lr_t * mp / (np.sqrt(vp) + 1e-8)
    expected = [ref[f"adam_{p}{l}"] for l in range(3) for p in ("W", "b")]
    assert relative(net, expected) > 1e-9


def test_against_torch_itself(ref) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for case, (name, lr, wd, beta1, beta2, eps) in CASES.items():
        Ws = [torch.tensor(ref[f"init_W{l}"], requires_grad=True) for l in range(3)]
        bs = [torch.tensor(ref[f"init_b{l}"], requires_grad=True) for l in range(3)]
        groups = [{"params": Ws, "weight_decay": wd}, {"params": bs, "weight_decay": 0.0}]
        if name == "sgd":
            opt = torch.optim.SGD(groups, lr=lr, foreach=False)
        elif name == "momentum":
            opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, foreach=False)
        else:
            kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
            opt = kind(groups, lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)
        X, y = torch.tensor(ref["X"]), torch.tensor(ref["y"])
        for idx in ref["batches"]:
            opt.zero_grad()
            a = X[idx]
            for l in range(3):
                a = a @ Ws[l].T + bs[l]
                a = torch.tanh(a) if l < 2 else a
            (0.5 * ((a - y[idx]) ** 2).sum() / len(idx)).backward()
            opt.step()
        net, _ = ours(ref, case)
        expected = [t.detach().numpy() for W, b in zip(Ws, bs) for t in (W, b)]
        assert relative(net, expected) <= TOLERANCE, case
