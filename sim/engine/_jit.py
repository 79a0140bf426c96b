"""The one JIT decorator used by every kernel.

``cache=True`` writes compiled code next to the package (or to ``NUMBA_CACHE_DIR``),
so a fresh process pays ~0.3 s instead of seconds. Compilation is lazy: nothing is
compiled at import. ``fastmath`` stays off: same seed, same bits.
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
