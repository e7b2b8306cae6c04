"""Experiments: what a user runs, tracked in MLflow, in three rooms, each a layer above the last.

    run/        one tracked job: the five stages as an MLflow run (job), scored on CV folds and
                repeats (scoring, cells), what it records (record, artifacts), what it prints and
                how the UI describes it (report), its identity (identity: the config hash a
                resumed sweep reuses by), and `backprop_lab.run` (api)
    sweep/      a multirun: its parent run (parent), its jobs read back (readback), their
                verdicts against the best (statistics: the tests; assess: from MLflow's cells to
                tiers and tags), the parent's description (description) and `pipelines.compare`
                (compare)
    reproduce/  runs read back and run again: rerun and its verdict (comparison), logged runs
                (logged_runs), evaluations of a logged model (evaluation), stale runs (cleanup)

Imports point down: run imports no sweep or reproduce code; sweep may use run; reproduce may use
both (tests/test_layers.py). All three may use pipeline, tracking, plots, data and nn.
"""
