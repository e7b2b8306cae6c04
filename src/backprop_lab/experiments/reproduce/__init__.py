"""Runs read back and run again: reruns and their bit-for-bit comparison, evaluations of a logged
model on new data, stale-run cleanup. The top room: may import `experiments.run` and
`experiments.sweep` (a sweep is rerun job by job).
"""
