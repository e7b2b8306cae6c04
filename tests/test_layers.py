"""The folders are the layers: every import in src/ and pipelines/ points down, never up.

    nn -> data -> (pipeline, tracking, plots) -> experiments -> pipelines (the commands)

`errors` and `paths` import nothing of the project and sit below every layer. pipeline,
tracking and plots are peers: none imports another. Inside experiments the rooms are layers too:

    experiments.run -> experiments.sweep -> experiments.reproduce

one job knows nothing of sweeps; a sweep is made of jobs; reproducing reads runs and sweeps
back and runs them again. No module imports itself back through a cycle.

Third-party rules: the numerical core imports nothing beyond numpy and scipy; MLflow only in
tracking and above; Hydra only in `pipeline.compose` (where configs are composed) and in
pipelines/. The imports are read with `ast` (a module-level import and one inside a function
count alike), so an upward import fails this test wherever it is written.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from backprop_lab.paths import PROJECT_ROOT

SRC = PROJECT_ROOT / "src" / "backprop_lab"
RANK = {"errors": 0, "paths": 0, "nn": 1, "data": 2, "pipeline": 3, "tracking": 3, "plots": 3,
        "experiments": 4, "__init__": 5, "pipelines": 6}
THIRD_PARTY = {  # layer -> the third-party top-level packages it may import (beyond stdlib)
    "errors": set(), "paths": set(),
    "nn": {"numpy", "scipy"},
    "data": {"numpy", "scipy", "pandas", "sklearn"},
    "pipeline": {"numpy", "scipy", "pandas", "sklearn", "omegaconf", "tqdm",
                 "threadpoolctl"},  # training's BLAS threads (pipeline.stacking)
    "plots": {"numpy", "pandas", "matplotlib", "plotly"},
    "tracking": {"numpy", "pandas", "mlflow", "threadpoolctl", "filelock",
                 "requests", "google"},  # MLflow's own: its HTTP errors, its protobuf JSON (spool)
    "experiments": {"numpy", "pandas", "scipy", "statsmodels", "mlflow", "omegaconf", "optuna",
                    "filelock"},  # optuna: the search's study (experiments.sweep)
    "__init__": set(),
    "pipelines": {"hydra", "omegaconf", "mlflow", "hydra_plugins", "optuna",
                  "threadpoolctl"},  # a launcher shares the cores out between BLAS and its threads
}
HYDRA_ALLOWED = {"backprop_lab.pipeline.compose"}
ROOMS = {"run": 0, "sweep": 1, "reproduce": 2}  # experiments' sub-packages, bottom to top


def layer_of(module: str) -> str:
    """`backprop_lab.nn.network` -> nn; `pipelines.train` -> pipelines (as are the Hydra plugins
    in src/hydra_plugins: commands' adapters)."""
    parts = module.split(".")
    if parts[0] in ("pipelines", "hydra_plugins"):
        return "pipelines"
    return parts[1] if len(parts) > 1 else "__init__"


def room_of(module: str) -> str | None:
    """`backprop_lab.experiments.sweep.compare` -> sweep; None outside the rooms."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["backprop_lab", "experiments"] \
        and parts[2] in ROOMS else None


def modules() -> dict[str, Path]:
    found = {}
    plugins = PROJECT_ROOT / "src" / "hydra_plugins"
    for path in [*SRC.rglob("*.py"), *plugins.rglob("*.py"),
                 *(PROJECT_ROOT / "pipelines").glob("*.py")]:
        in_src = SRC in path.parents or plugins in path.parents
        rel = path.relative_to(PROJECT_ROOT / "src" if in_src else PROJECT_ROOT)
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path) -> list[str]:
    """Every module `path` imports, absolute, anywhere in the file."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def violations(module: str, imported: list[str]) -> list[str]:
    own = layer_of(module)
    found = []
    for name in imported:
        top = name.split(".")[0]
        if top in ("backprop_lab", "pipelines"):
            target = layer_of(name)
            if target not in RANK or name == "backprop_lab":
                continue  # a name imported from a package, already counted as the package
            peers = target != own and RANK[target] == RANK[own]
            if RANK[target] > RANK[own] or peers:
                found.append(f"{module} ({own}) imports {name} ({target})")
            elif own == target == "experiments" and room_of(name) is not None:
                mine, theirs = room_of(module), room_of(name)
                if mine is None or ROOMS[str(theirs)] > ROOMS[mine]:
                    found.append(f"{module} (room {mine}) imports {name} (room {theirs})")
        elif top not in sys.stdlib_module_names and top != "__future__":
            if top not in THIRD_PARTY[own]:
                found.append(f"{module} ({own}) imports third-party {top}")
            if top == "hydra" and own != "pipelines" and module not in HYDRA_ALLOWED:
                found.append(f"{module} imports Hydra outside pipeline.compose and pipelines/")
    return found


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module: str) -> None:
    path = modules()[module]
    allowed = {"hydra"} if module in HYDRA_ALLOWED else set()
    found = [v for v in violations(module, imports(path)) if not (
        allowed and v.endswith("third-party hydra"))]
    assert found == []


def test_an_upward_import_is_caught() -> None:
    """The rule itself: the core importing MLflow or the pipeline is refused."""
    assert violations("backprop_lab.nn.network", ["backprop_lab.pipeline.config"])
    assert violations("backprop_lab.nn.network", ["mlflow"])
    assert violations("backprop_lab.pipeline.stages", ["backprop_lab.tracking.store"])
    assert violations("backprop_lab.data.load", ["hydra"])
    assert not violations("backprop_lab.experiments.run.job", ["backprop_lab.pipeline.stages"])


def test_the_rooms_point_down() -> None:
    """Run code never imports sweep code; reproduce sits above both."""
    assert violations("backprop_lab.experiments.run.job",
                      ["backprop_lab.experiments.sweep.readback"])
    assert violations("backprop_lab.experiments.sweep.compare",
                      ["backprop_lab.experiments.reproduce.rerun"])
    assert not violations("backprop_lab.experiments.reproduce.rerun",
                          ["backprop_lab.experiments.sweep.readback",
                           "backprop_lab.experiments.run.job"])
    assert not violations("backprop_lab.experiments.sweep.assess",
                          ["backprop_lab.experiments.run.cells"])
    assert set(ROOMS) == {p.name for p in (SRC / "experiments").iterdir()
                          if (p / "__init__.py").is_file()}


def test_no_import_cycles() -> None:
    """The project's modules form a DAG (an import inside a function counts too)."""
    known = modules()
    graph = {m: {n for n in imports(p) if n in known and n != m} for m, p in known.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            assert visit(start, []) == []


def test_importing_the_package_loads_neither_mlflow_nor_hydra() -> None:
    code = ("import sys, backprop_lab; from backprop_lab import Network, train, TrainConfig, "
            "load_dataset, MLPRegressor; "
            "bad = [m for m in ('mlflow', 'hydra', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)
