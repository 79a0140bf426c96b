"""USDC / SVB, March 2023 (scenarios/history/usdc_svb_march_2023.toml): USDC's depeg drains
the USDT side of the 3pool stand-in and drags DAI down through Maker's PSM.
"""

from functools import cache

import numpy as np
import pytest

import sim
from sim.batch.history import counterfactual_scenario, figure_values
from tests.support import shipped

PATH = shipped("history/usdc_svb_march_2023.toml")
USDC_LOW = 0.87   # the external path's low (hour 33)
MIN_RETURN = 0.001  # the redeemers' default least return per round trip


@cache
def run(lever: int | None = None):
    s = sim.load_scenario(PATH)
    return sim.run(s if lever is None else counterfactual_scenario(s, lever))


def test_every_figure_reads_a_finite_simulated_value():
    s = sim.load_scenario(PATH)
    assert len(s.history.figures) == 4 and len(s.history.counterfactuals) == 2
    ds = run()
    for f in s.history.figures:
        assert np.isfinite(figure_values(ds, f)).all(), f.name


def test_the_usdc_pool_follows_the_market_and_gives_up_its_usdt():
    ds = run()
    pool = ds.sel(protocol="curve_usdc")
    assert float(pool.amm_price.min()) == pytest.approx(USDC_LOW, abs=2e-3)
    share = pool.pool_quote_share.values
    # The share is the pool's token composition: USDT / (USDC + USDT), balanced at the start.
    np.testing.assert_allclose(
        share, pool.pool_reserve_quote / (pool.pool_reserve_base + pool.pool_reserve_quote))
    assert share[0] == pytest.approx(0.5)
    # Imbalance deepest at USDC's low: arbitrage sells USDC in until the pool is at 0.87; a
    # StableSwap pool this flat (A = 222) gives up most of its USDT for a 13% discount.
    assert int(np.argmin(share)) == 33 and share.min() < 0.1


def test_dai_falls_only_through_the_psm_to_usdc_s_price():
    ds = run()
    dai = ds.peg.sel(protocol="maker")
    # Redeemers swap USDC into DAI at the PSM (tin 0) and sell it on DAI's pool while a round
    # trip returns MIN_RETURN: DAI stops at USDC_LOW (1 + MIN_RETURN) plus the 1 bp pool fee.
    assert USDC_LOW * (1 - 1e-3) < float(dai.min()) < USDC_LOW * (1 + MIN_RETURN) + 2e-3
    supply = ds.supply.sel(protocol="maker", asset="DAI")
    assert float(supply.max()) > float(supply[0]) + 5e7  # the PSM minted DAI against USDC
    # The PSM closed to USDC (counterfactual 1): no route, DAI stays at par.
    closed = run(1)
    assert float(closed.peg.sel(protocol="maker").min()) > 0.995
    assert float(closed.supply.sel(protocol="maker", asset="DAI").max()) <= float(supply[0]) + 1


def test_a_one_percent_psm_fee_lifts_dai_s_low_by_the_fee():
    # sellGem pays 0.99 DAI per USDC: the round trip stops at DAI = USDC / 0.99 (header).
    base = float(run().peg.sel(protocol="maker").min())
    fee = float(run(0).peg.sel(protocol="maker").min())
    assert fee == pytest.approx(base / 0.99, rel=2e-3)
    assert fee > base
