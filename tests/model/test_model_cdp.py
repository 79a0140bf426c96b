"""CDPs in the model: which vaults are barked, keepers and gas, English zero bids, the graph,
and a CDP's auction sales reaching a lending pool within the same step.

Mechanics of one CDP (bark, Clipper curves, takes, Flipper) are tested against their formulas
in ``test_cdp.py``; these tests check the wiring with hand-countable cases.
"""

import numpy as np
import pytest

import sim
import sim.model.core as core
from sim.errors import ScenarioError
from sim.model import StressModel
from tests.support import builder

BASE = {
    "simulation": {"steps": 8, "dt_hours": 0.5, "seed": 1, "max_cascade_rounds": 40},
    "assets": {"WETH": {"price": 3000.0}, "USDC": {"price": 1.0},
               "DAI": {"price": 1.0, "issuer": "maker"}},
    "market": {"jumps": [{"asset": "WETH", "at_hours": 1.0, "size": -1.0 / 3.0}]},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "WETH": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.05,
                     "liquidation_venue": "pool"},
            "USDC": {"ltv": 0.85, "liquidation_threshold": 0.88, "liquidation_bonus": 0.04}}},
        "pool": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                 "reserve_base": 20_000.0},
        "maker": {"kind": "cdp", "stable": "DAI", "ilks": {"WETH": {
            "liquidation_ratio": 1.5, "liquidation_penalty": 0.13, "buf": 1.2,
            "liquidation_venue": "pool"}}},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 5_000_000.0}},
        "vault_owners": {
            "count": 40, "protocol": "maker", "collateral": {"WETH": 1.0},
            "position_value": {"dist": "uniform", "low": 20_000.0, "high": 80_000.0},
            "collateralisation": {"dist": "uniform", "low": 1.5, "high": 3.0},
            "wallet_share": {"dist": "constant", "value": 0.0}},
        "keepers": {"count": 3, "capital": {"dist": "constant", "value": 2_000_000.0},
                    "gas_cost": {"dist": "constant", "value": 20.0},
                    "min_profit": {"dist": "constant", "value": 10.0}},
    },
}


scenario = builder(BASE, "cdp.toml")  # scenario(edit=None): BASE, edited, parsed


def test_vaults_unsafe_after_the_jump_are_barked_at_once():
    # Hand count: with constant prices a vault opened at collateralisation r is unsafe after
    # a one-third fall iff r * 2/3 < 1.5 (Spotter mat), i.e. r < 2.25; no stability fee.
    model = StressModel(scenario())  # the same seed draws the same vaults as sim.run's
    r0 = model.cdps.collateralisation(slice(None), model.prices[0])
    expected = int(np.count_nonzero(r0 * (2.0 / 3.0) < 1.5))
    assert 0 < expected < len(r0)
    ds = sim.run(scenario())
    barked = ds.liquidation_count.sel(protocol="maker")
    jump = int(1.0 / 0.5)
    assert float(barked[jump]) == expected and float(barked.sum()) == expected
    assert float(barked[:jump].sum()) == 0


def test_gas_spike_prices_keepers_out_until_it_ends():
    def spike(d):
        d["shocks"] = [{"kind": "gas_spike", "at_hours": 0.5, "multiplier": 1e6,
                        "duration_hours": 2.0}]
    calm = sim.run(scenario())
    spiked = sim.run(scenario(spike))
    raised = spiked.liquidated_value.sel(protocol="maker")
    end = int(2.5 / 0.5)  # spike covers steps 1..5 (hours 0.5 to 2.5)
    assert float(spiked.liquidation_count.sel(protocol="maker")[:end].sum()) > 0  # barked
    assert float(raised[:end].sum()) == 0  # a take would cost 20M USD of gas
    assert float(raised[end:].sum()) > 0  # once gas is back keepers take the (reset) auctions
    assert float(calm.liquidated_value.sel(protocol="maker")[:end].sum()) > 0


def test_english_auctions_with_only_zero_bidders_lose_the_whole_lot():
    # Black Thursday: an auction nobody else bids on is won at the opportunist's ~0 bid, so
    # each auction raises ~nothing, its whole debt is bad debt, and the collateral sold at
    # its value at kick counts as zero-bid loss.
    def english(d):
        d["protocols"]["maker"]["ilks"]["WETH"].update(auction="english", ttl_seconds=600.0,
                                                       tau_seconds=3600.0)
        d["agents"]["keepers"]["opportunist_share"] = 1.0
    model = StressModel(scenario(english))
    c = model.cdps
    r0 = c.collateralisation(slice(None), model.prices[0])
    debt_barked = c.debt_of(slice(None))[r0 * (2.0 / 3.0) < 1.5].sum()
    maker = sim.run(scenario(english)).sel(protocol="maker")
    assert float(maker.liquidated_value.sum()) < 1e-6  # bids of 1e-9 DAI
    assert float(maker.bad_debt.sum()) == pytest.approx(debt_barked, rel=1e-9)
    sold = float(maker.seized_collateral_value.sum())
    assert sold > 0 and float(maker.zero_bid_loss.sum()) == pytest.approx(sold, rel=1e-9)


def test_cdp_edges_on_the_graph():
    def dai_collateral(d):
        d["protocols"]["aave"]["markets"]["DAI"] = {
            "ltv": 0.75, "liquidation_threshold": 0.8, "liquidation_bonus": 0.05}
    g = StressModel(scenario(dai_collateral)).graph
    assert g.nodes["maker"]["kind"] == "cdp"
    assert "liquidation_venue" in g.edges["maker", "pool"]["kinds"]
    assert "collateral" in g.edges["aave", "maker"]["kinds"]  # aave accepts maker's DAI
    # 40 vault owners and 3 keepers sit on maker (and on its venue)
    users = StressModel(scenario()).agents_using("maker")
    assert len(users) == 43 and all(a.protocols == ("maker", "pool") for a in users)


def test_auction_sales_reach_the_lending_pool_in_the_same_step(monkeypatch):
    # aave reads WETH from the pool the keepers sell on (arbitrageurs bring the pool to the
    # jump). Loopers at health 1.04-1.08 after the jump are safe until the keepers' sales
    # push the pool down (the vaults are barked at the jump, taken in the next step); with
    # the passes of the liquidation phase aave liquidates them in the step of the sales.
    # With one pass aave's cascade has run before the sales, and by the next step the
    # arbitrageurs have brought the pool back: aave never sees the dip.
    def lending_on_pool(d):
        d["protocols"]["eth_oracle"] = {"kind": "oracle", "asset": "WETH", "source": "amm",
                                        "pool": "pool"}
        d["protocols"]["pool"]["reserve_base"] = 1_500.0
        d["protocols"]["maker"]["ilks"]["WETH"]["buf"] = 1.0  # takeable at once
        d["agents"]["leveraged_traders"] = {
            "count": 50, "protocol": "aave", "collateral": {"WETH": 1.0}, "debt_asset": "USDC",
            "position_value": {"dist": "constant", "value": 30_000.0},
            "leverage": {"dist": "uniform", "low": 2.1, "high": 2.2},
            "deleverage_share": 0.0}
        d["agents"]["arbitrageurs"] = {"count": 2,
                                       "capital": {"dist": "constant", "value": 1e8}}
        d["agents"]["liquidators"] = {
            "count": 3, "capital_asset": "USDC",
            "capital": {"dist": "constant", "value": 3_000_000.0},
            "gas_cost": {"dist": "constant", "value": 5.0},
            "min_profit": {"dist": "constant", "value": 5.0}}
    s = scenario(lending_on_pool)
    jump = int(1.0 / 0.5)
    ds = sim.run(s)
    linked = ds.liquidation_count.sel(protocol="aave")
    monkeypatch.setattr(core, "MAX_PASSES", 1)
    one = sim.run(s)
    one_pass = one.liquidation_count.sel(protocol="aave")
    assert float(ds.liquidation_passes[jump + 1]) >= 2
    assert float(one.liquidation_passes.max()) == 1
    sales = jump + 1
    assert float(linked[sales]) > 0 and float(linked.sum()) == float(linked[sales])
    assert float(one_pass.sum()) == 0


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["assets"]["DAI"].pop("issuer"), "protocols.maker.stable"),
    (lambda d: d["agents"]["vault_owners"].update(
        collateralisation={"dist": "uniform", "low": 1.2, "high": 2.0}),
     "agents.vault_owners.collateralisation"),
    (lambda d: d["agents"]["vault_owners"].update(collateral={"USDC": 1.0}),
     "agents.vault_owners.collateral.USDC"),
    (lambda d: d["protocols"]["maker"]["ilks"]["WETH"].update(liquidation_venue="aave"),
     "protocols.maker.ilks.WETH.liquidation_venue"),
    (lambda d: d["agents"]["keepers"].update(protocols=["aave"]), "agents.keepers.protocols[0]"),
    (lambda d: d["protocols"]["maker"]["ilks"]["WETH"].update(dust=1e6),
     "agents.vault_owners"),
])
def test_cdp_errors_name_the_field(edit, field):
    with pytest.raises(ScenarioError) as err:
        sim.run(scenario(edit))
    assert f"cdp.toml: {field}:" in str(err.value)


def test_gas_spike_lets_zero_bidders_win_english_auctions():
    # Black Thursday: with gas at 20 USD the rational keepers outbid the zero-bidder; with
    # gas x 5,000 (100k USD a bid) during the auctions a rational bid costs more than any
    # lot (20k-80k USD of collateral) is worth, so the zero-bidder's ~0 bid wins and the
    # collateral is lost (zero_bid_loss).
    def english(d, spike):
        d["protocols"]["maker"]["ilks"]["WETH"].update(auction="english", ttl_seconds=600.0,
                                                       tau_seconds=3600.0)
        d["agents"]["keepers"]["count"] = 3
        d["agents"]["keepers"]["opportunist_share"] = 0.34
        d["simulation"]["seed"] = 3  # a seed that draws one zero-bidder of three
        if spike:
            d["shocks"] = [{"kind": "gas_spike", "at_hours": 0.5, "multiplier": 5000.0,
                            "duration_hours": 3.0}]
    calm = StressModel(scenario(lambda d: english(d, False)))
    assert calm.keeper_opportunist.sum() == 1
    calm = sim.run(scenario(lambda d: english(d, False))).sel(protocol="maker")
    spiked = sim.run(scenario(lambda d: english(d, True))).sel(protocol="maker")
    assert float(calm.liquidation_count.sum()) == float(spiked.liquidation_count.sum()) > 0
    assert float(calm.zero_bid_loss.sum()) == 0
    assert float(spiked.zero_bid_loss.sum()) > 0
    assert float(spiked.liquidated_value.sum()) < 1e-3 * float(calm.liquidated_value.sum())
