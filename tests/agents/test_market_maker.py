"""Market makers that pull back on losses: their P&L against holding, the pull, the return.

The P&L is checked against the impermanent loss of a constant-product LP,
``IL(r) = 2 sqrt(r) / (1 + r) - 1`` for a price ratio ``r`` (Pintail 2019; Uniswap v2 docs,
"Understanding Returns"), on a pool without fees moved by a trade while the external price
follows it; the pull and return rules against hand values of that P&L.
"""

import math

import numpy as np
import pytest

from sim.agents.market_maker import MarketMakerTable, pool_tokens
from sim.protocols.amm import Pools

WETH, USDC = 0, 1
X0, Y0 = 1_000.0, 3_000_000.0  # 3,000 USDC per WETH
CALM = 1e9  # a volatility limit that never binds: the loss rule alone


def impermanent_loss(r: float) -> float:
    return 2.0 * math.sqrt(r) / (1.0 + r) - 1.0


def setup(loss_limit, *, n=2, pull_fraction=0.5):
    """A zero-fee WETH/USDC pool owned by ``n`` makers in equal shares."""
    amm = Pools(["uni"], [WETH], [USDC], [X0], [Y0], [0.0])
    shares = np.full(n, amm.lp_supply[0] / n)
    table = MarketMakerTable(0, shares, 2, deposit=pool_tokens(amm, 0, shares, 2),
                             volatility_limit=CALM, pull_fraction=pull_fraction,
                             window_steps=4, loss_limit=loss_limit)
    return amm, table


def move_to(amm, price):
    """Trade the zero-fee pool to ``price`` (x y = k: x' = sqrt(k / p), y' = sqrt(k p))."""
    k = amm.reserve_base[0] * amm.reserve_quote[0]
    x_new = math.sqrt(k / price)
    if x_new > amm.reserve_base[0]:
        amm.sell_base(0, x_new - amm.reserve_base[0])
    else:
        amm.sell_quote(0, math.sqrt(k * price) - amm.reserve_quote[0])
    return np.array([amm.spot()[0], 1.0])  # the external price follows the pool


def act(amm, table, prices):
    return table.act(amm, np.array([3000.0, prices[WETH]]), 1.0, prices=prices)


@pytest.mark.parametrize(("sell", "r"), [("quote", 4.0), ("base", 0.25)])
def test_pnl_of_a_zero_fee_pool_moved_with_the_market_is_the_impermanent_loss(sell, r):
    # Selling y USDC doubles the quote reserve: x y = k gives x / 2, price x 4 (r = 4);
    # selling x WETH gives r = 1/4. Either way IL = 2 * 2 / 5 - 1 = -20% (Pintail's table).
    amm, table = setup(None)
    if sell == "quote":
        amm.sell_quote(0, Y0)
    else:
        amm.sell_base(0, X0)
    assert amm.spot()[0] == pytest.approx(3000.0 * r, rel=1e-12)
    prices = np.array([amm.spot()[0], 1.0])
    np.testing.assert_allclose(table.pnl_share(amm, prices), impermanent_loss(r), rtol=1e-12)
    assert impermanent_loss(r) == pytest.approx(-0.2, rel=1e-12)
    # In USD: each maker held 500 WETH + 1.5M USDC; at 12,000 that is 7.5M, the LP half 6M.
    if sell == "quote":
        np.testing.assert_allclose(table.pnl(amm, prices), -1.5e6, rtol=1e-12)


def test_move_past_the_loss_limit_pulls_exactly_pull_fraction_of_that_makers_shares():
    # r = 4: P&L -20%, past maker 0's 10% limit, inside maker 1's 25%.
    amm, table = setup(np.array([0.10, 0.25]), pull_fraction=0.4)
    shares = table.shares.copy()
    prices = move_to(amm, 12_000.0)
    before = pool_tokens(amm, 0, table.shares, 2)
    reserves = np.array([amm.reserve_base[0], amm.reserve_quote[0]])
    act(amm, table, prices)
    assert table.shares[0] == pytest.approx(0.6 * shares[0], rel=1e-12)
    assert table.shares[1] == shares[1]
    np.testing.assert_allclose(table.wallet[0], 0.4 * before[0], rtol=1e-12)
    np.testing.assert_array_equal(table.wallet[1], 0.0)
    # What left the pool is what maker 0 received.
    np.testing.assert_allclose(reserves - [amm.reserve_base[0], amm.reserve_quote[0]],
                               table.wallet[0], rtol=1e-12)
    np.testing.assert_array_equal(table.pulled, [True, False])
    # Pulled, it does not pull again while the loss lasts.
    act(amm, table, prices)
    assert table.shares[0] == pytest.approx(0.6 * shares[0], rel=1e-12)


def test_move_inside_the_loss_limit_leaves_the_shares():
    # r = 1.25: IL = 2 sqrt(1.25) / 2.25 - 1 = -0.62%, inside a 1% limit.
    amm, table = setup(0.01)
    shares = table.shares.copy()
    prices = move_to(amm, 3750.0)
    assert table.pnl_share(amm, prices)[0] == pytest.approx(impermanent_loss(1.25), rel=1e-12)
    act(amm, table, prices)
    np.testing.assert_array_equal(table.shares, shares)
    np.testing.assert_array_equal(table.wallet, 0.0)


def test_without_a_loss_limit_losses_never_pull():
    amm, table = setup(None)
    shares = table.shares.copy()
    act(amm, table, move_to(amm, 12_000.0))
    np.testing.assert_array_equal(table.shares, shares)


def test_pulled_maker_returns_once_the_loss_is_back_above_half_the_limit():
    # Pulled half at r = 4 (limit 10%), a maker holds half its LP share, worth y0 sqrt(r)
    # (per unit of its deposit's y0), and a wallet of x0 / 4 WETH and y0 USDC, worth
    # y0 (r / 4 + 1); holding is worth y0 (r + 1). P&L share = (sqrt r + r / 4 + 1) / (r + 1) - 1:
    # r = 2.5: -8.4%, inside the limit but below half of it: it stays out;
    # r = 2: -2.9%, above -5%: it returns its wallet at the pool's ratio.
    amm, table = setup(0.10, n=1)
    act(amm, table, move_to(amm, 12_000.0))
    assert table.pulled[0]

    def hand(r):
        return (math.sqrt(r) + r / 4 + 1) / (r + 1) - 1

    prices = move_to(amm, 7_500.0)
    assert table.pnl_share(amm, prices)[0] == pytest.approx(hand(2.5), rel=1e-12)
    assert -0.10 < hand(2.5) < -0.05
    shares = table.shares.copy()
    act(amm, table, prices)
    assert table.pulled[0] and table.shares[0] == shares[0]

    prices = move_to(amm, 6_000.0)
    assert table.pnl_share(amm, prices)[0] == pytest.approx(hand(2.0), rel=1e-12)
    assert hand(2.0) > -0.05
    wallet = table.wallet[0].copy()
    act(amm, table, prices)
    assert not table.pulled[0]
    assert table.shares[0] > shares[0]
    # The wallet (bought at 12,000, so WETH-poor at 6,000) goes back as far as its WETH allows.
    assert table.wallet[0, WETH] == pytest.approx(0.0, abs=1e-9 * wallet[WETH])
    assert 0 < table.wallet[0, USDC] < wallet[USDC]


def test_maker_pulled_on_volatility_stays_out_while_its_loss_is_too_deep():
    # Volatility pulls (limit 0); once it is calm the loss (-20% at r = 4, limit 30%, so
    # below -15%) still keeps the maker out.
    amm, table = setup(0.30, n=1)
    table.volatility_limit = 0.0
    prices = move_to(amm, 12_000.0)
    history = np.array([3000.0, 12_000.0, 12_000.0])  # a jump, then flat: vol > 0
    table.act(amm, history, 1.0, prices=prices)
    assert table.pulled[0]
    table.volatility_limit = CALM
    shares = table.shares.copy()
    table.act(amm, history, 1.0, prices=prices)
    assert table.pulled[0] and table.shares[0] == shares[0]
