"""Where the project's own files live, whatever the current directory: the configs, the shipped
datasets and the embedded MLflow store. Imports nothing, so every layer may use it."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"
DATA_DIR = PROJECT_ROOT / "data"
STORE_DIR = PROJECT_ROOT / "mlruns"
BOSTON_CSV = DATA_DIR / "boston_house_prices.csv"
