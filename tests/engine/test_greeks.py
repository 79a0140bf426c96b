"""Black-Scholes-Merton and Black-76 prices, Greeks and implied volatility.

Expected values come from Hull's worked examples (*Options, Futures, and Other Derivatives*,
10th ed.), from the textbook formulas written out here with ``scipy.stats.norm``, from
central finite differences of the price, from put-call parity, and from a vectorised numpy
twin on ``scipy.special.ndtr``; never from running the kernels.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr
from scipy.stats import norm

from sim.engine.greeks import CALL, PUT, black76, black_scholes, implied_vol, norm_cdf

GREEKS = ("price", "delta", "gamma", "vega", "theta")


def flat_inputs(kind, *xs):
    """Broadcast to one shape; return (shape, int64 kinds, float64 inputs), all 1-d."""
    k, *xs = np.broadcast_arrays(np.asarray(kind, dtype=np.int64),
                                 *(np.asarray(x, dtype=np.float64) for x in xs))
    k = np.atleast_1d(k)
    return k.shape, k.ravel().copy(), [np.atleast_1d(x).ravel().copy() for x in xs]


def run_bs(kind, spot, strike, t, vol, rate=0.0, dividend=0.0):
    """``black_scholes`` on broadcast inputs; returns a dict of the five outputs."""
    shape, k, xs = flat_inputs(kind, spot, strike, t, vol, rate, dividend)
    outs = [np.full(k.shape, -123.0) for _ in GREEKS]
    black_scholes(k, *xs, *outs)
    return {name: o.reshape(shape) for name, o in zip(GREEKS, outs, strict=True)}


def run_b76(kind, forward, strike, t, vol, rate=0.0):
    """``black76`` on broadcast inputs; returns a dict of the five outputs."""
    shape, k, xs = flat_inputs(kind, forward, strike, t, vol, rate)
    outs = [np.full(k.shape, -123.0) for _ in GREEKS]
    black76(k, *xs, *outs)
    return {name: o.reshape(shape) for name, o in zip(GREEKS, outs, strict=True)}


def run_iv(kind, price, spot, strike, t, rate=0.0, dividend=0.0):
    """``implied_vol`` on broadcast inputs."""
    shape, k, xs = flat_inputs(kind, price, spot, strike, t, rate, dividend)
    out = np.full(k.shape, -123.0)
    implied_vol(k, *xs, out)
    return out.reshape(shape)


def assert_close(actual, desired, rtol, scale=0.0, what=""):
    """``|actual - desired| <= rtol * max(|desired|, scale)`` elementwise.

    ``scale`` is the size of the terms ``desired`` is a sum of, where they can cancel.
    Errors below 1e-300 pass: numbers that small keep few digits (subnormals below 2e-308).
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    bound = np.maximum(rtol * np.maximum(np.abs(desired), scale), 1e-300)
    err = np.abs(actual - desired)
    worst = int(np.argmax(err / bound)) if err.size else 0
    assert np.all(err <= bound), (f"{what}: worst at {worst}: {actual.flat[worst]!r} vs "
                                  f"{desired.flat[worst]!r} (error / bound "
                                  f"{err.flat[worst] / bound.flat[worst]:.3g})")


def hull_bs(s, k, r, sigma, t, q=0.0):
    """Hull ch. 15 formulas (with Merton's yield q, ch. 17) and the Greeks of ch. 19."""
    d1 = (math.log(s / k) + (r - q + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    eq, er = math.exp(-q * t), math.exp(-r * t)
    return {
        "call": s * eq * norm.cdf(d1) - k * er * norm.cdf(d2),
        "put": k * er * norm.cdf(-d2) - s * eq * norm.cdf(-d1),
        "call_delta": eq * norm.cdf(d1),
        "gamma": eq * norm.pdf(d1) / (s * sigma * math.sqrt(t)),
        "vega": s * eq * norm.pdf(d1) * math.sqrt(t),
        "call_theta": (-s * eq * norm.pdf(d1) * sigma / (2 * math.sqrt(t))
                       + q * s * eq * norm.cdf(d1) - r * k * er * norm.cdf(d2)),
    }


def black_scholes_numpy(kind, spot, strike, t, vol, rate, dividend):
    """Plain numpy twin of ``black_scholes`` for t > 0 and vol > 0 (Haug ch. 1, w = +-1).

    Returns:
        (price, delta, gamma, vega, theta), float64 arrays.
    """
    w = np.where(kind == CALL, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    d1 = (np.log(spot / strike) + (rate - dividend + 0.5 * vol**2) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    eq = np.exp(-dividend * t)
    er = np.exp(-rate * t)
    n1 = ndtr(w * d1)
    n2 = ndtr(w * d2)
    pdf = np.exp(-0.5 * d1**2) / np.sqrt(2.0 * np.pi)
    price = w * (spot * eq * n1 - strike * er * n2)
    delta = w * eq * n1
    gamma = eq * pdf / (spot * vol * sqrt_t)
    vega = spot * eq * pdf * sqrt_t
    theta = (-spot * eq * pdf * vol / (2.0 * sqrt_t) - w * rate * strike * er * n2
             + w * dividend * spot * eq * n1)
    return price, delta, gamma, vega, theta


def random_book(seed, n):
    """Random options in the ranges of the brief: moneyness [0.3, 3], t [1 day, 3 years]."""
    rng = np.random.default_rng(seed)
    spot = rng.lognormal(np.log(2000.0), 1.0, n)
    return {
        "kind": rng.choice(np.array([CALL, PUT]), n),
        "spot": spot,
        "strike": spot * np.exp(rng.uniform(np.log(0.3), np.log(3.0), n)),
        "t": rng.uniform(1.0 / 365.0, 3.0, n),
        "vol": rng.uniform(0.05, 3.0, n),
        "rate": rng.uniform(-0.01, 0.15, n),
        "dividend": rng.uniform(0.0, 0.08, n),
    }


# --- Published numbers ---------------------------------------------------------------------


def test_hull_example_15_6_call_and_put_to_the_cent():
    # Hull 10th ed., Example 15.6: S0 = 42, K = 40, r = 0.10, sigma = 0.20, T = 0.5;
    # d1 = 0.7693, d2 = 0.6278, c = 4.76, p = 0.81.
    ref = hull_bs(42.0, 40.0, 0.10, 0.20, 0.5)
    assert round(ref["call"], 2) == 4.76 and round(ref["put"], 2) == 0.81
    got = run_bs([CALL, PUT], 42.0, 40.0, 0.5, 0.20, 0.10)
    assert round(got["price"][0], 2) == 4.76
    assert round(got["price"][1], 2) == 0.81
    assert got["price"] == pytest.approx([ref["call"], ref["put"]], rel=1e-12)


def test_hull_greeks_chapter_20_week_call():
    # Hull 10th ed., ch. 19 (Greek letters): S0 = 49, K = 50, r = 0.05, sigma = 0.20,
    # T = 20 weeks = 0.3846: BS price 2.40 (240,000 for 100,000 options), delta 0.522,
    # gamma 0.066, vega 12.1 per 1.00 of vol, theta -4.31 per year = -0.0118 per calendar
    # day. scipy (hull_bs) agrees to every printed digit.
    got = {k: v[0] for k, v in run_bs(CALL, 49.0, 50.0, 0.3846, 0.20, 0.05).items()}
    assert round(got["price"], 2) == 2.40
    assert round(got["delta"], 3) == 0.522
    assert round(got["gamma"], 3) == 0.066
    assert round(got["vega"], 1) == 12.1
    assert round(got["theta"], 2) == -4.31
    assert round(got["theta"] / 365.0, 4) == -0.0118
    ref = hull_bs(49.0, 50.0, 0.05, 0.20, 0.3846)
    assert got["price"] == pytest.approx(ref["call"], rel=1e-12)
    assert got["delta"] == pytest.approx(ref["call_delta"], rel=1e-12)
    assert got["gamma"] == pytest.approx(ref["gamma"], rel=1e-12)
    assert got["vega"] == pytest.approx(ref["vega"], rel=1e-12)
    assert got["theta"] == pytest.approx(ref["call_theta"], rel=1e-12)


def test_hull_black_model_futures_put():
    # Hull 10th ed., ch. 18 (Black's model): European put on a futures, F0 = 20, K = 20,
    # r = 0.09, T = 4/12, sigma = 0.25: d1 = 0.07217, d2 = -0.07217, p = 1.12.
    t = 4.0 / 12.0
    d1 = 0.5 * 0.25 * math.sqrt(t)
    d2 = -d1
    expected = math.exp(-0.09 * t) * (20.0 * norm.cdf(-d2) - 20.0 * norm.cdf(-d1))
    assert round(expected, 2) == 1.12
    got = run_b76(PUT, 20.0, 20.0, t, 0.25, 0.09)["price"][0]
    assert round(got, 2) == 1.12
    assert got == pytest.approx(expected, rel=1e-12)


def test_dividend_yield_matches_merton_formula():
    # Hull 10th ed. ch. 17 (Merton): S e^-qT replaces S; e.g. a staking yield q = 0.04.
    ref = hull_bs(2000.0, 2200.0, 0.05, 0.8, 0.25, q=0.04)
    got = run_bs(CALL, 2000.0, 2200.0, 0.25, 0.8, 0.05, 0.04)
    for name, key in (("price", "call"), ("delta", "call_delta"), ("gamma", "gamma"),
                      ("vega", "vega"), ("theta", "call_theta")):
        assert got[name][0] == pytest.approx(ref[key], rel=1e-12), name


# --- norm_cdf --------------------------------------------------------------------------------


# N(x) for x < 0 from the asymptotic series n(x) / |x| * sum_k (-1)^k (2k - 1)!! / x^(2k),
# summed in 40-digit decimal arithmetic (the series converges fast enough at |x| >= 10).
# scipy's ndtr is off by ~6e-14 at -30 and returns 0 at -38.
TAIL = [(-10.0, 7.619853024160526e-24), (-30.0, 4.906713927148187e-198),
        (-38.0, 2.885428360068784e-316)]


@pytest.mark.parametrize(("x", "expected"), TAIL)
def test_norm_cdf_keeps_relative_accuracy_in_the_lower_tail(x, expected):
    # -38 is subnormal: only ~9 significant digits exist there.
    rel = 1e-13 if expected > 1e-300 else 1e-8
    assert norm_cdf(x) == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("x", [-8.0, -1.96, -0.5, 0.0, 0.3, 1.96, 8.0])
def test_norm_cdf_matches_scipy_in_the_body(x):
    assert norm_cdf(x) == pytest.approx(ndtr(x), rel=1e-14)
    assert norm_cdf(x) + norm_cdf(-x) == pytest.approx(1.0, abs=1e-15)


def test_norm_cdf_known_values():
    assert norm_cdf(0.0) == 0.5
    assert norm_cdf(1.959963984540054) == pytest.approx(0.975, rel=1e-15)
    assert norm_cdf(-40.0) == 0.0 and norm_cdf(40.0) == 1.0
    assert norm_cdf(-math.inf) == 0.0 and norm_cdf(math.inf) == 1.0


# --- Numpy twin ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_numpy_twin_on_random_books(seed):
    b = random_book(seed, 20_000)
    got = run_bs(**b)
    want = black_scholes_numpy(*b.values())
    price, delta, gamma, vega, theta = want
    # 1e-12 relative to the terms each output is a sum of: the price is the difference of
    # the legs S e^-qt N(w d1) = |delta| S and K e^-rt N(w d2), which cancel far out of the
    # money (a price of 1e-229 from legs of 1e-227); theta adds three terms of either sign.
    leg = np.abs(delta) * b["spot"]
    theta_terms = vega * b["vol"] / (2 * b["t"]) + (np.abs(b["rate"]) + b["dividend"]) * leg
    assert_close(got["price"], price, 1e-12, scale=leg, what="price")
    assert_close(got["theta"], theta, 1e-12, scale=theta_terms, what="theta")
    # The others are products: 1e-12 relative.
    for name, w in (("delta", delta), ("gamma", gamma), ("vega", vega)):
        assert_close(got[name], w, 1e-12, what=name)


# --- Finite differences ----------------------------------------------------------------------

options = st.fixed_dictionaries({
    "kind": st.sampled_from([CALL, PUT]),
    "spot": st.floats(1.0, 1e5),
    "moneyness": st.floats(0.3, 3.0),
    "t": st.floats(1.0 / 365.0, 3.0),
    "vol": st.floats(0.05, 3.0),
    "rate": st.floats(-0.01, 0.15),
    "dividend": st.floats(0.0, 0.08),
})


def bumped_prices(model, o, bumps):
    """Prices of the option under each (d_spot, d_vol, d_t) bump, in one kernel call."""
    d_s, d_v, d_t = (np.array(b) for b in zip(*bumps, strict=True))
    strike = o["spot"] * o["moneyness"]
    if model == "bs":
        return run_bs(o["kind"], o["spot"] + d_s, strike, o["t"] + d_t, o["vol"] + d_v,
                      o["rate"], o["dividend"])
    return run_b76(o["kind"], o["spot"] + d_s, strike, o["t"] + d_t, o["vol"] + d_v,
                   o["rate"])


@pytest.mark.parametrize("model", ["bs", "b76"])
@settings(deadline=None, max_examples=150)
@given(o=options)
def test_greeks_are_central_differences_of_the_price(model, o):
    s, sd = o["spot"], o["vol"] * math.sqrt(o["t"])
    q = o["dividend"] if model == "bs" else o["rate"]
    h_delta, h_gamma = 1e-4 * s * sd, 1e-3 * s * sd  # fractions of one standard deviation
    h_vol, h_t = 1e-4 * o["vol"], 1e-4 * o["t"]
    res = bumped_prices(model, o, [(0, 0, 0), (h_delta, 0, 0), (-h_delta, 0, 0),
                                   (h_gamma, 0, 0), (-h_gamma, 0, 0), (0, h_vol, 0),
                                   (0, -h_vol, 0), (0, 0, h_t), (0, 0, -h_t)])
    p = res["price"]
    fd_delta = (p[1] - p[2]) / (2 * h_delta)
    fd_gamma = (p[3] - 2 * p[0] + p[4]) / h_gamma**2
    fd_vega = (p[5] - p[6]) / (2 * h_vol)
    fd_theta = (p[8] - p[7]) / (2 * h_t)  # calendar time runs against time to expiry
    # Errors in each Greek's natural unit: delta in 1, gamma in 1 / (S sd) (the at-the-money
    # size), vega in S sqrt(t), theta in the size of its three terms. Truncation ~ (bump)^2,
    # rounding ~ 1e-16 price / bump: both below ~1e-7 of the unit here.
    assert abs(fd_delta - res["delta"][0]) <= 1e-6
    assert abs(fd_gamma - res["gamma"][0]) * s * sd <= 1e-5
    assert abs(fd_vega - res["vega"][0]) <= 1e-6 * s * math.sqrt(o["t"])
    strike = s * o["moneyness"]
    theta_unit = s * o["vol"] / math.sqrt(o["t"]) + abs(o["rate"]) * strike + q * s
    assert abs(fd_theta - res["theta"][0]) <= 1e-6 * theta_unit


def test_theta_sign_and_vega_units_on_a_long_call():
    # Hull's 20-week call: raising vol from 0.20 to 0.21 adds ~ vega * 0.01 = 0.121 (per-1.00
    # vega, not per 1%); one calendar day later the option is worth ~ theta / 365 less.
    base = run_bs(CALL, 49.0, 50.0, 0.3846, 0.20, 0.05)
    up = run_bs(CALL, 49.0, 50.0, 0.3846, 0.21, 0.05)
    later = run_bs(CALL, 49.0, 50.0, 0.3846 - 1.0 / 365.0, 0.20, 0.05)
    assert up["price"][0] - base["price"][0] == pytest.approx(0.01 * base["vega"][0], rel=1e-2)
    assert base["theta"][0] < 0
    assert later["price"][0] - base["price"][0] == pytest.approx(base["theta"][0] / 365.0,
                                                                 rel=1e-2)


# --- Parity and the two models -----------------------------------------------------------------


def mixed_book(seed, n=5_000):
    """A random book with some expired (t = 0) and deterministic (vol = 0) options."""
    b = random_book(seed, n)
    rng = np.random.default_rng(seed + 100)
    b["t"] = np.where(rng.random(n) < 0.1, 0.0, b["t"])
    b["vol"] = np.where(rng.random(n) < 0.1, 0.0, b["vol"])
    b["strike"] = np.where(rng.random(n) < 0.05, b["spot"], b["strike"])  # at the money
    return b


@pytest.mark.parametrize("seed", [3, 4])
def test_put_call_parity_black_scholes(seed):
    # c - p = S e^-qt - K e^-rt (Hull ch. 17); so delta_c - delta_p = e^-qt, equal gamma
    # and vega, theta_c - theta_p = q S e^-qt - r K e^-rt. At t = 0 and vol = 0 too.
    b = mixed_book(seed)
    calls = run_bs(**{**b, "kind": np.full(len(b["t"]), CALL)})
    puts = run_bs(**{**b, "kind": np.full(len(b["t"]), PUT)})
    s_disc = b["spot"] * np.exp(-b["dividend"] * b["t"])
    k_disc = b["strike"] * np.exp(-b["rate"] * b["t"])
    scale = b["spot"] + b["strike"]
    np.testing.assert_allclose(calls["price"] - puts["price"], s_disc - k_disc,
                               rtol=0, atol=1e-12 * scale.max())
    np.testing.assert_allclose(calls["delta"] - puts["delta"], np.exp(-b["dividend"] * b["t"]),
                               rtol=0, atol=1e-14)
    np.testing.assert_array_equal(calls["gamma"], puts["gamma"])
    np.testing.assert_array_equal(calls["vega"], puts["vega"])
    theta_diff = np.where(b["t"] > 0, b["dividend"] * s_disc - b["rate"] * k_disc, 0.0)
    np.testing.assert_allclose(calls["theta"] - puts["theta"], theta_diff, rtol=0,
                               atol=1e-12 * scale.max())


@pytest.mark.parametrize("seed", [5, 6])
def test_put_call_parity_black76(seed):
    # c - p = e^-rt (F - K) (Hull ch. 18); delta_c - delta_p = e^-rt; theta_c - theta_p =
    # r e^-rt (F - K) (the forward held fixed).
    b = mixed_book(seed)
    n = len(b["t"])
    args = (b["spot"], b["strike"], b["t"], b["vol"], b["rate"])
    calls = run_b76(np.full(n, CALL), *args)
    puts = run_b76(np.full(n, PUT), *args)
    disc = np.exp(-b["rate"] * b["t"])
    atol = 1e-12 * (b["spot"] + b["strike"]).max()
    np.testing.assert_allclose(calls["price"] - puts["price"], disc * (b["spot"] - b["strike"]),
                               rtol=0, atol=atol)
    np.testing.assert_allclose(calls["delta"] - puts["delta"], np.where(b["t"] > 0, disc, 1.0),
                               rtol=0, atol=1e-14)
    np.testing.assert_array_equal(calls["gamma"], puts["gamma"])
    theta_diff = np.where(b["t"] > 0, b["rate"] * disc * (b["spot"] - b["strike"]), 0.0)
    np.testing.assert_allclose(calls["theta"] - puts["theta"], theta_diff, rtol=0, atol=atol)


@pytest.mark.parametrize("seed", [7, 8])
def test_black_scholes_is_black76_on_the_forward(seed):
    # F = S e^((r - q) t): the BSM price is Black-76's on F (Hull ch. 18), dF/dS = e^((r-q)t),
    # so delta_S = e^((r-q)t) delta_F and gamma_S = e^(2(r-q)t) gamma_F; vega is the same.
    b = random_book(seed, 5_000)
    growth = np.exp((b["rate"] - b["dividend"]) * b["t"])
    bs = run_bs(**b)
    b76 = run_b76(b["kind"], b["spot"] * growth, b["strike"], b["t"], b["vol"], b["rate"])
    # Relative to the legs for the price (see the numpy-twin test for why).
    assert_close(bs["price"], b76["price"], 1e-12, scale=np.abs(bs["delta"]) * b["spot"],
                 what="price")
    assert_close(bs["delta"], growth * b76["delta"], 1e-12, what="delta")
    assert_close(bs["gamma"], growth**2 * b76["gamma"], 1e-12, what="gamma")
    assert_close(bs["vega"], b76["vega"], 1e-12, what="vega")


@pytest.mark.parametrize("seed", [9])
def test_with_dividend_equal_to_rate_every_greek_is_black76(seed):
    # q = r makes F = S at every t, so theta (S fixed) is Black-76's theta (F fixed) as well.
    b = random_book(seed, 5_000)
    bs = run_bs(**{**b, "dividend": b["rate"]})
    b76 = run_b76(b["kind"], b["spot"], b["strike"], b["t"], b["vol"], b["rate"])
    for name in GREEKS:
        np.testing.assert_array_equal(bs[name], b76[name], err_msg=name)


# --- Limits and edge cases -----------------------------------------------------------------


def test_expired_options_are_worth_intrinsic_with_right_limit_deltas():
    # t = 0: payoff max(w (S - K), 0); call delta 1 if S > K else 0 (0 at the money, not 0.5),
    # put delta = call delta - 1; no gamma, vega or theta. Negative t counts as expired.
    spot = np.array([120.0, 80.0, 100.0, 120.0, 80.0, 100.0, 120.0])
    kind = np.array([CALL, CALL, CALL, PUT, PUT, PUT, CALL])
    t = np.array([0.0] * 6 + [-0.1])
    got = run_bs(kind, spot, 100.0, t, 0.8, 0.05, 0.03)
    np.testing.assert_array_equal(got["price"], [20.0, 0.0, 0.0, 0.0, 20.0, 0.0, 20.0])
    np.testing.assert_array_equal(got["delta"], [1.0, 0.0, 0.0, 0.0, -1.0, -1.0, 1.0])
    for name in ("gamma", "vega", "theta"):
        np.testing.assert_array_equal(got[name], 0.0)
    b76 = run_b76(kind, spot, 100.0, t, 0.8, 0.05)
    for name in GREEKS:
        np.testing.assert_array_equal(b76[name], got[name])


def test_zero_vol_is_the_discounted_forward_intrinsic():
    # vol = 0: the forward F = S e^((r-q)t) is certain. S = 100, K = 95, r = 0.05, q = 0.02,
    # t = 0.5: S e^-qt = 100 * 0.990050 = 99.004983, K e^-rt = 95 * 0.975310 = 92.654442,
    # call = 6.350542, put = 0; delta = e^-qt = 0.990050;
    # theta = q S e^-qt - r K e^-rt = 1.980100 - 4.632722 = -2.652622.
    s_disc, k_disc = 100.0 * math.exp(-0.01), 95.0 * math.exp(-0.025)
    got = run_bs([CALL, PUT], 100.0, 95.0, 0.5, 0.0, 0.05, 0.02)
    assert got["price"] == pytest.approx([s_disc - k_disc, 0.0], abs=1e-13)
    assert got["price"][0] == pytest.approx(6.350542, abs=1e-6)
    assert got["theta"][0] == pytest.approx(-2.652622, abs=1e-6)
    assert got["delta"] == pytest.approx([math.exp(-0.01), 0.0], abs=1e-15)
    assert got["theta"] == pytest.approx([0.02 * s_disc - 0.05 * k_disc, 0.0], abs=1e-13)
    np.testing.assert_array_equal(got["gamma"], 0.0)
    np.testing.assert_array_equal(got["vega"], 0.0)
    # Out of the money on the forward (K = 105 > F = 101.5): the put has it all.
    put = run_bs(PUT, 100.0, 105.0, 0.5, 0.0, 0.05, 0.02)
    assert put["price"][0] == pytest.approx(105.0 * math.exp(-0.025) - s_disc, abs=1e-13)
    assert put["delta"][0] == pytest.approx(-math.exp(-0.01), abs=1e-15)
    # The limit of a small vol agrees (away from the money).
    small = run_bs([CALL, PUT], 100.0, [95.0, 105.0], 0.5, 1e-4, 0.05, 0.02)
    assert small["price"] == pytest.approx([got["price"][0], put["price"][0]], rel=1e-12)


def test_zero_vol_at_the_forward_has_the_one_sided_vega():
    # F = K (r = q, S = K): price(vol) ~ S e^-qt vol sqrt(t) n(0) for small vol, so the vega
    # at vol = 0 is S e^-qt sqrt(t) / sqrt(2 pi); the price is 0 and the call delta 0.
    got = run_bs([CALL, PUT], 100.0, 100.0, 0.25, 0.0, 0.03, 0.03)
    expected = 100.0 * math.exp(-0.0075) * 0.5 / math.sqrt(2.0 * math.pi)
    assert got["vega"] == pytest.approx([expected, expected], rel=1e-15)
    np.testing.assert_array_equal(got["price"], 0.0)
    assert got["delta"] == pytest.approx([0.0, -math.exp(-0.0075)], abs=1e-15)
    tiny = run_bs(CALL, 100.0, 100.0, 0.25, 1e-8, 0.03, 0.03)
    assert tiny["price"][0] / 1e-8 == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", [CALL, PUT])
def test_deep_in_and_out_of_the_money_stay_finite_and_bounded(kind):
    # Moneyness 1e-12 .. 1e12, vol 1e-6 .. 10, t 1 minute .. 50 years: d1 up to ~1e13.
    spot = 1000.0
    strike = spot * np.logspace(-12, 12, 49)[:, None, None]
    vol = np.array([1e-6, 0.01, 1.0, 10.0])[None, :, None]
    t = np.array([1.0 / 525_600, 1.0, 50.0])[None, None, :]
    shape = np.broadcast_shapes(strike.shape, vol.shape, t.shape)
    got = run_bs(np.full(shape, kind), spot, strike, t, vol, 0.05, 0.02)
    for name in GREEKS:
        assert np.all(np.isfinite(got[name])), name
    s_disc = spot * np.exp(-0.02 * t)
    k_disc = strike * np.exp(-0.05 * t)
    w = 1.0 if kind == CALL else -1.0
    lower = np.maximum(w * (s_disc - k_disc), 0.0)
    upper = s_disc if kind == CALL else k_disc
    tol = 1e-12 * np.maximum(s_disc, k_disc)
    assert np.all(got["price"] >= lower - tol) and np.all(got["price"] <= upper + tol)
    assert np.all(w * got["delta"] >= 0.0) and np.all(w * got["delta"] <= np.exp(-0.02 * t))
    assert np.all(got["gamma"] >= 0.0) and np.all(got["vega"] >= 0.0)


def test_price_never_rounds_below_zero():
    # Strike one ulp above spot, vol 1e-16: the legs are ~50 each and equal to within an ulp,
    # so S N(d1) - K N(d2) evaluates to -3.6e-15 (or -1.4e-17 at two ulps); the true value is
    # positive and tiny.
    strike = np.array([np.nextafter(100.0, 200.0), np.nextafter(np.nextafter(100.0, 200.0),
                                                                200.0)])
    got = run_bs(CALL, 100.0, strike, 1.0, 1e-16)["price"]
    assert np.all(got >= 0.0) and np.all(got < 1e-12)


def test_empty_arrays():
    e, ei = np.empty(0), np.empty(0, dtype=np.int64)
    black_scholes(ei, e, e, e, e, e, e, e, e, e, e, e)
    black76(ei, e, e, e, e, e, e, e, e, e, e)
    implied_vol(ei, e, e, e, e, e, e, e)
    assert run_bs([], [], [], [], [])["price"].shape == (0,)


def test_invalid_inputs_give_nan():
    kind = [0, CALL, CALL, CALL, PUT, CALL]
    spot = [100.0, -1.0, 100.0, 100.0, 100.0, np.nan]
    strike = [100.0, 100.0, 0.0, 100.0, 100.0, 100.0]
    vol = [0.5, 0.5, 0.5, -0.1, np.nan, 0.5]
    got = run_bs(kind, spot, strike, 0.5, vol)
    for name in GREEKS:
        assert np.all(np.isnan(got[name])), name
    assert np.isnan(run_bs(CALL, 100.0, 100.0, np.nan, 0.5)["price"][0])
    assert np.isnan(run_bs(CALL, 100.0, 100.0, 0.5, 0.5, np.nan)["price"][0])


# --- Implied volatility ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [10, 11])
def test_implied_vol_inverts_black_scholes(seed):
    b = random_book(seed, 20_000)
    got = run_bs(**b)
    iv = run_iv(b["kind"], got["price"], b["spot"], b["strike"], b["t"], b["rate"],
                b["dividend"])
    # Where a 1% vol move changes the price by more than 1e-6 of spot, price rounding moves
    # the vol by < 1e-16 S / vega << 1e-8.
    sensitive = got["vega"] > 1e-4 * b["spot"]
    assert sensitive.mean() > 0.5
    np.testing.assert_allclose(iv[sensitive], b["vol"][sensitive], rtol=0, atol=1e-8)
    # Elsewhere the vol is NaN only when the time value is lost in rounding (price at its
    # lower bound), and any vol returned reprices the option.
    found = ~np.isnan(iv)
    assert found.mean() > 0.9
    again = run_bs(b["kind"][found], b["spot"][found], b["strike"][found], b["t"][found],
                   iv[found], b["rate"][found], b["dividend"][found])
    np.testing.assert_allclose(again["price"], got["price"][found], rtol=0,
                               atol=1e-12 * b["spot"][found].max())


def test_implied_vol_of_hull_example():
    # Hull Example 15.6 prices, computed from the formula: the vol is 0.20.
    ref = hull_bs(42.0, 40.0, 0.10, 0.20, 0.5)
    iv = run_iv([CALL, PUT], [ref["call"], ref["put"]], 42.0, 40.0, 0.5, 0.10)
    assert iv == pytest.approx([0.2, 0.2], abs=1e-12)


def test_implied_vol_is_nan_outside_the_no_arbitrage_bounds():
    # S = 100, K = 90, r = 0.05, q = 0.01, t = 1: S e^-q = 99.004983, K e^-r = 85.610443.
    # Call bounds (13.394540, 99.004983); put bounds (0, 85.610443).
    s_disc, k_disc = 100.0 * math.exp(-0.01), 90.0 * math.exp(-0.05)
    kind = [CALL, CALL, CALL, PUT, PUT, PUT, CALL]
    price = [s_disc - k_disc - 0.01,   # below the call's lower bound
             s_disc + 0.01,            # above the underlying
             s_disc - k_disc,          # exactly the lower bound: vol 0, outside [1e-6, 20]
             -0.01,                    # negative put
             k_disc + 0.01,            # above the discounted strike
             0.0,                      # put at its lower bound
             20.0]                     # a valid call price
    iv = run_iv(kind, price, 100.0, 90.0, 1.0, 0.05, 0.01)
    assert np.all(np.isnan(iv[:6]))
    assert 0.0 < iv[6] < 1.0
    # Expired, invalid kind or NaN price.
    assert np.all(np.isnan(run_iv([CALL, 0, CALL], [5.0, 5.0, np.nan], 100.0, 100.0,
                                  [0.0, 1.0, 1.0])))


def test_implied_vol_finds_extreme_vols_in_the_search_range():
    # 1,500% and 0.5% vol, priced by the formula written out here, come back.
    for vol in (15.0, 0.005):
        ref = hull_bs(100.0, 100.0, 0.0, vol, 0.1)
        assert run_iv(CALL, ref["call"], 100.0, 100.0, 0.1)[0] == pytest.approx(vol, rel=1e-9)
    # A vol above 20 is outside the search range.
    ref = hull_bs(100.0, 100.0, 0.0, 30.0, 0.1)
    assert np.isnan(run_iv(CALL, ref["call"], 100.0, 100.0, 0.1)[0])
