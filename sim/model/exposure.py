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

from sim.agents import (
    arbitrageur,
    delta_hedger,
    holder,
    lender,
    leveraged_trader,
    liquidator,
    market_maker,
    option_trader,
    perp_trader,
    redeemer,
    vault_owner,
    vol_arbitrageur,
)
from sim.engine.lp_greeks import lp_greeks
from sim.model.kinds import AGENT_KINDS


def holders(model) -> list[str]:
    """Row labels of :func:`delta`: agent kinds, then protocols, then ``outside``."""
    return [*AGENT_KINDS, *model.protocol_names, "outside"]


def delta(model, coll: np.ndarray | None = None, debt: np.ndarray | None = None
          ) -> np.ndarray:
    """Delta per holder (rows of :func:`holders`) and asset, in tokens, now.

    Option tokens are looked through (module docstring).

    Args:
        model: a ``StressModel`` (duck-typed).
        coll, debt: the lending book's collateral and debt tokens per market, positions and
            accounts together, if already computed (``LendingPools.totals`` plus
            ``AccountBook.totals``); computed here otherwise.
    """
    out = _positions(model, coll, debt)
    if len(model.options.series_token):
        out += _look_through(model, out)[0]
    return out


def _positions(model, coll: np.ndarray | None = None, debt: np.ndarray | None = None
               ) -> np.ndarray:
    """Delta per holder and asset with option tokens counted as tokens (not looked through)."""
    m = len(model.assets)
    kinds = {k: i for i, k in enumerate(AGENT_KINDS)}
    row = {n: len(AGENT_KINDS) + i for i, n in enumerate(model.protocol_names)}
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, m))
    lp = model.lending
    ratio = lp.backing_ratio()

    # Lenders: supply balances at the backing ratio (what the claim is worth) and wallets.
    for lenders in model.lenders:
        markets = lp.markets_of(lenders.protocol)
        out[kinds["lender"]] += (lenders.shares * (lp.supply_index * ratio)[markets]).sum(0)
        out[kinds["lender"]] += lenders.wallet.sum(0)
    # Leveraged traders: collateral minus debt (positions and accounts) and wallets.
    if coll is None or debt is None:
        coll, debt, _ = lp.totals(model.oracles.price)
        if len(model.accounts):
            coll_a, debt_a, _ = model.accounts.totals(model.oracles.price)
            coll, debt = coll + coll_a, debt + debt_a
    out[kinds["leveraged_trader"]] += lp.per_asset(coll - debt) + model._trader_wallets()
    # The lending protocol owns its fee tokens and its treasury's claim (at the ratio).
    for p, name in enumerate(lp.names):
        markets = lp.markets_of(p)
        out[row[name]] += lp.treasury[markets] + lp.treasury_claim[markets] * ratio[markets]

    # Pools: LP shares of market makers; the rest belongs to LPs outside the model.
    amm = model.amm
    outside_share = np.ones(len(amm))
    mm = model.market_makers
    if mm is not None:
        share = mm.shares.sum() / amm.lp_supply[mm.pool]
        outside_share[mm.pool] -= share
        out[kinds["market_maker"], amm.base[mm.pool]] += share * amm.reserve_base[mm.pool]
        out[kinds["market_maker"], amm.quote[mm.pool]] += share * amm.reserve_quote[mm.pool]
        out[kinds["market_maker"]] += mm.wallet.sum(0)
    for p, name in enumerate(model.pool_names):
        out[row[name], amm.base[p]] += outside_share[p] * amm.reserve_base[p]
        out[row[name], amm.quote[p]] += outside_share[p] * amm.reserve_quote[p]

    out[kinds["liquidator"]] += model.liquidators.balance.sum(0)
    out[kinds["keeper"]] += model.keepers.balance.sum(0)
    if model.arbitrageurs is not None:
        out[kinds["arbitrageur"]] += model.arbitrageurs.balance.sum(0)

    # Liquid staking: redeemers own their tickets' claims, the protocol the rest it holds.
    st = model.staking
    if model.redeemers is not None:
        out[kinds["redeemer"]] += model.redeemers.balance.sum(0) + model._ticket_claims()
    for p, name in enumerate(model.staking_names):
        out[row[name], st.underlying[p]] += st.backing[p] + st.retained[p]
    if len(st):  # the redeemers' claims come out of what the protocols hold
        by_protocol = np.zeros((len(st), m))
        t = st.tickets
        open_ = ~t.paid & (t.owner >= 0)
        claim = np.minimum(t.owed[open_], t.tokens[open_] * st.rate[t.protocol[open_]])
        np.add.at(by_protocol, (t.protocol[open_], st.underlying[t.protocol[open_]]), claim)
        for p, name in enumerate(model.staking_names):
            out[row[name]] -= by_protocol[p]

    # CDPs: owners hold ink, returned gem and spare collateral and owe the stable; the
    # protocol is owed that debt and holds auction lots and escrowed bids.
    c = model.cdps
    v = c.vaults
    owner = np.zeros(m)
    for owners in model.vault_owners:
        rows = owners.rows
        asset = c.ilk_asset[v.ilk[rows]]
        owner += np.bincount(asset, weights=v.ink[rows] + v.gem[rows] + owners.wallet,
                             minlength=m)
        owner -= np.bincount(c.stable_asset[c.ilk_protocol[v.ilk[rows]]],
                             weights=c.debt_of(rows), minlength=m)
    out[kinds["vault_owner"]] += owner
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

    # Perps: traders' equity in settlement tokens and their size in the asset; the vault
    # holds the other side (-net), its equity, the insurance fund and its hedge.
    pm = model.perps
    price = model.oracles.price
    for traders in model.perp_traders:
        rows = traders.rows
        b = pm.book
        out[kinds["perp_trader"], traders.settlement] += (traders.wallet.sum()
                                                          + pm.equity(price, rows).sum())
        out[kinds["perp_trader"]] += np.bincount(pm.market_asset[b.market[rows]],
                                                 weights=b.size[rows], minlength=m)
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

    for h in model.holders:
        out[kinds["holder"]] += h.held(m)

    # Options: holders' delta per unit times size; the writer vault the opposite, and its
    # settlement tokens.
    opt = model.options
    for p, name in enumerate(opt.names):
        out[row[name], opt.settlement_asset[p]] += opt.vault[p]
    for traders in model.option_traders:  # wallets and the writers' locked collateral
        out[kinds["option_trader"], traders.settlement] += (
            traders.wallet.sum() + opt.book.collateral[traders.rows].sum())
    for kind in ("hedger", "vol_arbitrageur"):  # tokens and perp positions of the desks
        desk = _desk(model, kind)
        if desk is not None:
            out[kinds[kind]] += desk.balance.sum(0) + desk.perp_size(pm).sum(0)
            out[kinds[kind], desk.cash] += desk.perp_equity(pm, price).sum()
    if model.vol_arbitrageurs is not None:
        out[kinds["vol_arbitrageur"], model.vol_arbitrageurs.cash] += opt.book.collateral[
            model.vol_arbitrageurs.rows].sum()
    _add_options(model, out, greek=1)
    out[-1] = model.external + model.gas_sink
    return out


def _desk(model, kind: str):
    """The ``HedgingTable`` of a desk kind (``hedger`` or ``vol_arbitrageur``), or None."""
    return model.delta_hedgers if kind == "hedger" else model.vol_arbitrageurs


def _add_options(model, out: np.ndarray, greek: int) -> None:
    """Add one Greek (1 delta, 2 gamma, 3 vega) of the open options to holders and writers.

    Option traders hold their rows; the writer vaults the other side and their short rows
    in option-token series (whose long side the tokens carry: :func:`_look_through`).
    """
    opt = model.options
    b = opt.book
    live = np.flatnonzero(b.size != 0)
    if len(live) == 0:
        return
    per_unit = opt.greeks(model.prices[model.t], model.t * model.dt_hours, live)[greek]
    m = out.shape[1]
    arb = np.zeros(len(b), dtype=bool)
    if model.vol_arbitrageurs is not None:
        arb[model.vol_arbitrageurs.rows] = True
    traded = b.series[live] < 0  # rows held by traders (series rows: held as tokens)
    held = per_unit * b.size[live]
    for kind, mine in (("option_trader", traded & ~arb[live]),
                       ("vol_arbitrageur", traded & arb[live])):
        out[AGENT_KINDS.index(kind)] += np.bincount(b.asset[live[mine]], weights=held[mine],
                                                    minlength=m)
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


def vega(model) -> np.ndarray:
    """Vega per holder (rows of :func:`holders`) and asset: value per 1.00 of implied vol.

    Only options carry vega: their holders long (option tokens looked through), the writer
    vaults short.
    """
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, len(model.assets)))
    _add_options(model, out, greek=3)
    if len(model.options.series_token):
        out += _look_through(model, _positions(model))[2]
    return out


def gamma(model) -> np.ndarray:
    """Gamma per holder (rows of :func:`holders`) and asset, USD per USD^2, now.

    Market makers hold their LP share of their pool; the rest of each pool belongs to LPs
    outside the model (the pool's row). Options: holders long (option tokens looked
    through), writer vaults short.
    """
    m = len(model.assets)
    amm = model.amm
    out = np.zeros((len(AGENT_KINDS) + len(model.protocol_names) + 1, m))
    if len(model.options.series_token):
        out += _look_through(model, _positions(model))[1]
    n = len(amm)
    if n == 0:
        _add_options(model, out, greek=2)
        return out
    share = np.ones(n)
    mm = model.market_makers
    if mm is not None:
        share[mm.pool] -= mm.shares.sum() / amm.lp_supply[mm.pool]
    pools = np.arange(n, dtype=np.int64)
    delta, g = np.empty(n), np.empty(n)
    lp_greeks(pools, np.ones(n), amm.reserve_base, amm.reserve_quote, amm.amp, amm.peg,
              delta, g)
    g = g / model.prices[model.t, amm.quote]  # per USD of the base's price
    row = {name: len(AGENT_KINDS) + i for i, name in enumerate(model.protocol_names)}
    for p, name in enumerate(model.pool_names):
        out[row[name], amm.base[p]] += share[p] * g[p]
    if mm is not None:
        out[AGENT_KINDS.index("market_maker"), amm.base[mm.pool]] += (1 - share[mm.pool]) \
            * g[mm.pool]
    _add_options(model, out, greek=2)
    return out


def of_agent(model, agent) -> dict[str, np.ndarray]:
    """Delta, gamma and vega of one Mesa agent per asset, from its own rows.

    The same definitions as :func:`delta`, :func:`gamma` and :func:`vega`, taken agent by
    agent: summed over the agents of a kind they give that kind's row (a property test
    checks it every step).
    """
    m = len(model.assets)
    d, g, v = np.zeros(m), np.zeros(m), np.zeros(m)
    lp = model.lending
    if isinstance(agent, lender.Lender):
        t = agent.table
        markets = lp.markets_of(t.protocol)
        d += t.shares[agent.row] * (lp.supply_index * lp.backing_ratio())[markets]
        d += t.wallet[agent.row]
    elif isinstance(agent, leveraged_trader.LeveragedTrader):
        rows = np.arange(len(lp.book))[agent.rows]
        book = lp.book
        d += np.bincount(lp.market_asset[book.coll_market[rows]], weights=book.coll[rows],
                         minlength=m)
        d -= np.bincount(lp.market_asset[book.debt_market[rows]], weights=lp.debt_of(rows),
                         minlength=m)
        d[agent.table.debt_asset] += agent.table.wallet[rows - agent.table.rows.start].sum()
    elif isinstance(agent, leveraged_trader.AccountTrader):
        acc = model.accounts
        legs = acc.legs_of(agent.account)
        asset = lp.market_asset[acc.leg_market[legs]]
        amount = np.where(acc.leg_is_debt[legs], -acc.leg_debt()[legs], acc.leg_amount[legs])
        d += np.bincount(asset, weights=amount, minlength=m)
    elif isinstance(agent, market_maker.MarketMaker):
        mm, amm = model.market_makers, model.amm
        share = mm.shares[agent.row] / amm.lp_supply[mm.pool]
        d[amm.base[mm.pool]] += share * amm.reserve_base[mm.pool]
        d[amm.quote[mm.pool]] += share * amm.reserve_quote[mm.pool]
        d += mm.wallet[agent.row]
        pools = np.array([mm.pool], dtype=np.int64)
        delta, gam = np.empty(1), np.empty(1)
        lp_greeks(pools, np.array([share]), amm.reserve_base, amm.reserve_quote, amm.amp,
                  amm.peg, delta, gam)
        g[amm.base[mm.pool]] += gam[0] / model.prices[model.t, amm.quote[mm.pool]]
    elif isinstance(agent, liquidator.Keeper):
        d += model.keepers.balance[agent.row]
    elif isinstance(agent, liquidator.Liquidator):
        d += model.liquidators.balance[agent.row]
    elif isinstance(agent, arbitrageur.Arbitrageur):
        d += model.arbitrageurs.balance[agent.row]
    elif isinstance(agent, redeemer.Redeemer):
        d += model.redeemers.balance[agent.row]
        st = model.staking
        t = st.tickets
        mine = ~t.paid & (t.owner == agent.row)
        claim = np.minimum(t.owed[mine], t.tokens[mine] * st.rate[t.protocol[mine]])
        d += np.bincount(st.underlying[t.protocol[mine]], weights=claim, minlength=m)
    elif isinstance(agent, vault_owner.VaultOwner):
        c = model.cdps
        ilk = c.vaults.ilk[agent.row]
        own = agent.table.wallet[agent.row - agent.table.rows[0]]
        d[c.ilk_asset[ilk]] += c.vaults.ink[agent.row] + c.vaults.gem[agent.row] + own
        d[c.stable_asset[c.ilk_protocol[ilk]]] -= c.debt_of([agent.row])[0]
    elif isinstance(agent, holder.Holder):
        t = agent.table
        d[t.token] += t.tokens[agent.row]
        d[t.quote] += t.proceeds[agent.row]
    elif isinstance(agent, perp_trader.PerpTrader):
        pm, t = model.perps, agent.table
        rows = np.arange(len(pm.book))[agent.rows]
        d += np.bincount(pm.market_asset[pm.book.market[rows]], weights=pm.book.size[rows],
                         minlength=m)
        d[t.settlement] += (t.wallet[rows - t.rows[0]].sum()
                            + pm.equity(model.oracles.price, rows).sum())
    elif isinstance(agent, option_trader.OptionTrader):
        opt, t = model.options, agent.table
        b = opt.book
        d[t.settlement] += t.wallet[agent.row - t.rows[0]] + b.collateral[agent.row]
        if b.size[agent.row] != 0:
            greeks = opt.greeks(model.prices[model.t], model.t * model.dt_hours, [agent.row])
            a = b.asset[agent.row]
            d[a] += greeks[1][0] * b.size[agent.row]
            g[a] += greeks[2][0] * b.size[agent.row]
            v[a] += greeks[3][0] * b.size[agent.row]
    elif isinstance(agent, delta_hedger.DeltaHedger | vol_arbitrageur.VolArbitrageur):
        desk = _desk(model, agent.kind)
        pm, k = model.perps, agent.row
        d += desk.balance[k] + desk.perp_size(pm)[k]
        d[desk.cash] += desk.perp_equity(pm, model.oracles.price)[k]
        if agent.kind == "vol_arbitrageur":
            opt, rows = model.options, desk.book_rows(model.options, k)
            d[desk.cash] += opt.book.collateral[rows].sum()
            if len(rows):
                greeks = opt.greeks(model.prices[model.t], model.t * model.dt_hours, rows)
                a, size = opt.book.asset[rows], opt.book.size[rows]
                d += np.bincount(a, weights=greeks[1] * size, minlength=m)
                g += np.bincount(a, weights=greeks[2] * size, minlength=m)
                v += np.bincount(a, weights=greeks[3] * size, minlength=m)
    else:
        raise TypeError(f"no exposure rule for {type(agent).__name__}")
    if len(model.options.series_token):  # option tokens it holds, looked through
        dd, gg, vv = _look_through(model, d)
        d, g, v = d + dd, g + gg, v + vv
    return {"delta": d, "gamma": g, "vega": v}
