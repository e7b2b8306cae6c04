"""A sweep: its parent run, its jobs read back, their verdicts, description and comparison."""
