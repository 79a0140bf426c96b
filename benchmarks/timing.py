"""Timing shared by the benchmarks."""

from __future__ import annotations

import gc
import time


def timed(fn, *args) -> float:
    """Seconds taken by ``fn(*args)``, with the garbage collector off.

    No ``gc.collect()`` first: walking every Python object would evict the inputs from cache.
    """
    gc.disable()
    try:
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start
    finally:
        gc.enable()
