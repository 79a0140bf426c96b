"""What a model holds: token totals (and what issuers created), net worth per agent kind.

Functions of a ``StressModel`` (duck-typed). The agents' side of every sum is their
populations' balance sheets (``Population.holdings``); the protocols' side is read from the
protocols here.
"""

from __future__ import annotations

import numpy as np

from sim.model.kinds import AGENT_KINDS


def token_totals(model) -> np.ndarray:
    """Tokens per asset summed over every account.

    Conserved up to ``net_issued``: only issuers mint and burn (staking deposits and
    redemptions, staking rewards and losses). What the protocols hold, the outside
    world's and the gas paid, then every population's wallets (``Holdings.tokens``).
    """
    m = len(model.assets)
    amm = model.amm
    pool = model.lending
    total = (pool.per_asset(pool.cash + pool.total_coll + pool.treasury)
             + np.bincount(amm.base, weights=amm.reserve_base, minlength=m)
             + np.bincount(amm.quote, weights=amm.reserve_quote, minlength=m)
             + model.external + model.gas_sink)
    perps = model.perps
    total += (np.bincount(perps.settlement_asset, weights=perps.settlement_held(),
                          minlength=m) + perps.hedge_held(model.amm.quote))
    total += (np.bincount(model.psm_gem, weights=model.psm.reserve, minlength=m)
              + np.bincount(model.psm_stable, weights=model.psm.surplus, minlength=m))
    total += model.options.held(m)
    ctx = model.context()
    for population in model.populations:
        total += population.holdings(ctx).tokens[0]
    return total + model.staking.held() + model.cdps.held() + _algo_held(model)


def _algo_held(model) -> np.ndarray:
    """Spread fees the algorithmic stablecoins minted to their reward pools, per asset."""
    m = len(model.assets)
    return (np.bincount(model.algo_stable, weights=model.algo.reward_stable, minlength=m)
            + np.bincount(model.algo_sister, weights=model.algo.reward_sister, minlength=m))


def net_issued(model) -> np.ndarray:
    """Tokens created minus destroyed per asset since the start, by every issuer.

    Staked tokens minted minus burnt, staking rewards minus losses, CDP stablecoins
    minted minus burnt (vaults and PSMs), algorithmic stablecoins and sisters minted minus
    burnt, and backing an attacker took (destroyed for the protocol, created in the
    attacker's hands).
    """
    m = len(model.assets)
    stable0, sister0 = model.algo_start_supply
    algo = (np.bincount(model.algo_stable, weights=model.algo.stable_supply - stable0,
                        minlength=m)
            + np.bincount(model.algo_sister, weights=model.algo.sister_supply - sister0,
                          minlength=m))
    psm = np.bincount(model.psm_stable, weights=model.psm.dai_minted - model.psm.dai_burnt,
                      minlength=m)
    return (model.staking.minted() + model.staking.net_created() + model.cdps.minted()
            + algo + psm + model.created)


def net_worth(model, sheets: dict | None = None) -> np.ndarray:
    """Net worth per agent kind at external prices (order of ``AGENT_KINDS``).

    ``sheets``: each population's ``Holdings`` (summed), if already taken this step.
    """
    ext = model.prices[model.t]
    sheets = balance_sheets(model) if sheets is None else sheets
    out = np.zeros(len(AGENT_KINDS))
    for population, sheet in sheets.items():
        out[AGENT_KINDS.index(population.kind)] += sheet.net_worth(ext)[0]
    return out


def balance_sheets(model, ctx=None) -> dict:
    """Every population's ``Holdings`` now (one group each), by population.

    ``ctx``: the step's context at record time (a fresh one by default).
    """
    ctx = model.context() if ctx is None else ctx
    return {population: population.holdings(ctx) for population in model.populations}
