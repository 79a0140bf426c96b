"""Perpetual futures: margin thresholds, skew funding, liquidation fee, insurance fund, ADL.

Sources of the rules (``sim/engine/perps.py``): dYdX v4 docs (margin requirements
``|S P I|`` and ``|S P M|``; insurance fund then deleveraging at the bankruptcy price;
liquidation penalty into the insurance fund), Synthetix SIP-80 (funding proportional to the
skew, clamped), BitMEX/MEXC/Binance ADL ranking (PNL% x effective leverage). Expected values
are hand calculations written beside each test.

Unless stated: one protocol "perp", assets ETH (0) and USDC (1, settlement); the ETH market
has IM 5%, MM 3%, liquidation fee 1%, max funding 10% a day, skew scale 1,000 ETH.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import perps as kern
from sim.protocols.lending import ProtocolError
from sim.protocols.perps import PerpMarkets

ETH = dict(initial_margin=0.05, maintenance_margin=0.03, liquidation_fee=0.01,
           max_funding_rate=0.10, skew_scale=1000.0)


def prices(eth):
    return np.array([float(eth), 1.0])


def perp(insurance=0.0, vault=0.0):
    return PerpMarkets(["perp"], [[dict(ETH, vault_balance=vault), None]],
                       settlement_asset=[1], insurance_fund=[insurance])


def open_one(pm, size, margin, price=2000.0, owner=0):
    rows = pm.open_positions([owner], [0], [size], margin=[margin], asset_price=prices(price))
    return rows.start


# --- Margin thresholds (dYdX v4: IMR = |S P I|, MMR = |S P M|) ------------------------------


def test_initial_margin_is_five_percent_of_notional():
    # 10 ETH at 2,000: notional 20,000; IM 5% -> 1,000 USDC.
    pm = perp()
    with pytest.raises(ProtocolError, match="initial margin"):
        open_one(pm, 10.0, 999.99)
    with pytest.raises(ProtocolError, match="initial margin"):
        open_one(pm, -10.0, 999.99)
    row = open_one(pm, 10.0, 1000.0)
    assert pm.book.entry_price[row] == 2000.0
    assert pm.long_oi[0] == 10.0


def test_initial_margin_counts_an_execution_price_worse_than_the_mark():
    # Bought at 2,010 with the mark at 2,000: equity = 1,050 + 10 (2000 - 2010) = 950 < 1,000.
    pm = perp()
    with pytest.raises(ProtocolError, match="initial margin"):
        pm.open_positions([0], [0], [10.0], margin=[1050.0], asset_price=prices(2000),
                          entry_price=[2010.0])
    pm.open_positions([0], [0], [10.0], margin=[1100.0], asset_price=prices(2000),
                      entry_price=[2010.0])  # 1,100 - 100 = 1,000: exactly IM


def test_equity_is_margin_plus_price_pnl():
    pm = perp()
    long_row = open_one(pm, 10.0, 1000.0)
    short_row = open_one(pm, -10.0, 1000.0)
    # At 1,900: long 1,000 + 10 (1900 - 2000) = 0; short 1,000 - 10 (1900 - 2000) = 2,000.
    assert pm.equity(prices(1900)) == pytest.approx([0.0, 2000.0])
    assert pm.equity(prices(2100), [long_row, short_row]) == pytest.approx([2000.0, 0.0])


def test_liquidation_prices_by_hand():
    pm = perp()
    rows = [open_one(pm, 10.0, 1000.0), open_one(pm, -10.0, 1000.0)]
    # Long: 1000 + 10 (p - 2000) = 0.03 * 10 p  ->  9.7 p = 19,000  ->  p = 1,958.7629.
    # Short: 1000 - 10 (p - 2000) = 0.03 * 10 p  ->  10.3 p = 21,000  ->  p = 2,038.8350.
    assert pm.liquidation_price(rows) == pytest.approx([19000 / 9.7, 21000 / 10.3], rel=1e-12)
    assert pm.liquidation_price(rows) == pytest.approx([1958.7629, 2038.8350], rel=1e-7)


@pytest.mark.parametrize(("price", "liquidated"), [
    (1958.77, False),   # equity 1000 - 412.3 = 587.7 >= MMR 0.03 * 19,587.7 = 587.631
    (1958.75, True),    # equity 587.5 < MMR 587.625
])
def test_long_liquidated_only_below_its_liquidation_price(price, liquidated):
    pm = perp()
    open_one(pm, 10.0, 1000.0)
    stats, _, _ = pm.liquidate(prices(price))
    assert stats[0, kern.LIQUIDATION_COUNT] == float(liquidated)
    assert (pm.book.size[0] == 0.0) == liquidated


# --- Funding (Synthetix SIP-80, skew-proportional, clamped) ---------------------------------


def test_funding_by_hand_longs_pay_shorts_and_the_vault():
    # Longs 200 + 100 ETH, shorts 100 ETH: skew +200, skew scale 1,000 -> 0.2 of the max.
    # Rate for one hour: 0.2 * 10%/day * 1/24 = 0.000833333; per contract at 2,000: 1.666667.
    # Long 200 pays 333.333, long 100 pays 166.667, the short receives 166.667 and the vault
    # (short the 200 skew) receives 333.333: 333.333 + 166.667 = 166.667 + 333.333.
    pm = perp(vault=100_000.0)
    pm.open_positions([0, 1, 2], [0, 0, 0], [200.0, 100.0, -100.0],
                      margin=[40_000.0, 20_000.0, 20_000.0], asset_price=prices(2000))
    eq0, vault0 = pm.equity(prices(2000)), pm.vault_equity(prices(2000))[0]
    rate = pm.accrue_funding(prices(2000), 1.0)
    assert rate[0] == pytest.approx(0.2 * 0.10 / 24, rel=1e-12)
    assert pm.funding_index[0] == pytest.approx(2000 * 0.2 * 0.10 / 24, rel=1e-12)
    paid = pm.equity(prices(2000)) - eq0
    assert paid == pytest.approx([-1000 / 3, -500 / 3, 500 / 3], rel=1e-12)
    vault_gain = pm.vault_equity(prices(2000))[0] - vault0
    assert vault_gain == pytest.approx(1000 / 3, rel=1e-9)
    assert paid.sum() + vault_gain == pytest.approx(0.0, abs=1e-9)


def test_funding_rate_clamped_at_the_maximum_and_shorts_pay_a_short_skew():
    # Skew -3,000 ETH is 3 skew scales: clamped to -1 -> rate -10%/day * 8 h/24 = -0.033333.
    pm = perp()
    pm.open_positions([0], [0], [-3000.0], margin=[400_000.0], asset_price=prices(2000))
    rate = pm.accrue_funding(prices(2000), 8.0)
    assert rate[0] == pytest.approx(-0.10 / 3, rel=1e-12)
    # The short pays 3,000 * 2,000 * 0.033333 = 200,000, all to the vault (no longs).
    assert pm.equity(prices(2000))[0] == pytest.approx(400_000.0 - 200_000.0, rel=1e-12)
    assert pm.vault_equity(prices(2000))[0] == pytest.approx(200_000.0, rel=1e-12)


def test_funding_is_settled_on_close():
    # Long 100 ETH alone: skew 100 -> rate 0.1 * 10%/day * 24 h = 1%; 100 * 2,000 * 1% = 2,000.
    pm = perp(vault=50_000.0)
    row = open_one(pm, 100.0, 20_000.0)
    pm.accrue_funding(prices(2000), 24.0)
    paid = pm.close_positions([row], 2000.0)
    assert paid == pytest.approx([18_000.0])
    assert pm.vault_balance[0] == pytest.approx(52_000.0)


# --- Closing -------------------------------------------------------------------------------


def test_close_realises_pnl_at_the_execution_price():
    # Long 10 at 2,000 with 1,000 margin, closed at 2,100: 1,000 + 10 * 100 = 2,000 paid out;
    # the vault pays the 1,000 of profit.
    pm = perp(vault=10_000.0)
    row = open_one(pm, 10.0, 1000.0)
    assert pm.close_positions([row], 2100.0) == pytest.approx([2000.0])
    assert pm.vault_balance[0] == pytest.approx(9000.0)
    assert pm.long_oi[0] == 0.0 and pm.book.size[row] == 0.0
    with pytest.raises(ProtocolError, match="closed"):
        pm.close_positions([row], 2100.0)


def test_close_refuses_a_position_bankrupt_at_that_price():
    # At 1,850 the long's equity is 1,000 - 1,500 < 0: only liquidation may close it.
    pm = perp()
    row = open_one(pm, 10.0, 1000.0)
    with pytest.raises(ProtocolError, match="bankrupt"):
        pm.close_positions([row], 1850.0)


def test_added_margin_moves_the_liquidation_price():
    # Margin 2,000: 2000 + 10 (p - 2000) = 0.3 p -> p = 18,000 / 9.7 = 1,855.67.
    pm = perp()
    row = open_one(pm, 10.0, 1000.0)
    pm.add_margin([row], [1000.0])
    assert pm.liquidation_price([row]) == pytest.approx([18000 / 9.7], rel=1e-12)
    stats, _, _ = pm.liquidate(prices(1900))
    assert stats[0, kern.LIQUIDATION_COUNT] == 0.0


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="maintenance_margin <= initial_margin"):
        PerpMarkets(["perp"], [[dict(ETH, maintenance_margin=0.06), None]],
                    settlement_asset=[1], insurance_fund=[0.0])
    with pytest.raises(ValueError, match="skew_scale"):
        PerpMarkets(["perp"], [[dict(ETH, skew_scale=0.0), None]],
                    settlement_asset=[1], insurance_fund=[0.0])
    with pytest.raises(ProtocolError, match="unlisted"):
        perp().open_positions([0], [1], [1.0], margin=[1e6], asset_price=prices(2000))


# --- Liquidation: fee split ----------------------------------------------------------------


def test_liquidation_fee_goes_to_the_insurance_fund_and_the_rest_to_the_trader():
    # Long 10 at 2,000, margin 1,000; mark 1,950: equity 1,000 - 500 = 500 < MMR 585.
    # Fee 1% of 19,500 = 195 to the fund; 500 - 195 = 305 back to the trader; the vault
    # wins the 500 of loss.
    pm = perp(insurance=1000.0, vault=10_000.0)
    open_one(pm, 10.0, 1000.0)
    stats, closed, payout = pm.liquidate(prices(1950))
    assert payout == pytest.approx([305.0])
    assert pm.insurance_fund[0] == pytest.approx(1195.0)
    assert pm.vault_balance[0] == pytest.approx(10_500.0)
    assert closed[0] == 10.0  # 10 ETH of long exposure left: the vault's hedge flow
    assert stats[0, kern.LIQUIDATION_FEES] == pytest.approx(195.0)
    assert stats[0, kern.LIQUIDATED_NOTIONAL] == pytest.approx(19_500.0)
    assert stats[0, kern.INSURANCE_FUND] == pytest.approx(1195.0)
    assert pm.book.margin[0] == 0.0 and pm.long_oi[0] == 0.0


def test_liquidation_fee_capped_at_the_remaining_equity():
    # Mark 1,910: equity 1,000 - 900 = 100; fee min(1% * 19,100 = 191, 100) = 100; payout 0.
    pm = perp()
    open_one(pm, 10.0, 1000.0)
    stats, _, payout = pm.liquidate(prices(1910))
    assert payout == pytest.approx([0.0], abs=1e-12)
    assert pm.insurance_fund[0] == pytest.approx(100.0)
    assert stats[0, kern.LIQUIDATION_FEES] == pytest.approx(100.0)


# --- Liquidation: bankruptcy ---------------------------------------------------------------


def test_bankruptcy_paid_by_the_insurance_fund():
    # Mark 1,850: equity 1,000 - 1,500 = -500. The fund (2,000) pays 500 -> 1,500 left.
    # The vault receives the full 1,500 of loss: 1,000 of margin + 500 from the fund.
    pm = perp(insurance=2000.0, vault=10_000.0)
    open_one(pm, 10.0, 1000.0)
    stats, _, payout = pm.liquidate(prices(1850))
    assert payout == pytest.approx([0.0])
    assert pm.insurance_fund[0] == pytest.approx(1500.0)
    assert pm.vault_balance[0] == pytest.approx(11_500.0)
    assert stats[0, kern.INSURANCE_PAID] == pytest.approx(500.0)
    assert stats[0, kern.ADL_AMOUNT] == 0.0 and stats[0, kern.BAD_DEBT] == 0.0


def test_bad_debt_when_nothing_is_left_to_deleverage():
    # Mark 1,800: equity -1,000; the fund pays its 200, no opposite positions: 800 bad debt,
    # written off by the vault, which ends with margin + fund = 1,200 instead of 2,000.
    pm = perp(insurance=200.0, vault=10_000.0)
    open_one(pm, 10.0, 1000.0)
    stats, _, _ = pm.liquidate(prices(1800))
    assert pm.insurance_fund[0] == 0.0
    assert stats[0, kern.BAD_DEBT] == pytest.approx(800.0)
    assert pm.vault_balance[0] == pytest.approx(11_200.0)


def adl_book(order):
    """Long A bankrupt at 1,800 and two shorts B, C in profit; rows in the given order."""
    pm = perp(insurance=200.0, vault=10_000.0)
    spec = {"A": (10.0, 1000.0, 2000.0), "B": (-5.0, 1000.0, 2000.0),
            "C": (-4.0, 2000.0, 2100.0)}
    rows = {}
    for name in order:
        size, margin, entry = spec[name]
        rows[name] = pm.open_positions([0], [0], [size], margin=[margin],
                                       asset_price=prices(entry)).start
    return pm, rows


@pytest.mark.parametrize("order", ["ABC", "ACB", "CBA"])
def test_adl_by_hand_with_two_opposite_positions(order):
    # At 1,800: A (long 10 at 2,000, margin 1,000) has equity -1,000; the fund pays 200,
    # 800 to deleverage. Bankruptcy price p_b = 1800 + 1000 / 10 = 1,900 (100 per contract).
    # B: short 5 at 2,000, margin 1,000: P&L +1,000, equity 2,000; PNL% = 1000 / 10,000 = 0.1,
    #    effective leverage 5 * 1800 / 2000 = 4.5 -> score 0.45.
    # C: short 4 at 2,100, margin 2,000: P&L +1,200, equity 3,200; PNL% = 1200 / 8,400
    #    = 0.142857, leverage 7,200 / 3,200 = 2.25 -> score 0.3214. B goes first, whatever
    #    the book order.
    # B: all 5 contracts at 1,900 give 5 * 100 = 500 (< its equity 2,000): closed, paid out
    #    1,000 + 5 * (2000 - 1900) = 1,500. 300 left.
    # C: 3 contracts at 1,900 give 300: realised 3 * (2100 - 1900) = 600, margin 2,600, left
    #    short 1 at 2,100: equity 2,600 + 300 = 2,900 = 3,200 - 300.
    pm, rows = adl_book(order)
    a, b, c = rows["A"], rows["B"], rows["C"]
    score_b = kern.adl_score(-5.0, 2000.0, 1000.0, 2000.0, 1800.0)
    score_c = kern.adl_score(-4.0, 2100.0, 2000.0, 3200.0, 1800.0)
    assert score_b == pytest.approx(0.45)
    assert score_c == pytest.approx(1200 / 8400 * 7200 / 3200)  # 0.3214
    vault_before = pm.vault_equity(prices(1800))[0]
    stats, closed, payout = pm.liquidate(prices(1800))
    assert stats[0, kern.LIQUIDATION_COUNT] == 1.0
    assert stats[0, kern.INSURANCE_PAID] == pytest.approx(200.0)
    assert stats[0, kern.ADL_AMOUNT] == pytest.approx(800.0)
    assert stats[0, kern.ADL_NOTIONAL] == pytest.approx(8 * 1800.0)
    assert stats[0, kern.BAD_DEBT] == 0.0
    assert payout[a] == 0.0 and payout[b] == pytest.approx(1500.0) and payout[c] == 0.0
    assert pm.book.size[[a, b, c]] == pytest.approx([0.0, 0.0, -1.0])
    assert pm.book.margin[c] == pytest.approx(2600.0)
    assert pm.equity(prices(1800), [c]) == pytest.approx([2900.0])
    assert closed[0] == pytest.approx(10.0 - 5.0 - 3.0)  # only 2 ETH hit the vault
    assert pm.short_oi[0] == pytest.approx(1.0) and pm.long_oi[0] == 0.0
    # Fund and ADL made the vault whole: its equity is what it was before the liquidation.
    assert pm.vault_equity(prices(1800))[0] == pytest.approx(vault_before, rel=1e-12)


def test_adl_never_makes_a_counterparty_bankrupt():
    # A as above needs 1,000 (no fund). The only short: 10 at 1,790 with margin 1,000: equity
    # at 1,800 = 1000 - 100 = 900 > 0. It gives at most its 900 (9 contracts at p_b 1,900:
    # 9 * (1900 - 1800) = 900); 100 of bad debt is left. The short, left with 1 contract and
    # no equity, is itself liquidated later in the same pass, with nothing to pay out.
    pm = perp(vault=10_000.0)
    open_one(pm, 10.0, 1000.0, price=2000.0)
    short = open_one(pm, -10.0, 1000.0, price=1790.0)
    stats, closed, payout = pm.liquidate(prices(1800))
    assert stats[0, kern.ADL_AMOUNT] == pytest.approx(900.0)
    assert stats[0, kern.ADL_NOTIONAL] == pytest.approx(9 * 1800.0)
    assert stats[0, kern.BAD_DEBT] == pytest.approx(100.0, rel=1e-9)
    assert stats[0, kern.LIQUIDATION_COUNT] == 2.0
    assert payout[short] == pytest.approx(0.0, abs=1e-9)
    assert closed[0] == pytest.approx(10.0 - 9.0 - 1.0, abs=1e-12)
    assert pm.short_oi[0] == pytest.approx(0.0, abs=1e-12)


def test_bankrupt_short_is_deleveraged_against_longs_below_the_mark():
    # Short 10 at 2,000, margin 1,000; mark 2,200: equity -1,000; p_b = 2200 - 1000 / 10
    # = 2,100 (below the mark). The long 20 at 2,000 (margin 2,000, equity 6,000) closes 10
    # contracts at 2,100 instead of 2,200: gives 1,000 and realises 10 * 100 = 1,000.
    pm = perp(vault=10_000.0)
    open_one(pm, -10.0, 1000.0)
    long_row = open_one(pm, 20.0, 2000.0)
    stats, closed, _ = pm.liquidate(prices(2200))
    assert stats[0, kern.ADL_AMOUNT] == pytest.approx(1000.0)
    assert pm.book.size[long_row] == pytest.approx(10.0)
    assert pm.book.margin[long_row] == pytest.approx(2000.0 + 2000.0 - 1000.0)
    assert closed[0] == pytest.approx(-10.0 + 10.0, abs=1e-12)


# --- The kernel against a plain-Python twin ------------------------------------------------


def twin_pass(pos, mk, insurance):
    """dYdX-style liquidation pass, restated on lists; returns (payout, closed, stats, count).

    ``pos``: dict of lists (market, size, entry, margin, fentry), updated in place.
    ``mk``: dict of lists per market (protocol, mm, fee, mark, findex, long_oi, short_oi,
    open_cost, funding_basis, vault), updated in place. ``insurance``: list, in place.
    """
    n, n_markets = len(pos["size"]), len(mk["mark"])
    payout = [0.0] * n
    closed = [0.0] * n_markets
    stats = [[0.0] * kern.N_STATS for _ in insurance]
    queues, exhausted = {}, set()

    def equity(j):
        k = pos["market"][j]
        pnl = pos["size"][j] * (mk["mark"][k] - pos["entry"][j])
        funding = pos["size"][j] * (mk["findex"][k] - pos["fentry"][j])
        return pos["margin"][j] + pnl - funding

    def score(j):
        s, k = pos["size"][j], pos["market"][j]
        unrealised = equity(j) - pos["margin"][j]
        pnl_pct = unrealised / abs(s * pos["entry"][j])
        leverage = abs(s * mk["mark"][k]) / equity(j)
        return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage

    def reduce(j, dq):
        """Take dq signed contracts of row j out of the market's sums."""
        k = pos["market"][j]
        if pos["size"][j] > 0:
            mk["long_oi"][k] -= dq
        else:
            mk["short_oi"][k] += dq
        mk["open_cost"][k] -= dq * pos["entry"][j]
        mk["funding_basis"][k] -= dq * pos["fentry"][j]
        closed[k] += dq

    for i in range(n):
        s = pos["size"][i]
        if s == 0:
            continue
        k = pos["market"][i]
        mark, p = mk["mark"][k], mk["protocol"][k]
        eq = equity(i)
        if eq >= mk["mm"][k] * abs(s) * mark:
            continue
        if -kern.ROUNDING * abs(s) * mark < eq < 0:
            eq = 0.0  # rounding, not a loss (a position ADL left at zero equity)
        stats[p][kern.LIQUIDATION_COUNT] += 1
        stats[p][kern.LIQUIDATED_NOTIONAL] += abs(s) * mark
        mk["vault"][k] -= eq - pos["margin"][i]
        reduce(i, s)
        pos["size"][i] = 0.0
        pos["margin"][i] = 0.0
        if eq >= 0:
            fee = min(mk["fee"][k] * abs(s) * mark, eq)
            insurance[p] += fee
            stats[p][kern.LIQUIDATION_FEES] += fee
            payout[i] += eq - fee
            continue
        shortfall = -eq
        paid = min(shortfall, max(insurance[p], 0.0))
        insurance[p] -= paid
        stats[p][kern.INSURANCE_PAID] += paid
        shortfall -= paid
        # Bankruptcy price p_b = mark - eq / s: a counterparty closed there instead of at the
        # mark gives up |p_b - mark| = -eq / |s| per contract.
        per_unit = -eq / abs(s)
        side = "long" if s < 0 else "short"
        if shortfall > 0 and (k, side) not in queues:
            cands = [j for j in range(n) if pos["market"][j] == k and pos["size"][j] != 0
                     and (pos["size"][j] > 0) == (side == "long") and equity(j) > 0]
            queues[(k, side)] = sorted(cands, key=lambda j: (-score(j), j))
        for j in queues.get((k, side), []) if shortfall > 0 else []:
            if j in exhausted or pos["size"][j] == 0 or equity(j) <= 0:
                continue
            sj = pos["size"][j]
            give = min(abs(sj) * per_unit, equity(j), shortfall)
            q = abs(sj) if give == abs(sj) * per_unit else give / per_unit
            dq = q if sj > 0 else -q
            at_mark = dq * (mark - pos["entry"][j]) - dq * (mk["findex"][k] - pos["fentry"][j])
            mk["vault"][k] -= at_mark
            pos["margin"][j] += at_mark - give
            reduce(j, dq)
            pos["size"][j] = sj - dq
            stats[p][kern.ADL_AMOUNT] += give
            stats[p][kern.ADL_NOTIONAL] += q * mark
            if pos["size"][j] == 0:
                payout[j] += pos["margin"][j]
                pos["margin"][j] = 0.0
            shortfall -= give
            if shortfall == 0:
                break
            exhausted.add(j)
        if shortfall > 0:
            mk["vault"][k] -= shortfall
            stats[p][kern.BAD_DEBT] += shortfall
    for p in range(len(insurance)):
        stats[p][kern.INSURANCE_FUND] = insurance[p]
    return payout, closed, stats, sum(row[kern.LIQUIDATION_COUNT] for row in stats)


def random_book(rng, n, n_markets, n_protocols):
    market = rng.integers(0, n_markets, n)
    side = rng.choice([-1.0, 1.0], n)
    size = side * rng.uniform(0.1, 50.0, n)
    entry = rng.uniform(500.0, 3000.0, n)
    margin = np.abs(size) * entry * rng.uniform(0.01, 0.4, n)
    fentry = rng.uniform(-5.0, 5.0, n)
    mk = dict(protocol=rng.integers(0, n_protocols, n_markets),
              mm=rng.uniform(0.02, 0.1, n_markets), fee=rng.uniform(0.0, 0.05, n_markets),
              mark=rng.uniform(500.0, 3000.0, n_markets),
              findex=rng.uniform(-5.0, 5.0, n_markets),
              vault=rng.uniform(0.0, 1e5, n_markets))
    mk["long_oi"] = np.bincount(market, np.maximum(size, 0), n_markets)
    mk["short_oi"] = np.bincount(market, np.maximum(-size, 0), n_markets)
    mk["open_cost"] = np.bincount(market, size * entry, n_markets)
    mk["funding_basis"] = np.bincount(market, size * fentry, n_markets)
    insurance = rng.choice([0.0, 1.0, 1e3, 1e5], n_protocols)
    pos = dict(market=market.astype(np.int32), size=size, entry=entry, margin=margin,
               fentry=fentry)
    return pos, mk, insurance


@settings(deadline=None, max_examples=150)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), n_markets=st.integers(1, 3),
       n_protocols=st.integers(1, 2))
def test_liquidation_kernel_matches_twin(seed, n, n_markets, n_protocols):
    rng = np.random.default_rng(seed)
    pos, mk, insurance = random_book(rng, n, n_markets, n_protocols)
    twin_pos = {key: list(v) for key, v in pos.items()}
    twin_mk = {key: list(v) for key, v in mk.items()}
    twin_ins = list(insurance)
    want = twin_pass(twin_pos, twin_mk, twin_ins)

    a = {key: np.array(v) for key, v in pos.items()}
    m = {key: np.array(v, dtype=np.int64 if key == "protocol" else np.float64)
         for key, v in mk.items()}
    ins = np.array(insurance, dtype=np.float64)
    payout, closed = np.zeros(n), np.zeros(n_markets)
    stats = np.zeros((n_protocols, kern.N_STATS))
    held_before = a["margin"].sum() + m["vault"].sum() + ins.sum()
    count = kern.liquidate_pass(
        a["market"], a["size"], a["entry"], a["margin"], a["fentry"], m["protocol"], m["mm"],
        m["fee"], m["mark"], m["findex"], m["long_oi"], m["short_oi"], m["open_cost"],
        m["funding_basis"], m["vault"], ins, payout, closed, stats)

    scale = held_before + np.abs(a["size"] * a["entry"]).sum()
    assert count == want[3]
    assert payout == pytest.approx(want[0], rel=1e-9, abs=1e-9 * scale)
    assert closed == pytest.approx(want[1], rel=1e-9, abs=1e-9)
    assert stats == pytest.approx(np.array(want[2]), rel=1e-9, abs=1e-9 * scale)
    assert a["size"] == pytest.approx(twin_pos["size"], rel=1e-9, abs=1e-12)
    assert a["margin"] == pytest.approx(twin_pos["margin"], rel=1e-9, abs=1e-9 * scale)
    assert ins == pytest.approx(twin_ins, rel=1e-9, abs=1e-9 * scale)
    for key in ("vault", "long_oi", "short_oi", "open_cost", "funding_basis"):
        assert m[key] == pytest.approx(twin_mk[key], rel=1e-9, abs=1e-9 * scale), key
    # The pass moves tokens, it never makes or destroys them.
    held_after = a["margin"].sum() + m["vault"].sum() + ins.sum() + payout.sum()
    assert held_after == pytest.approx(held_before, rel=1e-12, abs=1e-12 * scale)
    # Nothing left behind below zero: liquidated rows are empty, counterparties >= 0.
    eq = np.empty(n)
    kern.position_equity(a["market"], a["size"], a["entry"], a["margin"], a["fentry"],
                         m["mark"], m["findex"], eq)
    assert np.all(eq[a["size"] != 0] >= -1e-9 * scale)
    assert np.all(payout >= 0.0) and np.all(ins >= 0.0)


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32 - 1))
def test_equity_and_funding_kernels_match_numpy(seed):
    rng = np.random.default_rng(seed)
    pos, mk, _ = random_book(rng, 30, 3, 1)
    out = np.empty(30)
    kern.position_equity(pos["market"], pos["size"], pos["entry"], pos["margin"],
                         pos["fentry"], mk["mark"], mk["findex"], out)
    k = pos["market"]
    want = (pos["margin"] + pos["size"] * (mk["mark"][k] - pos["entry"])
            - pos["size"] * (mk["findex"][k] - pos["fentry"]))
    assert out == pytest.approx(want, rel=1e-12, abs=1e-9)
    scale, max_rate = rng.uniform(1.0, 500.0, 3), rng.uniform(0.0, 1.0, 3)
    index, rate = mk["findex"].copy(), np.empty(3)
    kern.accrue_funding(mk["long_oi"], mk["short_oi"], mk["mark"], scale, max_rate, 0.5,
                        index, rate)
    want_rate = np.clip((mk["long_oi"] - mk["short_oi"]) / scale, -1, 1) * max_rate * 0.5 / 24
    assert rate == pytest.approx(want_rate, rel=1e-12, abs=1e-18)
    assert index == pytest.approx(mk["findex"] + want_rate * mk["mark"], rel=1e-12)


# --- Conservation under random price paths, funding and liquidations -----------------------


def two_protocols():
    # Assets ETH (0), BTC (1), USDC (2); protocol "a" lists both, "b" only ETH.
    btc = dict(initial_margin=0.10, maintenance_margin=0.05, liquidation_fee=0.015,
               max_funding_rate=0.2, skew_scale=50.0, vault_balance=2e5)
    return PerpMarkets(["a", "b"], [[dict(ETH, vault_balance=1e5), btc, None],
                                    [dict(ETH, skew_scale=300.0), None, None]],
                       settlement_asset=[2, 2], insurance_fund=[5e3, 0.0])


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_settlement_tokens_conserved_and_pnl_zero_sum(seed):
    rng = np.random.default_rng(seed)
    pm = two_protocols()
    price = np.array([2000.0, 60000.0, 1.0])
    held0 = pm.settlement_held()
    deposited, paid_out = np.zeros(2), np.zeros(2)
    stats_total = np.zeros((2, kern.N_STATS))
    listed = np.flatnonzero(pm.listed)
    for _ in range(30):
        # Open a few positions at random leverage up to the IM limit.
        n_new = int(rng.integers(0, 6))
        if n_new:
            k = rng.choice(listed, n_new)
            mark = pm.mark_price(price)[k]
            size = rng.choice([-1.0, 1.0], n_new) * rng.uniform(0.1, 20.0, n_new) * 2000 / mark
            margin = np.abs(size) * mark * pm.initial_margin[k] * rng.uniform(1.0, 4.0, n_new)
            pm.open_positions(np.zeros(n_new, int), k, size, margin=margin, asset_price=price)
            np.add.at(deposited, pm.market_protocol[k], margin)
        # Close or top up some open, solvent positions.
        open_rows = np.flatnonzero(pm.book.size != 0)
        if len(open_rows):
            eq = pm.equity(price, open_rows)
            solvent = open_rows[eq > 0.01 * np.abs(pm.book.size[open_rows])
                                * pm.mark_price(price)[pm.book.market[open_rows]]]
            pick = solvent[rng.random(len(solvent)) < 0.15]
            if len(pick):
                mark = pm.mark_price(price)[pm.book.market[pick]]
                paid = pm.close_positions(pick, mark * (1 + rng.uniform(-0.005, 0.005)))
                np.add.at(paid_out, pm.market_protocol[pm.book.market[pick]], paid)
            top = np.setdiff1d(open_rows, pick)[:2]
            if len(top):
                pm.add_margin(top, 100.0)
                np.add.at(deposited, pm.market_protocol[pm.book.market[top]], 100.0)
        # Move prices (fat tails: a jump now and then), accrue funding, liquidate.
        shock = rng.normal(0.0, 0.03, 2) + (rng.random(2) < 0.1) * rng.normal(0.0, 0.25, 2)
        price[:2] *= np.exp(shock)
        pm.accrue_funding(price, 1.0)
        stats, _, payout = pm.liquidate(price)
        stats_total += stats
        np.add.at(paid_out, pm.market_protocol[pm.book.market], payout)

        # Tokens: what the protocols hold moves only with deposits and payouts.
        assert pm.settlement_held() + paid_out - deposited == pytest.approx(
            held0, rel=1e-9, abs=1e-9 * deposited.sum())
        # Zero-sum P&L: traders' equity + the vault's (from its own running bases)
        # = margins + vault balances, per market, at any mark.
        for test_price in (price, price * np.array([0.7, 1.3, 1.0])):
            eq = pm.equity(test_price)
            per_market_eq = np.bincount(pm.book.market, eq, len(pm.listed))
            per_market_margin = np.bincount(pm.book.market, pm.book.margin, len(pm.listed))
            lhs = per_market_eq + pm.vault_equity(test_price)
            rhs = per_market_margin + pm.vault_balance
            assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-6 * (1 + np.abs(rhs).max()))
        # Open interest sums agree with the book.
        b = pm.book
        n_markets = len(pm.listed)
        assert pm.long_oi == pytest.approx(
            np.bincount(b.market, np.maximum(b.size, 0), n_markets), abs=1e-9)
        assert pm.short_oi == pytest.approx(
            np.bincount(b.market, np.maximum(-b.size, 0), n_markets), abs=1e-9)
        assert np.all(pm.insurance_fund >= 0.0)
        assert np.all(np.isfinite(b.margin)) and np.all(np.isfinite(pm.vault_balance))
    assert np.all(stats_total >= 0.0)


def test_a_position_left_at_zero_equity_by_adl_deleverages_nobody():
    # Regression (found by the twin test at seed 1166050): a short ADL had left at equity
    # -2.5e-13 (float rounding of zero) was liquidated as bankrupt, and the 2.5e-13
    # shortfall at a bankruptcy distance of 6.6e-13 per contract deleveraged 0.39 contracts
    # of a profitable position. A shortfall within ROUNDING of the notional is no loss.
    rng = np.random.default_rng(1166050)
    pos, mk, insurance = random_book(rng, 16, 1, 2)
    twin_pos = {key: list(v) for key, v in pos.items()}
    twin_mk = {key: list(v) for key, v in mk.items()}
    want = twin_pass(twin_pos, twin_mk, list(insurance))
    a = {key: np.array(v) for key, v in pos.items()}
    m = {key: np.array(v, dtype=np.int64 if key == "protocol" else np.float64)
         for key, v in mk.items()}
    ins = np.array(insurance, dtype=np.float64)
    payout, closed = np.zeros(16), np.zeros(1)
    stats = np.zeros((2, kern.N_STATS))
    kern.liquidate_pass(
        a["market"], a["size"], a["entry"], a["margin"], a["fentry"], m["protocol"], m["mm"],
        m["fee"], m["mark"], m["findex"], m["long_oi"], m["short_oi"], m["open_cost"],
        m["funding_basis"], m["vault"], ins, payout, closed, stats)
    assert closed == pytest.approx(want[1], rel=1e-12)
    assert a["size"] == pytest.approx(twin_pos["size"], rel=1e-12)


def test_cross_margin_pools_an_accounts_equity_by_requirement():
    # Hand case, marks 2,000 (WETH) and 60,000 (WBTC), MM 3%: one owner long 10 WETH at
    # 2,200 with margin 1,000 (equity 1,000 + 10 (2,000 - 2,200) = -1,000) and long 1 WBTC
    # at 60,000 with margin 10,000 (equity 10,000). Account: equity 9,000, requirement
    # 0.03 (20,000 + 60,000) = 2,400. Pooled: the WETH position holds 9,000 x 600 / 2,400 =
    # 2,250 of equity, the WBTC one 6,750; margins sum to 11,000 as before; nobody is
    # liquidated (9,000 > 2,400), whereas isolated the WETH position would be.
    params = dict(initial_margin=0.05, maintenance_margin=0.03, liquidation_fee=0.0,
                  max_funding_rate=0.0, skew_scale=1e9)
    pm = PerpMarkets(["dex"], [[params, params, None]], settlement_asset=[2],
                     insurance_fund=[0.0], cross_margin=[True])
    open_price = np.array([2200.0, 60000.0, 1.0])
    pm.open_positions([7, 7], [0, 1], [10.0, 1.0], margin=[1100.0, 10_000.0],
                      asset_price=open_price)
    pm.book.margin[0] = 1000.0  # as in the hand case
    now = np.array([2000.0, 60000.0, 1.0])
    pm.pool_cross_margin(now)
    np.testing.assert_allclose(pm.equity(now), [2250.0, 6750.0])
    assert pm.book.margin.sum() == pytest.approx(11_000.0)
    stats, _, _ = pm.liquidate(now)
    assert stats[0, kern.LIQUIDATION_COUNT] == 0
    # WETH at 800: account equity 11,000 + 10 (800 - 2,200) = -3,000 < 0.03 (8,000 +
    # 60,000) = 2,040: both positions go, the WBTC one with the WETH one.
    crash = np.array([800.0, 60000.0, 1.0])
    pm.pool_cross_margin(crash)
    stats, _, _ = pm.liquidate(crash)
    assert stats[0, kern.LIQUIDATION_COUNT] == 2
