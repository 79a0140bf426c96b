"""Health factors and book totals over the position table.

Aave v3: ``HF = collateral * P_coll * LT / (debt * P_debt)``; a position is liquidatable
when ``HF < 1``. The formula is written once, in ``weighted_collateral`` (the numerator),
``health_factor`` and ``is_below`` (``HF < threshold`` without a division), which every
kernel calls; ``health_factors`` is their vectorised twin for numpy callers. Positions point
at markets (one asset of one lending protocol); ``price`` here is per market (the oracle
price of the market's asset). Debt is stored scaled (Aave's ``scaledBalance``): debt tokens
are ``scaled_debt * borrow_index[debt_market]``.
"""

import numpy as np

from sim.engine._jit import helper, kernel


@helper
def weighted_collateral(coll, price_coll, liquidation_threshold):
    """Collateral value weighted by its liquidation threshold: ``coll * P_coll * LT``.

    The numerator of the health factor (for an account, summed over collateral legs). Works
    on floats and, element by element, on numpy arrays.
    """
    return coll * price_coll * liquidation_threshold


@helper
def health_factor(coll, price_coll, liquidation_threshold, debt, price_debt):
    """Aave v3 health factor ``coll * P_coll * LT / (debt * P_debt)`` of one position.

    Args:
        coll: float, collateral tokens.
        price_coll: float, oracle price of the collateral asset.
        liquidation_threshold: float, the collateral market's liquidation threshold.
        debt: float, debt tokens (> 0).
        price_debt: float, oracle price of the debt asset.
    """
    return weighted_collateral(coll, price_coll, liquidation_threshold) / (debt * price_debt)


@helper
def is_below(coll, price_coll, liquidation_threshold, debt, price_debt, threshold):
    """``health_factor(...) < threshold``, written without a division (branch-free scans).

    Arguments as ``health_factor``, plus ``threshold`` (float).
    """
    return (weighted_collateral(coll, price_coll, liquidation_threshold)
            < threshold * debt * price_debt)


def health_factors(coll, price_coll, liquidation_threshold, debt, price_debt):
    """Vectorised ``health_factor``: float64 arrays in, health factors out (inf without debt).

    The same arithmetic as the kernels' helper, element by element: ``weighted_collateral``
    is evaluated by numpy on the arrays.
    """
    num = weighted_collateral.py_func(coll, price_coll, liquidation_threshold)
    den = debt * price_debt
    return np.divide(num, den, out=np.full(len(num), np.inf), where=den > 0)


@kernel
def select_below(coll_market, debt_market, coll, scaled_debt, price, liquidation_threshold,
                 borrow_index, threshold):
    """Indices (int64) of positions whose health factor is below ``threshold``.

    Args:
        coll_market, debt_market: int32[n], market index of collateral and debt.
        coll: float64[n], collateral tokens.
        scaled_debt: float64[n], debt divided by the borrow index.
        price: float64[K], oracle price of each market's asset.
        liquidation_threshold: float64[K], per market.
        borrow_index: float64[K], borrow index per market.
        threshold: float, health-factor threshold.
    """
    n = coll.shape[0]
    hits = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        # Branch-free (health factors cluster near the threshold, so a branch mispredicts)
        # and unsigned indices (no negative-index wraparound).
        c = np.uint64(coll_market[i])
        d = np.uint64(debt_market[i])
        debt = scaled_debt[i] * borrow_index[d]
        hits[k] = i
        k += (debt > 0.0) & is_below(coll[i], price[c], liquidation_threshold[c], debt, price[d],
                                     threshold)
    return hits[:k].copy()


@kernel
def book_totals(coll_market, debt_market, coll, scaled_debt, price, liquidation_threshold,
                borrow_index, market_protocol, total_coll, total_debt, insolvent):
    """Per-market totals of the book in one pass.

    Args:
        coll_market, debt_market, coll, scaled_debt, price, liquidation_threshold,
            borrow_index: as in ``select_below``.
        market_protocol: int64[K], lending protocol of each market.
        total_coll: float64[K], written: collateral tokens per market.
        total_debt: float64[K], written: debt tokens per market.
        insolvent: float64[P, 2], written per protocol: net insolvent debt in numeraire (the
            sum over positions of max(0, debt value - collateral value), Gauntlet's VaR base)
            and the number of positions with HF < 1.
    """
    total_coll[:] = 0.0
    total_debt[:] = 0.0
    insolvent[:] = 0.0
    for i in range(coll.shape[0]):
        c = np.uint64(coll_market[i])
        d = np.uint64(debt_market[i])
        debt = scaled_debt[i] * borrow_index[d]
        total_coll[c] += coll[i]
        total_debt[d] += debt
        gap = debt * price[d] - coll[i] * price[c]
        proto = market_protocol[c]
        insolvent[proto, 0] += max(gap, 0.0)  # adding 0.0 leaves the sum's bits unchanged
        insolvent[proto, 1] += (debt > 0.0) & is_below(coll[i], price[c], liquidation_threshold[c],
                                                        debt, price[d], 1.0)


@kernel
def recoverable_debt(coll_market, debt_market, coll, scaled_debt, market_asset,
                     market_protocol, borrow_index, value, counted, out):
    """Per protocol: what its borrowers owe, each position capped at its collateral value.

    ``out[p] += min(debt * value[debt asset], coll * value[coll asset])`` over positions of
    protocol ``p`` whose collateral asset is ``counted`` (a borrower under water walks away
    and leaves the collateral: the most the protocol recovers).

    Args:
        coll_market, debt_market, coll, scaled_debt, borrow_index: as in ``select_below``.
        market_asset, market_protocol: int64[K], asset and protocol of each market.
        value: float64[m], value per token of each asset.
        counted: bool[m], collateral assets whose positions count.
        out: float64[P] (accumulated into).
    """
    for i in range(coll.shape[0]):
        c = coll_market[i]
        a = market_asset[c]
        if scaled_debt[i] <= 0.0 or not counted[a]:
            continue
        d = debt_market[i]
        owed = scaled_debt[i] * borrow_index[d] * value[market_asset[d]]
        held = coll[i] * value[a]
        out[market_protocol[c]] += owed if owed < held else held


@kernel
def group_exposures(group_start, group_stop, coll_market, debt_market, coll, scaled_debt,
                    market_asset, borrow_index, price, holdings, debt):
    """Collateral value per asset and debt value of groups of consecutive positions.

    Args:
        group_start, group_stop: int64[G], each group's rows ``[start, stop)``.
        coll_market, debt_market, coll, scaled_debt, borrow_index: as in ``select_below``.
        market_asset: int64[K], asset of each market.
        price: float64[m], price per asset.
        holdings: float64[G, m] (accumulated into): collateral tokens times price.
        debt: float64[G] (accumulated into): debt tokens times the debt asset's price.
    """
    for g in range(group_start.shape[0]):
        for i in range(group_start[g], group_stop[g]):
            a = market_asset[coll_market[i]]
            holdings[g, a] += coll[i] * price[a]
            if scaled_debt[i] > 0.0:
                d = debt_market[i]
                debt[g] += scaled_debt[i] * borrow_index[d] * price[market_asset[d]]
