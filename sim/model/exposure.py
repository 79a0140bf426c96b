"""Delta exposure of every holder in the model, per asset (issue #4's first layer).

A holder's *delta* to asset ``a`` is the number of ``a`` tokens its position moves like:
tokens held, plus claims on protocols (a supplier's balance at the market's backing ratio, a
redeemer's queued ticket), minus debts, plus synthetic exposure (a perp position's size).
Holders are the agent kinds (``AGENT_KINDS``), the protocols (their own equity: a lending
protocol's treasury, what a CDP is owed by its vaults and holds in auction, a perp vault's
net short and its hedge, a pool's liquidity held by LPs outside the model), and ``outside``
(the outside world's tokens and the gas paid).

Ownership identity, the check that every claim has its counterparty: summed over all
holders, the deltas equal the tokens in existence, ``model.token_totals()``, asset by asset
(debts cancel their claims, perp longs cancel the vaults' shorts), on every asset except
the option tokens' own columns.

*Option tokens* are looked through: a holder of ``n`` tokens of a series (in its wallet, as
collateral, in a pool) has ``n`` times the option's delta, gamma and vega in the underlying
before expiry, and ``n`` times its claim on the redemption reserve in the settlement token
after, and nothing in the token's own column; the writer vault's short row in the series is
the opposite. So in an option token's column the deltas sum to 0 while ``token_totals()``
counts the supply (the tokens exist; their value is the options'); in the underlying the
holders' long cancels the vault's short, and in the settlement token the holders' claims
are the reserve the protocol holds.

*Gamma* (``d2V / dP_a^2``, USD per USD^2 of the asset's price) comes from AMM liquidity:
an LP share of a pool is short gamma in the pool's base asset (``sim.engine.lp_greeks``:
``s dx/dp`` per unit of the pool price ``p = P_base / P_quote``, so ``s dx/dp / P_quote`` per
USD of the base's price, holding the quote's price) and options (Black-Scholes, holders
long, writer vaults short); delta-one holdings have none. *Vega* (value per 1.00 of implied
volatility) comes from options only.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Member, Population
from sim.model.accounting import balance_sheets
from sim.model.kinds import AGENT_KINDS


def holders(model) -> list[str]:
    """Row labels of :func:`delta`: agent kinds, then protocols, then ``outside``."""
    return [*AGENT_KINDS, *model.protocol_names, "outside"]


def delta(model, sheets: dict | None = None) -> np.ndarray:
    """Delta per holder (rows of :func:`holders`) and asset, in tokens, now.

    Option tokens are looked through (module docstring).

    Args:
        model: a ``StressModel`` (duck-typed).
        sheets: every population's ``Holdings`` (``accounting.balance_sheets``), if
            already taken this step.
    """
    out = _positions(model, sheets)
    if len(model.options.series_token):
        out += _look_through(model, out)[0]
    return out


ROW = {kind: k for k, kind in enumerate(AGENT_KINDS)}


def _kinds(sheets: dict, m: int, greek: str) -> np.ndarray:
    """One field of the populations' balance sheets summed per agent kind (kinds x m)."""
    out = np.zeros((len(AGENT_KINDS), m))
    for population, sheet in sheets.items():
        out[ROW[population.kind]] += (sheet.exposure()[0] if greek == "delta"
                                      else getattr(sheet, greek)[0])
    return out


def _positions(model, sheets: dict | None = None) -> np.ndarray:
    """Delta per holder and asset with option tokens counted as tokens (not looked through).

    Agent kinds: their populations' balance sheets. Protocols: their own equity (below).
    """
    m = len(model.assets)
    row = {n: len(AGENT_KINDS) + i for i, n in enumerate(model.protocol_names)}
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, m))
    sheets = balance_sheets(model) if sheets is None else sheets
    out[:len(AGENT_KINDS)] = _kinds(sheets, m, "delta")
    lp = model.lending
    ratio = lp.backing_ratio()
    # The lending protocol owns its fee tokens and its treasury's claim (at the ratio).
    for p, name in enumerate(lp.names):
        markets = lp.markets_of(p)
        out[row[name]] += lp.treasury[markets] + lp.treasury_claim[markets] * ratio[markets]

    # Pools: the part market makers do not own belongs to LPs outside the model.
    amm = model.amm
    outside_share = _outside_share(model)
    for p, name in enumerate(model.pool_names):
        out[row[name], amm.base[p]] += outside_share[p] * amm.reserve_base[p]
        out[row[name], amm.quote[p]] += outside_share[p] * amm.reserve_quote[p]

    # Liquid staking: redeemers own their tickets' claims, the protocol the rest it holds.
    st = model.staking
    for p, name in enumerate(model.staking_names):
        out[row[name], st.underlying[p]] += st.backing[p] + st.retained[p]
    if len(st):  # the redeemers' claims come out of what the protocols hold
        by_protocol = np.zeros((len(st), m))
        ids, claim = st.open_claims()
        theirs = st.tickets.owner[ids] >= 0
        protocol = st.tickets.protocol[ids[theirs]]
        np.add.at(by_protocol, (protocol, st.underlying[protocol]), claim[theirs])
        for p, name in enumerate(model.staking_names):
            out[row[name]] -= by_protocol[p]

    # CDPs: the protocol is owed its vaults' debt and holds auction lots and escrowed bids.
    c = model.cdps
    a = c.auctions
    live = a.active
    for p, name in enumerate(c.names):
        mine = live & (c.ilk_protocol[a.ilk] == p)
        out[row[name]] += np.bincount(c.ilk_asset[a.ilk[mine]], weights=a.lot[mine],
                                      minlength=m)
        out[row[name], c.stable_asset[p]] += a.bid[mine].sum() + c.total_debt()[p]
    for p, cdp in enumerate(model.psm_cdp):  # the PSM's gem and tolls are its CDP's
        name = c.names[cdp]
        out[row[name], model.psm_gem[p]] += model.psm.reserve[p]
        out[row[name], model.psm_stable[p]] += model.psm.surplus[p]

    # Perps: the vault holds the other side of the traders' positions (-net), its equity,
    # the insurance fund and its hedge.
    pm = model.perps
    price = model.oracles.price
    vault = pm.vault_equity(price)
    for p, name in enumerate(pm.names):
        k = pm.market_protocol == p
        out[row[name], pm.settlement_asset[p]] += vault[k].sum() + pm.insurance_fund[p]
        out[row[name]] -= np.bincount(pm.market_asset[k], weights=(pm.long_oi - pm.short_oi)[k],
                                      minlength=m)
        hedged = k & (pm.hedge_pool >= 0)
        out[row[name]] += np.bincount(pm.market_asset[hedged], weights=pm.hedge[hedged],
                                      minlength=m)
        out[row[name]] += np.bincount(amm.quote[pm.hedge_pool[hedged]],
                                      weights=pm.hedge_cash[hedged], minlength=m)

    # Algorithmic stablecoins hold their spread fees.
    algo = model.algo
    for p, name in enumerate(model.algo_names):
        out[row[name], model.algo_stable[p]] += algo.reward_stable[p]
        out[row[name], model.algo_sister[p]] += algo.reward_sister[p]

    # Options: the writer vaults' settlement tokens and their side of the options.
    opt = model.options
    for p, name in enumerate(opt.names):
        out[row[name], opt.settlement_asset[p]] += opt.vault[p]
    _add_options(model, out, greek=1)
    out[-1] = model.external + model.gas_sink
    return out


def _outside_share(model) -> np.ndarray:
    """Share of each pool's liquidity held by LPs outside the model (not market makers)."""
    share = np.ones(len(model.amm))
    mm = model.market_makers
    if mm is not None:
        share[mm.pool] -= mm.shares.sum() / model.amm.lp_supply[mm.pool]
    return share


def _add_options(model, out: np.ndarray, greek: int) -> None:
    """Add one Greek (1 delta, 2 gamma, 3 vega) of the writer vaults' side of the options.

    The vaults hold the other side of the traders' rows and their short rows in
    option-token series (whose long side the tokens carry: :func:`_look_through`); the
    holders' side is in their populations' balance sheets.
    """
    opt = model.options
    b = opt.book
    live = np.flatnonzero(b.size != 0)
    if len(live) == 0:
        return
    per_unit = opt.greeks(model.prices[model.t], model.t * model.dt_hours, live)[greek]
    m = out.shape[1]
    vault = per_unit * opt.vault_position(live)
    for p, name in enumerate(opt.names):
        mine = b.protocol[live] == p
        out[len(AGENT_KINDS) + model.protocol_names.index(name)] += np.bincount(
            b.asset[live[mine]], weights=vault[mine], minlength=m)


def _look_through(model, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What option tokens held add to delta, gamma and vega (arrays shaped as ``tokens``).

    Args:
        model: a ``StressModel`` (duck-typed).
        tokens: float (..., m), tokens held per asset (one holder, or holders x assets).

    Returns:
        (delta, gamma, vega) to add: ``n`` tokens of a live series give ``n`` times the
        option's Greeks per unit in its underlying; of a settled one, ``n`` times the claim
        per token (``reserve / supply``) in the settlement token; and minus ``n`` in the
        token's own delta column, which the option replaces.
    """
    opt = model.options
    d, g, v = np.zeros_like(tokens), np.zeros_like(tokens), np.zeros_like(tokens)
    _, per_delta, per_gamma, per_vega, _ = opt.greeks(
        model.prices[model.t], model.t * model.dt_hours, opt.series_row)
    claim = opt.claim_per_token()
    settlement = opt.series_settlement()
    underlying = opt.book.asset[opt.series_row]
    for k, token in enumerate(opt.series_token):
        n = tokens[..., token].copy()
        if opt.settled[k]:
            d[..., settlement[k]] += n * claim[k]
        else:
            d[..., underlying[k]] += n * per_delta[k]
            g[..., underlying[k]] += n * per_gamma[k]
            v[..., underlying[k]] += n * per_vega[k]
        d[..., token] -= n
    return d, g, v


def vega(model, sheets: dict | None = None) -> np.ndarray:
    """Vega per holder (rows of :func:`holders`) and asset: value per 1.00 of implied vol.

    Only options carry vega: their holders long (option tokens looked through), the writer
    vaults short.
    """
    m = len(model.assets)
    sheets = balance_sheets(model) if sheets is None else sheets
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, m))
    out[:len(AGENT_KINDS)] = _kinds(sheets, m, "vega")
    _add_options(model, out, greek=3)
    if len(model.options.series_token):
        out += _look_through(model, _positions(model, sheets))[2]
    return out


def gamma(model, sheets: dict | None = None) -> np.ndarray:
    """Gamma per holder (rows of :func:`holders`) and asset, USD per USD^2, now.

    Market makers hold their LP share of their pool; the rest of each pool belongs to LPs
    outside the model (the pool's row). Options: holders long (option tokens looked
    through), writer vaults short.
    """
    m = len(model.assets)
    amm = model.amm
    sheets = balance_sheets(model) if sheets is None else sheets
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, m))
    out[:len(AGENT_KINDS)] = _kinds(sheets, m, "gamma")
    if len(model.options.series_token):
        out += _look_through(model, _positions(model, sheets))[1]
    if len(amm):
        _, g = amm.lp_greeks(np.arange(len(amm)), _outside_share(model))
        g = g / model.prices[model.t, amm.quote]  # per USD of the base's price
        for p, name in enumerate(model.pool_names):
            out[len(AGENT_KINDS) + model.protocol_names.index(name), amm.base[p]] += g[p]
    _add_options(model, out, greek=2)
    return out


def of_agent(model, agent: Population | Member) -> dict[str, np.ndarray]:
    """Delta, gamma and vega of one population or one member per asset, from its holdings.

    The same balance sheet as :func:`delta`, :func:`gamma` and :func:`vega` read for the
    kind (``Population.holdings``), with option tokens looked through.
    """
    ctx = model.context()
    sheet = agent.holdings(ctx)
    d, g, v = sheet.exposure()[0], sheet.gamma[0].copy(), sheet.vega[0].copy()
    if len(model.options.series_token):  # option tokens it holds, looked through
        dd, gg, vv = _look_through(model, d)
        d, g, v = d + dd, g + gg, v + vv
    return {"delta": d, "gamma": g, "vega": v}
