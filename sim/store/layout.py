"""The layout of a batch folder: the names of its files and folders, and its format's constants.

Layout of a batch folder::

    batch.json               the manifest: scenarios, design, the list of runs (written first)
    runs/run-000042.json     the record of run 42's file: its sha256, size and runs
    runs/run-000042.nc       one finished run (``run`` dim of length 1, its coordinates)
    failed/run-000017.json   a run that raised: its error and traceback
    blocks/block-000000.nc   finished runs combined, after the batch (``compact``)
    blocks/block-000000.json the record of a block: written after the block, it commits it
    quarantine/...           files that failed verification, moved aside by ``repair``
    sensitivity.nc           ``sim sensitivity`` of the default output and statistic

Run files are netCDF-3 (64-bit offset), written by scipy: for a run's ~80 small variables
it writes about twice as fast and reads back some twenty times faster than HDF5-based
netCDF-4 (measured on a 10k-position, 500-step run: 0.23 s against 0.37 s to write, 0.012 s
against 0.29 s to read), which is what a batch of thousands of runs needs. The workers encode
their own runs (``encode_run``) and the driver only writes the bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import xarray as xr

MANIFEST = "batch.json"
RUNS = "runs"
FAILED = "failed"
BLOCKS = "blocks"
QUARANTINE = "quarantine"
SENSITIVITY_FILE = "sensitivity.nc"  # `sim sensitivity` of the default output and statistic
LAZY_ABOVE_BYTES = 256 * 2**20  # stores larger than this open as dask arrays
BLOCK_BYTES = 64 * 2**20  # run files combined per block (bounded memory while compacting)
FORMAT = 2  # 2: every run file and block has a record (checksum, runs); 1: no records
REPAIR = "`sim batch --resume` repairs it (moves what fails to quarantine/ and reruns its runs)"

RUN_NAME = re.compile(r"run-(\d+)\.nc")


def encode_run(ds: xr.Dataset) -> bytes:
    """A run's dataset as the bytes of its run file (netCDF-3)."""
    return bytes(ds.to_netcdf(engine="scipy"))


def is_batch(path: str | Path) -> bool:
    """Whether ``path`` is a batch folder (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()
