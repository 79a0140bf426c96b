"""The JIT decorators used by every kernel and by the helpers kernels share.

``cache=True`` writes compiled code next to the package (or to ``NUMBA_CACHE_DIR``),
so a fresh process pays ~0.3 s instead of seconds. Compilation is lazy: nothing is
compiled at import. ``fastmath`` stays off: same seed, same bits.

``helper`` is for small functions that kernels call in their inner loops: numba inlines
them into the caller's code (``inline="always"``), so a call costs nothing, not even the
reference counting of the arrays it is given (~5 ns per array for a call that is not
inlined).
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
helper = njit(cache=True, nogil=True, inline="always")
