"""Synthetic inputs for the cascade kernel: one lending pool, WETH/WBTC/USDC, one venue.

One lending protocol, so its markets are the three assets (market k is asset k, protocol 0).

The book is drawn at pre-shock prices (WETH 3,000, WBTC 60,000, USDC 1): 75% WETH and 25%
WBTC collateral, USDC debt, collateral value lognormal (median 60,000 USD, sigma 1.2) and
health factor lognormal (median 2.0, sigma 0.3, at least LT / LTV). Prices are then shocked
(WETH -30%, WBTC -20%), which leaves about 11% of positions liquidatable in the first round
and 55% on the kernel's watch list (HF < 1.5). Seized WETH is sold on one WETH/USDC
constant-product pool (0.3% fee, WETH reserve 3x the WETH collateral) that the WETH oracle
reads, so sales push more positions under: about 15% of positions are liquidated over 9 to 12
rounds. WBTC has no venue (liquidators carry it). Eight liquidators act in a fixed order,
alternately flash-loan bots (must sell on the venue) and inventory holders, each with USDC
worth 5% of the book's debt, so the first ones run out of capital and later ones step in.
Everything scales with the book, so the cascade has the same shape at every size. There are
no arbitrageurs (the Mesa reference models none).

``make_book(n)`` returns the inputs of ``sim.engine.cascade.run_cascade`` by name, flat;
``arguments(book)`` bundles them as the kernel takes them (``sim.engine.tables``);
``fresh(book)`` copies every array (the kernel updates them in place).
"""

from __future__ import annotations

import numpy as np

from sim.engine import cascade
from sim.engine.tables import (
    ArbitrageurTable,
    LiquidatorTable,
    MarketTable,
    PoolTable,
    PositionTable,
)

ASSETS = ("WETH", "WBTC", "USDC")
WETH, WBTC, USDC = 0, 1, 2
START_PRICE = np.array([3000.0, 60000.0, 1.0])
SHOCK = np.array([0.70, 0.80, 1.0])  # price multipliers applied before the cascade
COLLATERAL_SHARE = np.array([0.75, 0.25])  # of positions, WETH / WBTC collateral
# Aave v3 Ethereum launch parameters, as in scenarios/eth_crash.toml.
LTV = np.array([0.825, 0.72, 0.865])
LT = np.array([0.86, 0.82, 0.885])
BONUS = np.array([0.05, 0.05, 0.045])
PROTOCOL_FEE = np.array([0.10, 0.10, 0.10])
RULES = np.array([0.5, 0.95, 2000.0, 1000.0])  # close factor, HF threshold, 2,000 / 1,000 USD
BORROW_INDEX = np.array([1.0, 1.0, 1.03])
HEALTH_MEDIAN, HEALTH_SIGMA = 2.0, 0.3  # pre-shock health factor, lognormal
POOL_RESERVE_SHARE = 3.0  # WETH pool reserve / WETH collateral in the book
POOL_FEE = 0.003
N_LIQUIDATORS = 8
LIQUIDATOR_CAPITAL_SHARE = 0.05  # each liquidator's USDC / total debt
MAX_ROUNDS = 100


def make_book(n: int, seed: int = 0, protocols: int = 1) -> dict:
    """The ``run_cascade`` inputs for a book of ``n`` positions (deterministic in seed).

    With ``protocols`` > 1 the same positions are spread over that many identical lending
    protocols (market ``p * 3 + asset``) sharing the pool and the liquidators: the cascade
    is the same, so its liquidations must be too; only the market indexing differs.
    """
    rng = np.random.default_rng(seed)
    m = len(ASSETS)
    k_markets = protocols * m
    coll_asset = rng.choice(2, size=n, p=COLLATERAL_SHARE).astype(np.int32)
    value = 60_000.0 * np.exp(1.2 * rng.standard_normal(n))  # collateral USD, pre-shock
    health = HEALTH_MEDIAN * np.exp(HEALTH_SIGMA * rng.standard_normal(n))
    health = np.maximum(health, (LT / LTV * 1.001)[coll_asset])  # opened within the LTV
    coll = value / START_PRICE[coll_asset]
    debt = value * LT[coll_asset] / health / START_PRICE[USDC]
    scaled_debt = debt / BORROW_INDEX[USDC]
    # From a generator of its own, so the book and the liquidators are the same for every
    # number of protocols.
    protocol = np.random.default_rng([seed, protocols]).integers(0, protocols, n)
    coll_market = (coll_asset + m * protocol).astype(np.int32)
    debt_market = (USDC + m * protocol).astype(np.int32)

    price = START_PRICE * SHOCK
    total_coll = np.bincount(coll_market, weights=coll, minlength=k_markets)
    total_scaled_debt = np.bincount(debt_market, weights=scaled_debt, minlength=k_markets)
    total_coll_weth = coll[coll_asset == WETH].sum()
    reserve_base = np.array([POOL_RESERVE_SHARE * total_coll_weth])
    liq_balance = np.zeros((N_LIQUIDATORS, m))
    liq_balance[:, USDC] = LIQUIDATOR_CAPITAL_SHARE * debt.sum()
    book = {
        "coll_market": coll_market,
        "debt_market": debt_market,
        "coll": coll,
        "scaled_debt": scaled_debt,
        "market_asset": np.tile(np.arange(m, dtype=np.int64), protocols),
        "market_protocol": np.repeat(np.arange(protocols, dtype=np.int64), m),
        "lt": np.tile(LT, protocols),
        "bonus": np.tile(BONUS, protocols),
        "protocol_fee": np.tile(PROTOCOL_FEE, protocols),
        "borrow_index": np.tile(BORROW_INDEX, protocols),
        "cash": np.tile([0.0, 0.0, 0.2 * debt.sum() / protocols], protocols),
        "treasury": np.zeros(k_markets),
        "deficit": np.zeros(k_markets),
        "total_coll": total_coll,
        "total_scaled_debt": total_scaled_debt,
        "market_rules": np.tile(RULES, (k_markets, 1)),  # the four below, for the Mesa model
        "close_factor": np.full(k_markets, RULES[0]),
        "close_factor_hf_threshold": np.full(k_markets, RULES[1]),
        "min_base_max_close_factor_threshold": np.full(k_markets, RULES[2]),
        "min_leftover_base": np.full(k_markets, RULES[3]),
        "oracle_price": price.copy(),
        "oracle_pool": np.array([0, -1, -1], dtype=np.int64),  # WETH reads the pool
        "external_price": price.copy(),
        "venue_pool": np.tile(np.array([0, -1, -1], dtype=np.int64), protocols),
        "reserve_base": reserve_base,
        "reserve_quote": reserve_base * price[WETH] / price[USDC],
        "pool_fee": np.array([POOL_FEE]),
        "pool_amp": np.zeros(1),  # constant product
        "pool_peg": np.ones(1),
        "pool_base": np.array([WETH], dtype=np.int64),
        "pool_quote_asset": np.array([USDC], dtype=np.int64),
        "liq_balance": liq_balance,
        "liq_gas": rng.uniform(5.0, 40.0, N_LIQUIDATORS),
        "liq_min_profit": rng.uniform(10.0, 200.0, N_LIQUIDATORS),
        "liq_atomic": np.arange(N_LIQUIDATORS) % 2 == 0,  # half are flash-loan bots
        "liq_order": np.arange(N_LIQUIDATORS, dtype=np.int64),
        "gas_sink": np.zeros(m),
        "arb_balance": np.zeros((0, m)),
        "arb_pools": np.zeros(0, dtype=np.int64),
        "arb_order": np.zeros(0, dtype=np.int64),
        "max_rounds": MAX_ROUNDS,
        "stats": np.zeros((protocols, cascade.N_STATS)),
        "totals": np.zeros(cascade.N_TOTALS),
        "round_counts": np.zeros(MAX_ROUNDS, dtype=np.int64),
    }
    return book


def arguments(book: dict) -> tuple:
    """The ``run_cascade`` arguments: ``book``'s arrays (not copies) in the kernel's tables.

    Tables go as the plain tuples a kernel takes (``sim.engine.tables``).
    """
    b = book
    tables = (
        PositionTable(b["coll_market"], b["debt_market"], b["coll"], b["scaled_debt"]),
        MarketTable(b["market_asset"], b["market_protocol"], b["lt"], b["bonus"],
                    b["protocol_fee"], b["borrow_index"], b["cash"], b["treasury"],
                    b["deficit"], b["total_coll"], b["total_scaled_debt"], b["close_factor"],
                    b["close_factor_hf_threshold"], b["min_base_max_close_factor_threshold"],
                    b["min_leftover_base"], b["venue_pool"]),
        PoolTable(b["reserve_base"], b["reserve_quote"], b["pool_fee"], b["pool_amp"],
                  b["pool_peg"], b["pool_base"], b["pool_quote_asset"]),
        LiquidatorTable(b["liq_balance"], b["liq_gas"], b["liq_min_profit"], b["liq_atomic"],
                        b["liq_order"]),
        ArbitrageurTable(b["arb_balance"], b["arb_pools"], b["arb_order"]),
    )
    return (
        *(tuple(table) for table in tables),
        b["oracle_price"], b["oracle_pool"], b["external_price"], b["gas_sink"], b["max_rounds"],
        b["stats"], b["totals"], b["round_counts"],
    )


def fresh(book: dict) -> dict:
    """A copy of ``book`` whose arrays can be mutated by a run."""
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in book.items()}


def run(book: dict) -> None:
    """Run the cascade on ``book`` (in place)."""
    cascade.run_cascade(*arguments(book))


def liquidatable_share(book: dict) -> float:
    """Share of positions with health factor < 1 at the book's oracle prices."""
    c, d = book["coll_market"], book["debt_market"]
    price = book["oracle_price"][book["market_asset"]]
    debt = book["scaled_debt"] * book["borrow_index"][d]
    lhs = book["coll"] * price[c] * book["lt"][c]
    return float(np.mean(lhs < debt * price[d]))


def watched_share(book: dict) -> float:
    """Share of positions on the kernel's watch list (health < WATCH_HEALTH) at the start."""
    c, d = book["coll_market"], book["debt_market"]
    price = book["oracle_price"][book["market_asset"]]
    debt = book["scaled_debt"] * book["borrow_index"][d]
    lhs = book["coll"] * price[c] * book["lt"][c]
    return float(np.mean(lhs < cascade.WATCH_HEALTH * debt * price[d]))
