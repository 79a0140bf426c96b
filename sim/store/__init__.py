"""The batch results store: one folder, one netCDF file per finished run, and a manifest.

- ``layout``: the folder's file and folder names, its format's constants, run files' bytes.
- ``records``: each file's record (sha256, size, runs, sealed) and the checks against it.
- ``verify``: every file checked against its record and the manifest; quarantine of what
  fails (``repair``).
- ``folder``: ``BatchStore``, reading and writing a batch folder (runs, failures, blocks),
  and ``open_batch``.

Every file appears by ``os.replace`` of a complete temporary file, so a crash loses at most
the runs in flight; every run file and block has a record, verified before anything is read.
"""

from sim.store.folder import BatchStore, open_batch
from sim.store.layout import (
    BLOCK_BYTES,
    BLOCKS,
    FAILED,
    FORMAT,
    LAZY_ABOVE_BYTES,
    MANIFEST,
    QUARANTINE,
    REPAIR,
    RUNS,
    SENSITIVITY_FILE,
    encode_run,
    is_batch,
)
from sim.store.records import record_text
from sim.store.verify import Contents, Problem

_record = record_text  # its name before the split into modules

__all__ = ["BLOCKS", "BLOCK_BYTES", "FAILED", "FORMAT", "LAZY_ABOVE_BYTES", "MANIFEST",
           "QUARANTINE", "REPAIR", "RUNS", "SENSITIVITY_FILE", "BatchStore", "Contents",
           "Problem", "encode_run", "is_batch", "open_batch", "record_text"]
