"""The JIT decorators used by every kernel and by the helpers kernels share.

``cache=True`` writes compiled code next to the package (or to ``NUMBA_CACHE_DIR``),
so a fresh process pays ~0.3 s instead of seconds. Compilation is lazy: nothing is
compiled at import. ``fastmath`` stays off: same seed, same bits.

``helper`` is for functions that kernels call: numba inlines them into the caller's code
(``inline="always"``), so a call costs no call. A helper on floats costs nothing; one that
takes arrays still costs numba's reference counting of each array it is given (~2 ns per
array per call inlined, more when not inlined), so helpers called once per position take
floats, and those that take arrays are called once per pass or on rare events.
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
helper = njit(cache=True, nogil=True, inline="always")
