"""The pipeline: the config schema and its validation, the five stages (load -> normalize ->
build -> train -> evaluate), cross-validation and the scikit-learn estimator. No MLflow; Hydra
only in `compose`, where configs are composed."""
