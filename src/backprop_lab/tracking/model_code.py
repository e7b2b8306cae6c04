"""MLflow "models from code" entry: the pyfunc model is rebuilt from this file, not unpickled."""

from mlflow.models import set_model

from backprop_lab.tracking.served_model import NetworkModel

set_model(NetworkModel())
