"""Batches: many runs of scenario files as one dataset with a ``run`` dim."""
