"""Maker-style CDPs: Dog.bark, Clipper Dutch auctions, Flipper English auctions, the ledger.

Sources: makerdao/dss dog.sol, clip.sol, abaci.sol, flip.sol, vat.sol, jug.sol. Parameters:
ETH-A mat 1.5, chop 1.13; ETH-B cut 0.99 per 90 s, buf 1.3, cusp 0.4, tail 8,400 s
(shared/reference/protocols.md). Expected values are hand calculations written beside them.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import cdp as kern
from sim.protocols.amm import Pools
from sim.protocols.cdp import CDPs
from sim.protocols.errors import ProtocolError
from tests import reference as ref

ETH, DAI = 0, 1
ETH_A = dict(protocol=0, asset=ETH, liquidation_ratio=1.5, liquidation_penalty=0.13)


def maker(big_hole=np.inf, **ilk):
    return CDPs(["maker"], [DAI], 2, [{**ETH_A, **ilk}], [big_hole])


def venue_pool(reserve_eth, reserve_dai):
    """One constant-product ETH/DAI pool (fee 0.3%), the auctions' venue."""
    return Pools(["eth_dai"], [ETH], [DAI], [reserve_eth], [reserve_dai], [0.003])


def prices(eth, dai=1.0):
    return np.array([eth, dai])


def keepers(balance, gas, min_profit, order=None):
    balance = np.asarray(balance, dtype=np.float64)
    gas = np.asarray(gas, dtype=np.float64)
    return SimpleNamespace(balance=balance, gas_cost=gas,
                           min_profit=np.asarray(min_profit, dtype=np.float64),
                           order=np.arange(len(gas)) if order is None else np.asarray(order))


def vault_10_eth_15k(c, eth_at_open=3000.0):
    rows, _ = c.open_vaults([0], [0], [10.0], [15_000.0], prices(eth_at_open))
    return rows


# --- Vat.frob rules and Jug.drip ------------------------------------------------------------


def test_open_checks_safety_dust_and_ceiling():
    c = maker(dust=1_000.0, debt_ceiling=20_000.0)
    # Safe: 10 ETH * 2,250 / 1.5 = 15,000 >= 15,000.
    _, minted = c.open_vaults([0], [0], [10.0], [15_000.0], prices(2250.0))
    assert minted == pytest.approx([15_000.0])
    with pytest.raises(ProtocolError, match="unsafe"):
        c.open_vaults([1], [0], [1.0], [2_000.0], prices(2250.0))  # limit 1,500
    with pytest.raises(ProtocolError, match="dust"):
        c.open_vaults([1], [0], [1.0], [500.0], prices(2250.0))
    with pytest.raises(ProtocolError, match="ceiling"):
        c.open_vaults([1], [0], [10.0], [6_000.0], prices(2250.0))  # 21,000 > line 20,000


def test_drip_compounds_the_annual_fee_into_debt_and_surplus():
    c = maker(stability_fee=0.05)
    rows = vault_10_eth_15k(c)
    # Jug.drip over a 365-day year: rate = 1.05^(8760 h / 8760 h); debt 15,000 -> 15,750.
    c.drip(24.0 * 365)
    assert c.debt_of(rows) == pytest.approx([15_750.0])
    assert c.surplus == pytest.approx([750.0])
    # Half a year more: 1.05^1.5 = 1.0759298 -> 16,138.95.
    c.drip(24.0 * 182.5)
    assert c.debt_of(rows) == pytest.approx([15_000.0 * 1.05**1.5])
    lhs, rhs = c.ledger()
    assert lhs == pytest.approx(rhs)


def test_repay_and_collateral_moves_respect_dust_and_safety():
    c = maker(dust=1_000.0)
    rows = vault_10_eth_15k(c)
    with pytest.raises(ProtocolError, match="dusty"):
        c.repay(rows, [14_500.0])  # would leave 500 < dust
    c.repay(rows, [5_000.0])
    assert c.debt_of(rows) == pytest.approx([10_000.0])
    # 10,000 * 1.5 / 3,000 = 5 ETH must stay: freeing 5 is fine, 5.01 is not.
    with pytest.raises(ProtocolError, match="unsafe"):
        c.remove_collateral(rows, [5.01], prices(3000.0))
    c.remove_collateral(rows, [5.0], prices(3000.0))
    c.add_collateral(rows, [1.0])
    assert c.vaults.ink[rows] == pytest.approx([6.0])
    assert c.outstanding() == pytest.approx([10_000.0])


# --- Dog.bark -------------------------------------------------------------------------------
# 10 ETH, 15,000 DAI, oracle 2,000: 20,000 < 15,000 * 1.5 = 22,500, unsafe.


def test_safe_vault_is_not_barked():
    c = maker()
    vault_10_eth_15k(c)
    assert c.bark(0.0, prices(2250.0)) == 0  # 22,500 == 22,500 is not < : safe


def test_bark_whole_vault_with_chop():
    c = maker()
    rows = vault_10_eth_15k(c)
    assert c.bark(0.0, prices(2000.0)) == 1
    a = c.auctions
    # tab = 15,000 * 1.13 = 16,950; lot = 10; top = 2,000 * 1.3 = 2,600.
    assert a.tab[0] == pytest.approx(16_950.0)
    assert a.lot[0] == 10.0
    assert a.top[0] == pytest.approx(2_600.0)
    assert c.sin == pytest.approx([15_000.0])  # vow.fess(due)
    assert c.dirt == pytest.approx([16_950.0])
    assert c.vaults.ink[rows] == 0.0 and c.vaults.art[rows] == 0.0


def test_partial_bark_limited_by_ilk_hole():
    c = maker(hole=5_650.0, dust=100.0)
    rows = vault_10_eth_15k(c)
    c.bark(0.0, prices(2000.0))
    # room 5,650: dart = 5,650 / 1.13 = 5,000; dink = 10 * 5,000 / 15,000 = 3.3333.
    assert c.auctions.tab[0] == pytest.approx(5_650.0)
    assert c.auctions.lot[0] == pytest.approx(10.0 / 3.0)
    assert c.debt_of(rows) == pytest.approx([10_000.0])
    assert c.vaults.ink[rows] == pytest.approx([20.0 / 3.0])
    # The hole is full: a second bark finds no room (Dog/liquidation-limit-hit).
    assert c.bark(0.0, prices(2000.0)) == 0


def test_partial_bark_limited_by_protocol_hole():
    c = maker(big_hole=2_260.0)
    vault_10_eth_15k(c)
    c.bark(0.0, prices(2000.0))
    # Hole 2,260 < hole: dart = 2,260 / 1.13 = 2,000, dink = 10 * 2,000 / 15,000.
    assert c.auctions.tab[0] == pytest.approx(2_260.0)
    assert c.auctions.lot[0] == pytest.approx(4.0 / 3.0)
    assert c.big_dirt == pytest.approx([2_260.0])


def test_dusty_remainder_takes_the_whole_vault():
    c = maker(hole=16_000.0, dust=1_000.0)
    rows = vault_10_eth_15k(c)
    c.bark(0.0, prices(2000.0))
    # dart = 16,000 / 1.13 = 14,159.29 would leave 840.71 < dust: dog.sol takes all 15,000,
    # tab 16,950, overshooting hole by 950 (< dust * chop = 1,130, as dog.sol allows).
    assert c.auctions.tab[0] == pytest.approx(16_950.0)
    assert c.vaults.art[rows] == 0.0
    assert c.dirt[0] - c.hole[0] == pytest.approx(950.0)


def test_dusty_partial_auction_is_refused():
    c = maker(hole=1_130.0, dust=5_000.0)
    vault_10_eth_15k(c)
    # dart = 1,130 / 1.13 = 1,000 < dust 5,000 while 14,000 would stay: no auction.
    assert c.bark(0.0, prices(2000.0)) == 0
    assert c.sin == 0.0


def test_bark_incentive_is_minted_to_the_barker():
    c = maker(tip=100.0, chip=0.001)
    vault_10_eth_15k(c)
    bal = np.zeros((1, 2))
    c.bark(0.0, prices(2000.0), barker=0, keeper_balance=bal)
    # tip + chip * tab = 100 + 0.001 * 16,950 = 116.95 DAI, a protocol cost in sin.
    assert bal[0, DAI] == pytest.approx(116.95)
    assert c.sin == pytest.approx([15_116.95])
    lhs, rhs = c.ledger()
    assert lhs == pytest.approx(rhs)


def bark_twin(ilk_of, ink, art, rate, mat, chop, dust, hole, dirt, big_hole, big_dirt, price):
    """dog.sol bark line by line, one ilk, one protocol (lists updated in place)."""
    out = []
    for i in range(len(ink)):
        k = ilk_of[i]
        if not (art[i] > 0 and ink[i] * price < art[i] * rate * mat):
            continue
        if not (big_hole > big_dirt[0] and hole > dirt[0]):
            continue
        room = min(big_hole - big_dirt[0], hole - dirt[0])
        dart = min(art[i], room / rate / chop)
        if art[i] > dart:
            if (art[i] - dart) * rate < dust:
                dart = art[i]
            elif dart * rate < dust:
                continue
        dink = ink[i] if dart == art[i] else ink[i] * dart / art[i]
        tab = dart * rate * chop
        ink[i] -= dink
        art[i] -= dart
        dirt[0] += tab
        big_dirt[0] += tab
        out.append((i, dink, dart, tab, k))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_bark_kernel_matches_twin(seed):
    rng = np.random.default_rng(seed)
    n = 60
    ink = rng.uniform(0.1, 50, n)
    art = rng.uniform(0, 60_000, n)
    rate, price = float(rng.uniform(1, 1.2)), float(rng.uniform(1000, 3000))
    hole, big_hole, dust = float(rng.uniform(1e4, 5e5)), float(rng.uniform(1e4, 5e5)), 2_000.0
    want = bark_twin([0] * n, list(ink), list(art), rate, 1.5, 1.13, dust, hole, [0.0],
                     big_hole, [0.0], price)
    ink_k, art_k = ink.copy(), art.copy()
    dirt, big_dirt, ilk_art = np.zeros(1), np.zeros(1), np.array([art.sum()])
    ov, od, oa, ot = np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(n)
    count = kern.bark(np.zeros(n, np.int32), ink_k, art_k, ilk_art, np.array([rate]),
                      np.array([1.5]), np.array([1.13]), np.array([dust]), np.array([hole]),
                      dirt, np.zeros(1, np.int64), np.array([big_hole]), big_dirt,
                      np.array([price]), ov, od, oa, ot)
    assert count == len(want)
    for j, (i, dink, dart, tab, _) in enumerate(want):
        assert (ov[j], od[j], oa[j], ot[j]) == (i, pytest.approx(dink), pytest.approx(dart),
                                                pytest.approx(tab))
    assert ilk_art[0] == pytest.approx(art_k.sum())


# --- First time the curve reaches a price: closed forms against brute force -----------------

CURVE_ARGS = dict(top=2600.0, cut=0.99, step=90.0, tau=3600.0)


def test_first_stair_at_or_below_hand_value():
    # 2,600 * 0.99^k <= 1,937.14: k >= ln(0.745054) / ln(0.99) = 29.28 -> 30 stairs, 2,700 s.
    assert kern.first_time_at_or_below(kern.STAIRSTEP_EXPONENTIAL, 2600.0, 0.99, 90.0, 0.0,
                                       1937.14) == 2700.0
    # Linear: 2,600 (3,600 - t) / 3,600 <= 1,950 at t = 3,600 * 0.25 = 900 s.
    assert kern.first_time_at_or_below(kern.LINEAR, 2600.0, 0.0, 0.0, 3600.0,
                                       1950.0) == pytest.approx(900.0)
    # Exponential 0.999 per s: 2,600 * 0.999^t <= 1,300 at t = ln 0.5 / ln 0.999 = 692.80 s.
    assert kern.first_time_at_or_below(kern.EXPONENTIAL, 2600.0, 0.999, 0.0, 0.0,
                                       1300.0) == pytest.approx(692.8005, rel=1e-6)


@settings(deadline=None, max_examples=200)
@given(top=st.floats(1.0, 1e5), cut=st.floats(0.5, 0.999), step=st.integers(1, 600),
       share=st.floats(0.001, 1.2))
def test_first_stair_matches_brute_force(top, cut, step, share):
    # cut <= 0.999 keeps the brute-force walk under ~7,000 stairs (0.999^6905 = 0.001).
    x = top * share
    t = kern.first_time_at_or_below(kern.STAIRSTEP_EXPONENTIAL, top, cut, float(step), 0.0, x)
    k = 0  # brute force: walk the stairs with the slow twin
    while ref.stairstep_exponential_price(top, cut, step, k * step) > x:
        k += 1
    assert t == pytest.approx(k * step, rel=1e-12)


@settings(deadline=None, max_examples=200)
@given(top=st.floats(1.0, 1e5), cut=st.floats(0.99, 0.99999), tau=st.floats(60.0, 1e4),
       share=st.floats(0.001, 0.999))
def test_first_time_continuous_curves_is_the_boundary(top, cut, tau, share):
    x = top * share
    for curve, twin in ((kern.EXPONENTIAL, lambda e: ref.exponential_price(top, cut, e)),
                        (kern.LINEAR, lambda e: ref.linear_price(top, tau, e))):
        t = kern.first_time_at_or_below(curve, top, cut, 0.0, tau, x)
        assert twin(t) <= x * (1 + 1e-12)
        assert twin(t * (1 - 1e-7)) > x * (1 - 1e-12) or t == 0.0


def test_reset_time_eth_b_is_the_cusp_stair():
    # 0.99^k < 0.4 first at k = 92 (test_auction.py): 8,280 s < tail 8,400 s.
    assert kern.reset_elapsed(kern.STAIRSTEP_EXPONENTIAL, 2600.0, 0.99, 90.0, 0.0, 8400.0,
                              0.4) == 8280.0
    # cut 0.995: k > ln 0.4 / ln 0.995 = 182.8 -> 16,470 s, so the tail (8,400 s) comes first.
    assert kern.reset_elapsed(kern.STAIRSTEP_EXPONENTIAL, 2600.0, 0.995, 90.0, 0.0, 8400.0,
                              0.4) == 8400.0


# --- A Dutch auction by hand ----------------------------------------------------------------


def barked_eth_a(**ilk):
    c = maker(**ilk)
    vault_10_eth_15k(c)
    c.bark(0.0, prices(2000.0))
    return c


def test_dutch_auction_takes_at_the_first_profitable_stair_and_returns_the_rest():
    c = barked_eth_a()
    k = keepers([[0.0, 1e6]], gas=[50.0], min_profit=[500.0])
    gas_sink = np.zeros(2)
    c.run_auctions(0.0, 3600.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=gas_sink)
    a = c.auctions
    # Keeper values ETH at 2,000 (no venue). Above 1,695 = 16,950 / 10 it can only buy the tab:
    # slice = 16,950 / p, profit = 16,950 * 2,000 / p - 16,950 - 50 >= 500 <=> p <= 1,937.14.
    # Stair 29: 2,600 * 0.99^29 = 1,942.65 (profit 450.6, no); stair 30 at 2,700 s:
    # 2,600 * 0.99^30 = 2,600 * 0.739700 = 1,923.22.
    price = 2600 * 0.99**30
    assert price == pytest.approx(1923.22, rel=1e-6)
    assert a.end_time[0] == 2700.0
    slice_ = 16_950.0 / price  # 8.8133 ETH
    assert a.sold[0] == pytest.approx(slice_)
    assert a.raised[0] == pytest.approx(16_950.0)
    # 10 - 8.8133 = 1.1867 ETH back to the owner's free collateral.
    assert c.vaults.gem[0] == pytest.approx(10.0 - slice_)
    assert c.collect([0]) == pytest.approx([1.1867], rel=1e-4)
    # 16,950 burnt: 15,000 cancels sin, the 1,950 penalty is surplus; no bad debt.
    assert c.sin == pytest.approx([0.0], abs=1e-9)
    assert c.surplus == pytest.approx([1_950.0])
    assert c.stats[0, kern.BAD_DEBT] == 0.0
    assert k.balance[0] == pytest.approx([slice_, 1e6 - 16_950.0 - 50.0])
    assert gas_sink[DAI] == pytest.approx(50.0)
    assert c.dirt == pytest.approx([0.0], abs=1e-9)
    assert c.outcome()[0] == pytest.approx(16_950.0 / (slice_ * 2000.0))


def test_dutch_auction_waits_across_steps():
    c = barked_eth_a()
    k = keepers([[0.0, 1e6]], gas=[50.0], min_profit=[500.0])
    c.run_auctions(0.0, 1800.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=np.zeros(2))
    assert c.auctions.active[0]  # the 2,700 s stair is after this step
    c.run_auctions(1800.0, 3600.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=np.zeros(2))
    assert c.auctions.end_time[0] == 2700.0


def test_bad_debt_when_the_lot_runs_out():
    c = barked_eth_a()
    # The market is at 1,200 while the oracle still says 2,000 (delayed feed). Whole lot
    # worth 12,000: profit 10 (1,200 - p) >= 1 <=> p <= 1,199.9. 2,600 * 0.99^k <= 1,199.9
    # first at k = 77 (ln(0.461500) / ln 0.99 = 76.98): 2,600 * 0.99^77 = 1,199.18, 6,930 s,
    # before the cusp stair (8,280 s).
    k = keepers([[0.0, 1e6]], gas=[0.0], min_profit=[1.0])
    c.run_auctions(0.0, 7200.0, oracle_price=prices(2000.0), external_price=prices(1200.0),
                   keepers=k, gas_sink=np.zeros(2))
    a = c.auctions
    price = 2600 * 0.99**77
    assert a.end_time[0] == 6930.0
    assert a.sold[0] == 10.0
    assert a.raised[0] == pytest.approx(10 * price)
    # Debt part 15,000 - 11,991.8 = 3,008.2 stays in sin as bad debt; no penalty income.
    assert c.stats[0, kern.BAD_DEBT] == pytest.approx(15_000 - 10 * price)
    assert c.sin == pytest.approx([15_000 - 10 * price])
    assert c.surplus == 0.0
    assert c.dirt == pytest.approx([0.0], abs=1e-9)  # digs(tab + owe) when the lot is gone
    lhs, rhs = c.ledger()
    assert lhs == pytest.approx(rhs)


def test_redo_at_the_cusp_restarts_from_the_oracle_and_pays_the_incentive():
    c = barked_eth_a(tip=100.0, chip=0.0, dust=100.0)
    # Nobody can profit (keeper values ETH at 1): at 8,280 s the price is below cusp * top;
    # redo sets top = 1,500 * 1.3 = 1,950 and pays tip 100 (tab 16,950 >= chost 113 and
    # lot * 1,500 >= 113).
    k = keepers([[0.0, 1e6]], gas=[10.0], min_profit=[0.0])
    c.run_auctions(0.0, 9000.0, oracle_price=prices(1500.0), external_price=prices(1.0),
                   keepers=k, gas_sink=np.zeros(2))
    a = c.auctions
    assert a.active[0]
    assert a.tic[0] == 8280.0
    assert a.top[0] == pytest.approx(1950.0)
    assert k.balance[0, DAI] == pytest.approx(1e6 + 100.0)
    assert c.stats[0, kern.KEEPER_INCENTIVES] == pytest.approx(100.0)
    assert c.sin == pytest.approx([15_100.0])


def test_keeper_sells_on_the_venue_and_moves_the_pool():
    pool = venue_pool(1_000.0, 2e6)
    c = barked_eth_a(venue=0)
    k = keepers([[0.0, 1e6]], gas=[50.0], min_profit=[100.0])
    c.run_auctions(0.0, 7200.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, pools=pool, gas_sink=np.zeros(2))
    a = c.auctions
    sold = a.sold[0]
    assert 0 < sold
    assert pool.reserve_base[0] == pytest.approx(1_000.0 + sold)
    # Keeper got the pool's output for the slice (Uniswap v2 getAmountOut).
    out = 0.997 * sold * 2e6 / (1000 + 0.997 * sold)
    assert k.balance[0, DAI] == pytest.approx(1e6 - a.raised[0] - 50.0 + out)
    # The take paid at least min_profit at the venue's price.
    assert out - a.raised[0] - 50.0 >= 100.0 - 1e-6


def dutch_twin(top, lot, tab, due, chost, keepers_, venue_pool, value, step, cut, t1,
               reset_at):
    """Walk a stairstep auction stair by stair; at each, keepers in order take if it pays."""
    rb, rq, fee = venue_pool
    balance = [list(b) for b in keepers_["balance"]]
    raised = sold = 0.0
    k = 0
    while k * step <= min(t1, reset_at) and lot > 0 and tab > 0:
        price = ref.stairstep_exponential_price(top, cut, step, k * step)
        if price / top < 0.4 and k * step >= reset_at:
            break
        took = False
        for kp in range(len(balance)):
            gas, mp = keepers_["gas"][kp], keepers_["min_profit"][kp]
            budget = balance[kp][1] - gas
            if budget <= 0:
                continue
            target = price * value[1] / value[1]
            want = (math.sqrt((1 - fee) * rb * rq / target) - rb) / (1 - fee)
            want = max(want, 0.0)
            want = min(want, budget / price)
            s, owe = ref.take_amount(lot, tab, price, price, want, chost)
            if s <= 0 and budget >= min(tab, lot * price):
                s, owe = ref.take_amount(lot, tab, price, price, lot, chost)
            if s <= 0:
                continue
            out = (1 - fee) * s * rq / (rb + (1 - fee) * s)
            if out - owe - gas >= mp:
                rb, rq = rb + s, rq - out
                balance[kp][1] += out - owe - gas
                lot, tab, raised, sold = lot - s, tab - owe, raised + owe, sold + s
                took = True
                break
        if not took:
            k += 1
    return lot, tab, raised, sold, balance


@pytest.mark.parametrize("seed", range(12))
def test_dutch_run_matches_the_stair_by_stair_twin(seed):
    rng = np.random.default_rng(seed)
    reserve = float(rng.uniform(200, 5000))
    pool = venue_pool(reserve, reserve * rng.uniform(1500, 2500))
    n_k = 3
    bal = np.zeros((n_k, 2))
    bal[:, DAI] = rng.uniform(2_000, 30_000, n_k)
    gas, mp = rng.uniform(0, 200, n_k), rng.uniform(0, 300, n_k)
    c = barked_eth_a(venue=0, dust=500.0)
    twin = dutch_twin(2600.0, 10.0, 16_950.0, 15_000.0, 565.0,
                      dict(balance=bal.copy(), gas=gas, min_profit=mp),
                      (pool.reserve_base[0], pool.reserve_quote[0], 0.003), [2000.0, 1.0],
                      90.0, 0.99, 7200.0, 8280.0)
    k = keepers(bal, gas, mp)
    c.run_auctions(0.0, 7200.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, pools=pool, gas_sink=np.zeros(2))
    a = c.auctions
    lot, tab, raised, sold, balance = twin
    assert a.raised[0] == pytest.approx(raised, rel=1e-9, abs=1e-6)
    assert a.sold[0] == pytest.approx(sold, rel=1e-9, abs=1e-9)
    assert k.balance[:, DAI] == pytest.approx([b[1] for b in balance], rel=1e-9)


# --- English auctions (flip.sol, Liquidations 1.2) -------------------------------------------


def english_eth_a():
    c = maker(auction_kind="english")
    vault_10_eth_15k(c)
    c.bark(0.0, prices(2000.0))
    return c


def test_english_auction_tend_then_dent_with_normal_gas():
    c = english_eth_a()
    # Keepers: 0 an opportunist, 1 and 2 rational (gas 50, min profit 100); ETH worth 2,000.
    k = keepers([[0, 30_000.0]] * 3, gas=[50.0] * 3, min_profit=[0.0, 100.0, 100.0])
    opp = np.array([True, False, False])
    c.run_auctions(0.0, 3600.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=np.zeros(2), opportunist=opp)
    a = c.auctions
    # 0 bids 1e-9; 1's reservation bid (20,000 - 150) caps at the tab 16,950 (tend ends);
    # 2 dents to the least lot worth 16,950 + 150: 17,100 / 2,000 = 8.55 ETH, and
    # 8.55 * 1.03 = 8.8065 <= 10 clears beg. 1 cannot dent below 8.55 / 1.03. Dealt at
    # 0 + ttl = 600 s.
    assert not a.active[0]
    assert a.end_time[0] == 600.0
    assert a.raised[0] == pytest.approx(16_950.0)
    assert a.sold[0] == pytest.approx(8.55)
    assert c.vaults.gem[0] == pytest.approx(1.45)
    assert k.balance[2] == pytest.approx([8.55, 30_000 - 16_950 - 50])
    assert k.balance[1] == pytest.approx([0.0, 30_000 - 50])  # refunded, paid its gas
    assert c.stats[0, kern.BAD_DEBT] == 0.0
    assert c.stats[0, kern.ZERO_BID_LOSS] == 0.0
    assert c.surplus == pytest.approx([1_950.0])


def test_english_auction_gas_spike_leaves_only_zero_bids():
    c = english_eth_a()
    # Gas at 25,000 for everyone: a rational keeper's reservation bid (20,000 - 25,000 - 100)
    # is negative; the opportunist bids 1e-9 anyway and wins 10 ETH at 600 s.
    k = keepers([[0, 30_000.0]] * 2, gas=[25_000.0] * 2, min_profit=[0.0, 100.0])
    c.run_auctions(0.0, 3600.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=np.zeros(2), opportunist=np.array([True, False]))
    a = c.auctions
    assert a.end_time[0] == 600.0
    assert a.sold[0] == 10.0
    assert a.raised[0] == pytest.approx(1e-9)
    assert k.balance[0, ETH] == 10.0
    # Black Thursday: the whole 15,000 debt stays in sin; 20,000 of ETH went for ~0.
    assert c.stats[0, kern.BAD_DEBT] == pytest.approx(15_000.0)
    assert c.stats[0, kern.ZERO_BID_LOSS] == pytest.approx(20_000.0)
    assert c.outcome()[0] == pytest.approx(1e-9 / 20_000.0)
    lhs, rhs = c.ledger()
    assert lhs == pytest.approx(rhs)


def test_english_auction_without_bids_restarts():
    c = english_eth_a()
    k = keepers([[0, 30_000.0]], gas=[25_000.0], min_profit=[0.0])
    c.run_auctions(0.0, 30_000.0, oracle_price=prices(2000.0), external_price=prices(2000.0),
                   keepers=k, gas_sink=np.zeros(2))
    # flip.tick: no bid by end (6 h = 21,600 s) -> end = 21,600 + 21,600.
    assert c.auctions.active[0]
    assert c.auctions.end[0] == 43_200.0


# --- Conservation under random operations ---------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), english=st.booleans(),
       drops=st.lists(st.floats(0.5, 1.0), min_size=1, max_size=5))
def test_tokens_and_maker_ledger_are_conserved(seed, english, drops):
    rng = np.random.default_rng(seed)
    pool = venue_pool(2_000.0, 6e6)
    c = maker(auction_kind="english" if english else "dutch", venue=0, stability_fee=0.1,
              dust=100.0, hole=float(rng.uniform(2e4, 2e5)), tip=20.0, chip=0.001)
    n_owners = 8
    wallet = np.zeros((n_owners, 2))
    wallet[:, ETH] = 100.0
    k = keepers(np.column_stack([np.zeros(3), rng.uniform(1e4, 1e5, 3)]),
                gas=rng.uniform(0, 100, 3), min_profit=rng.uniform(0, 200, 3))
    gas_sink = np.zeros(2)
    opp = np.array([True, False, False])

    def totals():
        held = wallet.sum(0) + k.balance.sum(0) + gas_sink + c.held()
        held += np.array([pool.reserve_base[0], pool.reserve_quote[0]])
        return held - c.minted()

    start = totals()
    price = 3000.0
    ink = rng.uniform(1, 50, n_owners)
    debt = ink * price / 1.5 * rng.uniform(0.5, 0.99, n_owners)
    rows, minted = c.open_vaults(np.arange(n_owners), np.zeros(n_owners, int), ink, debt,
                                 prices(price))
    wallet[:, ETH] -= ink
    wallet[:, DAI] += minted
    t = 0.0
    for drop in drops:
        price *= drop
        c.drip(1.0)
        c.bark(t, prices(price), barker=0, keeper_balance=k.balance)
        c.run_auctions(t, t + 3600.0, oracle_price=prices(price), external_price=prices(price),
                       keepers=k, pools=pool, gas_sink=gas_sink, opportunist=opp)
        t += 3600.0
        wallet[:, ETH] += c.collect(rows)
        owed = c.debt_of(rows)
        pay = np.minimum(wallet[:, DAI], owed) * rng.uniform(0, 1, n_owners)
        pay = np.where(owed - pay < 100.0, 0.0, pay)  # keep clear of the dust rule
        c.repay(rows, pay)
        wallet[:, DAI] -= pay
        np.testing.assert_allclose(totals(), start, rtol=1e-9, atol=1e-6)
        lhs, rhs = c.ledger()
        np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-6)
        assert np.all(c.sin >= -1e-6) and np.all(c.auctions.lot >= 0)
        assert np.all(k.balance >= -1e-9) and np.all(c.vaults.ink >= 0)
