"""The commands users type: `python -m pipelines.train|compare|rerun|evaluate`.

Each is a thin Hydra entry that calls the library (`backprop_lab.experiments`) inside
`pipelines.cli.run_command`, which turns every error the project names into one `error:` line.
"""
