"""Price impact in the outside market: impact laws, execution prices, resilience.

The outside market (exchanges off the chain, one aggregate book per asset) is described by
its *depth* ``D``: the USD that trades within 2% of mid (``DEPTH_BAND``), the unit data
vendors publish (``shared/reference/markets.md``). A signed flow ``q`` (USD at the
pre-trade price; ``q > 0`` buys, ``q < 0`` sells) displaces the log price by ``impact(q)``,
under one of three laws, each scaled so that a flow of one depth moves the price by
about the band:

* ``LINEAR`` (Almgren-Chriss permanent impact; Cont-Schaanning's linear fire-sale impact
  ``dS / S = -Q / D'`` with ``D' = D / band``): ``S / S0 = 1 + band * q / D``;
* ``SQUARE_ROOT`` (Toth et al. 2011, on Bitcoin Donier and Bonart 2015):
  ``S / S0 = 1 + sign(q) * band * sqrt(|q| / D)``;
* ``LOG_LINEAR`` (Cont-Schaanning's log-linear form, which keeps prices positive):
  ``S / S0 = exp(band * q / D)``.

The linear and square-root laws would send the price below zero for a sale of more than
``D / band`` (linear) or ``D / band**2`` (square root); the price ratio is floored at
``PRICE_FLOOR`` there, a guard rather than a law (a scenario that reaches it needs more
depth or backstop buyers).

A step's trades form one metaorder: ``flow`` is the signed USD already traded in the step,
and a trade of ``x`` moves the log price by ``impact(flow + x) - impact(flow)``, so that
splitting a trade changes nothing. The displacement is partly permanent; the rest decays
with a resilience half-life (Obizhaeva and Wang 2013): ``transient * exp(-ln 2 dt / h)``.

Everything here is scalar arithmetic for the kernels (``helper``): no arrays.
"""

import math

from sim.engine._jit import helper

DEPTH_BAND = 0.02  # depth is quoted as USD within 2% of mid
PRICE_FLOOR = 1e-6  # least price ratio the linear and square-root laws can reach

LINEAR = 0
SQUARE_ROOT = 1
LOG_LINEAR = 2
LAWS = ("linear", "square_root", "log_linear")  # scenario names, in code order


@helper
def price_ratio(q, depth, law):
    """Price after a flow ``q`` from the step's start, over the price before (``S / S0``).

    Args:
        q: float, signed flow in USD (> 0 buys, < 0 sells).
        depth: float, USD within ``DEPTH_BAND`` of mid (> 0).
        law: int, ``LINEAR``, ``SQUARE_ROOT`` or ``LOG_LINEAR``.
    """
    if law == LOG_LINEAR:
        return math.exp(DEPTH_BAND * q / depth)
    if law == SQUARE_ROOT:
        move = DEPTH_BAND * math.sqrt(abs(q) / depth)
        ratio = 1.0 + move if q >= 0.0 else 1.0 - move
    else:
        ratio = 1.0 + DEPTH_BAND * q / depth
    return ratio if ratio > PRICE_FLOOR else PRICE_FLOOR


@helper
def impact(q, depth, law):
    """Log-price displacement ``log(S / S0)`` of a flow ``q`` (``price_ratio``)."""
    return math.log(price_ratio(q, depth, law))


@helper
def mean_ratio(q0, q1, depth, law):
    """Average of ``price_ratio`` over the flow from ``q0`` to ``q1``: a trade's execution.

    A trade that takes the step's flow from ``q0`` to ``q1`` walks the book: its USD
    value at the pre-step price ``S0`` buys or sells at ``S0`` times this average. In closed
    form per law (the integral of the ratio over ``q``, divided by ``q1 - q0``); at
    ``q0 == q1`` the ratio at ``q0``. The floor is not integrated: a trade that reaches it
    executes at the closed form of its law, which is the floor's guard, not a price.
    """
    dq = q1 - q0
    if dq == 0.0:
        return price_ratio(q0, depth, law)
    if law == LOG_LINEAR:
        k = DEPTH_BAND / depth
        return (math.exp(k * q1) - math.exp(k * q0)) / (k * dq)
    if law == SQUARE_ROOT:
        # d/dq of (2/3) band |q|^(3/2) / sqrt(D) is sign(q) band sqrt(|q| / D).
        c = DEPTH_BAND * 2.0 / (3.0 * math.sqrt(depth))
        ratio = 1.0 + c * (abs(q1) ** 1.5 - abs(q0) ** 1.5) / dq
    else:
        ratio = 1.0 + DEPTH_BAND * 0.5 * (q0 + q1) / depth
    return ratio if ratio > PRICE_FLOOR else PRICE_FLOOR


@helper
def decay_factor(dt_hours, half_life_hours):
    """Share of a transient displacement left after ``dt_hours``.

    1 at an infinite half-life (no resilience), 0 at a zero one (fully resilient).
    """
    if half_life_hours <= 0.0:
        return 0.0
    if math.isinf(half_life_hours):
        return 1.0
    return math.exp(-math.log(2.0) * dt_hours / half_life_hours)
