"""The shipped scenarios validate, run, and show what their comment blocks say."""

import numpy as np
import pytest

import sim
from sim.scenario import parse_scenario
from tests.support import SCENARIOS, read, shipped

SHIPPED = sorted(SCENARIOS.rglob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_scenario_validates_and_runs(path):
    scenario = sim.check(path)
    ds = sim.run(scenario, steps=4)
    assert ds.sizes["time"] == 5
    assert ds.attrs["scenario_text"] == path.read_text()


def test_oracle_manipulation_liquidates_only_through_the_oracle():
    path = shipped("oracle_manipulation.toml")
    ds = sim.run(path)
    liq = ds.liquidation_count.sel(protocol="aave")
    attack = int(6.0 / ds.attrs["dt_hours"])
    assert float(liq[attack]) > 10
    assert float(liq[:attack].sum()) == 0
    # Afterwards only the attack's aftermath: partial liquidations at a collateral ratio below
    # 1 + bonus lowered some health factors further (protocols.md), so a few follow.
    assert float(liq[attack + 1:].sum()) < 0.1 * float(liq[attack])
    # The same attack against an external (Chainlink-like) feed liquidates nothing.
    data = read(path)
    data["protocols"]["weth_oracle"] = {"kind": "oracle", "asset": "WETH"}
    calm = sim.run(parse_scenario(data, source=str(path)))
    assert float(calm.liquidation_count.sel(protocol="aave").sum()) == 0


def test_lst_depeg_spreads_to_the_lending_pool_once_redeemers_run_out():
    path = shipped("contagion_lst_depeg.toml")
    ds = sim.run(path)
    peg = ds.peg.sel(protocol="lido")
    sale = int(3.0 / ds.attrs["dt_hours"])  # the forced sale starts at hour 3
    assert float(peg[:sale].min()) > 0.99  # the pool drain alone barely moves it
    assert float(peg.min()) < 0.95  # the discount the comment block reports
    assert float(ds.redemption_queue.sel(protocol="lido").max()) > 0  # redeemers queued
    liq = ds.liquidation_count.sel(protocol="aave")
    assert float(liq[:sale].sum()) == 0 and float(liq.sum()) > 0
    # The CDP barks the least collateralised stETH vaults; keepers buy near the market.
    barked = float(ds.liquidation_count.sel(protocol="maker").sum())
    assert 0 < barked < 200 and float(ds.bad_debt.sel(protocol="maker").sum()) == 0
    recovery = ds.auction_recovery.sel(protocol="maker").dropna("time")
    assert len(recovery) > 0 and float(recovery.min()) > 0.9
    # The tipping point of the comment block: with less redeemer capital nobody buys below it,
    # the token collapses and aave is left with bad debt.
    data = read(path)
    data["agents"]["redeemers"]["capital"]["value"] = 8_000_000.0
    thin = sim.run(parse_scenario(data, source=str(path)))
    assert float(thin.peg.sel(protocol="lido").min()) < 0.5
    assert float(thin.bad_debt.sel(protocol="aave").sum()) > 0
    # ... and every maker vault is barked, its auctions sell into a collapsing pool.
    assert float(thin.liquidation_count.sel(protocol="maker").sum()) == 200
    assert float(thin.bad_debt.sel(protocol="maker").sum()) > 0


def test_algorithmic_stablecoin_run_spirals_past_its_tipping_point():
    path = shipped("algorithmic_stablecoin_run.toml")
    ds = sim.run(path)
    terra = ds.sel(protocol="terra")
    luna = ds.external_price.sel(asset="LUNA")
    supply = terra.supply.sel(asset="LUNA")
    # The comment block's figures: UST breaks, LUNA goes to ~0 while its supply explodes,
    # and Anchor, which lends against LUNA, liquidates and books bad debt.
    assert float(terra.peg.min()) < 0.1
    assert float(luna[-1]) < 1e-3 * float(luna[0])
    assert float(supply[-1]) > 1e3 * float(supply[0])
    assert float(terra.implied_backing[0]) > 1.5 and float(terra.implied_backing[-1]) < 0.01
    anchor = ds.sel(protocol="anchor")
    assert float(anchor.liquidation_count.sum()) > 0 and float(anchor.bad_debt.sum()) > 0
    # The tipping point: a 3M UST sale stays inside the spread; nobody redeems or runs.
    data = read(path)
    data["shocks"][1]["amount"] = 3_000_000.0
    calm = sim.run(parse_scenario(data, source=str(path)))
    assert float(calm.peg.sel(protocol="terra").min()) > 0.99
    assert float(calm.supply.sel(protocol="terra", asset="LUNA")[-1]) == float(supply[0])
    assert float(calm.liquidation_count.sel(protocol="anchor").sum()) == 0


def test_gamma_squeeze_short_gamma_hedging_adds_to_the_fall():
    path = shipped("gamma_squeeze.toml")
    fall = slice(1, 7)  # hours 1-6: ETH falls 15%
    runs = {}
    for side in ("buy", "write"):
        data = read(path)
        data["agents"]["option_traders"]["side"] = side
        runs[side] = sim.run(parse_scenario(data, source=str(path)))
    short, long_ = runs["buy"], runs["write"]

    def gap(ds):  # pool price over the market price, minus 1, during the fall
        pool = ds.amm_price.sel(protocol="uni")[fall]
        return float((pool / ds.external_price.sel(asset="WETH")[fall] - 1).mean())

    sold_short = short.hedge_sold.sel(asset="WETH")[fall].values
    sold_long = long_.hedge_sold.sel(asset="WETH")[fall].values
    # Short gamma: the hedgers sell every hour of the fall, more as it deepens (until the
    # rising implied volatility flattens the puts' gamma).
    assert np.all(sold_short > 0) and np.all(np.diff(sold_short[:3]) > 0)
    assert np.all(sold_short[1:] > sold_short[0])
    # Long gamma: the mirror image, they buy.
    np.testing.assert_allclose(sold_long, -sold_short, rtol=1e-9)
    assert gap(short) < -0.01 < 0.01 < gap(long_)  # pool pushed below / above the market
    liq = {k: float(v.liquidation_count.sel(protocol="aave").sum()) for k, v in runs.items()}
    assert liq["buy"] > liq["write"]  # aave reads the pool
    # The market maker's P&L: short gamma loses on gamma and earns theta; long the reverse.
    pnl_short = short.mm_pnl.sel(pnl_component=["gamma", "theta"])[fall].values
    pnl_long = long_.mm_pnl.sel(pnl_component=["gamma", "theta"])[fall].values
    assert np.all(pnl_short[:, 0] < 0) and np.all(pnl_short[:, 1] > 0)
    assert np.all(pnl_long[:, 0] > 0) and np.all(pnl_long[:, 1] < 0)


def test_gamma_squeeze_hedged_off_the_pool_leaves_it_at_the_market():
    # The same short-gamma hedging flow (1,663 WETH sold over the fall) on the spot market or
    # on perps never reaches the pool aave reads: the pool stays within 1% of the market and
    # aave liquidates nothing (10 loans when the hedgers sell on the pool). On spot the cost
    # is the 5 bp fee on what they sell, 0.0005 x sum(sold x price); on perps there is no fee,
    # but the hedgers' shorts skew the market and they pay funding (SIP-80: negative rate).
    path = shipped("gamma_squeeze.toml")
    fall = slice(1, 7)
    runs = {}
    for venue in ("uni", "spot", "dex"):
        data = read(path)
        data["agents"]["delta_hedgers"].update(venues={"WETH": venue}, cash="USDC")
        data["protocols"]["dex"] = {"kind": "perpetuals", "settlement": "USDC", "markets": {
            "WETH": {"skew_scale": 20_000.0, "vault_balance": 2e7, "hedge_pool": "uni"}}}
        runs[venue] = sim.run(parse_scenario(data, source=str(path)))
    sold = {k: v.hedge_sold.sel(asset="WETH") for k, v in runs.items()}
    for venue in ("spot", "dex"):
        ds = runs[venue]
        np.testing.assert_allclose(sold[venue][fall], sold["uni"][fall], rtol=1e-9)
        gap = ds.amm_price.sel(protocol="uni") / ds.external_price.sel(asset="WETH") - 1
        assert float(np.abs(gap[fall]).max()) < 0.01
        assert float(ds.liquidation_count.sel(protocol="aave").sum()) == 0
    assert float(runs["uni"].liquidation_count.sel(protocol="aave").sum()) > 0
    spot = runs["spot"]
    fee = 0.0005 * float((np.abs(sold["spot"]) * spot.external_price.sel(asset="WETH")).sum())
    assert float(spot.hedge_cost.sel(agent_kind="delta_hedger").sum()) == pytest.approx(
        fee, rel=1e-9)
    dex = runs["dex"]
    assert float(dex.hedge_cost.sel(agent_kind="delta_hedger").sum()) == 0.0
    assert float(dex.funding_rate.sel(protocol="dex", asset="WETH")[6]) < 0
    assert float(dex.open_interest.sel(protocol="dex", asset="WETH")[6]) == pytest.approx(
        float(sold["dex"][fall].sum()), rel=1e-9)


def test_gamma_squeeze_lps_pull_back_when_their_impermanent_loss_crosses_the_limit():
    # Variant: four market makers own "uni" and pull half their liquidity once their P&L
    # against holding what they deposited falls below -0.1% (loss_limit = 0.001). The pool's
    # fee is set to 0 so that P&L is the hand impermanent loss (fees aside): with the 0.3% fee
    # the fees the squeeze pays them (0.06% of the deposit by hour 4) delay the pull by an
    # hour. The volatility limit is out of reach: the loss rule acts alone.
    path = shipped("gamma_squeeze.toml")
    runs = {}
    for limit in (None, 0.001):
        data = read(path)
        data["protocols"]["uni"]["fee"] = 0.0
        makers = {"count": 4, "pool": "uni", "volatility_limit": 100.0, "pull_fraction": 0.5}
        if limit is not None:
            makers["loss_limit"] = limit
        data["agents"]["market_makers"] = makers
        runs[limit] = sim.run(parse_scenario(data, source=str(path)))
    ds, stay = runs[0.001], runs[None]
    # ETH falls linearly, r = 1 - 0.025 h: IL(0.925) = 2 sqrt(0.925) / 1.925 - 1 = -0.076% at
    # hour 3, IL(0.9) = 2 sqrt(0.9) / 1.9 - 1 = -0.139% at hour 4 (Pintail 2019).
    price = ds.external_price.sel(asset="WETH").values
    r = price / price[0]
    il = 2 * np.sqrt(r) / (1 + r) - 1
    t = int(np.argmax(il < -0.001))
    assert t == 4
    assert il[3] == pytest.approx(-0.000759, abs=1e-6)
    assert il[4] == pytest.approx(-0.001386, abs=1e-6)
    uni = ds.sel(protocol="uni")
    pulled = uni.liquidity_pulled.values
    np.testing.assert_array_equal(pulled[:t], 0.0)
    assert pulled[t] == pytest.approx(0.5, rel=1e-3)  # drifts with the pool's mix afterwards
    assert np.all(pulled[t:] > 0.49)  # the price stays down: they stay out
    # The pool's liquidity sqrt(x y) halves (zero fee: trades keep x y), and with it its depth:
    # a constant-product pool's 10% depth is sqrt(x y) (1 / sqrt(0.9) - 1) sqrt(p) USD.
    liquidity = np.sqrt(uni.pool_reserve_base.values * uni.pool_reserve_quote.values)
    assert liquidity[t] / liquidity[t - 1] == pytest.approx(0.5, rel=1e-9)
    p = uni.amm_price.values
    depth = uni.pool_depth.values
    assert depth[t] / depth[t - 1] == pytest.approx(0.5 * np.sqrt(p[t] / p[t - 1]), rel=1e-9)
    assert p[t] == pytest.approx(float(stay.amm_price.sel(protocol="uni")[t]), rel=1e-9)
    assert depth[t] / float(stay.pool_depth.sel(protocol="uni")[t]) == pytest.approx(0.5,
                                                                                     rel=1e-9)
    # Where the pool sits at the market (the end of hour 4) their P&L is the hand IL.
    assert p[t] / price[t] == pytest.approx(1.0, abs=1e-9)
    assert float(uni.lp_pnl[t]) == pytest.approx(il[t], rel=1e-6)
    assert np.isnan(ds.lp_pnl.sel(protocol="aave")).all()
    # Pulling back deepens the squeeze: aave, which reads the thinner pool, liquidates more.
    liq = {k: float(v.liquidation_count.sel(protocol="aave").sum()) for k, v in runs.items()}
    assert liq[0.001] > liq[None]


def test_cross_margin_spreads_a_single_market_failure_isolated_contains_it():
    path = shipped("isolated_vs_cross_margin.toml")
    runs = {}
    for mode in ("isolated", "cross"):
        data = read(path)
        data["protocols"]["dex"]["margin_mode"] = mode
        runs[mode] = sim.run(parse_scenario(data, source=str(path)))
    iso, cross = runs["isolated"], runs["cross"]

    def oi(ds, asset):
        return ds.open_interest.sel(protocol="dex", asset=asset).values

    # Isolated: WBTC untouched (open interest and its pool); cross: WBTC positions of the
    # failed accounts are closed and the vault's hedge sale moves the WBTC pool.
    assert oi(iso, "WBTC")[-1] == pytest.approx(oi(iso, "WBTC")[0])
    assert float(iso.amm_price.sel(protocol="uni_btc").min()) == pytest.approx(60_000.0)
    assert oi(cross, "WBTC")[-1] < 0.9 * oi(cross, "WBTC")[0]
    assert float(cross.amm_price.sel(protocol="uni_btc").min()) < 0.95 * 60_000.0
    # ... while the shared margin keeps more WETH longs alive.
    assert oi(cross, "WETH")[-1] > oi(iso, "WETH")[-1]


def test_option_collateral_falls_much_more_than_eth_and_only_its_loans_are_liquidated():
    path = shipped("option_collateral.toml")
    ds = sim.run(path)
    at = {h: int(h / ds.attrs["dt_hours"]) for h in (5.0, 6.0, 9.0, 24.0)}
    eth = ds.external_price.sel(asset="WETH").values
    call = ds.external_price.sel(asset="ETH_C2400").values
    iv = ds.atm_vol.sel(asset="WETH").values
    # The comment block's figures (seed 1).
    assert call[0] == pytest.approx(79.53, abs=0.01)
    assert eth[at[9.0]] / eth[at[5.0]] - 1 == pytest.approx(-0.098, abs=0.001)
    assert call[at[6.0]] == pytest.approx(49.0, abs=0.05)
    assert call[at[9.0]] == pytest.approx(10.2, abs=0.05)
    assert call[at[9.0]] / call[0] - 1 < -0.86 and eth[at[9.0]] / eth[0] - 1 > -0.1
    assert call[-1] == pytest.approx(37.2, abs=0.05)
    assert iv[at[5.0]] == pytest.approx(0.58, abs=0.005) and iv[-1] == pytest.approx(0.99,
                                                                                     abs=0.005)
    # Every call-backed loan is liquidated in full at hour 6; the WETH loans never are.
    aave = ds.sel(protocol="aave")
    liq = aave.liquidation_count.values
    assert liq[at[6.0]] == 50 and liq.sum() == 50
    assert float(aave.liquidated_value.sum()) == pytest.approx(992_508, abs=1)
    assert float(aave.bad_debt.sum()) == 0.0
    weth_coll = aave.total_collateral.sel(asset="WETH").values
    assert np.all(weth_coll == weth_coll[0])
    # The liquidators keep the calls (no venue) and carry their fall.
    seized = float(aave.total_collateral.sel(asset="ETH_C2400")[0]
                   - aave.total_collateral.sel(asset="ETH_C2400")[-1])
    assert seized == pytest.approx(22_270, abs=1)  # 22,067 to liquidators, the rest fees
    worth = ds.net_worth.sel(agent_kind="liquidator").values / 1e6
    assert worth[at[6.0]] == pytest.approx(5.09, abs=0.005)
    assert worth[at[9.0]] == pytest.approx(4.23, abs=0.005)
    assert float(ds.supply.sel(protocol="lyra", asset="ETH_C2400")[0]) == pytest.approx(
        33_351.5, abs=0.1)
    # The vault's value locked: the 2M USDC of the file (issuing the series moved no
    # premium) at USDC's external price, and it holds the same until nobody trades.
    lyra = ds.tvl.sel(protocol="lyra").values
    usdc = ds.external_price.sel(asset="USDC").values
    assert lyra[0] == pytest.approx(2_000_000.0 * usdc[0], rel=1e-12)


def test_history_steth_june_2022_seed_figures_of_its_header():
    # Header "SEED 2022": the pool ends at ~491.4k stETH / ~111.3k ETH, the low is 0.937,
    # nothing is liquidated and the patient buyers never buy. The figures, mechanism and
    # levers are tested in tests/history/test_history_steth_june_2022.py.
    path = shipped("history/steth_june_2022.toml")
    ds = sim.run(path)
    assert float(ds.peg.sel(protocol="lido").min()) == pytest.approx(0.937, abs=5e-4)
    curve = ds.sel(protocol="curve")
    assert float(curve.pool_reserve_base[-1]) == pytest.approx(491_400, rel=1e-3)
    assert float(curve.pool_reserve_quote[-1]) == pytest.approx(111_300, rel=1e-3)
    assert float(ds.liquidation_count.sel(protocol="aave").sum()) == 0
    assert float(ds.redemption_queue.sel(protocol="lido").max()) == 0


def test_history_terra_may_2022_seed_figures_of_its_header():
    # Header "SEED 2022": UST 0.986 at hour 48 (8 May record: 0.987), below 0.9 from hour 57,
    # LUNA ~0 by hour 72, 13.67B UST still in Anchor at hour 48. The figures, mechanism and
    # levers are tested in tests/history/test_history_terra_may_2022.py.
    path = shipped("history/terra_may_2022.toml")
    ds = sim.run(path)
    peg = ds.peg.sel(protocol="terra").values
    assert peg[48] == pytest.approx(0.986, abs=1e-3)
    assert int(np.argmax(peg < 0.9)) == 57
    assert float(ds.external_price.sel(asset="LUNA")[72]) < 1e-3
    anchor = ds.sel(protocol="anchor", asset="UST")
    deposits = float(anchor.available_liquidity[48] + anchor.total_debt[48])
    assert deposits == pytest.approx(13.67e9, rel=1e-3)
