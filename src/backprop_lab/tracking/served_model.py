"""The trained network as an MLflow pyfunc model: raw features in, original units out.

The model's only artifact is one `.npz` (weights, both scalers, column names) read back without
pickle. The model is logged from code (model_code.py), not pickled, and the package code travels
with it (`code_paths`), so it loads from any directory.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from backprop_lab.data.load import Dataset
from backprop_lab.data.scaling import Scaler
from backprop_lab.nn.weights import load_arrays, model_from_arrays
from backprop_lab.tracking.store import Run

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/backprop_lab: travels with the model
MODEL_CODE = Path(__file__).with_name("model_code.py")


class NetworkModel(PythonModel):
    def load_context(self, context: Any) -> None:
        arrays = load_arrays(context.artifacts["model"])
        self.network = model_from_arrays(arrays, "model.npz")
        self.x_scaler = Scaler.from_arrays(arrays, "x_")
        self.y_scaler = Scaler.from_arrays(arrays, "y_")
        self.features = [str(name) for name in arrays["feature_names"]]
        self.targets = [str(name) for name in arrays["target_names"]]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        # pd.DataFrame is a hint MLflow takes as is (no schema inferred from it, no "add type
        # hints" warning); the signature logged with the model is what it checks inputs against
        frame = pd.DataFrame(model_input)
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise ValueError(f"input lacks feature columns {missing}; expected {self.features}")
        X = frame[self.features].to_numpy(dtype=np.float64)
        scaled = self.network.predict(self.x_scaler.transform(X))
        y = self.y_scaler.inverse_transform(np.asarray(scaled, dtype=np.float64))
        return pd.DataFrame(y, columns=self.targets, index=frame.index)


def signature_and_example(ds: Dataset, X_rows: np.ndarray) -> tuple[Any, pd.DataFrame]:
    """Input columns typed as the raw file has them (int64 stays long), so a user's
    `pd.read_csv(...)` frame predicts without casting."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    kinds = {name: ds.feature_dtypes.get(name, "float64") for name in ds.feature_names}
    example = pd.DataFrame(X_rows, columns=ds.feature_names)
    for name, kind in kinds.items():
        if kind.startswith("int"):
            example[name] = example[name].round().astype("int64")
    inputs = Schema([ColSpec("long" if kinds[n].startswith("int") else "double", n)
                     for n in ds.feature_names])
    outputs = Schema([ColSpec("double", n) for n in ds.target_names])
    return ModelSignature(inputs=inputs, outputs=outputs), example


def log_pyfunc_model(run: Run, model_npz: Path, ds: Dataset, X_example: np.ndarray,
                     name: str = "model", step: int = 0) -> str:
    """Log the network as a pyfunc model named `name` (the run's name, so that the UI's model
    lists tell runs apart) and return its URI, `models:/<model_id>` (`runs:/<run_id>/<name>`
    loads it too). MLflow links to the model the run's metrics logged at `step`: the step of
    the final metrics, so the model shows the scores of the weights it holds."""
    import mlflow

    signature, example = signature_and_example(ds, X_example)
    requirements = [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "scipy", "pandas")]
    t = time.perf_counter()
    with mlflow.start_run(run_id=run.run_id):
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"model": str(model_npz)},
            code_paths=[str(PACKAGE_DIR)],
            pip_requirements=requirements,
            signature=signature,
            input_example=example,
            step=step,
        )
    run.seconds_in_mlflow += time.perf_counter() - t
    return str(info.model_uri)
