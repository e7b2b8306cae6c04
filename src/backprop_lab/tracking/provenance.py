"""What a rerun needs to know of a run's origin: code version, packages, BLAS, platform."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy  # noqa: F401  (loads the BLAS library that threadpoolctl reports)
from threadpoolctl import threadpool_info

from backprop_lab.paths import PROJECT_ROOT

KEY_PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "hydra-core", "omegaconf", "mlflow")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict[str, str]:
    """Commit, dirty flag and (when dirty) the diff against HEAD, untracked files listed."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": "unknown", "diff": ""}
    status = _git("status", "--porcelain", "--untracked-files=all") or ""
    diff = _git("diff", "HEAD") or ""
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    if untracked:
        diff += "\n# untracked files:\n" + "\n".join(f"#   {p}" for p in untracked) + "\n"
    return {"commit": commit.strip(), "dirty": str(bool(status.strip())).lower(), "diff": diff}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def blas_info() -> str:
    """The BLAS libraries numpy runs on, e.g. 'openblas 0.3.30 Haswell x2 threads'."""
    parts = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
        f"x{i.get('num_threads')} threads".replace("  ", " ")
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(sorted(set(parts))) or "unknown"  # sorted: import order varies


def environment() -> dict[str, str]:
    """Package versions, BLAS and platform, flat, for tags."""
    env = {f"version.{k}": v for k, v in package_versions().items()}
    env["blas"] = blas_info()
    env["platform"] = platform.platform()
    env["machine"] = platform.machine()
    env["python_executable"] = sys.executable
    return env
