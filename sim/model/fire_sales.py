"""Fire-sale spillovers on a running model (Greenwood, Landier & Thesmar 2015).

Each leveraged population (leveraged traders on a lending protocol, vault owners on a CDP,
a protocol's multi-collateral accounts) is a "bank" that targets its leverage: after a
shock to asset returns it sells its collateral pro rata, and the sales move prices by the
depth of the pool that trades each asset. ``sim.metrics.contagion`` holds the metric on
plain arrays; this module builds its inputs from the state of a ``StressModel`` at its
current step (duck-typed, read-only).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.engine.health import group_exposures
from sim.metrics.contagion import fire_sale_vulnerability
from sim.protocols.amm import DEPTH_PRICE_MOVE


def price_impact(model) -> np.ndarray:
    """Per-asset fire-sale price impact ``l_k``: return per USD of net purchase, float (m,).

    A pool's depth is the base volume that moves its price by ``DEPTH_PRICE_MOVE`` (10%,
    Risk DAO; ``Pools.depth``); GLT's linear impact extrapolates it: the USD that moves the
    price 100% is ``depth * price / 0.10``, so ``l_k = 0.10 / (depth * price_k)`` for the
    deepest pool (in USD) with base k at external prices. An asset no pool sells as base
    has ``l_k = 0`` (sold off-chain, no impact), as has one whose pools are empty.
    """
    price = np.asarray(model.prices[model.t], dtype=np.float64)
    out = np.zeros(len(price))
    amm = model.amm
    if not len(amm):
        return out
    usd_depth = amm.depth() * price[amm.base]
    deepest = np.zeros(len(price))
    np.maximum.at(deepest, amm.base, usd_depth)
    ok = deepest > 0
    out[ok] = DEPTH_PRICE_MOVE / deepest[ok]
    return out


def leveraged_holders(model) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The leveraged populations as GLT banks: labels, holdings and debt at external prices.

    Each trader population (``model.traders``) and each vault-owner population
    (``model.vault_owners``) is one bank, labelled ``"<protocol>:<kind>[<k>]"`` with k its
    position in that list; so are the multi-collateral accounts of each lending protocol
    (``model.accounts``, ``"<protocol>:multi_collateral_traders"``). Holdings are the
    collateral (lending collateral, CDP ink, account collateral legs) in tokens times the
    external price; debt is the debt tokens times the external price of the debt asset (the
    stablecoin for vault owners). Spare wallet funds are not counted.

    Returns:
        (labels, holdings float (N, m) USD, debt float (N,) USD).
    """
    price = np.asarray(model.prices[model.t], dtype=np.float64)
    m = len(price)
    labels: list[str] = []
    holdings: list[np.ndarray] = []
    debt: list[float] = []
    lp = model.lending
    book = lp.book
    start = np.array([t.rows.start for t in model.traders], dtype=np.int64)
    stop = np.array([t.rows.stop for t in model.traders], dtype=np.int64)
    trader_holdings = np.zeros((len(start), m))
    trader_debt = np.zeros(len(start))
    group_exposures(start, stop, book.coll_market, book.debt_market, book.coll,
                    book.scaled_debt, lp.market_asset, lp.borrow_index, price,
                    trader_holdings, trader_debt)
    for k, traders in enumerate(model.traders):
        rows = traders.rows
        where = (lp.names[lp.market_protocol[book.coll_market[rows.start]]]
                 if rows.stop > rows.start else "?")
        labels.append(f"{where}:leveraged_traders[{k}]")
        holdings.append(trader_holdings[k])
        debt.append(float(trader_debt[k]))
    c = model.cdps
    for k, owners in enumerate(model.vault_owners):
        rows = owners.rows
        ilk = c.vaults.ilk[rows]
        asset = c.ilk_asset[ilk]
        where = c.names[c.ilk_protocol[ilk[0]]] if len(rows) else "?"
        labels.append(f"{where}:vault_owners[{k}]")
        holdings.append(np.bincount(asset, weights=c.vaults.ink[rows] * price[asset],
                                    minlength=m))
        debt.append(float(c.debt_of(rows) @ price[c.stable_asset[c.ilk_protocol[ilk]]]))
    acc = model.accounts
    if len(acc):
        leg_asset = lp.market_asset[acc.leg_market]
        leg_protocol = lp.market_protocol[acc.leg_market]
        coll = np.where(acc.leg_is_debt, 0.0, acc.leg_amount) * price[leg_asset]
        owed = acc.leg_debt() * price[leg_asset]
        for p in np.unique(acc.protocol):
            legs = leg_protocol == p
            labels.append(f"{lp.names[p]}:multi_collateral_traders")
            holdings.append(np.bincount(leg_asset[legs], weights=coll[legs], minlength=m))
            debt.append(float(owed[legs].sum()))
    return labels, np.array(holdings).reshape(len(labels), m), np.array(debt)


def _shock_vector(model, shock) -> np.ndarray:
    assets = list(model.assets)
    if isinstance(shock, Mapping):
        out = np.zeros(len(assets))
        for name, r in shock.items():
            if name not in assets:
                raise ValueError(f"shock: unknown asset '{name}' (assets: {', '.join(assets)})")
            out[assets.index(name)] = float(r)
        return out
    out = np.asarray(shock, dtype=np.float64)
    if out.shape != (len(assets),):
        raise ValueError(f"shock: expected one return per asset ({len(assets)}), got shape "
                         f"{out.shape}")
    return out


def fire_sale(model, shock) -> dict[str, np.ndarray]:
    """Greenwood-Landier-Thesmar fire-sale vulnerability of the model's leveraged holders.

    Greenwood, Landier & Thesmar (2015), "Vulnerable Banks", JFE 115(3): with each bank's
    assets a_n, weights M, leverage b_n = debt / equity targeted, price impact L = diag(l)
    and shock F, sales B A M F move prices by L M^T B A M F
    (``sim.metrics.contagion.fire_sale_vulnerability``). Banks are the populations of
    :func:`leveraged_holders` (equity = holdings - debt); l is :func:`price_impact`. A
    population with no holdings or equity <= 0 is left out (it cannot target a leverage)
    and gets NaN.

    Args:
        model: a ``StressModel`` (duck-typed), at its current step.
        shock: the initial return of each asset, float (m,) in ``model.assets`` order, or a
            mapping asset name -> return (others 0), e.g. ``{"WETH": -0.1}``.

    Returns:
        ``population`` (labels, (N,)), ``aggregate_vulnerability`` (0-d: fire-sale loss of
        all populations over their total equity), ``systemicness`` and
        ``indirect_vulnerability`` ((N,), NaN where left out). All carry the shock's sign.

    Raises:
        ValueError: if the shock names an unknown asset or has the wrong length.
    """
    f = _shock_vector(model, shock)
    labels, holdings, debt = leveraged_holders(model)
    n = len(labels)
    systemicness = np.full(n, np.nan)
    indirect = np.full(n, np.nan)
    aggregate = np.nan
    assets = holdings.sum(axis=1)
    equity = assets - debt
    ok = (assets > 0) & (equity > 0)
    if ok.any():
        r = fire_sale_vulnerability(
            assets[ok], holdings[ok] / assets[ok, None], debt[ok] / equity[ok],
            price_impact=price_impact(model), shock=f, equity=equity[ok])
        systemicness[ok] = r.systemicness
        indirect[ok] = r.indirect_vulnerability
        aggregate = r.aggregate_vulnerability
    return {
        "population": np.array(labels, dtype=str),
        "aggregate_vulnerability": np.asarray(aggregate, dtype=np.float64),
        "systemicness": systemicness,
        "indirect_vulnerability": indirect,
    }
