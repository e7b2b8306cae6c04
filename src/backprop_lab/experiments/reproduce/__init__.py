"""Runs read back: reruns and their comparison, evaluations of logged models, cleanup."""
