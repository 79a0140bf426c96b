"""Options protocol: the volatility surface by hand, premiums from Black-Scholes with the
surface's volatility (checked with scipy), cash settlement at expiry, vault shortfalls."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from sim.engine.greeks import CALL, PUT
from sim.protocols.errors import ProtocolError
from sim.protocols.options import HOURS_PER_YEAR, OptionsProtocols, VolSurface

ETH, USDC = 0, 1
T_REF = 30.0 / 365.0


def surface():
    return VolSurface([0.8, 0.0001], skew=[-0.1, 0.0], term=[-0.1, 0.0],
                      term_ref_years=T_REF, reaction_hours=24.0, premium=[0.05, 0.0])


def test_surface_by_hand():
    s = surface()
    # ATM at T_ref: the level itself.
    assert s.vol(ETH, 2000.0, 2000.0, T_REF)[()] == pytest.approx(0.8)
    # Skew: 0.8 - 0.1 ln(0.9) / sqrt(30/365) = 0.8 + 0.0367504 (0.9 strike: puts dearer).
    assert s.vol(ETH, 1800.0, 2000.0, T_REF)[()] == pytest.approx(
        0.8 - 0.1 * math.log(0.9) / math.sqrt(T_REF), rel=1e-12)
    assert s.vol(ETH, 1800.0, 2000.0, T_REF)[()] == pytest.approx(0.83675, abs=1e-5)
    # Term: 0.8 (4 T_ref / T_ref)^-0.1 = 0.8 x 0.870551 = 0.696440.
    assert s.vol(ETH, 2000.0, 2000.0, 4 * T_REF)[()] == pytest.approx(0.696440, abs=1e-6)
    # The floor.
    assert s.vol(USDC, 1.0, 1.0, T_REF)[()] == pytest.approx(0.05)


def test_atm_reacts_to_realised_volatility():
    # EWMA: weight 1 - exp(-24/24) = 0.632121; 0.8 + 0.632121 (1.2 + 0.05 - 0.8) = 1.084454.
    s = surface()
    s.react(np.array([1.2, 0.0]), 24.0)
    assert s.atm[ETH] == pytest.approx(0.8 + (1 - math.exp(-1)) * 0.45, rel=1e-12)
    assert s.atm[ETH] == pytest.approx(1.084454, abs=1e-6)


def bs_call(s, k, t, vol, r=0.0):
    d1 = (math.log(s / k) + (r + vol * vol / 2) * t) / (vol * math.sqrt(t))
    return s * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d1 - vol * math.sqrt(t))


def bs_put(s, k, t, vol, r=0.0):
    return bs_call(s, k, t, vol, r) - s + k * math.exp(-r * t)  # put-call parity


def test_premium_is_black_scholes_at_the_surface_vol_and_goes_to_the_vault():
    opts = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[1e6], surface=surface())
    price = np.array([2000.0, 1.0])
    expiry = 30 * 24.0  # hours
    rows, premium = opts.trade([7, 8], 0, ETH, [CALL, PUT], [2200.0, 1800.0], expiry,
                               [2.0, -1.0], price=price, now_hours=0.0)
    t = expiry / HOURS_PER_YEAR
    vol_c = 0.8 - 0.1 * math.log(1.1) / math.sqrt(t)
    vol_p = 0.8 - 0.1 * math.log(0.9) / math.sqrt(t)
    assert premium[0] == pytest.approx(2 * bs_call(2000.0, 2200.0, t, vol_c), rel=1e-9)
    assert premium[1] == pytest.approx(-bs_put(2000.0, 1800.0, t, vol_p), rel=1e-9)
    assert opts.vault[0] == pytest.approx(1e6 + premium.sum())


def test_cash_settlement_at_expiry():
    # At expiry S = 2,500: the long 2 calls at 2,200 get 2 x 300 = 600; the written put at
    # 1,800 expires worthless and its 1,800 of collateral comes back; the written put at
    # 2,600 owes 100 to the vault out of its 2,600 of collateral, and gets 2,500 back.
    opts = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[1e4], surface=surface())
    price = np.array([2000.0, 1.0])
    opts.trade([1, 2, 3], 0, ETH, [CALL, PUT, PUT], [2200.0, 1800.0, 2600.0], 24.0,
               [2.0, -1.0, -1.0], price=price, now_hours=0.0)
    np.testing.assert_allclose(opts.book.collateral, [0.0, 1800.0, 2600.0])
    np.testing.assert_allclose(opts.held(2), [0.0, opts.vault[0] + 4400.0])
    vault = opts.vault[0]
    rows, paid = opts.settle(np.array([2500.0, 1.0]), now_hours=12.0)
    assert len(rows) == 0  # not expired yet
    rows, paid = opts.settle(np.array([2500.0, 1.0]), now_hours=24.0)
    np.testing.assert_allclose(paid, [600.0, 1800.0, 2500.0])
    assert opts.vault[0] == pytest.approx(vault - 600.0 + 100.0)
    assert np.all(opts.book.size == 0) and np.all(opts.book.collateral == 0)
    assert opts.settle(np.array([2500.0, 1.0]), now_hours=48.0)[0].size == 0  # once only


def test_written_calls_are_refused():
    opts = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[1e4], surface=surface())
    with pytest.raises(ProtocolError, match="cash-secured put"):
        opts.trade(1, 0, ETH, CALL, 2200.0, 24.0, -1.0, price=np.array([2000.0, 1.0]),
                   now_hours=0.0)


def test_a_vault_short_of_funds_pays_pro_rata_and_books_bad_debt():
    opts = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[0.0], surface=surface())
    opts.trade([1, 2], 0, ETH, CALL, 2000.0, 24.0, [1.0, 3.0], price=np.array([2000.0, 1.0]),
               now_hours=0.0)
    can = opts.vault[0]  # the premiums it took
    _, paid = opts.settle(np.array([3000.0, 1.0]), now_hours=24.0)
    # owed 1,000 and 3,000; it has `can`: each gets can / 4,000 of its due
    np.testing.assert_allclose(paid, np.array([1000.0, 3000.0]) * can / 4000.0)
    assert opts.bad_debt[0] == pytest.approx(4000.0 - can)
    assert opts.vault[0] == pytest.approx(0.0, abs=1e-9)


def test_bad_trades_are_refused():
    opts = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[0.0], surface=surface())
    price = np.array([2000.0, 1.0])
    for kwargs in (dict(kind=3, expiry_hours=24.0, size=1.0, strike=2000.0),
                   dict(kind=CALL, expiry_hours=0.0, size=1.0, strike=2000.0),
                   dict(kind=CALL, expiry_hours=24.0, size=0.0, strike=2000.0),
                   dict(kind=CALL, expiry_hours=24.0, size=1.0, strike=-1.0)):
        with pytest.raises(ProtocolError):
            opts.trade(1, 0, ETH, price=price, now_hours=0.0, **kwargs)


def atm_vega(s, t, vol):
    """Black-Scholes vega of an at-the-money option (no rate): S phi(d1) sqrt(T), with
    d1 = vol sqrt(T) / 2 (Hull, ch. 19)."""
    d1 = vol * math.sqrt(t) / 2.0
    return s * norm.pdf(d1) * math.sqrt(t)


def test_vault_vega_limit_fills_trades_in_order_and_takes_the_ones_that_reduce_it():
    # ATM puts on ETH at 2,000, 7 days, surface vol 0.8 at 7 days (term -0.1: 0.8 (7/30)^-0.1).
    # Each trade buys 10 puts: the vault's vega per vol point falls by 10 x vega / 100. With a
    # limit of 2.5 trades' worth, the first two are taken, the third refused (premium 0, size
    # 0), and a writer's 10 puts (which give the vault vega back) are taken.
    t = 7 * 24.0 / HOURS_PER_YEAR
    vol = 0.8 * (t / T_REF) ** -0.1
    per_trade = 10 * atm_vega(2000.0, t, vol) / 100.0
    o = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[1e6], surface=surface(),
                         vega_limit=[2.5 * per_trade])
    price = np.array([2000.0, 1.0])
    rows, premium = o.trade(np.arange(3), 0, ETH, PUT, 2000.0, 168.0, [10.0, 10.0, 10.0],
                            price=price, now_hours=0.0)
    assert list(o.book.size[rows]) == [10.0, 10.0, 0.0]
    assert premium[2] == 0.0 and premium[0] > 0
    _, vega = o.risk(0, price, 0.0, 2)
    assert vega[ETH] == pytest.approx(-2 * per_trade, rel=1e-9)
    back, paid = o.trade([3], 0, ETH, PUT, 2000.0, 168.0, [-10.0], price=price,
                         now_hours=0.0)
    assert o.book.size[back.start] == -10.0  # reduces |vega|: taken though 1 trade from 0
    assert o.risk(0, price, 0.0, 2)[1][ETH] == pytest.approx(-per_trade, rel=1e-9)
    # The vault received the premiums of the two options it sold and paid the writer's.
    assert paid[0] == pytest.approx(-premium[0])
    assert o.vault[0] == pytest.approx(1e6 + premium[:2].sum() + paid[0])


def test_options_on_a_perp_are_black_76_on_its_mark_and_settle_at_it():
    # Black-76 call (Hull, ch. 18): e^{-rT} (F N(d1) - K N(d2)), d1 = (ln(F/K) + vol^2 T/2)
    # / (vol sqrt T). The perp's mark F = 2,100 while spot is 2,000 (rate 5%): the call on the
    # perp is priced on 2,100, and settles at the mark, not at spot.
    o = OptionsProtocols(["lyra"], settlement_asset=[USDC], vault=[1e6], surface=surface(),
                         rate=0.05)
    o.forward = np.array([2100.0, 1.0])
    spot = np.array([2000.0, 1.0])
    rows, premium = o.trade([0], 0, ETH, CALL, 2000.0, 720.0, [1.0], price=spot,
                            now_hours=0.0, on_forward=True)
    t = 720.0 / HOURS_PER_YEAR
    vol = o.surface.vol(ETH, 2000.0, 2100.0, t)[()]
    d1 = (math.log(2100.0 / 2000.0) + vol ** 2 * t / 2) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    want = math.exp(-0.05 * t) * (2100.0 * norm.cdf(d1) - 2000.0 * norm.cdf(d2))
    assert premium[0] == pytest.approx(want, rel=1e-9)
    o.forward = np.array([2300.0, 1.0])
    _, paid = o.settle(spot, 720.0)
    assert paid[0] == pytest.approx(300.0)  # max(2,300 - 2,000, 0): the mark, not spot
