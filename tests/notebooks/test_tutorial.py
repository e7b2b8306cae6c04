"""The tutorial notebook runs top to bottom in a fresh kernel of this interpreter, in a temporary
folder, and shows its figures and tables; the copy in the repository is saved without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "tutorial.ipynb"

# Appended to the executed copy only: what the notebook computed, as one JSON line.
PROBE = """
import json, os, sys
print(json.dumps({
    "prefix": sys.prefix,
    "steps": dict(zip(steps["step"], steps["test R²"])),
    "sweep_runs": len(sweep),
    "sweep_grid": sorted(zip(sweep["depth"].tolist(), sweep["lr"].tolist())),
    "sweep_status": sorted(set(sweep["status"])),
    "store_left": os.path.exists(store),
}))
"""


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A `python3` kernel spec for this very interpreter, found first through JUPYTER_PATH, with
    the kernel's runtime and IPython files kept under tmp_path (nothing written to $HOME)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (backprop-lab tests)",
        "language": "python",
        "env": {"MLFLOW_DISABLE_TELEMETRY": "true"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return "python3"


def test_notebook_is_saved_clean() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_tutorial_notebook_executes(kernel: str, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    work = tmp_path / "work"
    work.mkdir()
    NotebookClient(nb, timeout=300, kernel_name=kernel,
                   resources={"metadata": {"path": str(work)}}).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 4  # curves of sections 1, 2 and 4, and the sweep's plot

    tagged = {tag: cell for cell in nb.cells for tag in cell.metadata.get("tags", [])}
    for tag in ("r2-table", "sweep-table"):  # the tables are displayed as HTML
        assert any("text/html" in out.get("data", {}) for out in tagged[tag].outputs), tag

    stdout = [out.text for out in nb.cells[-1].outputs if out.get("name") == "stdout"]
    found = json.loads("".join(stdout))
    assert found["prefix"] == sys.prefix  # the kernel ran this interpreter
    r2 = list(found["steps"].values())
    assert len(r2) == 5
    assert r2[0] < 0 and r2[1] < 0  # the tutorial's setup does worse than the mean
    assert r2[-1] > 0.8  # normalised relu network, Adam, early stopping
    assert found["sweep_runs"] == 6
    assert found["sweep_grid"] == [[d, lr] for d in (1, 2) for lr in (1e-3, 1e-2, 1e-1)]
    assert found["sweep_status"] == ["FINISHED"]
    assert not found["store_left"]  # the throwaway MLflow store was removed
    assert not any(work.iterdir())  # and nothing was written where the notebook ran
