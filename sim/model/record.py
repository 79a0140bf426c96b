"""The per-step record of a model: every variable of ``sim.results``, read from the state.

One call per step (``record``) after the liquidation phase, and once at t = 0. The
variables are catalogued (dims, units, meaning) in ``sim.results.VARIABLES``; the values
come from the protocols, the step's context (what the populations reported) and the
populations' balance sheets (net worth, delta, gamma, vega).
"""

from __future__ import annotations

import numpy as np

from sim.engine import cascade as ck
from sim.engine import cdp as cdp_kernel
from sim.engine import perps as perps_kernel
from sim.model import exposure, systemic
from sim.model.accounting import balance_sheets, net_worth
from sim.model.kinds import AGENT_KINDS
from sim.model.pnl import COMPONENTS

# Greenwood-Landier-Thesmar's standard stress: every asset falls 1%.
FIRE_SALE_SHOCK = -0.01


def record(model, ctx, stats: np.ndarray, totals: np.ndarray, rounds: np.ndarray) -> None:
    """Record step ``model.t``: every variable of ``sim.results.VARIABLES``.

    Args:
        model: the ``StressModel``.
        ctx: the step's ``StepContext`` (what the populations reported).
        stats, totals, rounds: the lending cascade's, summed over the liquidation passes.
    """
    va = model.vol_arbitrageurs
    pool = model.lending
    price = model.oracles.price
    coll, debt, insolvent = ctx.book_totals()
    if len(model.accounts):
        coll_a, debt_a, insolvent_a = model.accounts.totals(price)
        coll, debt, insolvent = coll + coll_a, debt + debt_a, insolvent + insolvent_a
    n_proto = len(model.protocol_names)
    lending_rows = [model.protocol_names.index(n) for n in model.lending_names]
    cdp_rows = [model.protocol_names.index(n) for n in model.cdp_names]

    def per_protocol(values: np.ndarray) -> np.ndarray:
        out = np.zeros(n_proto)
        out[lending_rows] = values
        return out

    def per_market(values: np.ndarray, cdp: np.ndarray | None = None) -> np.ndarray:
        out = np.full((n_proto, len(model.assets)), np.nan)
        out[lending_rows] = np.where(pool.listed, values, np.nan).reshape(
            len(lending_rows), len(model.assets))
        if cdp is not None:
            out[cdp_rows] = cdp
        return out

    ext = model.prices[model.t]
    tvl = np.zeros(n_proto)
    held = (pool.cash + pool.total_coll) * pool.market_price(ext)
    tvl[lending_rows] = np.bincount(pool.market_protocol, weights=held,
                                    minlength=len(lending_rows))
    amm_price = np.full(n_proto, np.nan)
    depth = np.full(n_proto, np.nan)
    rbase = np.full(n_proto, np.nan)
    rquote = np.full(n_proto, np.nan)
    amm = model.amm
    if len(amm):
        idx = [model.protocol_names.index(n) for n in model.pool_names]
        amm_price[idx] = amm.spot() * price[amm.quote]
        depth[idx] = amm.depth() * amm_price[idx]
        rbase[idx] = amm.reserve_base
        rquote[idx] = amm.reserve_quote
        tvl[idx] = amm.reserve_base * ext[amm.base] + amm.reserve_quote * ext[amm.quote]
    lp_pnl = np.full(n_proto, np.nan)
    pulled = np.full(n_proto, np.nan)
    mm = model.market_makers
    if mm is not None:  # the pool's makers together: summed P&L over summed deposit value
        k = model.protocol_names.index(model.pool_names[mm.pool])
        lp_pnl[k] = mm.pnl(amm, ext).sum() / (mm.deposit.sum(0) @ ext)
        pulled[k] = mm.liquidity_pulled(amm, ext)
    peg = np.full(n_proto, np.nan)
    queue = np.full(n_proto, np.nan)
    st = model.staking
    if len(st):
        idx = [model.protocol_names.index(n) for n in model.staking_names]
        spot = amm.spot()
        market = np.where(model.staking_pool >= 0, spot[model.staking_pool], st.rate)
        peg[idx] = np.divide(market, st.rate, out=np.zeros(len(st)), where=st.rate > 0)
        queue[idx] = st.queue_owed() * ext[st.underlying]
        tvl[idx] = (st.backing + st.retained) * ext[st.underlying]
    for p, name in enumerate(model.cdp_names):
        if model.cdp_stable_pool[p] >= 0:
            peg[model.protocol_names.index(name)] = ext[model.cdps.stable_asset[p]]
    for p, name in enumerate(model.psm_names):
        tvl[model.protocol_names.index(name)] += model.psm.reserve[p] * ext[model.psm_gem[p]]
    backing = np.full(n_proto, np.nan)
    if len(model.algo):
        idx = [model.protocol_names.index(n) for n in model.algo_names]
        peg[idx] = ext[model.algo_stable]  # the stable's par is 1 numeraire
        backing[idx] = model.algo.implied_backing(ext[model.algo_sister])
    clearing = systemic.clearing(model)
    kinds = len(AGENT_KINDS)
    sheets = balance_sheets(model, ctx)
    delta = exposure.delta(model, sheets)
    gamma, vega = exposure.gamma(model, sheets), exposure.vega(model, sheets)
    glt = systemic.fire_sale(model, np.full(len(model.assets), FIRE_SALE_SHOCK))
    systemicness = np.zeros(n_proto)
    for label, value in zip(glt["population"], glt["systemicness"], strict=True):
        if value == value:  # NaN: a population with no equity left
            systemicness[model.protocol_names.index(label.split(":")[0])] += value
    cdp = _cdp_record(model, ext)
    tvl += cdp["tvl"]
    perp = _perp_record(model, ctx, ext)
    tvl += perp["tvl"]
    o = model.options
    if len(o):
        idx = [model.protocol_names.index(n) for n in model.option_names]
        tvl[idx] += o.held_by_protocol() * ext[o.settlement_asset]
    model.recorder.record(model.t, {
        "external_price": model.prices[model.t],
        "oracle_price": price,
        "amm_price": amm_price,
        "tvl": tvl,
        "pool_depth": depth,
        "pool_reserve_base": rbase,
        "pool_reserve_quote": rquote,
        "pool_quote_share": rquote / (rbase + rquote),
        "lp_pnl": lp_pnl,
        "liquidity_pulled": pulled,
        "liquidated_value": (per_protocol(stats[:, ck.LIQUIDATED_VALUE]) + cdp["repaid"]
                             + perp["notional"]),
        "seized_collateral_value": (per_protocol(stats[:, ck.SEIZED_COLLATERAL_VALUE])
                                    + cdp["sold"]),
        "liquidation_count": (per_protocol(stats[:, ck.LIQUIDATION_COUNT]) + cdp["started"]
                              + perp["count"]),
        "bad_debt": (per_protocol(stats[:, ck.BAD_DEBT]) + cdp["bad_debt"]
                     + perp["bad_debt"]),
        "insurance_fund": perp["insurance_fund"],
        "adl_value": perp["adl"],
        "open_interest": perp["open_interest"],
        "funding_rate": perp["funding_rate"],
        "insolvent_debt": per_protocol(insolvent[:, 0]) + cdp["insolvent"],
        "liquidatable_count": per_protocol(insolvent[:, 1]) + cdp["unsafe"],
        "auction_recovery": cdp["recovery"],
        "zero_bid_loss": cdp["zero_bid"],
        "liquidator_profit": per_protocol(stats[:, ck.LIQUIDATOR_PROFIT]),
        "utilisation": per_market(pool.utilisation()),
        "borrow_rate": per_market(pool.borrow_rate()),
        "total_collateral": per_market(coll, cdp["collateral"]),
        "total_debt": per_market(debt, cdp["debt"]),
        "available_liquidity": per_market(pool.cash),
        "deficit": per_market(pool.deficit),
        "backing_ratio": per_market(pool.backing_ratio()),
        "peg": peg,
        "redemption_queue": queue,
        "implied_backing": backing,
        "supply": _supply(model),
        "exploit_loss": ctx.exploited,
        "withdrawals": ctx.withdrawn,
        "clearing_shortfall": clearing["clearing_shortfall"],
        "contagion_shortfall": clearing["contagion_shortfall"],
        "fire_sale_vulnerability": glt["aggregate_vulnerability"],
        "fire_sale_systemicness": systemicness,
        "gas_multiplier": ctx.gas_multiplier,
        "cascade_rounds": float(np.count_nonzero(rounds)),  # rounds that liquidated
        "liquidation_passes": float(model.liquidation_passes),
        "round_liquidations": rounds,
        "net_worth": net_worth(model, sheets),
        "net_delta": delta[:kinds],
        "net_gamma": gamma[:kinds],
        "net_vega": vega[:kinds],
        "protocol_net_delta": delta[kinds:-1],
        "protocol_net_gamma": gamma[kinds:-1],
        "protocol_net_vega": vega[kinds:-1],
        "hedge_sold": ctx.hedge_sold,
        "vol_arbitrageur_options": (np.zeros(len(model.assets)) if va is None
                                    else va.traded),
        "vol_arbitrageur_hedge_sold": ctx.vol_arb_hedge_sold,
        "hedge_cost": np.array([ctx.hedge_cost if k == "delta_hedger" else
                                ctx.vol_arb_hedge_cost if k == "vol_arbitrageur" else 0.0
                                for k in AGENT_KINDS]),
        "mm_pnl": (model.mm_pnl.step(model, ctx.hedge_cost, sheets) if model.t > 0
                   else np.zeros(len(COMPONENTS))),
        "atm_vol": np.where(np.isin(np.arange(len(model.assets)), model.option_assets),
                            model.options.surface.atm, np.nan),
        "trade_volume": np.array([ctx.volume[k] for k in AGENT_KINDS]),
    })


def _cdp_record(model, ext: np.ndarray) -> dict[str, np.ndarray]:
    """CDP variables of the step, per protocol (zeros or NaN where not a CDP).

    Auction figures are this step's changes of the protocols' cumulative stats: debt
    covered is the stable raised, bad debt the debt left in ``sin`` by auctions whose
    lot ran out; ``auction_recovery`` is stable raised per collateral value sold.
    """
    c = model.cdps
    n_proto = len(model.protocol_names)
    out = {key: np.zeros(n_proto) for key in
           ("repaid", "sold", "started", "bad_debt", "insolvent", "unsafe", "tvl",
            "zero_bid")}
    out["recovery"] = np.full(n_proto, np.nan)
    m = len(model.assets)
    out["collateral"] = np.full((len(c.names), m), np.nan)
    out["debt"] = np.full((len(c.names), m), np.nan)
    if not len(c.names):
        return out
    rows = [model.protocol_names.index(n) for n in model.cdp_names]
    delta = c.stats - model.cdp_stats_recorded
    model.cdp_stats_recorded = c.stats.copy()
    p_stable = ext[c.stable_asset]
    raised = delta[:, cdp_kernel.STABLE_RAISED] * p_stable
    sold = delta[:, cdp_kernel.COLLATERAL_SOLD_VALUE]
    out["repaid"][rows] = raised
    out["sold"][rows] = sold
    out["started"][rows] = delta[:, cdp_kernel.AUCTIONS_STARTED]
    out["bad_debt"][rows] = delta[:, cdp_kernel.BAD_DEBT] * p_stable
    out["zero_bid"][rows] = delta[:, cdp_kernel.ZERO_BID_LOSS]
    out["recovery"][rows] = np.divide(raised, sold, out=np.full(len(rows), np.nan),
                                      where=sold > 0)
    v = c.vaults
    protocol = c.ilk_protocol[v.ilk]
    asset = c.ilk_asset[v.ilk]
    coll = v.ink * ext[asset]
    debt_tokens = c.debt_of(slice(None))
    debt = debt_tokens * p_stable[protocol]
    n_cdp = len(c.names)
    for p in range(n_cdp):
        mine = protocol == p
        out["collateral"][p] = np.where(
            np.isin(np.arange(m), c.ilk_asset[c.ilk_protocol == p]),
            np.bincount(asset[mine], weights=v.ink[mine], minlength=m), np.nan)
        out["debt"][p, c.stable_asset[p]] = debt_tokens[mine].sum()
    out["insolvent"][rows] = np.bincount(protocol, weights=np.maximum(debt - coll, 0.0),
                                         minlength=n_cdp)
    price = model.oracles.price
    unsafe = c.collateralisation(slice(None), price) < c.liquidation_ratio[v.ilk]
    out["unsafe"][rows] = np.bincount(protocol[unsafe], minlength=n_cdp)
    a = c.auctions
    lots = np.bincount(c.ilk_protocol[a.ilk[a.active]], weights=(
        a.lot[a.active] * ext[c.ilk_asset[a.ilk[a.active]]]), minlength=n_cdp)
    gem = np.bincount(protocol, weights=v.gem * ext[asset], minlength=n_cdp)
    out["tvl"][rows] = np.bincount(protocol, weights=coll, minlength=n_cdp) + lots + gem
    return out


def _supply(model) -> np.ndarray:
    """Tokens each issuer has outstanding, per (protocol, asset); NaN for other pairs.

    Option tokens: the series' supply, written by the options protocol's vault.
    """
    out = np.full((len(model.protocol_names), len(model.assets)), np.nan)
    rows = {n: k for k, n in enumerate(model.protocol_names)}
    st = model.staking
    for p, name in enumerate(model.staking_names):
        out[rows[name], st.token[p]] = st.supply[p]
    psm = np.bincount(model.psm_cdp, weights=model.psm.reserve, minlength=len(model.cdp_names))
    for p, name in enumerate(model.cdp_names):
        out[rows[name], model.cdps.stable_asset[p]] = model.cdps.outstanding()[p] + psm[p]
    for p, name in enumerate(model.algo_names):
        out[rows[name], model.algo_stable[p]] = model.algo.stable_supply[p]
        out[rows[name], model.algo_sister[p]] = model.algo.sister_supply[p]
    opt = model.options
    for k, token in enumerate(opt.series_token):  # written by the vault before the run
        name = opt.names[opt.book.protocol[opt.series_row[k]]]
        out[rows[name], token] = opt.series_supply[k]
    return out


def _perp_record(model, ctx, ext: np.ndarray) -> dict[str, np.ndarray]:
    """Perp variables of the step, per protocol (and market); NaN where not perps."""
    pm = model.perps
    n_proto, m = len(model.protocol_names), len(model.assets)
    out = {key: np.zeros(n_proto) for key in ("notional", "count", "bad_debt", "tvl")}
    for key in ("insurance_fund", "adl"):
        out[key] = np.full(n_proto, np.nan)
    for key in ("open_interest", "funding_rate"):
        out[key] = np.full((n_proto, m), np.nan)
    if not model.perp_names:
        return out
    rows = [model.protocol_names.index(n) for n in model.perp_names]
    p = ext[pm.settlement_asset]
    st = ctx.perp_stats
    out["notional"][rows] = st[:, perps_kernel.LIQUIDATED_NOTIONAL] * p
    out["count"][rows] = st[:, perps_kernel.LIQUIDATION_COUNT]
    out["bad_debt"][rows] = st[:, perps_kernel.BAD_DEBT] * p
    out["adl"][rows] = st[:, perps_kernel.ADL_AMOUNT] * p
    out["insurance_fund"][rows] = pm.insurance_fund * p
    k = np.flatnonzero(pm.hedge_pool >= 0)
    per_market = (pm.hedge[k] * ext[pm.market_asset[k]]
                  + pm.hedge_cash[k] * ext[model.amm.quote[pm.hedge_pool[k]]])
    hedges = np.bincount(pm.market_protocol[k], weights=per_market,
                         minlength=len(model.perp_names))
    out["tvl"][rows] = pm.settlement_held() * p + hedges
    listed = pm.listed.reshape(len(model.perp_names), m)
    oi = (pm.long_oi + pm.short_oi).reshape(len(model.perp_names), m)
    rate = pm.funding_rate.reshape(len(model.perp_names), m) * 24.0 / model.dt_hours
    out["open_interest"][rows] = np.where(listed, oi, np.nan)
    out["funding_rate"][rows] = np.where(listed, rate, np.nan)
    return out
