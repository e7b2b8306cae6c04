"""Experiments: one tracked job, reproducibility hashes and run comparison, reruns, evaluations
of logged models, sweeps read back and compared, and `api.run` for Python users."""
