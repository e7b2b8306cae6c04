"""MLflow: the store and its runs, provenance tags, and the served (pyfunc) model. The only
layer below `experiments` that imports MLflow."""
