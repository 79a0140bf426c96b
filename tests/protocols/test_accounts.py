"""Multi-collateral accounts (Aave v3.3): health, choice of legs, close factor, seizure, deficit.

Sources: aave-v3-origin v3.3 ``LiquidationLogic.executeLiquidationCall`` (close factor on the
account's total debt, 2,000 USD small-leg rule and 1,000 USD leftovers on the chosen legs,
``hasNoCollateralLeft`` and ``_burnBadDebt``) and ``GenericLogic.calculateUserAccountData``
(HF over all legs); shared/reference/protocols.md. Unless stated: assets WETH, WBTC, USDC,
DAI; WETH LT 0.83 bonus 6%, WBTC LT 0.78 bonus 5%, protocol fee 10%; rules (0.5, 0.95, 2,000,
1,000); stablecoins at 1 USD; liquidators keep seized collateral (no venue), gas 0.
"""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import accounts as ak
from sim.engine import cascade as ck
from sim.engine.tables import (
    ArbitrageurTable,
    LegTable,
    LiquidatorTable,
    MarketTable,
    PoolTable,
    PositionTable,
)
from sim.protocols.lending import LendingPools, ProtocolError
from sim.protocols.lending_accounts import AccountBook
from tests import reference as ref

WETH, WBTC, USDC, DAI = range(4)
M = 4
RULES = (0.5, 0.95, 2000.0, 1000.0)


def market_params(ltv, lt, bonus, fee=0.1):
    return dict(ltv=ltv, liquidation_threshold=lt, liquidation_bonus=bonus,
                liquidation_protocol_fee=fee, reserve_factor=0.1, base_rate=0.0, slope1=0.04,
                slope2=0.6, optimal_utilisation=0.8)


MARKETS = [market_params(0.80, 0.83, 0.06), market_params(0.73, 0.78, 0.05),
           market_params(0.85, 0.88, 0.045), market_params(0.77, 0.80, 0.05)]


def lending(n_protocols=1):
    pools = LendingPools([f"p{i}" for i in range(n_protocols)], [MARKETS] * n_protocols,
                         [RULES] * n_protocols)
    for p in range(n_protocols):
        for asset, amount in ((USDC, 1e7), (DAI, 1e7), (WETH, 1e4), (WBTC, 1e3)):
            pools.supply(pools.market(p, asset), np.array([amount]))
    return pools


def no_venues(n_markets):
    amm = SimpleNamespace(reserve_base=np.zeros(0), reserve_quote=np.zeros(0), fee=np.zeros(0),
                          amp=np.zeros(0), peg=np.zeros(0), base=np.zeros(0, dtype=np.int64),
                          quote=np.zeros(0, dtype=np.int64))
    return amm, np.full(n_markets, -1, dtype=np.int64)


def keeper(balance):
    return SimpleNamespace(balance=np.array([balance], dtype=float), gas_cost=np.zeros(1),
                           min_profit=np.zeros(1), atomic=np.zeros(1, dtype=bool),
                           order=np.zeros(1, dtype=np.int64))


def ledger_gap(pools):
    """cash + debt + deficit + exploit_loss - (supplied + treasury_claim), per market."""
    return (pools.cash + pools.debt() + pools.deficit + pools.exploit_loss
            - pools.supplied() - pools.treasury_claim)


def one_account(coll, debt):
    """An AccountBook with one account: coll/debt map asset -> tokens."""
    pools = lending()
    book = AccountBook(pools)
    legs = [(a, x, False) for a, x in coll.items()] + [(a, x, True) for a, x in debt.items()]
    # Open at launch prices where the LTV check passes, then move prices.
    book.open_accounts([0], [len(legs)], leg_market=[a for a, _, _ in legs],
                       leg_amount=[x for _, x, _ in legs], leg_is_debt=[d for _, _, d in legs],
                       asset_price=np.array([2000.0, 30000.0, 1.0, 1.0]))
    return pools, book


def liquidate(pools, book, price, balance=(0.0, 0.0, 1e6, 1e6)):
    amm, venue = no_venues(len(pools.cash))
    liqs = keeper(balance)
    gas_sink = np.zeros(M)
    stats, n = book.liquidate(oracle_price=np.asarray(price, float), external_price=np.asarray(
        price, float), venue_pool=venue, pools=amm, liquidators=liqs, gas_sink=gas_sink)
    return stats, n, liqs


# --- Hand calculations ----------------------------------------------------------------------


def test_health_factor_sums_every_collateral_and_debt_leg():
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 35_000.0})
    # (10 * 2,000 * 0.83 + 1 * 30,000 * 0.78) / 35,000 = (16,600 + 23,400) / 35,000 = 1.142857.
    assert book.health_of([0], np.array([2000.0, 30000.0, 1.0, 1.0]))[0] == pytest.approx(
        40_000 / 35_000, rel=1e-14)
    # At 1,750 / 25,000: (14,525 + 19,500) / 35,000 = 0.972143.
    assert book.health_of([0], np.array([1750.0, 25000.0, 1.0, 1.0]))[0] == pytest.approx(
        34_025 / 35_000, rel=1e-14)


def test_account_without_debt_has_infinite_health():
    pools, book = one_account({WETH: 1.0}, {})
    assert book.health_of([0], np.array([2000.0, 30000.0, 1.0, 1.0]))[0] == np.inf


def test_healthy_account_is_not_liquidated():
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 35_000.0})
    before = book.leg_amount.copy()
    stats, n, _ = liquidate(pools, book, [2000.0, 30000.0, 1.0, 1.0])
    assert n == 0 and not stats.any()
    np.testing.assert_array_equal(book.leg_amount, before)


def test_largest_legs_are_chosen_and_half_the_debt_is_closed():
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 35_000.0})
    price = [1750.0, 25000.0, 1.0, 1.0]  # HF 0.972143 (above): partial, close factor 50%
    cash0 = pools.cash.copy()
    stats, n, liqs = liquidate(pools, book, price)
    assert n == 1
    # Legs worth WETH 17,500 and WBTC 25,000: the WBTC leg is seized, WETH untouched.
    # Repaid = 50% of 35,000 = 17,500 USDC (leftovers 17,500 USDC and 6,625 USD of WBTC
    # pass the 1,000 USD rule). Seized = 17,500 / 25,000 * 1.05 = 0.735 WBTC; bonus part
    # 0.735 - 0.7 = 0.035, fee 10% = 0.0035 WBTC, liquidator 0.7315 WBTC.
    coll = book.leg_amount[book.legs_of(0)]
    assert coll[0] == 10.0
    assert coll[1] == pytest.approx(1 - 0.735, rel=1e-12)
    assert book.leg_debt()[2] == pytest.approx(17_500.0, rel=1e-12)
    assert pools.cash[USDC] - cash0[USDC] == pytest.approx(17_500.0, rel=1e-12)
    assert pools.treasury[WBTC] == pytest.approx(0.0035, rel=1e-9)
    np.testing.assert_allclose(liqs.balance[0], [0.0, 0.7315, 1e6 - 17_500, 1e6], rtol=1e-12)
    # HF after = (14,525 + 0.265 * 25,000 * 0.78) / 17,500 = 19,692.5 / 17,500 = 1.125286.
    assert book.health_of([0], np.array(price))[0] == pytest.approx(19_692.5 / 17_500)
    np.testing.assert_allclose(
        stats[0], [1, 17_500, 0.735 * 25_000, 0, 0.7315 * 25_000 - 17_500, 0.0035 * 25_000],
        rtol=1e-9)
    np.testing.assert_allclose(ledger_gap(pools), 0.0, atol=1e-6)


def test_close_factor_is_half_of_the_total_debt_capped_by_the_chosen_leg():
    # Debt split 25,000 USDC + 10,000 DAI, same prices and HF 0.972143. v3.3 caps the repay
    # at 50% of the account's total debt value (17,500), not 50% of the USDC leg (12,500).
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 25_000.0, DAI: 10_000.0})
    liquidate(pools, book, [1750.0, 25000.0, 1.0, 1.0])
    debt = book.leg_debt()[book.legs_of(0)]
    assert debt[2] == pytest.approx(25_000 - 17_500, rel=1e-12)  # USDC, the larger leg
    assert debt[3] == 10_000.0  # DAI untouched
    assert book.leg_amount[1] == pytest.approx(1 - 0.735, rel=1e-12)


def test_whole_leg_closable_when_the_chosen_collateral_is_below_2000_usd():
    # 1 WETH at 1,900 (1,900 USD < 2,000) and 0.07 WBTC at 25,000 (1,750 USD): the WETH leg
    # is chosen. HF = (1,577 + 1,365) / 3,000 = 0.980667 > 0.95, yet the whole 3,000 USDC may
    # go. Seizing 3,000 / 1,900 * 1.06 = 1.674 WETH > 1 takes the leg for 1,900 / 1.06 =
    # 1,792.45 USDC, more than the 1,500 a 50% close factor would allow.
    pools, book = one_account({WETH: 1.0, WBTC: 0.07}, {USDC: 3000.0})
    price = np.array([1900.0, 25000.0, 1.0, 1.0])
    assert book.health_of([0], price)[0] == pytest.approx(2942 / 3000)
    liquidate(pools, book, price)
    assert book.leg_amount[0] == 0.0
    assert book.leg_amount[1] == 0.07
    assert book.leg_debt()[2] == pytest.approx(3000 - 1900 / 1.06, rel=1e-12)
    assert pools.deficit.sum() == 0.0  # the WBTC leg is left


def test_full_close_capped_by_a_small_collateral_leg_reduces_the_repay():
    # At 1,600 / 24,000: HF = (13,280 + 18,720) / 35,000 = 0.914286 <= 0.95: the whole
    # 35,000 may go. The WBTC leg (24,000, largest) would need 35,000 / 24,000 * 1.05 = 1.531
    # WBTC; it has 1, so all of it goes for 24,000 / 1.05 = 22,857.14 USDC. Fee = (1 - 1/1.05)
    # * 10% = 0.0047619 WBTC. WETH is left, so no deficit.
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 35_000.0})
    price = np.array([1600.0, 24000.0, 1.0, 1.0])
    stats, n, liqs = liquidate(pools, book, price)
    assert n == 1
    assert book.leg_amount[1] == 0.0 and book.leg_amount[0] == 10.0
    assert book.leg_debt()[2] == pytest.approx(35_000 - 24_000 / 1.05, rel=1e-12)
    assert pools.treasury[WBTC] == pytest.approx((1 - 1 / 1.05) * 0.1, rel=1e-9)
    assert liqs.balance[0, WBTC] == pytest.approx(1 - (1 - 1 / 1.05) * 0.1, rel=1e-12)
    assert pools.deficit.sum() == 0.0 and stats[0, ck.BAD_DEBT] == 0.0
    # HF after = 13,280 / 12,142.857 = 1.093647.
    assert book.health_of([0], price)[0] == pytest.approx(13_280 / (35_000 - 24_000 / 1.05))


def test_every_debt_leg_becomes_deficit_when_the_last_collateral_goes():
    # 1 WBTC at 20,000 + 2 WETH at 1,000; debt 20,000 USDC + 5,000 DAI.
    # HF = (15,600 + 1,660) / 25,000 = 0.6904.
    pools, book = one_account({WBTC: 1.0, WETH: 2.0}, {USDC: 20_000.0, DAI: 5000.0})
    price = np.array([1000.0, 20000.0, 1.0, 1.0])
    # Pass 1: WBTC (20,000) against USDC (20,000), full close; 1.05 WBTC needed, 1 held: all
    # WBTC for 20,000 / 1.05 = 19,047.62 USDC. WETH remains: no deficit, one per pass.
    stats, n, _ = liquidate(pools, book, price)
    assert n == 1 and pools.deficit.sum() == 0.0
    usdc_left = 20_000 - 20_000 / 1.05
    assert book.leg_debt()[2] == pytest.approx(usdc_left, rel=1e-12)
    # Pass 2: HF = 1,660 / 5,952.38 = 0.279; WETH (the last collateral) against DAI (5,000 >
    # 952.38). 5,000 / 1,000 * 1.06 = 5.3 WETH needed, 2 held: 2,000 / 1.06 = 1,886.79 DAI
    # repaid. No collateral left: DAI 5,000 - 1,886.79 = 3,113.21 and USDC 952.38 -> deficit.
    stats, n, _ = liquidate(pools, book, price)
    assert n == 1
    assert pools.deficit[DAI] == pytest.approx(5000 - 2000 / 1.06, rel=1e-12)
    assert pools.deficit[USDC] == pytest.approx(usdc_left, rel=1e-9)
    assert stats[0, ck.BAD_DEBT] == pytest.approx(5000 - 2000 / 1.06 + usdc_left)
    assert not book.leg_amount.any()
    np.testing.assert_allclose(pools.total_scaled_debt, 0.0, atol=1e-9)
    np.testing.assert_allclose(pools.total_coll, 0.0, atol=1e-12)
    np.testing.assert_allclose(ledger_gap(pools), 0.0, atol=1e-6)
    assert liquidate(pools, book, price)[1] == 0  # nothing left to liquidate


def test_collateral_with_zero_liquidation_threshold_is_not_seized():
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 35_000.0})
    pools.liquidation_threshold[WBTC] = 0.0  # WBTC no longer counts (nor can be seized)
    # HF = 10 * 1,750 * 0.83 / 35,000 = 0.415; the WETH leg (17,500 < 25,000) is seized.
    # Full close: 35,000 / 1,750 * 1.06 = 21.2 WETH needed, 10 held, so all WETH goes for
    # 17,500 / 1.06 USDC. Aave counts only LT > 0 collateral (calculateUserAccountData), so
    # none is left: the rest of the debt is deficit although the WBTC stays with the account.
    liquidate(pools, book, [1750.0, 25000.0, 1.0, 1.0])
    assert book.leg_amount[1] == 1.0 and book.leg_amount[0] == 0.0
    assert pools.deficit[USDC] == pytest.approx(35_000 - 17_500 / 1.06, rel=1e-12)


# --- Protocol operations --------------------------------------------------------------------


def test_open_accounts_checks_ltv_over_all_legs():
    price = np.array([2000.0, 30000.0, 1.0, 1.0])
    book = AccountBook(lending())
    # Borrowing power 10 * 2,000 * 0.80 + 30,000 * 0.73 = 16,000 + 21,900 = 37,900.
    book.open_accounts([7], [3], leg_market=[WETH, WBTC, USDC],
                       leg_amount=[10.0, 1.0, 37_900.0], leg_is_debt=[False, False, True],
                       asset_price=price)
    with pytest.raises(ProtocolError, match="LTV"):
        book.open_accounts([7], [3], leg_market=[WETH, WBTC, USDC],
                           leg_amount=[10.0, 1.0, 37_901.0], leg_is_debt=[False, False, True],
                           asset_price=price)
    assert len(book) == 1 and book.owner[0] == 7


@pytest.mark.parametrize(("markets", "amounts", "debt", "message"), [
    ([0, 4 + 2], [1.0, 100.0], [False, True], "one lending protocol"),
    ([0, 0, 2], [1.0, 1.0, 100.0], [False, False, True], "same market"),
    ([0, 2], [1.0, 2e7], [False, True], "LTV"),
    ([0, 2], [-1.0, 0.0], [False, True], ">= 0"),
])
def test_open_accounts_refuses(markets, amounts, debt, message):
    book = AccountBook(lending(n_protocols=2))
    with pytest.raises(ProtocolError, match=message):
        book.open_accounts([0], [len(markets)], leg_market=markets, leg_amount=amounts,
                           leg_is_debt=debt, asset_price=np.array([2000.0, 3e4, 1.0, 1.0]))


def test_open_accounts_refuses_borrowing_beyond_cash():
    pools = lending()
    book = AccountBook(pools)
    with pytest.raises(ProtocolError, match="liquidity"):
        book.open_accounts([0], [2], leg_market=[WBTC, USDC], leg_amount=[1000.0, 1.5e7],
                           leg_is_debt=[False, True], asset_price=np.array([2e3, 3e4, 1, 1]))


def test_repay_caps_at_the_debt_and_moves_cash():
    pools, book = one_account({WETH: 10.0}, {USDC: 5000.0, DAI: 1000.0})
    cash0 = pools.cash.copy()
    repaid = book.repay([0, 0], [USDC, DAI], [2000.0, 5000.0])
    np.testing.assert_allclose(repaid, [2000.0, 1000.0])
    np.testing.assert_allclose(book.leg_debt()[1:], [3000.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(pools.cash - cash0, [0, 0, 2000.0, 1000.0])
    np.testing.assert_allclose(ledger_gap(pools), 0.0, atol=1e-6)
    with pytest.raises(ProtocolError, match="does not borrow"):
        book.repay([0], [WETH], [1.0])


def test_add_collateral_tops_up_or_adds_a_leg():
    pools = lending()
    book = AccountBook(pools)
    price = np.array([2000.0, 30000.0, 1.0, 1.0])
    book.open_accounts([0, 1], [2, 2], leg_market=[WETH, USDC, WETH, DAI],
                       leg_amount=[1.0, 1000.0, 2.0, 500.0],
                       leg_is_debt=[False, True, False, True], asset_price=price)
    book.add_collateral([0, 0, 1], [WETH, WBTC, WBTC], [1.0, 0.1, 0.2])
    # Account 0: WETH 2, USDC debt, WBTC 0.1 (new leg after its others); account 1 likewise.
    np.testing.assert_array_equal(book.leg_start, [0, 3, 6])
    np.testing.assert_array_equal(book.leg_market, [WETH, USDC, WBTC, WETH, DAI, WBTC])
    np.testing.assert_allclose(book.leg_amount, [2.0, 1000.0, 0.1, 2.0, 500.0, 0.2])
    np.testing.assert_allclose(pools.total_coll[:2], [4.0, 0.3])
    # HF of account 0 = (2 * 2,000 * 0.83 + 0.1 * 30,000 * 0.78) / 1,000 = 5.66.
    assert book.health_of([0], price)[0] == pytest.approx(5.66)


def test_totals_are_the_legs_per_market():
    pools, book = one_account({WETH: 10.0, WBTC: 1.0}, {USDC: 25_000.0, DAI: 10_000.0})
    price = np.array([1000.0, 20000.0, 1.0, 1.0])
    coll, debt, insolvent = book.totals(price)
    np.testing.assert_allclose(coll, [10.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(debt, [0.0, 0.0, 25_000.0, 10_000.0])
    # Collateral 30,000 < debt 35,000: 5,000 insolvent, one account below HF 1.
    np.testing.assert_allclose(insolvent, [[5000.0, 1.0]])
    np.testing.assert_allclose(coll, pools.total_coll)
    np.testing.assert_allclose(debt, pools.debt())


# --- One-leg accounts are single-pair positions ---------------------------------------------

PAIR_PROTOCOLS = (  # per asset WETH, WBTC, USDC; protocol 1 closes whole positions
    dict(lt=[0.86, 0.82, 0.885], bonus=[0.05, 0.05, 0.045], fee=[0.1, 0.1, 0.1],
         borrow_index=[1.0, 1.0, 1.013], rules=[0.5, 0.95, 2000.0, 1000.0]),
    dict(lt=[0.80, 0.75, 0.85], bonus=[0.08, 0.065, 0.05], fee=[0.2, 0.15, 0.1],
         borrow_index=[1.002, 1.0, 1.041], rules=[1.0, 0.9, 500.0, 250.0]),
)


def pair_book(seed, n_prot, shock, capital, n=150):
    """A random single-pair book (cascade arrays) after a price shock."""
    rng = np.random.default_rng(seed)
    m = 3
    market_asset = np.tile(np.arange(m, dtype=np.int64), n_prot)
    market_protocol = np.repeat(np.arange(n_prot, dtype=np.int64), m)

    def per_market(key):
        return np.concatenate([np.asarray(PAIR_PROTOCOLS[p][key], float) for p in range(n_prot)])

    protocol = rng.integers(0, n_prot, n)
    coll_market = (protocol * m + rng.choice([0, 1], n)).astype(np.int32)
    debt_market = (protocol * m + 2).astype(np.int32)
    price0 = np.array([3000.0, 60000.0, 1.0])
    value = np.exp(rng.normal(np.log(8000), 1.3, n))
    lt = per_market("lt")
    debt = value * np.minimum(1 - 1 / rng.uniform(1.5, 6.0, n), lt[coll_market] * 0.97)
    borrow_index = per_market("borrow_index")
    oracle = price0 * np.array([shock, rng.uniform(0.75, 1.0), 1.0])
    k = n_prot * m
    coll = value / price0[market_asset[coll_market]]
    scaled = debt / borrow_index[debt_market]
    liq_balance = np.zeros((3, m))
    liq_balance[:, 2] = rng.uniform(0.2, 1.0, 3) * capital
    reserve_base = np.array([rng.uniform(200, 3000)])
    return dict(
        coll_market=coll_market, debt_market=debt_market, coll=coll, scaled_debt=scaled,
        market_asset=market_asset, market_protocol=market_protocol, lt=lt,
        bonus=per_market("bonus"), protocol_fee=per_market("fee"), borrow_index=borrow_index,
        cash=np.full(k, 1e8), treasury=np.zeros(k), deficit=np.zeros(k),
        total_coll=np.bincount(coll_market, coll, k),
        total_scaled_debt=np.bincount(debt_market, scaled, k),
        market_rules=np.array([PAIR_PROTOCOLS[p]["rules"] for p in market_protocol]),
        oracle_price=oracle, external_price=price0 * np.array([shock, 1.0, 1.0]),
        venue_pool=np.tile(np.array([0, -1, -1], dtype=np.int64), n_prot),
        reserve_base=reserve_base, reserve_quote=reserve_base * oracle[0],
        pool_fee=np.array([0.003]),
        pool_amp=np.zeros(1), pool_peg=np.ones(1), pool_base=np.zeros(1, dtype=np.int64),
        pool_quote=np.array([2], dtype=np.int64), liq_balance=liq_balance,
        liq_gas=rng.uniform(1, 30, 3), liq_min_profit=rng.uniform(0, 50, 3),
        liq_atomic=np.array([True, False, True]), liq_order=rng.permutation(3),
        gas_sink=np.zeros(m),
    )


def as_accounts(case):
    """The same book as one-collateral, one-debt accounts (CSR)."""
    n = len(case["coll"])
    leg_market = np.empty(2 * n, dtype=np.int32)
    leg_market[0::2] = case["coll_market"]
    leg_market[1::2] = case["debt_market"]
    leg_amount = np.empty(2 * n)
    leg_amount[0::2] = case["coll"]
    leg_amount[1::2] = case["scaled_debt"]
    leg_is_debt = np.tile([False, True], n)
    return np.arange(0, 2 * n + 1, 2, dtype=np.int64), leg_market, leg_amount, leg_is_debt


def kernel_tables(c):
    """The case's markets, pools and liquidators as the kernels take them (plain tuples)."""
    tables = (
        MarketTable(c["market_asset"], c["market_protocol"], c["lt"], c["bonus"],
                    c["protocol_fee"], c["borrow_index"], c["cash"], c["treasury"],
                    c["deficit"], c["total_coll"], c["total_scaled_debt"],
                    *c["market_rules"].T, c["venue_pool"]),
        PoolTable(c["reserve_base"], c["reserve_quote"], c["pool_fee"], c["pool_amp"],
                  c["pool_peg"], c["pool_base"], c["pool_quote"]),
        LiquidatorTable(c["liq_balance"], c["liq_gas"], c["liq_min_profit"],
                        c["liq_atomic"], c["liq_order"]),
    )
    return tuple(tuple(t) for t in tables)


def run_accounts(c, legs, stats):
    return ak.liquidate_accounts(tuple(LegTable(*legs)), *kernel_tables(c), c["oracle_price"],
                                 c["external_price"], c["gas_sink"], stats)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_prot=st.sampled_from([1, 2]),
       shock=st.floats(0.45, 0.97), capital=st.sampled_from([2e4, 2e5, 5e6]))
def test_one_leg_accounts_match_the_single_pair_cascade(seed, n_prot, shock, capital):
    case = pair_book(seed, n_prot, shock, capital)
    pair, acc = copy.deepcopy(case), copy.deepcopy(case)
    pair_stats = np.zeros((n_prot, ck.N_STATS))
    rounds = np.zeros(1, dtype=np.int64)
    ck.run_cascade(
        tuple(PositionTable(pair["coll_market"], pair["debt_market"], pair["coll"],
                            pair["scaled_debt"])),
        *kernel_tables(pair),
        tuple(ArbitrageurTable(np.zeros((0, 3)), np.zeros(0, dtype=np.int64),
                               np.zeros(0, dtype=np.int64))),
        pair["oracle_price"], np.full(3, -1, dtype=np.int64), pair["external_price"],
        pair["gas_sink"], 1, pair_stats, np.zeros(ck.N_TOTALS), rounds)
    legs = as_accounts(acc)
    acc_stats = np.zeros((n_prot, ck.N_STATS))
    done = run_accounts(acc, legs, acc_stats)
    assert done == rounds[0]
    np.testing.assert_allclose(legs[2][0::2], pair["coll"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(legs[2][1::2], pair["scaled_debt"], rtol=1e-12, atol=1e-9)
    for key in ("cash", "treasury", "deficit", "total_coll", "total_scaled_debt",
                "reserve_base", "reserve_quote", "liq_balance", "gas_sink"):
        np.testing.assert_allclose(acc[key], pair[key], rtol=1e-12, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(acc_stats, pair_stats, rtol=1e-12, atol=1e-9)


def test_single_pair_comparison_covers_every_branch():
    # Guard for the property above: across a few books the one pass hits partial and full
    # closes, capital-limited repays and bad debt, in both protocols.
    seen = np.zeros((2, ck.N_STATS))
    for seed in range(6):
        case = pair_book(seed, 2, 0.5 if seed % 2 else 0.85, 2e5 if seed < 3 else 5e6)
        run_accounts(case, as_accounts(case), seen)
    assert (seen[:, ck.LIQUIDATION_COUNT] > 10).all()
    assert (seen[:, ck.BAD_DEBT] > 0).all()


# --- Plain-Python twin on multi-leg books ---------------------------------------------------

TWIN_PROTOCOLS = (  # per asset WETH, WBTC, USDC, DAI
    dict(lt=[0.83, 0.78, 0.88, 0.80], bonus=[0.06, 0.05, 0.045, 0.05], fee=[0.1] * 4,
         borrow_index=[1.01, 1.0, 1.03, 1.02], rules=list(RULES)),
    dict(lt=[0.80, 0.75, 0.85, 0.0], bonus=[0.08, 0.065, 0.05, 0.05], fee=[0.2, 0.15, 0.1, 0.1],
         borrow_index=[1.0, 1.002, 1.041, 1.0], rules=[1.0, 0.9, 500.0, 250.0]),
)


def multi_leg_book(seed, n=250):
    """Random accounts with 1-3 collateral legs and 1-2 debt legs, after a price shock."""
    rng = np.random.default_rng(seed)
    n_prot = 2 if seed % 2 else 1
    k = n_prot * M
    market_asset = np.tile(np.arange(M, dtype=np.int64), n_prot)
    market_protocol = np.repeat(np.arange(n_prot, dtype=np.int64), M)

    def per_market(key):
        return np.concatenate([np.asarray(TWIN_PROTOCOLS[p][key], float) for p in range(n_prot)])

    lt, borrow_index = per_market("lt"), per_market("borrow_index")
    price0 = np.array([2000.0, 30000.0, 1.0, 1.0])
    starts, markets, amounts, is_debt = [0], [], [], []
    for _ in range(n):
        base = M * rng.integers(0, n_prot)
        colls = rng.choice([WETH, WBTC, USDC], rng.integers(1, 4), replace=False)
        debts = rng.choice([USDC, DAI, WETH], rng.integers(1, 3), replace=False)
        values = np.exp(rng.normal(np.log(6000), 1.2, len(colls)))
        power = (values * lt[base + colls]).sum()
        owed = power * rng.uniform(0.5, 0.99) * rng.dirichlet(np.ones(len(debts)))
        for a, v in zip(colls, values, strict=True):
            markets.append(base + a)
            amounts.append(v / price0[a])
            is_debt.append(False)
        for a, v in zip(debts, owed, strict=True):
            markets.append(base + a)
            amounts.append(v / price0[a] / borrow_index[base + a])
            is_debt.append(True)
        starts.append(len(markets))
    leg_market = np.array(markets, dtype=np.int32)
    leg_amount = np.array(amounts)
    leg_is_debt = np.array(is_debt)
    oracle = price0 * np.array([rng.uniform(0.5, 0.95), rng.uniform(0.6, 1.0), 1.0,
                                rng.uniform(1.0, 1.08)])
    liq_balance = np.zeros((3, M))
    liq_balance[:, [USDC, DAI]] = rng.uniform(1e4, 3e5, (3, 2))
    liq_balance[:, WETH] = rng.uniform(0, 100, 3)
    venue = np.tile(np.array([0, 1, -1, -1], dtype=np.int64), n_prot)
    reserve_base = np.array([rng.uniform(300, 3000), rng.uniform(20, 200)])
    return dict(
        leg_start=np.array(starts, dtype=np.int64), leg_market=leg_market,
        leg_amount=leg_amount, leg_is_debt=leg_is_debt,
        market_asset=market_asset, market_protocol=market_protocol, lt=lt,
        bonus=per_market("bonus"), protocol_fee=per_market("fee"), borrow_index=borrow_index,
        cash=np.full(k, 1e8), treasury=np.zeros(k), deficit=np.zeros(k),
        total_coll=np.bincount(leg_market[~leg_is_debt], leg_amount[~leg_is_debt], k),
        total_scaled_debt=np.bincount(leg_market[leg_is_debt], leg_amount[leg_is_debt], k),
        market_rules=np.array([TWIN_PROTOCOLS[p]["rules"] for p in market_protocol]),
        oracle_price=oracle, external_price=oracle * np.array([1.0, 1.02, 1.0, 1.0]),
        venue_pool=venue, reserve_base=reserve_base,
        reserve_quote=reserve_base * oracle[[WETH, WBTC]] * 0.99, pool_fee=np.full(2, 0.003),
        pool_amp=np.zeros(2), pool_peg=np.ones(2), pool_base=np.array([WETH, WBTC]),
        pool_quote=np.array([USDC, USDC]), liq_balance=liq_balance,
        liq_gas=rng.uniform(1, 30, 3), liq_min_profit=rng.uniform(0, 50, 3),
        liq_atomic=np.array([True, False, False]), liq_order=rng.permutation(3),
        gas_sink=np.zeros(M),
    )


def run_kernel(case):
    c = copy.deepcopy(case)
    stats = np.zeros((int(c["market_protocol"].max()) + 1, ck.N_STATS))
    legs = (c["leg_start"], c["leg_market"], c["leg_amount"], c["leg_is_debt"])
    done = run_accounts(c, legs, stats)
    return c, stats, done


def twin_pass(case):
    """One pass, restated from the rules over plain lists (no code shared with the kernel)."""
    c = copy.deepcopy(case)
    asset, proto = list(c["market_asset"]), list(c["market_protocol"])
    lt, bonus, fee = list(c["lt"]), list(c["bonus"]), list(c["protocol_fee"])
    index = list(c["borrow_index"])
    oracle, value = list(c["oracle_price"]), list(c["external_price"])
    cash, treasury, deficit = list(c["cash"]), list(c["treasury"]), list(c["deficit"])
    pools = [dict(rb=float(b), rq=float(q), fee=float(f), quote=int(a)) for b, q, f, a in
             zip(c["reserve_base"], c["reserve_quote"], c["pool_fee"], c["pool_quote"],
                 strict=True)]
    bal = [list(r) for r in c["liq_balance"]]
    gas_sink = list(c["gas_sink"])
    stats = [[0.0] * ck.N_STATS for _ in range(max(proto) + 1)]
    accounts = []
    for a in range(len(c["leg_start"]) - 1):
        accounts.append([dict(k=int(c["leg_market"][i]), x=float(c["leg_amount"][i]),
                              debt=bool(c["leg_is_debt"][i]))
                         for i in range(c["leg_start"][a], c["leg_start"][a + 1])])

    def p(k):
        return oracle[asset[k]]

    def worth(leg):  # value at oracle prices: tokens, or scaled debt times index
        return leg["x"] * (index[leg["k"]] if leg["debt"] else 1.0) * p(leg["k"])

    done = 0
    for legs in accounts:
        colls = [g for g in legs if not g["debt"]]
        debts = [g for g in legs if g["debt"]]
        hf_num = sum(worth(g) * lt[g["k"]] for g in colls)
        hf_den = sum(worth(g) for g in debts)
        if not hf_num < hf_den:
            continue
        seizable = [g for g in colls if lt[g["k"]] > 0 and worth(g) > 0]
        owing = [g for g in debts if worth(g) > 0]
        if not seizable or not owing:
            continue
        cl = max(seizable, key=worth)  # first of equals, as the kernel
        dl = max(owing, key=worth)
        ck_, dk = cl["k"], dl["k"]
        close_factor, hf_threshold, small, leftover = c["market_rules"][ck_]
        hf = hf_num / hf_den
        debt = dl["x"] * index[dk]
        pc, pd = p(ck_), p(dk)
        max_debt = debt
        if cl["x"] * pc >= small and debt * pd >= small and hf > hf_threshold:
            max_debt = min(debt, close_factor * hf_den / pd)
        for liq in c["liq_order"]:
            gas_tokens = c["liq_gas"][liq] / value[asset[dk]]
            budget = bal[liq][asset[dk]] - gas_tokens
            if budget <= 0:
                continue
            x, to_liq, to_fee, pair_bad = ref.aave_liquidation(
                min(max_debt, budget), debt, cl["x"], pd, pc, hf, bonus[ck_], fee[ck_],
                (1.0, hf_threshold, small, leftover))
            if x <= 0:
                continue
            v = c["venue_pool"][ck_]
            proceeds, sell = to_liq * value[asset[ck_]], False
            if v >= 0:
                got = ref.amount_out(to_liq, pools[v]["rb"], pools[v]["rq"], pools[v]["fee"])
                if c["liq_atomic"][liq] or got * value[pools[v]["quote"]] >= proceeds:
                    proceeds, sell = got * value[pools[v]["quote"]], True
            profit = proceeds - x * value[asset[dk]] - c["liq_gas"][liq]
            if profit < c["liq_min_profit"][liq]:
                continue
            seized = to_liq + to_fee
            emptied = pair_bad > 0 or seized >= cl["x"]
            cl["x"] = 0.0 if emptied else cl["x"] - seized
            treasury[ck_] += to_fee
            no_coll = emptied and not any(lt[g["k"]] > 0 and worth(g) > 0 for g in colls)
            cash[dk] += x
            bad_value = 0.0
            if no_coll:
                for g in debts:
                    owed = g["x"] * index[g["k"]] - (x if g is dl else 0.0)
                    deficit[g["k"]] += owed
                    bad_value += owed * p(g["k"])
                    g["x"] = 0.0
            else:
                dl["x"] = max(dl["x"] - x / index[dk], 0.0)
            bal[liq][asset[dk]] -= x + gas_tokens
            gas_sink[asset[dk]] += gas_tokens
            if sell:
                pools[v]["rb"] += to_liq
                pools[v]["rq"] -= got
                bal[liq][pools[v]["quote"]] += got
            else:
                bal[liq][asset[ck_]] += to_liq
            row = stats[proto[ck_]]
            row[ck.LIQUIDATION_COUNT] += 1
            row[ck.LIQUIDATED_VALUE] += x * pd
            row[ck.SEIZED_COLLATERAL_VALUE] += seized * pc
            row[ck.BAD_DEBT] += bad_value
            row[ck.LIQUIDATOR_PROFIT] += profit
            row[ck.PROTOCOL_FEE_VALUE] += to_fee * pc
            done += 1
            break
    leg_amount = [g["x"] for legs in accounts for g in legs]
    return dict(leg_amount=leg_amount, cash=cash, treasury=treasury, deficit=deficit,
                reserve_base=[q["rb"] for q in pools], reserve_quote=[q["rq"] for q in pools],
                liq_balance=bal, gas_sink=gas_sink, stats=stats, done=done)


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_plain_python_twin_on_multi_leg_books(seed):
    case = multi_leg_book(seed)
    k, stats, done = run_kernel(case)
    twin = twin_pass(case)
    assert done == twin["done"] >= 10
    for key in ("leg_amount", "cash", "treasury", "deficit", "reserve_base", "reserve_quote",
                "liq_balance", "gas_sink"):
        np.testing.assert_allclose(k[key], twin[key], rtol=1e-9, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(stats, twin["stats"], rtol=1e-9, atol=1e-6)


def test_multi_leg_books_exercise_the_multi_leg_rules():
    # Guard for the twin comparison: its books contain accounts where the v3.3 total-debt
    # close factor binds (HF > 0.95, both chosen legs >= 2,000 USD, yet more than 50% of the
    # chosen debt leg repaid) and where the last collateral goes with a second debt leg left
    # (both debt legs reduced in one pass: only the deficit rule touches two legs).
    total_cap, other_leg_deficit = 0, 0
    for seed in range(8):
        case = multi_leg_book(seed)
        k = run_kernel(case)[0]
        price = case["oracle_price"][case["market_asset"]][case["leg_market"]]
        index = np.where(case["leg_is_debt"], case["borrow_index"][case["leg_market"]], 1.0)
        value = case["leg_amount"] * index * price
        repaid = (case["leg_amount"] - k["leg_amount"]) * index
        for a in range(len(case["leg_start"]) - 1):
            legs = np.arange(case["leg_start"][a], case["leg_start"][a + 1])
            debt_legs = legs[case["leg_is_debt"][legs]]
            coll_legs = legs[~case["leg_is_debt"][legs]]
            paid = debt_legs[repaid[debt_legs] > 0]
            if len(debt_legs) == 2 and len(paid) == 2:
                other_leg_deficit += 1
            if len(debt_legs) != 2 or len(paid) != 1:
                continue
            lt = case["lt"][case["leg_market"][coll_legs]]
            hf = (value[coll_legs] * lt).sum() / value[debt_legs].sum()
            rules = case["market_rules"][case["leg_market"][paid[0]]]
            if (hf > rules[1] and value[paid[0]] >= rules[2] and value[coll_legs].max()
                    >= rules[2] and rules[0] < 1.0):
                leg_debt = case["leg_amount"][paid[0]] * index[paid[0]]
                total_cap += repaid[paid[0]] > 0.5 * leg_debt * (1 + 1e-9)
    assert total_cap > 0 and other_leg_deficit > 0


# --- Conservation ---------------------------------------------------------------------------


def tokens_per_asset(c):
    """Every token of the pass, per asset: accounts' collateral, reserve cash, treasury,
    liquidators, pools and gas."""
    held = np.zeros(M)
    coll = ~c["leg_is_debt"]
    np.add.at(held, c["market_asset"][c["leg_market"][coll]], c["leg_amount"][coll])
    np.add.at(held, c["market_asset"], c["cash"] + c["treasury"])
    held += c["liq_balance"].sum(axis=0) + c["gas_sink"]
    np.add.at(held, c["pool_base"], c["reserve_base"])
    np.add.at(held, c["pool_quote"], c["reserve_quote"])
    return held


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_passes_conserve_tokens_and_the_reserve_ledger(seed):
    case = multi_leg_book(seed, n=120)
    c = copy.deepcopy(case)
    legs = (c["leg_start"], c["leg_market"], c["leg_amount"], c["leg_is_debt"])
    k = len(c["cash"])
    tokens0 = tokens_per_asset(c)
    ledger0 = c["cash"] + c["total_scaled_debt"] * c["borrow_index"] + c["deficit"]
    stats = np.zeros((2, ck.N_STATS))
    total = 0
    for _ in range(10):  # passes to a fixed point at fixed prices
        n = run_accounts(c, legs, stats)
        total += n
        np.testing.assert_allclose(tokens_per_asset(c), tokens0, rtol=1e-12)
        # cash + debt + deficit is unchanged per market (supplied and claims do not move).
        ledger = c["cash"] + c["total_scaled_debt"] * c["borrow_index"] + c["deficit"]
        np.testing.assert_allclose(ledger, ledger0, rtol=1e-12, atol=1e-6)
        # The running totals stay equal to the legs.
        coll, debt = ~c["leg_is_debt"], c["leg_is_debt"]
        np.testing.assert_allclose(
            c["total_coll"], np.bincount(c["leg_market"][coll], c["leg_amount"][coll], k),
            rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(
            c["total_scaled_debt"],
            np.bincount(c["leg_market"][debt], c["leg_amount"][debt], k), rtol=1e-12,
            atol=1e-6)
        assert (c["leg_amount"] >= 0).all() and (c["liq_balance"] >= -1e-9).all()
        if n == 0:
            break
    assert total > 0
    np.testing.assert_allclose(stats[:, ck.BAD_DEBT].sum(),
                               (c["deficit"] * c["oracle_price"][c["market_asset"]]).sum(),
                               rtol=1e-9, atol=1e-6)


def test_account_book_keeps_the_reserve_ledger_and_wallet_tokens():
    pools = lending(n_protocols=2)
    book = AccountBook(pools)
    rng = np.random.default_rng(5)
    price = np.array([2000.0, 30000.0, 1.0, 1.0])
    owners, counts, markets, amounts, debts = [], [], [], [], []
    for i in range(60):
        base = M * (i % 2)
        markets += [base + WETH, base + WBTC, base + USDC, base + DAI]
        weth, wbtc = rng.uniform(0.5, 20), rng.uniform(0.01, 1)
        power = weth * 2000 * 0.80 + wbtc * 30000 * 0.73
        share = rng.uniform(0.3, 0.7)
        amounts += [weth, wbtc, power * share * 0.99, power * (1 - share) * 0.99]
        debts += [False, False, True, True]
        owners.append(i)
        counts.append(4)
    book.open_accounts(owners, counts, leg_market=markets, leg_amount=amounts,
                       leg_is_debt=debts, asset_price=price)
    np.testing.assert_allclose(ledger_gap(pools), 0.0, atol=1e-6)
    wallets = np.zeros(M)  # borrowed tokens went to the owners' wallets
    np.add.at(wallets, pools.market_asset[markets], np.where(debts, amounts, 0.0))
    amm, venue = no_venues(len(pools.cash))
    liqs = SimpleNamespace(balance=np.tile([0.0, 0.0, 1e6, 1e6], (2, 1)),
                           gas_cost=np.array([5.0, 8.0]), min_profit=np.array([10.0, 0.0]),
                           atomic=np.zeros(2, dtype=bool), order=np.array([1, 0]))
    gas_sink = np.zeros(M)
    shocked = np.array([1200.0, 17000.0, 1.0, 1.0])

    def held():
        coll, _, _ = book.totals(shocked)
        return (pools.per_asset(coll + pools.cash + pools.treasury) + liqs.balance.sum(axis=0)
                + gas_sink + wallets)

    before = held()
    n_total = 0
    for _ in range(10):
        _, n = book.liquidate(oracle_price=shocked, external_price=shocked, venue_pool=venue,
                              pools=amm, liquidators=liqs, gas_sink=gas_sink)
        n_total += n
        if n == 0:
            break
    assert n_total > 0 and pools.deficit.sum() > 0
    np.testing.assert_allclose(held(), before, rtol=1e-12)
    np.testing.assert_allclose(ledger_gap(pools), 0.0, atol=1e-6)
    coll, debt, insolvent = book.totals(shocked)
    np.testing.assert_allclose(coll, pools.total_coll, atol=1e-9)
    np.testing.assert_allclose(debt, pools.debt(), atol=1e-6)
    assert insolvent[:, 1].sum() == (book.health_of(np.arange(len(book)), shocked) < 1).sum()
