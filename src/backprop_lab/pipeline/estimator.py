"""`MLPRegressor`: the project's numpy network as a scikit-learn estimator.

Why: scikit-learn's tools (`GridSearchCV`, `cross_val_score`, `Pipeline`, ...) then drive our own
`Network` and `train` directly, without Hydra or MLflow. The constructor parameters are named
after the config keys and default to the project's default config (conf/model/mlp.yaml,
conf/train/adam.yaml, conf/normalize/standard.yaml, data.val_fraction), and `fit` runs the same
steps as `pipeline.stages`: one seeded Generator split into a validation-split, an init and a
shuffle stream, scalers fitted on the training rows only, early stopping on the held-out rows.
An integer `random_state` therefore gives the streams of `stages.streams(random_state)`.

Imports numpy, scikit-learn and the project's `nn`, `data` and `errors` modules only.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from backprop_lab.data.scaling import SCALERS, Scaler
from backprop_lab.nn.activations import NAMES as ACTIVATIONS
from backprop_lab.nn.network import DTYPES, INITS, Network
from backprop_lab.nn.training import History, TrainConfig, train
from backprop_lab.pipeline.config import check_choice, check_rule, validate_train

Array = np.ndarray
RandomState = int | np.random.Generator | np.random.RandomState | None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _generator(random_state: Any) -> np.random.Generator:
    """One Generator from `random_state`: an int >= 0 or None seeds a new one, a Generator is
    used as is, a legacy RandomState gives a seed drawn from it (so it advances, as in sklearn)."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(np.iinfo(np.int32).max)))
    check_rule("random_state", _is_int(random_state) and random_state >= 0,
           "an int >= 0, None, a numpy Generator or RandomState", random_state)
    return np.random.default_rng(int(random_state))


class MLPRegressor(RegressorMixin, BaseEstimator):
    """A fully connected network trained by backprop, as a scikit-learn regressor.

    Features and targets are scaled inside the estimator (scalers fitted on the training rows
    only), so `predict` answers in the target's original units and a `Pipeline` need not scale.
    Supports several targets: y of shape (n_samples,) or (n_samples, n_outputs).

    Parameters
    ----------
    hidden : tuple of int, default=(64, 64)
        Widths of the hidden layers; () gives a linear model.
    activation, output_activation : str, default="relu", "linear"
        Activation of the hidden layers and of the output layer
        (see `backprop_lab.nn.activations`).
    init : {"he", "xavier", "uniform"}, default="he"
        Initial weights.
    dtype : {"float64", "float32"}, default="float64"
        Dtype of the weights and of the arithmetic; predictions are float64 either way.
    optimizer : {"adam", "gd", "sgd", "momentum"}, default="adam"
    lr : float, default=3e-3
        Learning rate, finite and > 0.
    epochs : int, default=1000
        Most passes over the training rows.
    batch_size : int or None, default=64
        Rows per gradient step; None means full batch.
    shuffle : bool, default=True
        Draw a new batch order every epoch (from the shuffle stream).
    momentum : float, default=0.9
        Used by ``optimizer="momentum"`` only; in [0, 1).
    weight_decay : float, default=3e-3
        L2 penalty on the weight matrices (not the biases); >= 0.
    patience : int or None, default=100
        Stop after this many epochs without a better monitored cost and keep the best weights;
        None trains all `epochs` and keeps the last weights.
    val_fraction : float, default=0.15
        Fraction of the rows held out to monitor for early stopping, in [0, 1). When
        round(n_samples * val_fraction) would leave no row on either side, all rows are trained
        on and the training cost is monitored instead.
    normalize_features, normalize_target : {"standard", "minmax", "none"}, default="standard"
        Column scaling of X and of y, fitted on the training rows.
    random_state : int, numpy Generator, RandomState or None, default=None
        Seeds the validation split, the initial weights and the batch order, each from its own
        stream, so that e.g. changing `epochs` leaves the initial weights alone.

    Attributes
    ----------
    network_ : Network
        The trained network, working on scaled data: (n, n_features_in_) -> (n, n_outputs_).
    x_scaler_, y_scaler_ : Scaler
        The feature and target scalers fitted on the training rows.
    history_ : History
        Per-epoch costs, best epoch and why training stopped.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    n_outputs_ : int
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        output_activation: str = "linear",
        init: str = "he",
        optimizer: str = "adam",
        lr: float = 3e-3,
        epochs: int = 1000,
        batch_size: int | None = 64,
        shuffle: bool = True,
        momentum: float = 0.9,
        weight_decay: float = 3e-3,
        patience: int | None = 100,
        val_fraction: float = 0.15,
        normalize_features: str = "standard",
        normalize_target: str = "standard",
        dtype: str = "float64",
        random_state: RandomState = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.output_activation = output_activation
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.normalize_features = normalize_features
        self.normalize_target = normalize_target
        self.dtype = dtype
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _hidden_layers(self) -> list[int]:
        """The hidden widths as ints; raises naming `hidden` unless every width is an int >= 1."""
        hidden = self.hidden
        ok = not isinstance(hidden, str | bytes) and hasattr(hidden, "__iter__")
        widths = list(hidden) if ok else []
        ok = ok and all(_is_int(w) and w >= 1 for w in widths)
        check_rule("hidden", ok, "a tuple of widths >= 1", hidden)
        return [int(w) for w in widths]

    def _train_config(self) -> TrainConfig:
        """Check every training parameter (sklearn checks in fit, not in __init__): the types
        here, the ranges in `config.validate_train`, shared with the pipeline's config."""
        lr, epochs, batch_size, patience = self.lr, self.epochs, self.batch_size, self.patience
        momentum, weight_decay = self.momentum, self.weight_decay
        for key, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            check_rule(key, _is_real(value), "a number", value)
        check_rule("epochs", _is_int(epochs), "an int", epochs)
        check_rule("batch_size", batch_size is None or _is_int(batch_size), "an int or None",
                   batch_size)
        check_rule("patience", patience is None or _is_int(patience), "an int or None", patience)
        check_rule("shuffle", isinstance(self.shuffle, bool | np.bool_), "a bool", self.shuffle)
        return validate_train(TrainConfig(
            optimizer=self.optimizer,
            lr=float(lr),
            epochs=int(epochs),
            batch_size=None if batch_size is None else int(batch_size),
            shuffle=bool(self.shuffle),
            momentum=float(momentum),
            weight_decay=float(weight_decay),
            patience=None if patience is None else int(patience),
        ), prefix="")

    def _check_params(self) -> tuple[list[int], TrainConfig, np.random.Generator]:
        """Validate every parameter; return the hidden widths, the train config and the rng."""
        hidden = self._hidden_layers()
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("output_activation", self.output_activation, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("normalize_features", self.normalize_features, SCALERS)
        check_choice("normalize_target", self.normalize_target, SCALERS)
        vf = self.val_fraction
        check_rule("val_fraction", _is_real(vf) and 0 <= vf < 1, "in [0, 1)", vf)
        config = self._train_config()
        return hidden, config, _generator(self.random_state)

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train a fresh network on (X, y); returns self.

        X: array-like of shape (n_samples, n_features). y: shape (n_samples,) or
        (n_samples, n_outputs). A held-out round(n_samples * val_fraction) rows, drawn from the
        split stream, drive early stopping; the network ends with the best weights seen.
        Warns `ConvergenceWarning` if training diverged.
        """
        hidden, config, rng = self._check_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=np.dtype(self.dtype))
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self.n_outputs_ = Y.shape[1]

        split_rng, init_rng, shuffle_rng = rng.spawn(3)  # as stages.streams
        n = len(X)
        n_val = round(n * self.val_fraction)
        if 1 <= n_val <= n - 1:  # test rows first in stages; there are none here
            perm = split_rng.permutation(n)
            val_idx, train_idx = perm[:n_val], perm[n_val:]
        else:
            val_idx, train_idx = np.arange(0), np.arange(n)

        X_train, Y_train = X[train_idx], Y[train_idx]
        self.x_scaler_ = Scaler.fit(self.normalize_features, X_train)
        self.y_scaler_ = Scaler.fit(self.normalize_target, Y_train)
        X_val = Y_val = None
        if len(val_idx):
            X_val = self.x_scaler_.transform(X[val_idx])
            Y_val = self.y_scaler_.transform(Y[val_idx])
        sizes = [X.shape[1], *hidden, self.n_outputs_]
        self.network_ = Network.create(sizes, init_rng, self.activation, self.output_activation,
                                       self.init, self.dtype)
        self.history_: History = train(
            self.network_, self.x_scaler_.transform(X_train), self.y_scaler_.transform(Y_train),
            config, shuffle_rng, X_val, Y_val,
        )
        if self.history_.diverged:
            warnings.warn(f"MLPRegressor: training {self.history_.stop_reason}; the network "
                          f"keeps its best weights (epoch {self.history_.best_epoch}): try a "
                          f"smaller lr", ConvergenceWarning, stacklevel=2)
        return self

    def predict(self, X: Any) -> Array:
        """Predictions in the target's original units, float64.

        X: array-like of shape (n_samples, n_features_in_). Returns shape (n_samples,) when y
        was 1-D at fit, else (n_samples, n_outputs_).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        out = np.asarray(self.network_.predict(self.x_scaler_.transform(X)), dtype=np.float64)
        y_pred = np.asarray(self.y_scaler_.inverse_transform(out), dtype=np.float64)
        return y_pred.ravel() if self._y_1d else y_pred
