"""Health factors and book totals over the position table.

Aave v3: ``HF = collateral * P_coll * LT / (debt * P_debt)``; a position is liquidatable
when ``HF < 1``. Debt is stored scaled (Aave's ``scaledBalance``): debt tokens are
``scaled_debt * borrow_index[debt_asset]``.
"""

import numpy as np

from sim.engine._jit import kernel


@kernel
def health_factor(coll, debt, price_coll, price_debt, lt):
    """Aave v3 health factor of one single-collateral position (``inf`` without debt)."""
    if debt <= 0.0:
        return np.inf
    return coll * price_coll * lt / (debt * price_debt)


@kernel
def health_factors(coll_asset, debt_asset, coll, scaled_debt, price, lt, borrow_index, out):
    """Fill ``out[i]`` with the health factor of every position.

    Args:
        coll_asset: int32[n], collateral asset index per position.
        debt_asset: int32[n], debt asset index per position.
        coll: float64[n], collateral tokens.
        scaled_debt: float64[n], debt divided by the borrow index.
        price: float64[m], oracle price per asset.
        lt: float64[m], liquidation threshold per collateral asset.
        borrow_index: float64[m], borrow index per debt asset.
        out: float64[n], written.
    """
    for i in range(coll.shape[0]):
        c = coll_asset[i]
        d = debt_asset[i]
        out[i] = health_factor(coll[i], scaled_debt[i] * borrow_index[d], price[c], price[d], lt[c])


@kernel
def select_below(coll_asset, debt_asset, coll, scaled_debt, price, lt, borrow_index, threshold):
    """Indices (int64) of positions whose health factor is below ``threshold``."""
    n = coll.shape[0]
    hits = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        # Branch-free (health factors cluster near the threshold, so a branch mispredicts)
        # and unsigned indices (no negative-index wraparound).
        c = np.uint64(coll_asset[i])
        d = np.uint64(debt_asset[i])
        debt = scaled_debt[i] * borrow_index[d]
        hits[k] = i
        k += (debt > 0.0) & (coll[i] * price[c] * lt[c] < threshold * debt * price[d])
    return hits[:k].copy()


@kernel
def book_totals(coll_asset, debt_asset, coll, scaled_debt, price, lt, borrow_index,
                total_coll, total_debt, insolvent):
    """Per-asset totals of the book in one pass.

    Args:
        coll_asset, debt_asset, coll, scaled_debt, price, lt, borrow_index: as in
            ``health_factors``.
        total_coll: float64[m], written: collateral tokens per asset.
        total_debt: float64[m], written: debt tokens per asset.
        insolvent: float64[2], written: (net insolvent debt in numeraire, i.e. the sum over
            positions of max(0, debt value - collateral value) (Gauntlet's VaR base), and the
            number of positions with HF < 1).
    """
    total_coll[:] = 0.0
    total_debt[:] = 0.0
    gap_sum = 0.0  # local accumulators: the compiler cannot keep array elements in registers
    n_below = 0
    for i in range(coll.shape[0]):
        c = np.uint64(coll_asset[i])
        d = np.uint64(debt_asset[i])
        debt = scaled_debt[i] * borrow_index[d]
        total_coll[c] += coll[i]
        total_debt[d] += debt
        gap = debt * price[d] - coll[i] * price[c]
        gap_sum += max(gap, 0.0)  # adding 0.0 leaves the sum's bits unchanged
        n_below += (debt > 0.0) & (coll[i] * price[c] * lt[c] < debt * price[d])
    insolvent[0] = gap_sum
    insolvent[1] = n_below
