"""Batches: replications and parameter sweeps of scenario files, on any executor.

``design`` expands a file's ``[batch]`` section into runs; ``runner`` runs them locally or
on a Dask cluster into a store (``sim.store``) that ``sim.open_results`` reads as one
Dataset with a ``run`` dim.
"""

from sim.batch.design import Design, RunSpec, expand
from sim.batch.runner import BatchInterrupted, BatchReport, run_batch

__all__ = ["BatchInterrupted", "BatchReport", "Design", "RunSpec", "expand", "run_batch"]
