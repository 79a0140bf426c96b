"""The numba cascade kernel against its plain-Python twin (tests/reference.py).

The kernel rescans only a watch list after the first round; the twin rescans the whole book
every round. Equal results on random books check both the Aave rules and that shortcut.
"""

import copy

import numpy as np
import pytest

from sim.engine import cascade as ck
from tests import reference as ref

M = 3  # assets: 0 WETH, 1 WBTC, 2 USDC
RULES = np.array([0.5, 0.95, 2000.0, 1000.0])


def random_case(seed, n=400):
    rng = np.random.default_rng(seed)
    price0 = np.array([3000.0, 60000.0, 1.0])
    coll_asset = rng.choice([0, 1], size=n).astype(np.int32)
    debt_asset = np.full(n, 2, dtype=np.int32)
    value = np.exp(rng.normal(np.log(20_000), 1.2, n))
    lev = rng.uniform(1.5, 5.0, n)
    lt = np.array([0.86, 0.82, 0.885])
    coll = value / price0[coll_asset]
    debt = value * np.minimum(1 - 1 / lev, lt[coll_asset] * 0.97)
    borrow_index = np.array([1.0, 1.0, 1.013])
    shock = rng.uniform(0.6, 0.95)
    oracle = price0 * np.array([shock, rng.uniform(0.8, 1.0), 1.0])
    case = dict(
        coll_asset=coll_asset, debt_asset=debt_asset, coll=coll,
        scaled_debt=debt / borrow_index[debt_asset],
        lt=lt, bonus=np.array([0.05, 0.05, 0.045]), protocol_fee=np.array([0.1, 0.1, 0.1]),
        borrow_index=borrow_index, cash=np.array([1e4, 1e2, 5e7]), treasury=np.zeros(M),
        deficit=np.zeros(M), total_coll=np.bincount(coll_asset, coll, M),
        total_scaled_debt=np.bincount(debt_asset, debt / borrow_index[debt_asset], M),
        oracle_price=oracle.copy(), oracle_pool=np.array([0, -1, -1], dtype=np.int64),
        value_price=price0 * np.array([shock, 1.0, 1.0]),
        venue_pool=np.array([0, -1, -1], dtype=np.int64),
        reserve_base=np.array([rng.uniform(500, 5000)]),
        pool_fee=np.array([0.003]), pool_base=np.array([0], dtype=np.int64),
        pool_quote=np.array([2], dtype=np.int64),
        liq_balance=np.zeros((4, M)), liq_gas=rng.uniform(1, 30, 4),
        liq_min_profit=rng.uniform(0, 100, 4), liq_atomic=np.array([True, False, True, False]),
        liq_order=rng.permutation(4).astype(np.int64), gas_sink=np.zeros(M),
        arb_balance=np.zeros((2, M)), arb_pools=np.array([0], dtype=np.int64),
        arb_order=np.array([1, 0], dtype=np.int64),
    )
    case["reserve_quote"] = case["reserve_base"] * oracle[0]
    case["liq_balance"][:, 2] = rng.uniform(1e4, 1e5 if seed % 2 else 5e6, 4)
    case["arb_balance"][:, 0] = rng.uniform(0, 100, 2)
    case["arb_balance"][:, 2] = rng.uniform(0, 3e5, 2)
    return case


def run_kernel(case, max_rounds):
    c = copy.deepcopy(case)
    stats = np.zeros(ck.N_STATS)
    rounds = np.zeros(max_rounds, dtype=np.int64)
    ck.run_cascade(
        c["coll_asset"], c["debt_asset"], c["coll"], c["scaled_debt"], c["lt"], c["bonus"],
        c["protocol_fee"], c["borrow_index"], c["cash"], c["treasury"], c["deficit"],
        c["total_coll"], c["total_scaled_debt"], RULES, c["oracle_price"], c["oracle_pool"],
        c["value_price"], c["venue_pool"], c["reserve_base"], c["reserve_quote"], c["pool_fee"],
        c["pool_base"], c["pool_quote"], c["liq_balance"], c["liq_gas"], c["liq_min_profit"],
        c["liq_atomic"], c["liq_order"], c["gas_sink"], c["arb_balance"], c["arb_pools"],
        c["arb_order"], max_rounds, stats, rounds)
    return c, stats, rounds


def run_twin(case, max_rounds):
    c = copy.deepcopy(case)
    book = [dict(c=int(a), d=int(b), coll=float(x), scaled=float(y)) for a, b, x, y in
            zip(c["coll_asset"], c["debt_asset"], c["coll"], c["scaled_debt"], strict=True)]
    market = dict(lt=list(c["lt"]), bonus=list(c["bonus"]), fee=list(c["protocol_fee"]),
                  borrow_index=list(c["borrow_index"]), cash=list(c["cash"]),
                  deficit=[0.0] * M, treasury=[0.0] * M)
    pools = [dict(rb=float(c["reserve_base"][0]), rq=float(c["reserve_quote"][0]), fee=0.003,
                  base=0, quote=2)]
    liqs = dict(balance=[list(r) for r in c["liq_balance"]], gas=list(c["liq_gas"]),
                min_profit=list(c["liq_min_profit"]), atomic=list(c["liq_atomic"]),
                order=list(c["liq_order"]))
    arbs = dict(balance=[list(r) for r in c["arb_balance"]], pools=[0],
                order=list(c["arb_order"]))
    oracle = list(c["oracle_price"])
    result = ref.cascade(book, market, tuple(RULES), oracle, list(c["oracle_pool"]),
                         list(c["value_price"]), list(c["venue_pool"]), pools, liqs, arbs,
                         max_rounds)
    return book, market, pools, liqs, oracle, result


@pytest.mark.parametrize("seed", range(12))
def test_kernel_matches_plain_python_twin(seed):
    case = random_case(seed)
    max_rounds = 60
    k, stats, rounds = run_kernel(case, max_rounds)
    book, market, pools, liqs, oracle, (n_liq, repaid, bad, n_rounds, per_round) = run_twin(
        case, max_rounds)
    assert n_liq > 0, "the case must exercise liquidations"
    assert stats[ck.N_LIQUIDATIONS] == n_liq
    assert stats[ck.ROUNDS] == n_rounds
    assert list(rounds[:n_rounds]) == per_round
    np.testing.assert_allclose(stats[ck.DEBT_REPAID_VALUE], repaid, rtol=1e-9)
    np.testing.assert_allclose(stats[ck.BAD_DEBT_VALUE], bad, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(k["coll"], [p["coll"] for p in book], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(k["scaled_debt"], [p["scaled"] for p in book], rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(k["cash"], market["cash"], rtol=1e-12)
    np.testing.assert_allclose(k["deficit"], market["deficit"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(k["treasury"], market["treasury"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(k["reserve_base"], [pools[0]["rb"]], rtol=1e-12)
    np.testing.assert_allclose(k["reserve_quote"], [pools[0]["rq"]], rtol=1e-12)
    np.testing.assert_allclose(k["liq_balance"], liqs["balance"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(k["oracle_price"], oracle, rtol=1e-12)


def test_some_cases_cascade_over_several_rounds():
    # Guard that the twin comparison above covers multi-round cascades, not just one round.
    rounds = [run_kernel(random_case(s), 60)[1][ck.ROUNDS] for s in range(12)]
    assert max(rounds) >= 3
