"""Inter-protocol clearing on a running model (Eisenberg-Noe), and its fire-sale sibling.

``sim.metrics.contagion`` holds the metrics on plain arrays; this module builds the clearing
inputs from the state of a ``StressModel`` at its current step (``model.t``) and reads no
results. The fire-sale inputs are built in ``sim.model.fire_sales`` (re-exported here).

*Clearing* (Eisenberg & Noe 2001). Each protocol is a node with a balance sheet valued at
redemption values (``redemption_values``): it owes the holders of the tokens it issues and
its suppliers, and holds tokens, some of them other protocols' tokens. A protocol that holds
another's token is one of its creditors; the clearing payments then say how much of its
obligations each protocol can meet once every shortfall has travelled through the network,
and ``contagion_shortfall`` is the part of a shortfall that exists only because other
protocols do not pay in full.

Everything here is read-only: the model is duck-typed (it needs ``assets``,
``protocol_names``, ``pool_names``, ``prices``, ``t``, ``lending``, ``amm``, ``staking``,
``cdps``, ``perps``, ``algo`` with ``algo_names``/``algo_stable``/``algo_sister``,
and ``receipts``), so ``sim.model.core`` is not imported.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engine.health import recoverable_debt
from sim.metrics.contagion import eisenberg_noe, standalone_payments
from sim.model.fire_sales import fire_sale, leveraged_holders, price_impact

__all__ = ["Obligations", "clearing", "fire_sale", "leveraged_holders", "obligations",
           "price_impact", "redemption_values"]

STABLE_PAR = 1.0  # a CDP stablecoin is owed at par, 1 numeraire (Maker's Spotter ``par``)


class Obligations(NamedTuple):
    """The inter-protocol balance sheet of a model at one step (USD at redemption values).

    Attributes:
        names: protocol names, in the order of ``model.protocol_names``.
        liabilities: L, float (n, n), ``L[i, j]`` = what protocol i owes protocol j (the
            redemption value of i's tokens that j holds); zero diagonal.
        total_obligations: float (n,), everything i owes: to protocols (row sums of L) and to
            everyone else (suppliers, token holders and LPs outside the network).
        external_assets: float (n,), what i holds that is not a claim on another protocol.
    """

    names: list[str]
    liabilities: np.ndarray
    total_obligations: np.ndarray
    external_assets: np.ndarray


# ------------------------------------------------------------------------------ valuation


def redemption_values(model) -> tuple[np.ndarray, np.ndarray]:
    """Redemption value of every asset (USD per token) and the protocol that issues it.

    A lending receipt token is owed at par in its underlying (one underlying per token,
    whatever the issuer's backing ratio), a staked token at the protocol's exchange rate
    ``rate`` in its underlying, a CDP stablecoin at par (1 USD); every other asset at its
    external price ``model.prices[model.t]``. A token backed by another issued token takes
    that token's redemption value in turn.

    Returns:
        (value float (m,), issuer int (m,): index into ``model.protocol_names``, -1 for an
        asset no protocol issues).
    """
    names = list(model.protocol_names)
    value = np.array(model.prices[model.t], dtype=np.float64)
    issuer = np.full(len(value), -1, dtype=np.int64)
    lending, st, c = model.lending, model.staking, model.cdps
    backed = []  # (token, underlying, underlying per token)
    for token, under, k in model.receipts:
        issuer[token] = names.index(lending.names[lending.market_protocol[k]])
        backed.append((token, under, 1.0))
    for p, name in enumerate(st.names):
        issuer[st.token[p]] = names.index(name)
        backed.append((int(st.token[p]), int(st.underlying[p]), float(st.rate[p])))
    for p, name in enumerate(c.names):
        issuer[c.stable_asset[p]] = names.index(name)
        value[c.stable_asset[p]] = STABLE_PAR
    # An algorithmic stablecoin is owed at par (in newly minted sister); the sister is the
    # protocol's equity, owed to no one.
    for p, name in enumerate(model.algo_names):
        issuer[model.algo_stable[p]] = names.index(name)
        value[model.algo_stable[p]] = STABLE_PAR
    # A chain of backed tokens is at most len(backed) long: that many passes resolve it.
    for _ in range(len(backed)):
        for token, under, per_token in backed:
            value[token] = per_token * value[under]
    return value, issuer


def _holdings(model) -> np.ndarray:
    """Tokens each protocol holds as owner or custodian, float (n protocols, m assets).

    Lending: cash, collateral and the treasury's fee tokens; pools: reserves; staking:
    backing and retained underlying; CDPs: vault ink, auction lots and English bids in
    escrow. Free collateral a CDP auction returned (``gem``) waits for its owner and is not
    counted: it backs no claim of the protocol.
    """
    names = list(model.protocol_names)
    m = len(model.prices[model.t])
    out = np.zeros((len(names), m))
    lp = model.lending
    held = lp.cash + lp.total_coll + lp.treasury
    for p, name in enumerate(lp.names):
        out[names.index(name)] += held[lp.markets_of(p)]
    amm = model.amm
    for p, name in enumerate(model.pool_names):
        i = names.index(name)
        out[i, amm.base[p]] += amm.reserve_base[p]
        out[i, amm.quote[p]] += amm.reserve_quote[p]
    st = model.staking
    for p, name in enumerate(st.names):
        out[names.index(name), st.underlying[p]] += st.backing[p] + st.retained[p]
    c = model.cdps
    rows = [names.index(n) for n in c.names]
    v, a = c.vaults, c.auctions
    live = a.active
    for p, i in enumerate(rows):
        mine = c.ilk_protocol[v.ilk] == p
        out[i] += np.bincount(c.ilk_asset[v.ilk[mine]], weights=v.ink[mine], minlength=m)
        lots = live & (c.ilk_protocol[a.ilk] == p)
        out[i] += np.bincount(c.ilk_asset[a.ilk[lots]], weights=a.lot[lots], minlength=m)
        out[i, c.stable_asset[p]] += a.bid[lots].sum()
    for p, cdp in enumerate(model.psm_cdp):  # a PSM's gem reserve is its CDP's
        out[rows[cdp], model.psm_gem[p]] += model.psm.reserve[p]
    pm = model.perps
    held = pm.settlement_held()
    hedged = pm.hedge_pool >= 0
    quote = model.amm.quote[pm.hedge_pool[hedged]]
    for p, name in enumerate(pm.names):
        i = names.index(name)
        out[i, pm.settlement_asset[p]] += held[p]
        mine = hedged & (pm.market_protocol == p)
        out[i] += np.bincount(pm.market_asset[mine], weights=pm.hedge[mine], minlength=m)
        out[i] += np.bincount(quote[pm.market_protocol[hedged] == p],
                              weights=pm.hedge_cash[mine], minlength=m)
    return out


def obligations(model) -> Obligations:
    """Nominal liabilities between protocols, total obligations and external assets, now.

    Definitions (USD, tokens at their redemption value ``v``, ``redemption_values``):

    * A protocol owes the holders of the tokens it issues their redemption value: a lending
      protocol owes its suppliers ``supplied()`` per market (the supplied balance, at par in
      the market's asset; a receipt token is a transferable share of it), a liquid-staking
      protocol owes ``rate`` underlying per token (tokens in circulation, plus what its open
      redemption tickets claim), a CDP owes its stablecoin in circulation at par (from
      vaults, less its own tokens held in escrow as English bids, and from its PSM, whose
      gem reserve it holds), a pool owes its reserves to its LPs.
    * ``L[i, j]`` is the value of i's tokens held by protocol j (``_holdings``: as lending
      cash, collateral or treasury, pool reserves, CDP ink and auction lots, staking
      backing). The rest of i's obligations is owed outside the network; if protocols hold
      more of a receipt token than its market's supplied balance, the larger is owed.
    * Assets, at ``v``: a lending protocol holds its cash and treasury tokens and is owed its
      borrowers' debt (positions and multi-collateral accounts), each position's debt
      capped at its collateral value: a borrower under
      water walks away and leaves the collateral, so that is the most the protocol recovers
      (what is above it is bad debt in waiting, which the clearing should see now, not after
      the liquidation books it). A pool holds its reserves, a staking protocol its backing and
      retained underlying, a CDP each vault's debt capped at its ink's value and each live
      auction's tab capped at its lot's value (less the bid it holds). Oracles hold nothing.
    * ``external_assets`` = assets less the part that is a claim on another protocol: that
      part comes back through the clearing payments instead. Cash, treasury, reserves and
      backing in another protocol's token are such claims; so is a position's capped debt
      when its collateral is another protocol's token, since the lender recovers it from
      that token. The clearing then credits the holder with the whole collateral at the
      issuer's recovery rate: collateral beyond the debt is the borrowers' stake, held in
      kind, and it absorbs a fall of the token before the lender does. Eisenberg-Noe is
      linear, so that stake is pooled over a protocol's positions: exact while every
      position's collateral covers its debt after the fall, it understates the lender's
      loss when some positions end under water while others keep a surplus.
    * A perpetuals protocol owes all it holds (margins, vaults, insurance fund, hedges) to
      its traders, vault LPs and fund, like a pool; an algorithmic stablecoin owes its
      supply at par and its only asset is its sister's market value (it pays by minting).
    * A protocol's own tokens held by itself are neither assets nor liabilities.

    Args:
        model: a ``StressModel`` (duck-typed), at its current step.

    Returns:
        The :class:`Obligations` of the model's protocols, in ``model.protocol_names`` order.
    """
    names = list(model.protocol_names)
    n = len(names)
    value, issuer = redemption_values(model)
    m = len(value)
    tokens = _holdings(model)
    issued = np.zeros((m, n))  # issued[a, i] = 1 when protocol i issues asset a
    mine = issuer >= 0
    issued[np.flatnonzero(mine), issuer[mine]] = 1.0
    held_value = tokens * value  # (n, m)
    liab = issued.T @ held_value.T  # L[i, j] = sum over i's tokens a of held_value[j, a]
    np.fill_diagonal(liab, 0.0)
    np.maximum(liab, 0.0, out=liab)  # a balance drained to rounding noise (-1e-13) is 0
    plain = ~mine  # assets no protocol issues

    total = np.zeros(n)
    external = np.zeros(n)
    lp = model.lending
    supplied = lp.supplied() * value[lp.market_asset]
    held_by_others = np.zeros(len(supplied))  # receipt-token value of each market in others
    for token, _, k in model.receipts:
        i = issuer[token]
        held_by_others[k] += held_value[:, token].sum() - held_value[i, token]
    owed = np.maximum(supplied, held_by_others)
    owned = (lp.cash + lp.treasury) * value[lp.market_asset] * plain[lp.market_asset]
    book = lp.book
    recovered = np.zeros(len(lp.names))
    recoverable_debt(book.coll_market, book.debt_market, book.coll, book.scaled_debt,
                     lp.market_asset, lp.market_protocol, lp.borrow_index, value, plain,
                     recovered)
    acc = model.accounts
    if len(acc):  # each account's debt capped at its collateral, the plain collateral's share
        leg_account = acc.leg_account()
        leg_asset = lp.market_asset[acc.leg_market]
        n_acc = len(acc)
        coll_v = np.where(acc.leg_is_debt, 0.0, acc.leg_amount) * value[leg_asset]
        held = np.bincount(leg_account, weights=coll_v, minlength=n_acc)
        plain_held = np.bincount(leg_account, weights=coll_v * plain[leg_asset],
                                 minlength=n_acc)
        owed = np.bincount(leg_account, weights=acc.leg_debt() * value[leg_asset],
                           minlength=n_acc)
        claim = np.minimum(owed, held) * np.divide(plain_held, held, out=np.zeros(n_acc),
                                                   where=held > 0)
        recovered += np.bincount(acc.protocol, weights=claim, minlength=len(lp.names))
    for p, name in enumerate(lp.names):
        i = names.index(name)
        markets = lp.markets_of(p)
        total[i] = owed[markets].sum()
        external[i] = owned[markets].sum() + recovered[p]

    amm = model.amm
    for p, name in enumerate(model.pool_names):
        i = names.index(name)
        side = np.array([amm.reserve_base[p], amm.reserve_quote[p]])
        asset = np.array([amm.base[p], amm.quote[p]])
        total[i] = side @ value[asset]
        external[i] = side @ (value[asset] * plain[asset])

    st = model.staking
    if len(st):
        claims = st.supply * st.rate + st.queue_owed()
        for p, name in enumerate(st.names):
            i = names.index(name)
            under = st.underlying[p]
            total[i] = claims[p] * value[under]
            external[i] = (st.backing[p] + st.retained[p]) * value[under] * plain[under]

    c = model.cdps
    if len(c.names):
        v, a = c.vaults, c.auctions
        vault_asset = c.ilk_asset[v.ilk]
        vault_claim = np.minimum(c.debt_of(slice(None)) * STABLE_PAR,
                                 v.ink * value[vault_asset]) * plain[vault_asset]
        live = np.flatnonzero(a.active)
        lot_asset = c.ilk_asset[a.ilk[live]]
        capped = np.minimum(a.tab[live], a.lot[live] * value[lot_asset] / STABLE_PAR)
        lot_claim = np.maximum(capped - a.bid[live], 0.0) * STABLE_PAR * plain[lot_asset]
        escrow = np.bincount(c.ilk_protocol[a.ilk[live]], weights=a.bid[live],
                             minlength=len(c.names))
        vault_protocol = c.ilk_protocol[v.ilk]
        outstanding = c.outstanding()
        psm_debt = np.bincount(model.psm_cdp, weights=model.psm.reserve,
                               minlength=len(c.names))
        psm_plain = np.bincount(model.psm_cdp, weights=model.psm.reserve
                                * value[model.psm_gem] * plain[model.psm_gem],
                                minlength=len(c.names))
        for p, name in enumerate(c.names):
            i = names.index(name)
            # Stable from vaults (less its own escrowed bids) and from the PSM (= reserve).
            total[i] = (max(outstanding[p] - escrow[p], 0.0) + psm_debt[p]) * STABLE_PAR
            external[i] = (vault_claim[vault_protocol == p].sum()
                           + lot_claim[c.ilk_protocol[a.ilk[live]] == p].sum() + psm_plain[p])

    # Perpetuals owe what they hold to traders (margins), vault LPs and the insurance fund,
    # like a pool to its LPs.
    for name in model.perps.names:
        i = names.index(name)
        total[i] = tokens[i] @ value
        external[i] = tokens[i] @ (value * plain)

    # An algorithmic stablecoin owes its supply at par and can pay it only by minting the
    # sister: its assets are the sister's market value (implied backing = assets / owed).
    algo = model.algo
    for p, name in enumerate(model.algo_names):
        i = names.index(name)
        total[i] = algo.stable_supply[p] * STABLE_PAR
        external[i] = algo.sister_supply[p] * value[model.algo_sister[p]]

    # Never owe less than the network holds of one's tokens (e.g. tokens placed by the
    # scenario beyond the issuer's books).
    total = np.maximum(total, liab.sum(axis=1))
    np.maximum(external, 0.0, out=external)  # balances drained to rounding noise
    return Obligations(names=names, liabilities=liab, total_obligations=total,
                       external_assets=external)


# ------------------------------------------------------------------------------- clearing


def clearing(model, *, rtol: float = 1e-10) -> dict[str, np.ndarray]:
    """Eisenberg-Noe clearing of the model's obligations and the contagion part of shortfalls.

    The network of :func:`obligations` gets one more node, "outside" (suppliers, holders
    and LPs outside the protocols, owing nothing and holding no external assets), owed
    ``total_obligations - sum_j L[i, j]`` by each protocol i;
    ``sim.metrics.contagion.eisenberg_noe`` finds the greatest clearing vector p*. Then, per
    protocol:

    * ``clearing_shortfall`` = pbar_i - p*_i >= 0, pbar_i = total obligations;
    * ``contagion_shortfall`` = that shortfall minus the shortfall i would have if every
      other protocol paid it in full, ``max(0, pbar_i - e_i - sum_j L[j, i])`` (found with
      the same default test, so a node solvent on its own has none), clipped at 0 against
      rounding. Since p* <= pbar, a node receives at most its nominal claims in the network,
      so the difference is >= 0: the part of the shortfall that comes from contagion.

    Args:
        model: a ``StressModel`` (duck-typed), at its current step.
        rtol: relative tolerance of the default test (``eisenberg_noe``).

    Returns:
        ``clearing_shortfall`` and ``contagion_shortfall``, float (n,) USD each, in
        ``model.protocol_names`` order.
    """
    ob = obligations(model)
    n = len(ob.names)
    outside = np.maximum(ob.total_obligations - ob.liabilities.sum(axis=1), 0.0)
    network = np.zeros((n + 1, n + 1))
    network[:n, :n] = ob.liabilities
    network[:n, n] = outside
    pbar = network.sum(axis=1)[:n]
    e = np.append(ob.external_assets, 0.0)
    paid = eisenberg_noe(network, e, rtol=rtol).payments[:n]
    # Everyone else pays in full: i's nominal claims become external assets.
    paid_alone = standalone_payments(network, e, rtol=rtol)[:n]
    shortfall = np.maximum(pbar - paid, 0.0)
    return {
        "clearing_shortfall": shortfall,
        "contagion_shortfall": np.maximum(shortfall - (pbar - paid_alone), 0.0),
    }
