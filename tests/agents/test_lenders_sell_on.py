"""Lenders who sell what they withdraw (``agents.lenders.sell_on``): a run on the token."""

import numpy as np

import sim
from sim.model import StressModel
from sim.scenario import parse_scenario
from tests.support import TINY_FILE, read


def afraid(sell: bool) -> dict:
    # tiny.toml: WETH -35% at hour 2. Every lender fears a 1% drawdown, so from hour 2 each
    # withdraws 10% of its balances a step; with sell_on they sell the WETH on "uni".
    d = read(TINY_FILE)
    d["agents"]["lenders"]["fear_drawdown"] = {"dist": "constant", "value": 0.01}
    if sell:
        d["agents"]["lenders"]["sell_on"] = "uni"
    return d


def afraid_lenders(sell: bool) -> StressModel:
    return StressModel(parse_scenario(afraid(sell), source=str(TINY_FILE)))


def test_withdrawn_base_tokens_are_sold_on_the_pool_and_value_is_conserved():
    keep, sell = afraid_lenders(False), afraid_lenders(True)
    weth, usdc = keep.assets.index("WETH"), keep.assets.index("USDC")
    start = sell.token_totals() - sell.net_issued()
    for _ in range(4):
        keep.step()
        sell.step()
        np.testing.assert_allclose(sell.token_totals() - sell.net_issued(), start, rtol=1e-9)
    withdrawn = keep.lenders[0].wallet[:, weth].sum()
    assert withdrawn > 0  # the fear rule fired
    lenders = sell.lenders[0]
    assert lenders.wallet[:, weth].sum() == 0.0  # nothing withdrawn is kept ...
    assert lenders.wallet[:, usdc].sum() > keep.lenders[0].wallet[:, usdc].sum()  # ... it is sold
    # The sales land in the pool: it holds more WETH than in the run where lenders keep it.
    uni = sell.pool_names.index("uni")
    assert sell.amm.reserve_base[uni] > keep.amm.reserve_base[uni]
    # and the lenders' volume is counted in the results' trade volume.
    assert sell.volume["lender"] > 0 and keep.volume["lender"] == 0


def test_sales_on_the_pool_lower_its_price():
    # Selling base on a constant-product pool lowers its spot (Uniswap v2: x y = k).
    ds_keep = sim.run(parse_scenario(afraid(False), source=str(TINY_FILE)))
    ds_sell = sim.run(parse_scenario(afraid(True), source=str(TINY_FILE)))
    assert float(ds_sell.amm_price.sel(protocol="uni")[-1]) < float(
        ds_keep.amm_price.sel(protocol="uni")[-1])

