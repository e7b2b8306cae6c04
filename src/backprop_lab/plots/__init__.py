"""The pictures of a run and of a sweep, drawn on matplotlib Figures (no pyplot state, no
backend switched at import)."""
