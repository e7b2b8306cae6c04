"""backprop-lab's Hydra plugins: `hydra/launcher=stacked` (stacked_launcher),
`hydra/sweeper=racing` (racing_sweeper, the sweeper of the lr_depth preset) and
`hydra/sweeper=optuna` (optuna_sweeper: a persistent, resumable, pruned Optuna 5 search; its
config is conf/hydra/sweeper/optuna.yaml)."""
