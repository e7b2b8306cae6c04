"""backprop-lab's Hydra plugins: `hydra/launcher=stacked` (stacked_launcher) and
`hydra/sweeper=racing` (racing_sweeper, the default sweeper of pipelines.train)."""
