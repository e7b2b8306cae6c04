"""The trained network as an MLflow pyfunc model: raw features in, original units out.

The model's only artifact is one `.npz` (weights, both scalers, column names) read back without
pickle. The model is logged from code (model_code.py), not pickled, and the package code travels
with it (`code_paths`), so it loads from any directory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from backprop_lab.normalize import Scaler
from backprop_lab.weights import load_arrays, model_from_arrays


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
