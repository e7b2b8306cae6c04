"""Data: loading, validating and fingerprinting datasets, splits and folds, scalers, metrics.
Depends on `nn` only (for the cost), never on configs, MLflow or Hydra."""
