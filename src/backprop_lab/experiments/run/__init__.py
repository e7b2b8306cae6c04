"""One tracked job: the five stages as one MLflow run, scored on cells, with its record, report,
artifacts and identity. Imports nothing from `experiments.sweep` or `experiments.reproduce`: a job
knows of its sweep only the plain values the launcher hands it (the parent's id, the swept keys).
"""
