"""A sweep: its parent run, its jobs read back from MLflow, their verdicts against the best, the
parent's description and `pipelines.compare`. May import `experiments.run`, never
`experiments.reproduce`.
"""
