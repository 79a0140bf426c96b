"""Stablecoin protocols: Terra's market module (columbus-5) and Maker's PSM, by hand.

Sources: terra-money/classic-core v0.5 ``x/market/keeper/swap.go`` (``ComputeSwap``,
``ApplySwapToPool``), ``keeper.go`` (``ReplenishPools``), ``msg_server.go``
(``handleSwapRequest``); makerdao/dss-psm ``src/psm.sol`` (``sellGem``, ``buyGem``).
Unless stated: BasePool 1,000,000 numeraire, MinStabilitySpread 0.5%, PoolRecoveryPeriod 36
blocks, 10 blocks a step, sister (LUNA) oracle price 50.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.protocols.lending import ProtocolError
from sim.protocols.psm import PegStabilityModule
from sim.protocols.stablecoin import AlgorithmicStablecoin

B, MIN_SPREAD, PRP, BLOCKS, P = 1_000_000.0, 0.005, 36.0, 10.0, 50.0


def terra(delta=0.0, stable=1e9, sister=1e8, **kw):
    args = dict(base_pool=B, min_spread=MIN_SPREAD, pool_recovery_period=PRP,
                blocks_per_step=BLOCKS, stable_supply=stable, sister_supply=sister,
                terra_pool_delta=delta)
    args.update(kw)
    return AlgorithmicStablecoin(["terra"], **args)


def go_compute_swap(offer_value, offer_is_stable, base_pool, delta, min_spread):
    """ComputeSwap as written in swap.go: returns (value to the trader, spread)."""
    cp = base_pool * base_pool
    terra_pool = base_pool + delta
    luna_pool = cp / terra_pool
    offer_pool, ask_pool = (terra_pool, luna_pool) if offer_is_stable else (luna_pool,
                                                                             terra_pool)
    ask_base = ask_pool - cp / (offer_pool + offer_value)
    spread = (offer_value - ask_base) / offer_value
    if spread < min_spread:
        spread = min_spread
    return offer_value - spread * offer_value, spread


# --- Terra: virtual pools and spread --------------------------------------------------------


def test_virtual_pools_start_equal_and_keep_product_base_pool_squared():
    assert terra().pools(0) == (B, B)
    t, lp = terra(delta=250_000.0).pools(0)
    # TerraPool = 1,000,000 + 250,000; LunaPool = 1e12 / 1.25e6 = 800,000.
    assert (t, lp) == (1_250_000.0, pytest.approx(800_000.0, rel=1e-15))


def test_burn_stable_spread_from_constant_product_on_virtual_pools():
    m = terra()
    q = m.burn_stable(0, 10_000.0, P)
    # ask_base = LunaPool - cp / (TerraPool + 10,000) = 1e6 - 1e12 / 1.01e6 = 9,900.990099;
    # spread = (10,000 - 9,900.990099) / 10,000 = 1/101 = 0.00990099 > 0.5%.
    assert q.spread == pytest.approx(1 / 101, rel=1e-12)
    # Sister: 10,000 / 50 = 200 at the oracle rate; 200 * 100/101 = 198.019802 to the trader,
    # 200 / 101 = 1.980198 minted to the oracle reward pool.
    assert q.burnt == 10_000.0
    assert q.minted == pytest.approx(198.019802, rel=1e-8)
    assert q.fee == pytest.approx(1.980198, rel=1e-6)
    assert m.reward_sister[0] == q.fee
    # ApplySwapToPool: TerraPoolDelta += offer value.
    assert m.terra_pool_delta[0] == 10_000.0


def test_min_spread_binds_small_swaps():
    # 1,000 stable: constant-product spread 1,000 / 1,001,000 = 0.0999% < 0.5% -> 0.5%;
    # 1,000 / 50 = 20 sister, 20 * 0.995 = 19.9 to the trader, 0.1 to the reward pool.
    q = terra().quote_burn_stable(0, 1_000.0, P)
    assert q.spread == MIN_SPREAD
    assert q.minted == pytest.approx(19.9, rel=1e-12)
    assert q.fee == pytest.approx(0.1, rel=1e-10)


def test_burn_sister_after_a_contraction_pays_only_the_min_spread():
    # After 10,000 stable were burnt: TerraPool 1,010,000, LunaPool 990,099.0099. Burning 100
    # sister at 50 offers 5,000: ask_base = 1,010,000 * 5,000 / 995,099.0099 = 5,074.87 > 5,000,
    # a negative constant-product spread (-1.497%), so the 0.5% minimum applies: 4,975 stable
    # to the trader, 25 to the reward pool; delta falls by what the trader gets: 5,025 left.
    m = terra(delta=10_000.0)
    assert go_compute_swap(5_000.0, False, B, 10_000.0, -1.0)[1] == pytest.approx(
        -0.01497438, rel=1e-6)
    q = m.burn_sister(0, 100.0, P)
    assert q.spread == MIN_SPREAD
    assert q.minted == pytest.approx(4_975.0, rel=1e-12)
    assert q.fee == pytest.approx(25.0, rel=1e-10)
    assert m.terra_pool_delta[0] == pytest.approx(5_025.0, rel=1e-12)
    assert m.reward_stable[0] == pytest.approx(25.0, rel=1e-10)


def test_burn_sister_in_expansion_pays_constant_product_spread():
    # Balanced pools, 1,000 sister at 50 = 50,000 offered: ask_base = 1e6 * 50,000 / 1.05e6
    # = 47,619.05, spread 1/21 = 4.7619%; stable out 47,619.05; delta -47,619.05.
    m = terra()
    q = m.burn_sister(0, 1_000.0, P)
    assert q.spread == pytest.approx(1 / 21, rel=1e-12)
    assert q.minted == pytest.approx(47_619.047619, rel=1e-10)
    assert m.terra_pool_delta[0] == pytest.approx(-47_619.047619, rel=1e-10)


@settings(deadline=None, max_examples=300)
@given(delta_share=st.floats(-0.9, 5.0), size=st.floats(1e-4, 1e3),
       stable_side=st.booleans(), min_spread=st.floats(0.0, 0.05), price=st.floats(1e-2, 1e3))
def test_quotes_match_compute_swap_as_written(delta_share, size, stable_side, min_spread,
                                              price):
    # Twin: swap.go's literal difference form against the module's rewritten ratio form.
    m = terra(delta=delta_share * B, min_spread=min_spread)
    terra_pool, luna_pool = m.pools(0)
    if stable_side:
        amount = size * terra_pool
        value, spread = go_compute_swap(amount, True, B, delta_share * B, min_spread)
        q = m.quote_burn_stable(0, amount, price)
        assert q.minted * price == pytest.approx(value, rel=1e-8)
        assert q.minted + q.fee == pytest.approx(amount / price, rel=1e-12)
    else:
        amount = size * luna_pool / price
        value, spread = go_compute_swap(amount * price, False, B, delta_share * B, min_spread)
        q = m.quote_burn_sister(0, amount, price)
        assert q.minted == pytest.approx(value, rel=1e-8)
        assert q.minted + q.fee == pytest.approx(amount * price, rel=1e-12)
    assert q.spread == pytest.approx(spread, rel=1e-7, abs=1e-12)
    assert q.spread >= min_spread


def test_quotes_change_nothing():
    m = terra(delta=3_000.0)
    before = (m.terra_pool_delta.copy(), m.stable_supply.copy(), m.sister_supply.copy())
    m.quote_burn_stable(0, 50_000.0, P)
    m.quote_burn_sister(0, 500.0, P)
    after = (m.terra_pool_delta, m.stable_supply, m.sister_supply)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert m.step_stable_burnt[0] == 0.0 and m.step_sister_burnt[0] == 0.0


# --- Terra: recovery and capacity ------------------------------------------------------------


def test_pool_delta_recovers_geometrically_per_block():
    m = terra(delta=10_000.0)
    m.end_step(np.array([P]))
    # ReplenishPools every block: delta -= delta / 36. Ten blocks: 10,000 * (35/36)^10;
    # ln(35/36) = -0.0281709, x10 -> e^-0.281709 = 0.754493 -> 7,544.93.
    by_block = 10_000.0
    for _ in range(10):
        by_block -= by_block / 36.0
    assert m.terra_pool_delta[0] == pytest.approx(by_block, rel=1e-13)
    assert m.terra_pool_delta[0] == pytest.approx(7_544.934, rel=1e-6)
    # Recovery acts on either sign and never crosses zero.
    n = terra(delta=-10_000.0)
    n.end_step(np.array([P]))
    assert n.terra_pool_delta[0] == pytest.approx(-7_544.934, rel=1e-6)


def test_successive_burns_get_worse_rates_and_add_up_to_one_burn():
    # Five burns of 20,000 from balanced pools: value out per stable B^2 / (T (T + A)) with T
    # = 1.00, 1.02, 1.04, 1.06, 1.08 (x 1e6): 1/1.02 = 0.980392, 1/(1.02*1.04) = 0.942685,
    # 1/(1.04*1.06) = 0.907112, 1/(1.06*1.08) = 0.873515, 1/(1.08*1.10) = 0.841751.
    m = terra()
    rates = [m.burn_stable(0, 20_000.0, P).minted * P / 20_000.0 for _ in range(5)]
    assert rates == pytest.approx([0.980392, 0.942685, 0.907112, 0.873515, 0.841751],
                                  rel=1e-6)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    # Constant product is path independent: the five add up to one burn of 100,000, which
    # gets 100,000 / 1.1 = 90,909.09 worth of sister (the sum telescopes).
    one = terra().quote_burn_stable(0, 100_000.0, P)
    assert sum(rates) * 20_000.0 == pytest.approx(one.minted * P, rel=1e-12)
    assert one.minted * P == pytest.approx(90_909.0909, rel=1e-9)


def test_burn_capacity_at_a_spread_and_its_refill():
    m = terra()
    # 1 - B^2 / (B (B + A)) <= 2%  <=>  A <= B / 0.98 - B = 20,408.163.
    cap = m.burn_capacity(0, 0.02)
    assert cap == pytest.approx(20_408.163265, rel=1e-10)
    assert m.quote_burn_stable(0, cap, P).spread == pytest.approx(0.02, rel=1e-10)
    assert m.burn_capacity(0, 0.004) == 0.0  # below MinStabilitySpread nothing is cheaper
    m.burn_stable(0, cap, P)
    assert m.burn_capacity(0, 0.02) == 0.0
    # One step of recovery: delta = 20,408.16 * 0.754493 = 15,397.83, T = 1,015,397.83;
    # capacity = 1e12 / (0.98 T) - T = 1,004,934.4 - 1,015,397.8 < 0: still none.
    m.end_step(np.array([P]))
    assert m.burn_capacity(0, 0.02) == 0.0
    # The spread of the next small burn has fallen as the pool recovered: the marginal
    # spread 1 - (B / T)^2 = 1 - (1 / 1.0153978)^2 = 3.010%, above 2%.
    q = m.quote_burn_stable(0, 1.0, P)
    assert q.spread == pytest.approx(0.030099, rel=1e-4)
    # After many steps the pools are back: the full capacity returns.
    for _ in range(200):
        m.end_step(np.array([P]))
    assert m.burn_capacity(0, 0.02) == pytest.approx(cap, rel=1e-6)


def test_mint_capacity_at_a_spread():
    m = terra()
    # 1 - T / (B^2 / T + V) <= 2% at T = B  <=>  V <= B / 0.98 - B = 20,408.163 of sister value.
    v = m.mint_capacity(0, 0.02)
    assert v == pytest.approx(20_408.163265, rel=1e-10)
    assert m.quote_burn_sister(0, v / P, P).spread == pytest.approx(0.02, rel=1e-10)


# --- Terra: records and refusals ------------------------------------------------------------


def test_end_step_records_flows_backing_and_starts_afresh():
    m = terra(stable=10_000.0, sister=1_000.0)
    price = np.array([P])
    assert m.implied_backing(price)[0] == pytest.approx(5.0)  # 1,000 * 50 / 10,000
    m.burn_stable(0, 5_000.0, P)
    # 5,000 / 1,005,000 = 0.4975% < 0.5% -> 0.5%: 100 sister minted (99.5 + 0.5 fee);
    # backing = 1,100 * 50 / 5,000 = 11.0.
    rec = m.end_step(price)
    assert rec.stable_burnt[0] == 5_000.0
    assert rec.sister_minted[0] == pytest.approx(100.0, rel=1e-12)
    assert rec.spread_paid[0] == pytest.approx(0.5 * P, rel=1e-10)
    assert rec.implied_backing[0] == pytest.approx(11.0, rel=1e-12)
    assert rec.terra_pool_delta[0] == 5_000.0
    assert rec.sister_burnt[0] == 0.0 and rec.stable_minted[0] == 0.0
    assert m.step_stable_burnt[0] == 0.0 and m.step_spread_paid[0] == 0.0
    assert m.terra_pool_delta[0] == pytest.approx(5_000.0 * (35 / 36)**10, rel=1e-13)


def test_refusals():
    m = terra(stable=100.0, sister=10.0)
    for bad_price in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ProtocolError, match="price"):
            m.quote_burn_stable(0, 1.0, bad_price)
    for bad_amount in (-1.0, math.nan):
        with pytest.raises(ProtocolError, match="amount"):
            m.burn_sister(0, bad_amount, P)
    with pytest.raises(ProtocolError, match="exceeds the supply"):
        m.burn_stable(0, 101.0, P)
    with pytest.raises(ProtocolError, match="exceeds the supply"):
        m.burn_sister(0, 11.0, P)
    assert m.burn_stable(0, 0.0, P) == (0.0, 0.0, 0.0, 0.0)
    assert m.stable_supply[0] == 100.0 and m.terra_pool_delta[0] == 0.0
    with pytest.raises(ValueError, match="min_spread"):
        terra(min_spread=1.0)
    with pytest.raises(ValueError, match="pool_recovery_period"):
        terra(pool_recovery_period=0.5)


def test_protocols_in_one_table_are_independent():
    m = AlgorithmicStablecoin(["a", "b"], base_pool=[B, 2 * B], min_spread=MIN_SPREAD,
                              pool_recovery_period=PRP, blocks_per_step=BLOCKS,
                              stable_supply=1e9, sister_supply=1e8)
    m.burn_stable(1, 10_000.0, P)
    assert m.terra_pool_delta.tolist() == [0.0, 10_000.0]
    # b at delta 10,000: T = 2,010,000, LunaPool = 4e12 / T = 1,990,049.75; another 10,000
    # pays 1 - 1,990,049.75 / 2,020,000 = 1.4827%; a untouched still pays 1/101.
    assert m.quote_burn_stable(1, 10_000.0, P).spread == pytest.approx(0.0148269, rel=1e-5)
    assert m.quote_burn_stable(0, 10_000.0, P).spread == pytest.approx(1 / 101)


# --- Maker PSM -------------------------------------------------------------------------------


def psm(reserve=2_000_000.0, line=10_000_000.0, tin=0.001, tout=0.001):
    return PegStabilityModule(["psm-usdc"], tin=tin, tout=tout, line=line, reserve=reserve)


def test_sell_gem_pays_dai_less_tin_and_draws_debt():
    p = psm()
    t = p.sell_gem(0, 1_000_000.0)
    # sellGem: fee = 1,000,000 * 0.001 = 1,000 (to the vow), daiAmt = 999,000; frob +1,000,000.
    assert t == (1_000_000.0, 999_000.0, 1_000.0)
    assert p.reserve[0] == 3_000_000.0 and p.debt()[0] == 3_000_000.0
    assert p.surplus[0] == 1_000.0 and p.dai_minted[0] == 1_000_000.0


def test_buy_gem_takes_dai_plus_tout_and_repays_debt():
    p = psm()
    t = p.buy_gem(0, 500_000.0)
    # buyGem: fee = 500,000 * 0.001 = 500, daiAmt = 500,500 from the trader; frob -500,000.
    assert t == (500_000.0, 500_500.0, 500.0)
    assert p.reserve[0] == 1_500_000.0
    assert p.surplus[0] == 500.0 and p.dai_burnt[0] == 500_000.0


def test_sell_gem_stops_at_the_debt_ceiling():
    p = psm(reserve=9_500_000.0)
    t = p.sell_gem(0, 1_000_000.0)
    # Room under the 10M line: 500,000; dai 500,000 - 500 = 499,500.
    assert t == (500_000.0, 499_500.0, 500.0)
    assert p.reserve[0] == 10_000_000.0
    assert p.quote_sell_gem(0, 1.0) == (0.0, 0.0, 0.0)


def test_buy_gem_stops_at_the_reserve():
    p = psm(reserve=300_000.0)
    t = p.buy_gem(0, 1_000_000.0)
    assert t == (300_000.0, 300_300.0, 300.0)  # 300,000 * 1.001
    assert p.reserve[0] == 0.0
    assert p.quote_buy_gem(0, 1.0) == (0.0, 0.0, 0.0)


def test_psm_end_step_records_and_resets():
    p = psm(tin=0.0, tout=0.002)
    p.sell_gem(0, 100.0)
    p.buy_gem(0, 40.0)
    rec = p.end_step()
    assert (rec.gem_in[0], rec.gem_out[0]) == (100.0, 40.0)
    assert (rec.dai_minted[0], rec.dai_burnt[0]) == (100.0, 40.0)
    assert rec.fees[0] == pytest.approx(0.08)  # 40 * 0.2%
    assert p.step_gem_in[0] == 0.0 and p.step_fees[0] == 0.0
    with pytest.raises(ProtocolError, match="amount"):
        p.sell_gem(0, -1.0)


# --- Conservation ----------------------------------------------------------------------------

N_ACCOUNTS = 3
terra_op = st.tuples(st.sampled_from(["stable", "sister", "step"]),
                     st.integers(0, N_ACCOUNTS - 1), st.floats(0.0, 1.0),
                     st.floats(1e-2, 1e3))


@settings(deadline=None, max_examples=150)
@given(ops=st.lists(terra_op, max_size=40), base_pool=st.floats(1e4, 1e9),
       min_spread=st.floats(0.0, 0.05), blocks=st.integers(0, 20000),
       stable=st.lists(st.floats(0.0, 1e9), min_size=N_ACCOUNTS, max_size=N_ACCOUNTS),
       sister=st.lists(st.floats(0.0, 1e7), min_size=N_ACCOUNTS, max_size=N_ACCOUNTS))
def test_algorithmic_conserves_tokens(ops, base_pool, min_spread, blocks, stable, sister):
    held_stable = np.array(stable)
    held_sister = np.array(sister)
    m = AlgorithmicStablecoin(["terra"], base_pool=base_pool, min_spread=min_spread,
                              pool_recovery_period=PRP, blocks_per_step=blocks,
                              stable_supply=held_stable.sum(), sister_supply=held_sister.sum())
    start = (held_stable.sum(), held_sister.sum())
    net_stable = net_sister = 0.0  # net minted, from the recorded flows
    for kind, k, share, price in ops:
        if kind == "step":
            rec = m.end_step(np.array([price]))
            net_stable += rec.stable_minted[0] - rec.stable_burnt[0]
            net_sister += rec.sister_minted[0] - rec.sister_burnt[0]
            assert rec.implied_backing[0] >= 0.0  # inf without stable supply, never NaN
            continue
        before = (m.terra_pool_delta[0], m.stable_supply[0], m.sister_supply[0])
        try:
            if kind == "stable":
                amount = min(share * held_stable[k], m.stable_supply[0])
                q = m.burn_stable(0, amount, price)
                held_stable[k] -= q.burnt
                held_sister[k] += q.minted
            else:
                amount = min(share * held_sister[k], m.sister_supply[0])
                q = m.burn_sister(0, amount, price)
                held_sister[k] -= q.burnt
                held_stable[k] += q.minted
        except ProtocolError:
            # Only a swap beyond what the pools can price is refused; it changes nothing.
            assert kind == "sister"
            assert before == (m.terra_pool_delta[0], m.stable_supply[0], m.sister_supply[0])
            continue
        assert 0.0 <= q.spread <= 1.0 and min(q) >= 0.0  # 1 only when 5e-324 underflows
        terra_pool, luna_pool = m.pools(0)
        assert terra_pool > 0.0 and luna_pool > 0.0
    rec = m.end_step(np.array([1.0]))
    net_stable += rec.stable_minted[0] - rec.stable_burnt[0]
    net_sister += rec.sister_minted[0] - rec.sister_burnt[0]
    tol = 1e-9 * (1.0 + max(start) + abs(net_stable) + abs(net_sister) * 1e3)
    # Tokens held by all accounts (traders + the reward pool) minus net minted is constant.
    assert (held_stable.sum() + m.reward_stable[0] - net_stable
            == pytest.approx(start[0], abs=tol))
    assert (held_sister.sum() + m.reward_sister[0] - net_sister
            == pytest.approx(start[1], abs=tol))
    assert m.stable_supply[0] - start[0] == pytest.approx(net_stable, abs=tol)
    assert m.sister_supply[0] - start[1] == pytest.approx(net_sister, abs=tol)
    state = np.concatenate([m.stable_supply, m.sister_supply, m.reward_stable, m.reward_sister,
                            held_stable, held_sister])
    assert np.all(np.isfinite(state)) and np.all(state >= -tol)


psm_op = st.tuples(st.sampled_from(["sell", "buy", "step"]), st.integers(0, N_ACCOUNTS - 1),
                   st.floats(0.0, 1.0))


@settings(deadline=None, max_examples=150)
@given(ops=st.lists(psm_op, max_size=40), tin=st.floats(0.0, 0.05), tout=st.floats(0.0, 0.05),
       line=st.floats(0.0, 1e8), reserve_share=st.floats(0.0, 1.0),
       gem=st.lists(st.floats(0.0, 1e7), min_size=N_ACCOUNTS, max_size=N_ACCOUNTS))
def test_psm_conserves_tokens(ops, tin, tout, line, reserve_share, gem):
    held_gem = np.array(gem)
    # Accounts start with the DAI the initial reserve minted, so their DAI is backed too.
    reserve = reserve_share * line
    held_dai = np.full(N_ACCOUNTS, reserve / N_ACCOUNTS)
    p = PegStabilityModule(["psm"], tin=tin, tout=tout, line=line, reserve=reserve)
    gem0, dai0 = held_gem.sum() + reserve, held_dai.sum()
    for kind, k, share in ops:
        if kind == "sell":
            t = p.sell_gem(0, share * held_gem[k])
            held_gem[k] -= t.gem
            held_dai[k] += t.dai
        elif kind == "buy":
            # Spend a share of the DAI held: gem = dai / (1 + tout), kept a hair below so that
            # rounding never asks for more DAI than the account holds.
            t = p.buy_gem(0, share * held_dai[k] / (1.0 + tout) * (1.0 - 1e-12))
            held_gem[k] += t.gem
            held_dai[k] -= t.dai
        else:
            p.end_step()
            continue
        assert min(t) >= 0.0
        assert p.reserve[0] <= max(line, reserve) * (1 + 1e-12)
    tol = 1e-9 * (1.0 + gem0 + dai0)
    # Reserve stable is never minted; DAI held + surplus - net minted is constant.
    assert held_gem.sum() + p.reserve[0] == pytest.approx(gem0, abs=tol)
    net = p.dai_minted[0] - p.dai_burnt[0]
    assert held_dai.sum() + p.surplus[0] - net == pytest.approx(dai0, abs=tol)
    assert p.reserve[0] - reserve == pytest.approx(net, abs=tol)  # ink == art
    state = np.concatenate([held_gem, held_dai, p.reserve, p.surplus])
    assert np.all(np.isfinite(state)) and np.all(state >= -tol)
