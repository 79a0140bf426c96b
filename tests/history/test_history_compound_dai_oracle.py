"""Compound DAI oracle (scenarios/history/compound_dai_oracle.toml): the figures, the print
and whom it liquidates, and the aggregated-feed counterfactual."""

import numpy as np
import pytest

import sim
from sim.batch.history import validate
from sim.model import StressModel
from tests.support import shipped

PATH = shipped("history/compound_dai_oracle.toml")
PRINT = (7.0, 8.0)  # hours of the 1.30 print: 07:00-08:00 UTC


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("dai_oracle")
    return validate([PATH], out, workers=1, replications=3, progress=False)


@pytest.fixture(scope="module")
def run():
    return sim.run(PATH)


def test_every_figure_reads_a_finite_value(report):
    table, cfs, text = report
    assert list(table.figure.values) == [f.name for f in sim.load_scenario(PATH).history.figures]
    for q in ("q05", "median", "q95"):
        assert np.all(np.isfinite(table[q].values.astype(float)))
    assert all(np.isfinite(c["counterfactual"]) for c in cfs)
    assert "| Compound DAI oracle | Compound liquidated | 85.00M-89.00M USD |" in text


def test_liquidations_happen_at_the_print_and_nowhere_else(run):
    # Before 07:00 nothing moves (ETH flat, DAI at 1 on every market), and the margin calls
    # of the most levered have brought them back to health 1.2: no liquidation. The print
    # adds 30% to every DAI debt at once, so the bulk falls in its first step; ETH's 8% fall
    # in the same hour adds little.
    liq = run.liquidated_value.sel(protocol="compound")
    hours = run.time.values
    first = int(np.searchsorted(hours, PRINT[0]))
    assert float(liq[:first].sum()) == 0
    assert float(liq[first]) > 0.95 * float(liq.sum())
    oracle = run.oracle_price.sel(asset="DAI")
    during = (hours >= PRINT[0]) & (hours < PRINT[1])
    assert np.allclose(oracle[during], 1.30, atol=0.005)
    assert np.allclose(oracle[~during], 1.0, atol=0.005)
    assert float(run.external_price.sel(asset="DAI").max()) == 1.0


def test_the_print_liquidates_exactly_the_loans_with_health_below_it():
    # Health = collateral x price x 0.75 / (DAI debt x DAI price): at a DAI print p every
    # loan with health (at DAI = 1) below p is liquidatable, and the liquidators' DAI covers
    # them all; the margin calls see the previous step's oracle, too late to react.
    model = StressModel(sim.load_scenario(PATH))
    book = model.lending.book
    rows = np.arange(len(book))
    dai = model.assets.index("DAI")
    while model.oracles.price[dai] < 1.2:
        health = model.lending.health_of(rows, model.oracles.price.copy())
        coll = book.coll.copy()
        model.step()
    printed = model.oracles.price[dai]
    hit = np.nonzero(book.coll < coll - 1e-9)[0]
    assert len(hit) > 100
    assert np.array_equal(hit, np.nonzero(health < printed)[0])


def test_liquidators_earn_the_print_plus_the_incentive(run):
    # Per DAI repaid (bought at 1 USD) a liquidator seizes collateral worth p x 1.08 at the
    # print p = 1.30, and `liquidated_value` books the DAI at p: profit / liquidated value
    # = (1.30 x 1.08 - 1) / 1.30 = 0.3108, less gas (5-50 USD a loan, negligible).
    c = run.sel(protocol="compound")
    ratio = float(c.liquidator_profit.sum()) / float(c.liquidated_value.sum())
    assert ratio == pytest.approx((1.30 * 1.08 - 1.0) / 1.30, rel=0.01)


def test_an_aggregated_feed_leaves_only_the_eth_fall(report):
    # With DAI priced at its market price (1) only ETH's 8% fall can liquidate: loans on ETH
    # with health in [1, 1.087) that did not top up: a thin slice of a book spread over
    # health 1.03-2.25, next to every loan below 1.30 that the print takes; so under a tenth
    # of the base, and the oracle never leaves 1.
    cfs = report[1]
    (liq,) = [c for c in cfs if c["figure"] == "Compound liquidated"]
    assert liq["counterfactual"] < 0.1 * liq["base"]
    (high,) = [c for c in cfs if c["figure"] == "DAI oracle high"]
    assert high["counterfactual"] == pytest.approx(1.0, abs=0.005)
