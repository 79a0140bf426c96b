"""European option prices and Greeks: Black-Scholes-Merton on spot, Black-76 on a forward.

With ``F = S exp((r - q) t)`` the forward, ``sd = vol sqrt(t)``, ``w = +1`` for a call and
``-1`` for a put (Hull, *Options, Futures, and Other Derivatives*, 10th ed., ch. 15, 17, 18
and 19; Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed., ch. 1, the
generalized Black-Scholes-Merton formula)::

    d1 = ln(F / K) / sd + sd / 2,    d2 = d1 - sd
    price = w (S e^(-q t) N(w d1) - K e^(-r t) N(w d2))
    delta = w e^(-q t) N(w d1)                 gamma = e^(-q t) n(d1) / (S sd)
    vega  = S e^(-q t) n(d1) sqrt(t)           (per 1.00 of vol, not per 1%)
    theta = -S e^(-q t) n(d1) vol / (2 sqrt(t)) - w r K e^(-r t) N(w d2)
            + w q S e^(-q t) N(w d1)           (per year of calendar time)

Black-76 is the same formula with ``S = F`` and ``q = r`` (the forward costs nothing to
carry), which gives ``price = e^(-r t) w (F N(w d1) - K N(w d2))`` and Greeks with respect to
the forward, its theta holding the forward fixed.

Crypto conventions (``shared/reference/protocols.md``): ``t`` in years of 365 days of 24/7
trading, vol annualised; per-day theta is ``theta / 365``. ``dividend`` is any continuous
yield the holder of the underlying earns, e.g. a staking yield.

Limits, chosen so that put-call parity holds in value, delta, gamma and vega (and in theta
while ``t > 0``):

* ``t <= 0`` (expired): intrinsic value on spot; call delta 1 if ``spot > strike`` else 0,
  put delta = call delta - 1 (so -1 at ``spot == strike``); gamma, vega, theta 0.
* ``vol == 0`` (deterministic): the discounted forward intrinsic
  ``max(w (S e^(-q t) - K e^(-r t)), 0)`` with the same in/out rule on the forward, its delta
  and theta, gamma 0, and vega the one-sided limit as vol falls to 0 (0 unless the forward
  equals the strike, where it is ``S e^(-q t) sqrt(t) n(0)``).
* Inputs outside the domain (``spot`` or ``strike <= 0``, ``vol < 0``, NaN, ``kind`` neither
  CALL nor PUT) give NaN in every output: kernels cannot raise, so the caller validates.

Deep in or out of the money the tails come from ``erfc`` (``N(x)`` keeps its relative
accuracy far below 1) and ``n(d1)`` underflows to 0 without overflow or NaN.
"""

import math

from sim.engine._jit import kernel

CALL = 1
"""``kind`` of a call option."""

PUT = -1
"""``kind`` of a put option."""

INV_SQRT_2PI = 0.3989422804014327
"""1 / sqrt(2 pi): the standard normal density at 0."""

IV_LOW = 1e-6
"""Lower end of the implied-volatility search (annualised)."""

IV_HIGH = 20.0
"""Upper end of the implied-volatility search (2,000% a year)."""

IV_TOLERANCE = 1e-13
"""Relative size of a Newton step on the volatility below which it has converged."""

IV_MAX_ITERATIONS = 100
"""Newton or bisection steps before the implied-volatility search stops."""


@kernel
def norm_cdf(x):
    """Standard normal distribution function ``N(x) = erfc(-x / sqrt(2)) / 2``.

    ``erfc`` keeps relative accuracy in the lower tail, where ``(1 + erf(x / sqrt 2)) / 2``
    would cancel to 0 (``N(-10)`` ~ 7.6e-24).

    Args:
        x: float.

    Returns:
        float in [0, 1].
    """
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@kernel
def _option(kind, spot, strike, t, vol, rate, dividend):
    """(price, delta, gamma, vega, theta) of one European option (see the module docstring)."""
    nan = math.nan
    if kind == CALL:
        w = 1.0
    elif kind == PUT:
        w = -1.0
    else:
        return nan, nan, nan, nan, nan
    if not (spot > 0.0 and strike > 0.0 and vol >= 0.0 and t == t and rate == rate
            and dividend == dividend):
        return nan, nan, nan, nan, nan
    if t <= 0.0:
        # Expired: the payoff, with the call's delta taken as 0 at the money (never 0.5).
        if spot > strike:
            return (spot - strike, 1.0, 0.0, 0.0, 0.0) if w > 0.0 else (0.0, 0.0, 0.0, 0.0, 0.0)
        return (0.0, 0.0, 0.0, 0.0, 0.0) if w > 0.0 else (strike - spot, -1.0, 0.0, 0.0, 0.0)
    disc_q = math.exp(-dividend * t)
    s_disc = spot * disc_q
    k_disc = strike * math.exp(-rate * t)
    sqrt_t = math.sqrt(t)
    sd = vol * sqrt_t
    if sd > 0.0:
        d1 = (math.log(spot / strike) + (rate - dividend) * t) / sd + 0.5 * sd
        d2 = d1 - sd
        n1 = norm_cdf(w * d1)
        n2 = norm_cdf(w * d2)
        pdf = INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
        price = w * (s_disc * n1 - k_disc * n2)
        # Both terms are positive and exact to a few ulps; their difference can round just
        # below 0 far out of the money, where the true value is positive.
        if price < 0.0:
            price = 0.0
        s_pdf = s_disc * pdf
        gamma = 0.0
        if s_pdf > 0.0:
            gamma = disc_q * pdf / (spot * sd)
        theta = -s_pdf * sd / (2.0 * t) - w * rate * k_disc * n2 + w * dividend * s_disc * n1
        return price, w * disc_q * n1, gamma, s_pdf * sqrt_t, theta
    # vol == 0: the forward is known, the option is its discounted intrinsic value.
    vega = s_disc * sqrt_t * INV_SQRT_2PI if s_disc == k_disc else 0.0
    call_itm = s_disc > k_disc
    if w > 0.0:
        if call_itm:
            return s_disc - k_disc, disc_q, 0.0, vega, dividend * s_disc - rate * k_disc
        return 0.0, 0.0, 0.0, vega, 0.0
    if call_itm:
        return 0.0, 0.0, 0.0, vega, 0.0
    return k_disc - s_disc, -disc_q, 0.0, vega, rate * k_disc - dividend * s_disc


@kernel
def black_scholes(kind, spot, strike, t, vol, rate, dividend, price, delta, gamma, vega, theta):
    """European options on spot: Black-Scholes-Merton with a continuous yield ``dividend``.

    Formulas and limits in the module docstring (Hull 10th ed. ch. 15, 17 and 19; Merton 1973).

    Args:
        kind: int64[n], CALL or PUT.
        spot: float64[n], price of the underlying (> 0).
        strike: float64[n], strike price (> 0).
        t: float64[n], time to expiry in years of 365 days (<= 0: expired).
        vol: float64[n], annualised volatility (>= 0).
        rate: float64[n], continuously compounded risk-free rate per year.
        dividend: float64[n], continuous yield of the underlying per year (e.g. staking).
        price: float64[n], out: option value.
        delta: float64[n], out: d price / d spot.
        gamma: float64[n], out: d2 price / d spot2.
        vega: float64[n], out: d price / d vol, per 1.00 of vol (divide by 100 for per 1%).
        theta: float64[n], out: d price / d calendar time, per year (per day: / 365).
    """
    for i in range(kind.shape[0]):
        p, d, g, v, th = _option(kind[i], spot[i], strike[i], t[i], vol[i], rate[i],
                                 dividend[i])
        price[i] = p
        delta[i] = d
        gamma[i] = g
        vega[i] = v
        theta[i] = th


@kernel
def black76(kind, forward, strike, t, vol, rate, price, delta, gamma, vega, theta):
    """European options on a forward, future or perp price (Black 1976).

    ``price = e^(-r t) w (F N(w d1) - K N(w d2))``, ``d1 = ln(F / K) / sd + sd / 2``: the
    Black-Scholes-Merton formula with ``S = F`` and ``q = r`` (Hull 10th ed. ch. 18). Delta and
    gamma are with respect to the forward, ``delta = w e^(-r t) N(w d1)``; theta holds the
    forward fixed, ``theta = r price - e^(-r t) F n(d1) vol / (2 sqrt(t))``. Limits as in
    ``black_scholes``, on the forward.

    Args:
        kind: int64[n], CALL or PUT.
        forward: float64[n], forward / futures / perp price (> 0).
        strike: float64[n], strike price (> 0).
        t: float64[n], time to expiry in years of 365 days.
        vol: float64[n], annualised volatility of the forward (>= 0).
        rate: float64[n], continuously compounded discount rate per year.
        price: float64[n], out: option value.
        delta: float64[n], out: d price / d forward.
        gamma: float64[n], out: d2 price / d forward2.
        vega: float64[n], out: d price / d vol, per 1.00 of vol.
        theta: float64[n], out: d price / d calendar time at a fixed forward, per year.
    """
    black_scholes(kind, forward, strike, t, vol, rate, rate, price, delta, gamma, vega, theta)


@kernel
def _price_vega(w, s_disc, k_disc, log_fk, sqrt_t, vol):
    """Black-Scholes-Merton price and vega at ``vol`` from the discounted legs and ln(F/K)."""
    sd = vol * sqrt_t
    d1 = log_fk / sd + 0.5 * sd
    d2 = d1 - sd
    price = w * (s_disc * norm_cdf(w * d1) - k_disc * norm_cdf(w * d2))
    return price, s_disc * INV_SQRT_2PI * math.exp(-0.5 * d1 * d1) * sqrt_t


@kernel
def _implied_vol_one(kind, target, spot, strike, t, rate, dividend):
    """Implied volatility of one option price; NaN when there is none in the search range."""
    if kind == CALL:
        w = 1.0
    elif kind == PUT:
        w = -1.0
    else:
        return math.nan
    if not (spot > 0.0 and strike > 0.0 and t > 0.0 and target == target and rate == rate
            and dividend == dividend):
        return math.nan
    s_disc = spot * math.exp(-dividend * t)
    k_disc = strike * math.exp(-rate * t)
    # No-arbitrage bounds: the price rises strictly with vol from the discounted forward
    # intrinsic (vol 0) to the discounted underlying (call) or strike (put) as vol -> inf.
    lower = max(w * (s_disc - k_disc), 0.0)
    upper = s_disc if w > 0.0 else k_disc
    if not (lower < target < upper):
        return math.nan
    log_fk = math.log(spot / strike) + (rate - dividend) * t
    sqrt_t = math.sqrt(t)
    lo = IV_LOW
    hi = IV_HIGH
    f_lo = _price_vega(w, s_disc, k_disc, log_fk, sqrt_t, lo)[0] - target
    f_hi = _price_vega(w, s_disc, k_disc, log_fk, sqrt_t, hi)[0] - target
    if f_lo > 0.0 or f_hi < 0.0:
        return math.nan
    if f_lo == 0.0:
        return lo
    if f_hi == 0.0:
        return hi
    # Start at the price's inflection point in vol, sqrt(2 |ln(F/K)| / t): convex below it,
    # concave above, so Newton from there moves monotonically to the root (Manaster and
    # Koehler 1982). The bracket [lo, hi] shrinks on every step; a Newton step that would
    # leave it is replaced by bisection.
    vol = math.sqrt(2.0 * abs(log_fk) / t)
    if not lo < vol < hi:
        vol = 0.5 * (lo + hi) if vol >= hi else lo
    for _ in range(IV_MAX_ITERATIONS):
        price, vega = _price_vega(w, s_disc, k_disc, log_fk, sqrt_t, vol)
        gap = price - target
        if gap == 0.0:
            return vol
        if gap < 0.0:
            lo = vol
        else:
            hi = vol
        step_to = vol - gap / vega if vega > 0.0 else hi + 1.0
        if not lo < step_to < hi:
            step_to = 0.5 * (lo + hi)
        if abs(step_to - vol) <= IV_TOLERANCE * step_to:
            return step_to
        vol = step_to
    return vol


@kernel
def implied_vol(kind, price, spot, strike, t, rate, dividend, out):
    """Black-Scholes-Merton implied volatility of each option price.

    Solves ``black_scholes(vol) = price`` for vol by Newton's method on vega from the
    inflection point ``sqrt(2 |ln(F/K)| / t)``, safeguarded by bisection on
    ``[IV_LOW, IV_HIGH]`` = [1e-6, 20]. The price must lie strictly inside the no-arbitrage
    bounds ``max(w (S e^(-q t) - K e^(-r t)), 0) < price < S e^(-q t)`` (call) or
    ``K e^(-r t)`` (put).

    Args:
        kind: int64[n], CALL or PUT.
        price: float64[n], option prices.
        spot: float64[n], price of the underlying (> 0).
        strike: float64[n], strike price (> 0).
        t: float64[n], time to expiry in years of 365 days (> 0).
        rate: float64[n], continuously compounded risk-free rate per year.
        dividend: float64[n], continuous yield of the underlying per year.
        out: float64[n], out: implied vol (annualised); NaN where the price is outside the
            bounds (including equal to one), the vol would lie outside [1e-6, 20], ``t <= 0``
            or an input is invalid.
    """
    for i in range(kind.shape[0]):
        out[i] = _implied_vol_one(kind[i], price[i], spot[i], strike[i], t[i], rate[i],
                                  dividend[i])
