"""Float tolerances of the tests, from the project's reproducibility promise.

The promise (README, "Reproducibility"): for a seed, results are bit-identical on one
machine, with any executor and any number of workers; on another machine they are equal to
1e-9 relative. Another CPU means other code: numba compiles for the host CPU, numpy picks
SIMD loops (``np.exp``, ``np.log``) at run time and OpenBLAS picks its ``dot``/``gemm``
kernels, so the last bits of a price path differ, and every result downstream of it.
``make test-portable`` runs the suite with all three switched to another CPU's choice.

So a test compares

* a run with itself (twice in one process, 1 worker against 2, resumed against
  uninterrupted) exactly: ``==``, ``xr.testing.assert_identical``;
* integers, strings, and floats exact by construction (an input echoed back, a 0.0 that
  no arithmetic touched) exactly;
* a simulated float against a number written in the test, or against the same quantity
  computed on another code path, to ``RTOL``;
* a simulated amount that is 0 on one machine (a difference or a clipped difference of
  larger amounts) to ``zero_tol(scale)``: on another machine it is rounding noise of the
  amounts it is computed from: the thin-redeemer run of notebook 04 has a contagion
  shortfall of exactly 0 on one machine and 3.7e-9 USD (one rounding step of aave's 33M USD
  clearing shortfall) on another.
"""

RTOL = 1e-9
"""Relative tolerance across machines: the promise."""


def zero_tol(scale: float) -> float:
    """Absolute tolerance of a quantity that is 0 on one machine: ``RTOL`` of its scale.

    Args:
        scale: the magnitude of the amounts the quantity is computed from (e.g. a protocol's
            obligations or losses in the same run), same units.

    Returns:
        ``RTOL * abs(scale)``.
    """
    return RTOL * abs(float(scale))
