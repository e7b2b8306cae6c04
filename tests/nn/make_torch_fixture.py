"""Regenerate ``torch_optim_fixture.npz``: reference trajectories from torch.optim.

This script is NOT run in CI (torch is not a test dependency).  It records, in
float64, what PyTorch's single-tensor (``foreach=False``) optimisers do on a
small MLP, so that the numpy optimisers can be tested against torch.optim
without torch being installed.

Regenerate with (torch CPU build is enough)::

    python -m venv /tmp/torchfix/venv
    /tmp/torchfix/venv/bin/pip install numpy torch
    /tmp/torchfix/venv/bin/python tests/nn/make_torch_fixture.py

Setup
-----
* MLP, float64, layer sizes [13, 16, 16, 1], tanh hidden activation, linear
  output.  Weights ``W_l`` have shape (out, in), biases ``b_l`` shape (out,),
  forward ``z = a @ W.T + b`` (torch.nn.Linear layout).
* Cost ``C = 0.5 * sum((a - y)**2) / n`` (n = batch size, summed over outputs).
* Data: ``default_rng(0)``: X ~ N(0, 1) of shape (200, 13),
  ``y = X @ w_true + 0.1 * noise`` of shape (200, 1), with ``w_true`` (13, 1)
  and noise drawn from the same generator (in that order: X, w_true, noise).
* Initial weights: ``default_rng(1)``, per layer in order:
  ``W = normal((out, in)) * sqrt(1 / in)`` then ``b = uniform(-0.1, 0.1, out)``.
* Batches: ``default_rng(2)``, 20 steps, each ``choice(200, 32, replace=False)``
  (stored as ``batches``, shape (20, 32)).
* Each step: zero grads, forward on X[idx], cost, backward, optimiser.step().
  ``<case>_costs[k]`` is the cost at step k, evaluated BEFORE that step's update.

Keys
----
X, y, batches, init_W0, init_b0, init_W1, init_b1, init_W2, init_b2,
for each case in CASES: <case>_W0 ... <case>_b2 (weights after 20 steps) and
<case>_costs (20,), plus torch_version (0-d string array).

Weight decay (adam_wd, adamw) is applied to weight matrices only: two param
groups, weights with weight_decay=0.01, biases with weight_decay=0.
"""

import os

import numpy as np
import torch

SIZES = [13, 16, 16, 1]
N_SAMPLES = 200
N_STEPS = 20
BATCH = 32

# name -> (optimiser class, kwargs, weight_decay applied to weights only or None)
CASES = {
    "sgd": (torch.optim.SGD, dict(lr=0.05), None),
    "momentum": (torch.optim.SGD, dict(lr=0.05, momentum=0.9), None),
    "adam": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), None),
    "adam_wd": (torch.optim.Adam, dict(lr=0.01), 0.01),
    "adamw": (torch.optim.AdamW, dict(lr=0.01), 0.01),
    "adam_eps": (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3), None),
}


def make_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, SIZES[0]))
    w_true = rng.standard_normal((SIZES[0], SIZES[-1]))
    noise = rng.standard_normal((N_SAMPLES, SIZES[-1]))
    y = X @ w_true + 0.1 * noise
    return X, y


def make_init():
    rng = np.random.default_rng(1)
    Ws, bs = [], []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        Ws.append(rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_in))
        bs.append(rng.uniform(-0.1, 0.1, n_out))
    return Ws, bs


def make_batches():
    rng = np.random.default_rng(2)
    return np.stack(
        [rng.choice(N_SAMPLES, BATCH, replace=False) for _ in range(N_STEPS)]
    ).astype(np.int64)


def forward(Ws, bs, x):
    a = x
    last = len(Ws) - 1
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W.T + b
        a = z if i == last else torch.tanh(z)
    return a


def run_case(name, X, y, Ws0, bs0, batches):
    cls, kwargs, wd = CASES[name]
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in Ws0]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in bs0]
    if wd is None:
        groups = [{"params": Ws + bs}]
    else:
        groups = [
            {"params": Ws, "weight_decay": wd},
            {"params": bs, "weight_decay": 0.0},
        ]
    opt = cls(groups, foreach=False, **kwargs)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    costs = []
    for idx in batches:
        idx_t = torch.as_tensor(idx)
        xb, yb = Xt[idx_t], yt[idx_t]
        opt.zero_grad()
        a = forward(Ws, bs, xb)
        n = xb.shape[0]
        cost = 0.5 * torch.sum((a - yb) ** 2) / n
        cost.backward()
        opt.step()
        costs.append(cost.item())
    return (
        [W.detach().numpy().copy() for W in Ws],
        [b.detach().numpy().copy() for b in bs],
        np.array(costs, dtype=np.float64),
    )


def main(out_path=None):
    if out_path is None:
        out_path = os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "torch_optim_fixture.npz"
        )
    torch.set_default_dtype(torch.float64)
    X, y = make_data()
    Ws0, bs0 = make_init()
    batches = make_batches()
    arrays = {"X": X, "y": y, "batches": batches,
              "torch_version": np.array(torch.__version__)}
    for i, (W, b) in enumerate(zip(Ws0, bs0)):
        arrays[f"init_W{i}"] = W
        arrays[f"init_b{i}"] = b
    for name in CASES:
        Ws, bs, costs = run_case(name, X, y, Ws0, bs0, batches)
        for i, (W, b) in enumerate(zip(Ws, bs)):
            arrays[f"{name}_W{i}"] = W
            arrays[f"{name}_b{i}"] = b
        arrays[f"{name}_costs"] = costs
    np.savez(out_path, **arrays)
    print(f"wrote {out_path} (torch {torch.__version__})")
    return out_path


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else None)
