"""Delta hedging on pools, the spot market and perps (sim.agents.hedging), by hand."""

import numpy as np
import pytest

from sim.agents.delta_hedger import DeltaHedgerTable
from sim.agents.hedging import PERP, POOL, SPOT
from sim.protocols.amm import Pools
from sim.protocols.perps import PerpMarkets

WETH, USDC = 0, 1
PRICE = np.array([2000.0, 1.0])


def desk(balance, own, kind, venue=0, **kwargs):
    return DeltaHedgerTable(np.array([balance], dtype=float), own=np.array([own], dtype=float),
                            assets=[WETH], venue_kind=[kind], venue=[venue], cash=USDC,
                            band_usd=20_000.0, every=1, **kwargs)


def act(h, t, option_delta, *, amm=None, perps=None, price=PRICE, external=None):
    external = np.zeros(2) if external is None else external
    return h.act(t, np.array([option_delta, 0.0]), amm=amm, perps=perps, price=price,
                 oracle_price=price, external=external, rng=np.random.default_rng(0))


def test_pool_hedge_sells_the_net_delta_and_buys_it_back():
    # Hand case: the vault's option delta is +30 WETH and the hedger holds 10 WETH beyond its
    # own 100: net 40 WETH (80k USD > the 20k band), so it sells 40 WETH into a constant-
    # product pool of 1,000 WETH / 2M USDC, fee 0.3%, for 0.997 x 40 x 2e6 / (1,000 +
    # 0.997 x 40) = 76,710.5 USDC (Uniswap v2). A net delta inside the band is left alone.
    amm = Pools(["uni"], [0], [1], [1000.0], [2e6], [0.003])
    h = desk([110.0, 0.0], [100.0, 0.0], POOL)
    sold = act(h, 1, 30.0, amm=amm)
    got = 0.997 * 40 * 2e6 / (1000 + 0.997 * 40)
    assert sold[WETH] == pytest.approx(40.0)
    assert h.balance[0, USDC] == pytest.approx(got)
    assert h.balance[0, WETH] == pytest.approx(70.0)  # own 100 minus the vault's 30
    assert h.cost == pytest.approx(40 * 2000.0 - got)  # fee and impact at the market price
    assert act(h, 2, 35.0, amm=amm)[WETH] == 0.0  # net 5 WETH = 10k USD < band
    # Short: the vault's delta falls to +10, net 10 + 70 - 100 = -20 WETH -> it buys 20
    # WETH with USDC (the input for exactly 20 out; it has the cash).
    assert act(h, 3, 10.0, amm=amm)[WETH] == pytest.approx(-20.0, rel=1e-9)
    assert h.balance[0, WETH] == pytest.approx(90.0, rel=1e-9)


def test_delta_target_shifts_what_the_hedge_aims_at():
    # A target of +20k USD of delta = +10 WETH at 2,000: with the vault's +30 and nothing
    # extra held, the desk sells 30 - 10 = 20 WETH, not 30 (on the spot market, no fee).
    h = desk([100.0, 0.0], [100.0, 0.0], SPOT, target_usd=[20_000.0], spot_fee=0.0)
    assert act(h, 1, 30.0)[WETH] == pytest.approx(20.0)


def test_spot_hedge_trades_with_the_outside_world_at_the_price_less_the_fee():
    # Sell 40 WETH at 2,000 with a 5 bp fee: 40 x 2,000 x 0.9995 = 79,960 USDC; the outside
    # world gets the 40 WETH and pays the USDC; the cost is the fee, 40 USD.
    h = desk([110.0, 0.0], [100.0, 0.0], SPOT, spot_fee=0.0005)
    external = np.array([0.0, 1e6])
    sold = act(h, 1, 30.0, external=external)
    assert sold[WETH] == pytest.approx(40.0)
    assert h.balance[0] == pytest.approx([70.0, 79_960.0])
    assert external == pytest.approx([40.0, 1e6 - 79_960.0])
    assert h.cost == pytest.approx(40.0)
    # Buy 20 back: 20 x 2,000 x 1.0005 = 40,020 USDC spent; fee 20 USD.
    bought = act(h, 2, 10.0, external=external)
    assert bought[WETH] == pytest.approx(-20.0)
    assert h.balance[0] == pytest.approx([90.0, 79_960.0 - 40_020.0])
    assert h.cost == pytest.approx(20.0)
    # What the desk and the outside world hold together is unchanged.
    assert h.balance[0] + external == pytest.approx([110.0, 1e6])


def perps():
    eth = dict(initial_margin=0.05, maintenance_margin=0.03, liquidation_fee=0.01,
               max_funding_rate=0.10, skew_scale=1000.0, vault_balance=1e6)
    return PerpMarkets(["dex"], [[eth, None]], settlement_asset=[USDC], insurance_fund=[0.0])


def test_perp_hedge_shorts_the_net_delta_and_resizes_at_the_mark():
    # Net +40 WETH at 2,000: the desk shorts 40 perps with margin 0.2 x 40 x 2,000 = 16,000
    # USDC. ETH falls to 1,900 and the vault's delta to +25 (net 25 - 40 = -15): the desk
    # closes the short (P&L -40 x (1,900 - 2,000) = +4,000, no funding accrued, so 20,000
    # comes back) and reopens -25 with margin 0.2 x 25 x 1,900 = 9,500.
    pm = perps()
    h = desk([100.0, 50_000.0], [100.0, 0.0], PERP, venue=0, perp_margin=0.2)
    sold = act(h, 1, 40.0, perps=pm)
    assert sold[WETH] == pytest.approx(40.0)
    row = h.perp_row[0, 0]
    assert pm.book.size[row] == pytest.approx(-40.0)
    assert pm.book.margin[row] == pytest.approx(16_000.0)
    assert h.balance[0, USDC] == pytest.approx(34_000.0)
    assert h.perp_size(pm)[0, WETH] == pytest.approx(-40.0)
    assert pm.short_oi[0] == pytest.approx(40.0)
    low = np.array([1900.0, 1.0])
    bought = act(h, 2, 25.0, perps=pm, price=low)
    assert bought[WETH] == pytest.approx(-15.0)
    assert pm.book.size[h.perp_row[0, 0]] == pytest.approx(-25.0)
    assert h.balance[0, USDC] == pytest.approx(34_000.0 + 20_000.0 - 9_500.0)
    assert pm.vault_balance[0] == pytest.approx(1e6 - 4_000.0)  # the vault paid the P&L
    assert h.perp_equity(pm, low)[0] == pytest.approx(9_500.0)
    assert h.cost == 0.0  # no fee, no impact on perps


def test_perp_hedge_is_capped_by_the_initial_margin_the_cash_pays():
    # 1,000 USDC of cash at IM 5% carries at most 1,000 / (0.05 x 2,000) = 10 contracts.
    pm = perps()
    h = desk([100.0, 1_000.0], [100.0, 0.0], PERP, venue=0, perp_margin=0.2)
    assert act(h, 1, 40.0, perps=pm)[WETH] == pytest.approx(10.0)
    assert h.balance[0, USDC] == pytest.approx(0.0)


def test_perp_liquidation_payout_reaches_the_desk_and_frees_its_row():
    # A desk long 10 WETH perps with 1,000 USDC of margin (IM 5% at 2,000); ETH falls 8% to
    # 1,840: equity 1,000 - 10 x 160 = -600 < 0 -> liquidated, nothing paid out; the row is
    # forgotten. At a 4% fall (1,920): equity 200 < MM 0.03 x 10 x 1,920 = 576 ->
    # liquidated, the fee 1% x 19,200 = 192 goes to the fund and 8 comes back.
    for price, back in ((1840.0, 0.0), (1920.0, 200.0 - 192.0)):
        pm = perps()
        h = desk([100.0, 1_000.0], [100.0, 0.0], PERP, venue=0, perp_margin=0.05)
        act(h, 1, -11.0, perps=pm)  # net -11: long 11 wanted, 10 is what 1,000 carries
        assert h.perp_size(pm)[0, WETH] == pytest.approx(10.0)
        _, _, payout = pm.liquidate(np.array([price, 1.0]))
        h.receive(pm, payout)
        assert h.perp_row[0, 0] == -1
        assert h.balance[0, USDC] == pytest.approx(back)


def test_desks_with_books_of_their_own_each_hedge_their_own():
    # Two desks on the spot market: desk 0's book is +24 WETH of delta, desk 1's is flat.
    # Each hedges its own book (volatility arbitrageurs): desk 0 sells 24, desk 1 nothing;
    # a shared book of +24 would have them sell 12 each.
    h = DeltaHedgerTable(np.array([[100.0, 0.0], [100.0, 0.0]]),
                         own=np.array([[100.0, 0.0], [100.0, 0.0]]), assets=[WETH],
                         venue_kind=[SPOT], venue=[-1], cash=USDC, band_usd=1_000.0, every=1)
    own_books = np.array([[24.0, 0.0], [0.0, 0.0]])
    sold = h.hedge(1, own_books, amm=None, perps=None, price=PRICE, oracle_price=PRICE,
                   external=np.zeros(2), rng=np.random.default_rng(0))
    assert sold[WETH] == pytest.approx(24.0)
    assert h.balance[:, WETH] == pytest.approx([76.0, 100.0])
    two = DeltaHedgerTable(np.array([[100.0, 0.0], [100.0, 0.0]]),
                           own=np.array([[100.0, 0.0], [100.0, 0.0]]), assets=[WETH],
                           venue_kind=[SPOT], venue=[-1], cash=USDC, band_usd=1_000.0,
                           every=1)
    two.hedge(1, np.array([24.0, 0.0]), amm=None, perps=None, price=PRICE,
              oracle_price=PRICE, external=np.zeros(2), rng=np.random.default_rng(0))
    assert two.balance[:, WETH] == pytest.approx([88.0, 88.0])


def test_force_hedges_off_the_hedging_step():
    h = desk([110.0, 0.0], [100.0, 0.0], SPOT)
    h.every = 4
    assert act(h, 1, 30.0)[WETH] == 0.0  # not a hedging step
    sold = h.hedge(1, np.array([30.0, 0.0]), amm=None, perps=None, price=PRICE,
                   oracle_price=PRICE, external=np.zeros(2), rng=np.random.default_rng(0),
                   force=True)
    assert sold[WETH] == pytest.approx(40.0)
