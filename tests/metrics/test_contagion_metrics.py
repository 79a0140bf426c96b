"""Eisenberg-Noe clearing, DebtRank and Greenwood-Landier-Thesmar fire-sale vulnerability.

Expected values are worked by hand in the comments beside them, or come from an
independent method: plain fixed-point iteration and a linear programme for Eisenberg-Noe,
a per-node loop with explicit U/D/I states for DebtRank, explicit sums for GLT.
"""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sim.metrics import contagion as cg
from sim.metrics.contagion import (
    debtrank,
    debtrank_impact,
    eisenberg_noe,
    fire_sale_vulnerability,
    standalone_payments,
)

SETTINGS = settings(deadline=None, max_examples=60)


def test_module_imports_only_numpy_scipy_and_stdlib():
    tree = ast.parse(Path(cg.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in {"numpy", "scipy"} | set(sys.stdlib_module_names), name


# ============================================================================ Eisenberg-Noe


def test_en_one_default_drags_a_second():
    # 0 owes 1 six and 2 four (pbar0 = 10); 1 owes 2 ten (pbar1 = 10); 2 owes nothing.
    # e = (2, 5, 1).
    # Round 1, p = pbar = (10, 10, 0): values 0: 2 < 10 default; 1: 5 + 6 = 11 >= 10;
    #   2: 1 + 4 + 10 = 15. Wave (0,).
    # Solve with D = {0}: p0 = e0 + nothing owed to 0 = 2; p = (2, 10, 0).
    # Round 2: value 1 = 5 + 0.6 * 2 = 6.2 < 10: default. Wave (1,).
    # Solve with D = {0, 1}: p0 = 2, p1 = 5 + 0.6 * 2 = 6.2.
    # Round 3: value 2 = 1 + 0.4 * 2 + 6.2 = 8.0, owes 0: no new default.
    # Equity = e + Pi^T p - p = (2 - 2, 5 + 1.2 - 6.2, 1 + 0.8 + 6.2 - 0) = (0, 0, 8).
    liabilities = [[0, 6, 4], [0, 0, 10], [0, 0, 0]]
    r = eisenberg_noe(liabilities, [2, 5, 1])
    np.testing.assert_allclose(r.payments, [2.0, 6.2, 0.0], rtol=1e-12)
    assert r.waves == ((0,), (1,))
    assert r.defaulted == (0, 1)
    np.testing.assert_allclose(r.equity, [0.0, 0.0, 8.0], atol=1e-12)


def test_en_no_default_pays_in_full():
    # 0 owes 1 five, 1 owes 2 three, 2 owes 0 one; e = (10, 10, 10): everyone can pay.
    # p = pbar = (5, 3, 1). Equity: 0: 10 + 1 - 5 = 6; 1: 10 + 5 - 3 = 12; 2: 10 + 3 - 1 = 12.
    r = eisenberg_noe([[0, 5, 0], [0, 0, 3], [1, 0, 0]], [10, 10, 10])
    np.testing.assert_array_equal(r.payments, [5.0, 3.0, 1.0])
    assert r.waves == ()
    np.testing.assert_allclose(r.equity, [6.0, 12.0, 12.0])


def test_en_cycle_defaults_together_and_is_solved_jointly():
    # 0 and 1 owe each other 10 and each owes 2 ten: pbar = (20, 20, 0),
    # Pi rows 0: (0, 1/2, 1/2), 1: (1/2, 0, 1/2). e = (4, 2, 0).
    # Round 1 at p = pbar: value 0 = 4 + 10 = 14 < 20, value 1 = 2 + 10 = 12 < 20: both in
    # wave 1. Solve p0 = 4 + p1 / 2, p1 = 2 + p0 / 2: p0 = 4 + 1 + p0 / 4, so p0 = 20/3 and
    # p1 = 2 + 10/3 = 16/3. Value 2 = 10/3 + 8/3 = 6 = its equity (= total e, as it must).
    r = eisenberg_noe([[0, 10, 10], [10, 0, 10], [0, 0, 0]], [4, 2, 0])
    np.testing.assert_allclose(r.payments, [20 / 3, 16 / 3, 0.0], rtol=1e-12)
    assert r.waves == ((0, 1),)
    np.testing.assert_allclose(r.equity, [0.0, 0.0, 6.0], atol=1e-12)


def test_en_cycle_without_external_assets_is_the_greatest_fixed_point():
    # 0 -> 1 -> 2 -> 0, each owes 10, e = 0: every p = (c, c, c) with 0 <= c <= 10 is a
    # fixed point; the greatest is full payment and nobody defaults.
    r = eisenberg_noe([[0, 10, 0], [0, 0, 10], [10, 0, 0]], [0, 0, 0])
    np.testing.assert_array_equal(r.payments, [10.0, 10.0, 10.0])
    assert r.waves == ()
    np.testing.assert_allclose(r.equity, 0.0, atol=1e-12)


def test_en_partial_cycle_cascades_in_two_waves():
    # 0 owes 1 ten, 1 owes 2 eight, 2 owes 0 six; e = (1, 0.5, 1).
    # Round 1 at pbar = (10, 8, 6): values 0: 1 + 6 = 7 < 10 default; 1: 0.5 + 10 = 10.5;
    #   2: 1 + 8 = 9. Solve D = {0}: p0 = 1 + p2 = 7.
    # Round 2: value 1 = 0.5 + 7 = 7.5 < 8 default. Solve D = {0, 1}: p0 = 1 + 6 = 7,
    #   p1 = 0.5 + 7 = 7.5. Round 3: value 2 = 1 + 7.5 = 8.5 >= 6: done.
    # Equity: 0: 1 + 6 - 7 = 0; 1: 0.5 + 7 - 7.5 = 0; 2: 1 + 7.5 - 6 = 2.5.
    r = eisenberg_noe([[0, 10, 0], [0, 0, 8], [6, 0, 0]], [1, 0.5, 1])
    np.testing.assert_allclose(r.payments, [7.0, 7.5, 6.0], rtol=1e-12)
    assert r.waves == ((0,), (1,))
    np.testing.assert_allclose(r.equity, [0.0, 0.0, 2.5], atol=1e-12)


@pytest.mark.parametrize(
    ("liabilities", "external", "message"),
    [
        ([[0, 1], [1, 0]], [1, 1, 1], "external_assets: expected length 2"),
        ([[0, 1, 2], [1, 0, 3]], [1, 1], "liabilities: expected a non-empty square"),
        ([[0, -1], [1, 0]], [1, 1], "liabilities: must be >= 0"),
        ([[0, 1], [1, 0]], [1, -2], "external_assets: must be >= 0"),
        ([[3, 1], [1, 0]], [1, 1], "liabilities: diagonal must be 0"),
        ([[0, np.nan], [1, 0]], [1, 1], "liabilities: must be finite"),
    ],
)
def test_en_rejects_bad_input(liabilities, external, message):
    with pytest.raises(ValueError, match=message):
        eisenberg_noe(liabilities, external)


def relative_liabilities_loop(liab):
    n = len(liab)
    pi = np.zeros((n, n))
    for i in range(n):
        total = sum(liab[i])
        for j in range(n):
            pi[i, j] = liab[i][j] / total if total > 0 else 0.0
    return pi


def greatest_by_iteration(liab, e):
    """Kleene iteration p <- min(pbar, e + Pi^T p) from pbar: decreasing to the greatest."""
    pbar = liab.sum(axis=1)
    pi_t = relative_liabilities_loop(liab).T
    p = pbar.copy()
    for _ in range(500_000):
        new = np.minimum(pbar, e + pi_t @ p)
        if np.max(np.abs(new - p)) <= 1e-14 * max(1.0, pbar.max()):
            return new
        p = new
    raise AssertionError("plain iteration did not converge")


def networks(max_n=6):
    amount = st.one_of(st.just(0.0), st.floats(1.0, 100.0))
    return st.integers(2, max_n).flatmap(
        lambda n: st.tuples(
            hnp.arrays(float, (n, n), elements=amount),
            hnp.arrays(float, n, elements=st.one_of(st.just(0.0), st.floats(0.5, 50.0))),
        )
    )


@SETTINGS
@given(networks())
def test_en_is_the_greatest_fixed_point(case):
    liab, e = case
    np.fill_diagonal(liab, 0.0)
    r = eisenberg_noe(liab, e)
    pbar = liab.sum(axis=1)
    scale = max(1.0, pbar.max(), e.max())
    # A fixed point of p = min(pbar, e + Pi^T p) ...
    pi_t = relative_liabilities_loop(liab).T
    np.testing.assert_allclose(r.payments, np.minimum(pbar, e + pi_t @ r.payments),
                               rtol=0, atol=1e-9 * scale)
    # ... and the one plain iteration from pbar reaches (the greatest).
    np.testing.assert_allclose(r.payments, greatest_by_iteration(liab, e), rtol=0,
                               atol=1e-7 * scale)
    # Defaulters are exactly the nodes that pay less than they owe; each defaults once.
    flat = r.defaulted
    assert len(flat) == len(set(flat)) and len(r.waves) <= len(e)
    short = set(np.flatnonzero(r.payments < pbar - 1e-9 * scale).tolist())
    assert short <= set(flat)
    # Equity is non-negative and payments inside the network net out: sum equity = sum e.
    assert np.all(r.equity >= -1e-9 * scale)
    np.testing.assert_allclose(r.equity.sum(), e.sum(), rtol=0, atol=1e-8 * scale)


@SETTINGS
@given(networks(max_n=5))
def test_en_matches_the_linear_programme(case):
    # Eisenberg & Noe: the greatest clearing vector maximises sum(p) over
    # {0 <= p <= pbar, p <= e + Pi^T p}; solved here by an LP solver.
    optimize = pytest.importorskip("scipy.optimize")
    liab, e = case
    np.fill_diagonal(liab, 0.0)
    pbar = liab.sum(axis=1)
    n = len(e)
    lp = optimize.linprog(-np.ones(n), A_ub=np.eye(n) - relative_liabilities_loop(liab).T,
                          b_ub=e, bounds=list(zip(np.zeros(n), pbar, strict=True)),
                          method="highs")
    assert lp.status == 0
    scale = max(1.0, pbar.max(), e.max())
    np.testing.assert_allclose(eisenberg_noe(liab, e).payments, lp.x, rtol=0, atol=1e-6 * scale)


@SETTINGS
@given(networks())
def test_standalone_payments_are_eisenberg_noe_with_everyone_else_paying_in_full(case):
    # Independent method: eisenberg_noe itself on the network in which each node's nominal
    # claims are external assets and it owes everything to a sink that owes nothing.
    liab, e = case
    np.fill_diagonal(liab, 0.0)
    n = len(e)
    star = np.zeros((n + 1, n + 1))
    star[:n, n] = liab.sum(axis=1)
    value = np.append(e + liab.sum(axis=0), 0.0)
    expected = eisenberg_noe(star, value).payments[:n]
    scale = max(1.0, star.max(), value.max())
    np.testing.assert_allclose(standalone_payments(liab, e), expected, rtol=0,
                               atol=1e-12 * scale)


def test_standalone_payments_by_hand():
    # A owes B 10 and holds 4; B owes A 3 and holds 1. Alone, A holds 4 + 3 = 7 < 10: pays 7;
    # B holds 1 + 10 = 11 >= 3: pays 3.
    np.testing.assert_allclose(standalone_payments([[0, 10], [3, 0]], [4, 1]), [7.0, 3.0])


# ================================================================================ DebtRank


def test_debtrank_impact_orientation():
    # Node 1 lent 5 to node 0 (A[1, 0] = 5) and has equity 10: 0's distress hits 1 with
    # weight 5 / 10 = 0.5, so W[0, 1] = 0.5 and W[1, 0] = 0 (0 holds nothing of 1).
    w = debtrank_impact([[0, 0], [5, 0]], [7, 10])
    np.testing.assert_array_equal(w, [[0.0, 0.5], [0.0, 0.0]])
    # Capped at 1 when the exposure exceeds the holder's equity: 30 / 10 -> 1.
    np.testing.assert_array_equal(debtrank_impact([[0, 0], [30, 0]], [7, 10])[0, 1], 1.0)


def chain_exposures():
    # Distress flows 0 -> 1 -> 2 -> 3:
    #   A[1, 0] = 5,  E1 = 10: W01 = 0.5
    #   A[2, 1] = 30, E2 = 10: W12 = min(1, 3) = 1
    #   A[3, 2] = 2,  E3 = 8:  W23 = 0.25
    a = np.zeros((4, 4))
    a[1, 0], a[2, 1], a[3, 2] = 5.0, 30.0, 2.0
    return a, np.array([10.0, 10.0, 10.0, 8.0])


def test_debtrank_chain_by_hand():
    # h(1) = (1, 0, 0, 0)        D = {0}
    # h(2) = (1, .5, 0, 0)       0 -> I, 1 -> D          (h1 = 0.5 * 1)
    # h(3) = (1, .5, .5, 0)      1 -> I, 2 -> D          (h2 = 1 * 0.5)
    # h(4) = (1, .5, .5, .125)   2 -> I, 3 -> D          (h3 = 0.25 * 0.5)
    # h(5) = h(4)                3 -> I: no D left, T = 5
    # R = 0.2 * 0.5 + 0.3 * 0.5 + 0.4 * 0.125 = 0.3
    a, e = chain_exposures()
    r = debtrank(a, e, [1, 0, 0, 0], economic_value=[0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(r.history, [[1, 0, 0, 0], [1, 0.5, 0, 0], [1, 0.5, 0.5, 0],
                                           [1, 0.5, 0.5, 0.125], [1, 0.5, 0.5, 0.125]])
    np.testing.assert_allclose(r.distress, [1, 0.5, 0.5, 0.125])
    assert r.relative_debtrank == pytest.approx(0.3, abs=1e-15)


def test_debtrank_default_economic_value_is_share_of_exposures():
    # v_i = A_i / sum A with A_i = sum_l A[i, l]: row sums (0, 5, 30, 2), total 37.
    # Same h(T) as above: R = (5 * 0.5 + 30 * 0.5 + 2 * 0.125) / 37 = 17.75 / 37.
    a, e = chain_exposures()
    r = debtrank(a, e, [1, 0, 0, 0])
    assert r.relative_debtrank == pytest.approx(17.75 / 37, rel=1e-14)


def test_debtrank_distressed_node_passes_on_only_its_first_level():
    # W01 = 5/10 = .5, W02 = 2/10 = .2, W12 = 4/10 = .4, W23 = 4/8 = .5.
    # h(1) = (1, 0, 0, 0)         D = {0}
    # h(2) = (1, .5, .2, 0)       D = {1, 2}
    # h(3): h2 = .2 + .4 * .5 = .4, h3 = .5 * h2(2) = .5 * .2 = .1; 1, 2 -> I, 3 -> D
    # h(4) = h(3): 2 is inactive, so its extra .2 never reaches 3 (h3 stays .1, not .2).
    # R = .25 * (.5 + .4 + .1) = .25 with equal values.
    a = np.zeros((4, 4))
    a[1, 0], a[2, 0], a[2, 1], a[3, 2] = 5.0, 2.0, 4.0, 4.0
    r = debtrank(a, [10, 10, 10, 8], [1, 0, 0, 0], economic_value=[1, 1, 1, 1])
    np.testing.assert_allclose(r.distress, [1, 0.5, 0.4, 0.1])
    assert len(r.history) == 4
    assert r.relative_debtrank == pytest.approx(0.25, abs=1e-15)


def test_debtrank_two_node_cycle_stops():
    # 0 lent 6 to 1, 1 lent 3 to 0; E = (10, 4): W01 = A[1, 0] / E1 = 3/4 = .75,
    # W10 = A[0, 1] / E0 = 6/10 = .6.
    # h(1) = (.5, 0)                       D = {0}
    # h(2) = (.5, .75 * .5) = (.5, .375)   0 -> I, 1 -> D
    # h(3) = (.5 + .6 * .375, .375) = (.725, .375)   1 -> I; 0 is inactive: stop, T = 3.
    # R = .5 * (.725 - .5) + .5 * .375 = .1125 + .1875 = .3
    r = debtrank([[0, 6], [3, 0]], [10, 4], [0.5, 0], economic_value=[0.5, 0.5])
    np.testing.assert_allclose(r.history, [[0.5, 0], [0.5, 0.375], [0.725, 0.375]])
    assert r.relative_debtrank == pytest.approx(0.3, abs=1e-15)


def test_debtrank_node_with_no_outgoing_impact_has_zero_rank():
    # Nobody holds anything of node 0 (column 0 of A is 0): its distress goes nowhere.
    a = np.array([[0, 4, 1], [0, 0, 2], [0, 3, 0]], dtype=float)
    r = debtrank(a, [5, 5, 5], [1, 0, 0])
    assert r.relative_debtrank == 0.0
    np.testing.assert_array_equal(r.distress, [1, 0, 0])
    assert len(r.history) == 2  # h(1); then 0 turns inactive and nothing is distressed


def test_debtrank_distress_is_capped_at_one():
    # 0 and 1 start at 1 and both hit 2: W02 = 6/10, W12 = 7/10; h2 = min(1, .6 + .7) = 1.
    a = np.zeros((3, 3))
    a[2, 0], a[2, 1] = 6.0, 7.0
    r = debtrank(a, [1, 1, 10], [1, 1, 0], economic_value=[0, 0, 1])
    np.testing.assert_array_equal(r.distress, [1, 1, 1])
    assert r.relative_debtrank == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(equity=[1, 0]), "equity: must be > 0"),
        (dict(initial_distress=[1.5, 0]), r"initial_distress: must lie in \[0, 1\]"),
        (dict(initial_distress=[1, 0, 0]), "initial_distress: expected length 2"),
        (dict(economic_value=[0, 0]), "economic_value: must not sum to 0"),
        (dict(economic_value=[1, -1]), "economic_value: must be >= 0"),
        (dict(exposures=[[1, 1], [1, 0]]), "exposures: diagonal must be 0"),
    ],
)
def test_debtrank_rejects_bad_input(kwargs, message):
    args = dict(exposures=[[0, 1], [1, 0]], equity=[1, 1], initial_distress=[1, 0])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        debtrank(args.pop("exposures"), args.pop("equity"), args.pop("initial_distress"), **args)


def debtrank_twin(a, e, h1, v):
    """Per-node loop with explicit U/D/I states, straight from the paper's definition."""
    n = len(e)
    w = [[min(1.0, a[j][i] / e[j]) for j in range(n)] for i in range(n)]  # w[i][j]: i on j
    state = ["D" if x > 0 else "U" for x in h1]
    h = [float(x) for x in h1]
    history = [h]
    while "D" in state:
        new = [min(1.0, h[j] + sum(w[i][j] * h[i] for i in range(n) if state[i] == "D"))
               for j in range(n)]
        state = ["I" if s == "D" else ("D" if s == "U" and new[j] > 0 else s)
                 for j, s in enumerate(state)]
        h = new
        history.append(h)
    total = sum(v)
    return sum((h[j] - h1[j]) * v[j] / total for j in range(n)), history


@SETTINGS
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(
    hnp.arrays(float, (n, n), elements=st.one_of(st.just(0.0), st.floats(0.1, 50.0))),
    hnp.arrays(float, n, elements=st.floats(1.0, 40.0)),
    hnp.arrays(float, n, elements=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
    hnp.arrays(float, n, elements=st.floats(0.01, 1.0)),
)))
def test_debtrank_matches_its_twin(case):
    a, e, h1, v = case
    np.fill_diagonal(a, 0.0)
    r = debtrank(a, e, h1, economic_value=v)
    relative, history = debtrank_twin(a.tolist(), e.tolist(), h1.tolist(), v.tolist())
    np.testing.assert_allclose(r.history, history, rtol=1e-12, atol=1e-15)
    assert r.relative_debtrank == pytest.approx(relative, rel=1e-12, abs=1e-15)
    # Distress only grows, stays in [0, 1]; every node is distressed at most once.
    assert np.all(np.diff(r.history, axis=0) >= 0)
    assert np.all((r.history >= 0) & (r.history <= 1))
    assert len(r.history) <= len(e) + 1
    assert -1e-15 <= r.relative_debtrank <= 1 + 1e-15


# ============================================================== Greenwood-Landier-Thesmar


def glt_example():
    # Two banks, two assets. a = (100, 200), b = (9, 4) so e = a / (1 + b) = (10, 40),
    # E = 50. M = [[.5, .5], [.25, .75]], l = (.001, .002), F = (-.1, 0).
    return dict(assets=[100.0, 200.0], weights=[[0.5, 0.5], [0.25, 0.75]],
                leverage=[9.0, 4.0], price_impact=[0.001, 0.002], shock=[-0.1, 0.0])


def test_glt_two_banks_two_assets_by_hand():
    # M F           = (.5 * -.1, .25 * -.1)               = (-.05, -.025)
    # A M F         = (100 * -.05, 200 * -.025)           = (-5, -5)
    # B A M F       = (9 * -5, 4 * -5)                    = (-45, -20)       net purchases
    # M^T B A M F   = (.5 * -45 + .25 * -20, .5 * -45 + .75 * -20) = (-27.5, -37.5)
    # L M^T B A M F = (.001 * -27.5, .002 * -37.5)        = (-.0275, -.075)  price impact
    # M L M^T ...   = (.5 * -.0275 + .5 * -.075, .25 * -.0275 + .75 * -.075)
    #               = (-.05125, -.063125)
    # A M L M^T ... = (-5.125, -12.625); sum -17.75; AV = -17.75 / 50 = -.355
    # IV = (-5.125 / 10, -12.625 / 40) = (-.5125, -.315625)
    # Systemicness: 1^T A M = (100 * .5 + 200 * .25, 100 * .5 + 200 * .75) = (100, 200);
    #   1^T A M L = (.1, .4); (1^T A M L) M^T = (.1 * .5 + .4 * .5, .1 * .25 + .4 * .75)
    #   = (.25, .325); S = (.25 * -45, .325 * -20) / 50 = (-.225, -.13); sum = -.355 = AV.
    r = fire_sale_vulnerability(**glt_example())
    np.testing.assert_allclose(r.net_purchases, [-45.0, -20.0], rtol=1e-14)
    np.testing.assert_allclose(r.asset_net_purchases, [-27.5, -37.5], rtol=1e-14)
    np.testing.assert_allclose(r.price_impact, [-0.0275, -0.075], rtol=1e-14)
    np.testing.assert_allclose(r.bank_returns, [-0.05125, -0.063125], rtol=1e-14)
    assert r.aggregate_vulnerability == pytest.approx(-0.355, rel=1e-14)
    np.testing.assert_allclose(r.indirect_vulnerability, [-0.5125, -0.315625], rtol=1e-14)
    np.testing.assert_allclose(r.systemicness, [-0.225, -0.13], rtol=1e-14)


def test_glt_explicit_equity_matches_the_balance_sheet_identity():
    # e = a / (1 + b) = (10, 40): passing it gives the same numbers; doubling it halves AV.
    default = fire_sale_vulnerability(**glt_example())
    same = fire_sale_vulnerability(**glt_example(), equity=[10.0, 40.0])
    assert same.aggregate_vulnerability == pytest.approx(default.aggregate_vulnerability)
    doubled = fire_sale_vulnerability(**glt_example(), equity=[20.0, 80.0])
    assert doubled.aggregate_vulnerability == pytest.approx(-0.355 / 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(weights=[[0.5, 0.4], [0.25, 0.75]]), "weights: each row must sum to 1"),
        (dict(weights=[[1.5, -0.5], [0.25, 0.75]]), "weights: must be >= 0"),
        (dict(shock=[-0.1, 0.0, 0.0]), "shock: expected length 2"),
        (dict(price_impact=[0.1, 0.1, 0.1]), "price_impact: expected shape"),
        (dict(leverage=[-1.0, 4.0]), "leverage: must be >= 0"),
        (dict(assets=[0.0, 200.0]), "equity: must be > 0"),
        (dict(equity=[10.0, -1.0]), "equity: must be > 0"),
    ],
)
def test_glt_rejects_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        fire_sale_vulnerability(**(glt_example() | change))


def banking_systems():
    def build(shape):
        n, k = shape
        return st.tuples(
            hnp.arrays(float, n, elements=st.floats(1.0, 1000.0)),
            hnp.arrays(float, (n, k), elements=st.floats(0.01, 1.0)),
            hnp.arrays(float, n, elements=st.floats(0.0, 30.0)),
            hnp.arrays(float, k, elements=st.floats(0.0, 0.01)),
            hnp.arrays(float, k, elements=st.floats(-0.5, 0.5)),
        )
    return st.tuples(st.integers(1, 5), st.integers(1, 4)).flatmap(build)


def glt_loops(a, m, b, ell, f):
    """AV, S and IV as explicit sums over banks and assets."""
    n, k = m.shape
    e = [a[i] / (1 + b[i]) for i in range(n)]
    total = sum(e)
    r = [sum(m[i, q] * f[q] for q in range(k)) for i in range(n)]
    sold = [b[i] * a[i] * r[i] for i in range(n)]  # bank i's net purchase
    holdings = [sum(a[i] * m[i, q] for i in range(n)) for q in range(k)]  # dollars in asset q
    loss = [sum(a[i] * m[i, q] * ell[q] * sum(m[j, q] * sold[j] for j in range(n))
                for q in range(k)) for i in range(n)]
    spill = [sum(holdings[q] * ell[q] * m[j, q] for q in range(k)) * sold[j] / total
             for j in range(n)]
    return sum(loss) / total, spill, [loss[i] / e[i] for i in range(n)]


@SETTINGS
@given(banking_systems())
def test_glt_systemicness_adds_up_to_aggregate_vulnerability(case):
    a, raw, b, ell, f = case
    m = raw / raw.sum(axis=1, keepdims=True)
    r = fire_sale_vulnerability(a, m, b, price_impact=ell, shock=f)
    av, spill, iv = glt_loops(a, m, b, ell, f)
    scale = max(1e-12, np.abs(r.systemicness).sum())
    assert r.systemicness.sum() == pytest.approx(r.aggregate_vulnerability, rel=1e-9,
                                                 abs=1e-12 * scale)
    assert r.aggregate_vulnerability == pytest.approx(av, rel=1e-9, abs=1e-15)
    np.testing.assert_allclose(r.systemicness, spill, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r.indirect_vulnerability, iv, rtol=1e-9, atol=1e-15)
    # AV is also the equity-weighted mean of indirect vulnerabilities.
    e = a / (1 + b)
    assert e @ r.indirect_vulnerability / e.sum() == pytest.approx(
        r.aggregate_vulnerability, rel=1e-9, abs=1e-15)


@SETTINGS
@given(banking_systems(), st.floats(0.1, 10.0))
def test_glt_scaling(case, c):
    a, raw, b, ell, f = case
    m = raw / raw.sum(axis=1, keepdims=True)
    base = fire_sale_vulnerability(a, m, b, price_impact=ell, shock=f)

    def check(scaled, factor):
        assert scaled.aggregate_vulnerability == pytest.approx(
            factor * base.aggregate_vulnerability, rel=1e-9, abs=1e-15)
        np.testing.assert_allclose(scaled.systemicness, factor * base.systemicness,
                                   rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(scaled.indirect_vulnerability,
                                   factor * base.indirect_vulnerability, rtol=1e-9, atol=1e-15)

    # Linear in the shock and in price impact.
    check(fire_sale_vulnerability(a, m, b, price_impact=ell, shock=c * f), c)
    check(fire_sale_vulnerability(a, m, b, price_impact=c * ell, shock=f), c)
    # Scaling every balance sheet by c (same leverage): dollar losses are quadratic in size,
    # equity linear, so AV, S and IV all scale by c.
    check(fire_sale_vulnerability(c * a, m, b, price_impact=ell, shock=f), c)


def test_glt_full_impact_matrix_adds_up_too():
    # A non-diagonal L (cross-price impact) keeps sum_n S_n = AV.
    rng = np.random.default_rng(7)
    m = rng.dirichlet(np.ones(3), size=4)
    impact = rng.uniform(0, 1e-3, (3, 3))
    r = fire_sale_vulnerability(rng.uniform(10, 100, 4), m, rng.uniform(1, 20, 4),
                                price_impact=impact, shock=rng.uniform(-0.2, 0.0, 3))
    assert r.systemicness.sum() == pytest.approx(r.aggregate_vulnerability, rel=1e-12)
    # The diagonal case equals passing the vector.
    shock = [-0.1, 0.0, 0.05]
    d = fire_sale_vulnerability([50, 60, 70, 80], m, [5, 6, 7, 8],
                                price_impact=np.diag(impact.diagonal()), shock=shock)
    v = fire_sale_vulnerability([50, 60, 70, 80], m, [5, 6, 7, 8],
                                price_impact=impact.diagonal(), shock=shock)
    assert d.aggregate_vulnerability == pytest.approx(v.aggregate_vulnerability, rel=1e-14)
