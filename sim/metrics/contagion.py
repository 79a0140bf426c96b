"""Three classic contagion metrics, as their papers define them, on plain numpy arrays.

* Eisenberg & Noe (2001): the clearing payments of a network of nominal liabilities, found
  with the paper's fictitious default algorithm, and the waves in which nodes default.
* DebtRank (Battiston, Puliga, Kaushik, Tasca & Caldarelli 2012): distress that travels
  along exposures, each distressed node passing its distress on exactly once.
* Greenwood, Landier & Thesmar (2015): fire-sale spillovers when leverage-targeting banks
  sell in proportion to their holdings and sales move prices linearly.

The functions are pure: arrays in, a small frozen dataclass (or an array) out, no state and
no randomness. Node and bank indices are positions in the input arrays. Bad input (wrong
shape, negative amounts, a non-finite number) raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClearingResult",
    "DebtRankResult",
    "FireSaleVulnerability",
    "debtrank",
    "debtrank_impact",
    "eisenberg_noe",
    "fire_sale_vulnerability",
    "standalone_payments",
]


# --------------------------------------------------------------------------- validation


def _vector(name: str, x: object, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name}: expected length {n}, got {a.shape[0]}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite")
    return a


def _square(name: str, x: object) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square 2-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite")
    return a


def _non_negative(name: str, a: np.ndarray) -> None:
    if np.any(a < 0):
        raise ValueError(f"{name}: must be >= 0, got min {a.min():g}")


def _zero_diagonal(name: str, a: np.ndarray) -> None:
    if np.any(np.diag(a) != 0):
        i = int(np.flatnonzero(np.diag(a))[0])
        raise ValueError(f"{name}: diagonal must be 0 (no claim on oneself), got {name}[{i}, {i}]"
                         f" = {a[i, i]:g}")


# ------------------------------------------------------------------------ Eisenberg-Noe


@dataclass(frozen=True)
class ClearingResult:
    """Outcome of :func:`eisenberg_noe`.

    Attributes:
        payments: The clearing payment vector p*, shape (n,).
        waves: Defaulting nodes grouped by the round of the fictitious default algorithm in
            which they defaulted, in round order (indices ascending within a round).
        equity: e + Pi^T p* - p*, shape (n,); 0 for a defaulting node.
    """

    payments: np.ndarray
    waves: tuple[tuple[int, ...], ...]
    equity: np.ndarray

    @property
    def defaulted(self) -> tuple[int, ...]:
        """All defaulting nodes, in the order of the rounds they defaulted."""
        return tuple(i for wave in self.waves for i in wave)


def _relative_liabilities(liabilities: np.ndarray) -> np.ndarray:
    """Relative liabilities matrix of Eisenberg & Noe (2001).

    Pi[i, j] = L[i, j] / pbar_i with pbar_i = sum_j L[i, j]; a node that owes nothing gets a
    row of zeros.

    Args:
        liabilities: L, float (n, n), L[i, j] = what i owes j, >= 0.

    Returns:
        Pi, float (n, n); each row sums to 1, or to 0 where pbar_i = 0.
    """
    total = liabilities.sum(axis=1)
    pi = np.zeros_like(liabilities)
    owes = total > 0
    pi[owes] = liabilities[owes] / total[owes, None]
    return pi


def eisenberg_noe(
    liabilities: object, external_assets: object, *, rtol: float = 1e-10
) -> ClearingResult:
    """Greatest clearing payment vector of Eisenberg & Noe (2001), by fictitious default.

    Eisenberg, L. & Noe, T. H. (2001), "Systemic Risk in Financial Systems", Management
    Science 47(2), 236-249. With pbar_i = sum_j L[i, j] and Pi[i, j] = L[i, j] / pbar_i,
    a clearing vector is a fixed point of

        p_i = min(pbar_i, e_i + sum_j Pi[j, i] p_j),

    and this returns the greatest one, found with the paper's fictitious default algorithm:
    start from "nobody defaults" (p = pbar); given the set D of nodes found in
    default, solve the linear system in which nodes outside D pay pbar and nodes in D pay
    all they have,

        p_D = e_D + (Pi^T p)_D,    p_i = pbar_i for i not in D,

    then add to D every node whose value e_i + (Pi^T p)_i falls short of pbar_i; stop when
    D stops growing (at most n rounds). Each round's new defaulters form one "wave". A node
    is taken to default only when its shortfall exceeds ``rtol * max(pbar_i, value_i)``,
    so that rounding in e.g. a cycle that exactly breaks even is not read as a default.

    Args:
        liabilities: L, float (n, n), L[i, j] = nominal amount i owes j; >= 0, zero diagonal.
        external_assets: e, float (n,), each node's assets outside the network; >= 0.
        rtol: Relative tolerance of the default test (see above).

    Returns:
        A :class:`ClearingResult` with the payments, the default waves and the equity
        e + Pi^T p - p.

    Raises:
        ValueError: If shapes disagree or an amount is negative or not finite.
    """
    liab = _square("liabilities", liabilities)
    n = liab.shape[0]
    e = _vector("external_assets", external_assets, n)
    _non_negative("liabilities", liab)
    _non_negative("external_assets", e)
    _zero_diagonal("liabilities", liab)
    if not rtol >= 0:
        raise ValueError(f"rtol: must be >= 0, got {rtol}")

    pbar = liab.sum(axis=1)
    pi_t = _relative_liabilities(liab).T  # pi_t[i, j] = Pi[j, i]: share of j's payment to i
    default = np.zeros(n, dtype=bool)
    p = pbar.copy()
    waves: list[tuple[int, ...]] = []
    while True:
        value = e + pi_t @ p
        new = ~default & (pbar - value > rtol * np.maximum(pbar, value))
        if not new.any():
            break
        waves.append(tuple(int(i) for i in np.flatnonzero(new)))
        default |= new
        # (I - Lambda Pi^T) p = Lambda e + (I - Lambda) pbar, Lambda = diag(default).
        d = default.astype(float)
        system = np.eye(n) - d[:, None] * pi_t
        p = np.linalg.solve(system, np.where(default, e, pbar))
    p = np.where(default, np.minimum(p, pbar), pbar)
    equity = e + pi_t @ p - p
    return ClearingResult(payments=p, waves=tuple(waves), equity=equity)


def standalone_payments(
    liabilities: object, external_assets: object, *, rtol: float = 1e-10
) -> np.ndarray:
    """What each node would pay if every other node paid it in full (Eisenberg-Noe).

    Node i then holds e_i plus its nominal claims, ``v_i = e_i + sum_j L[j, i]``, and owes
    pbar_i to creditors that pay nothing back: ``eisenberg_noe`` on that network (every
    node's obligations owed to one sink) finds p_i = pbar_i, or v_i when i fails the same
    default test (``pbar_i - v_i > rtol * max(pbar_i, v_i)``). With no claims left inside the
    network there is nothing to solve, so this is that result in closed form. The
    difference between a node's shortfall in the network and this one is the part of its
    shortfall that comes from contagion (``sim.model.systemic.clearing``).

    Args:
        liabilities: L, float (n, n), as ``eisenberg_noe``.
        external_assets: e, float (n,), as ``eisenberg_noe``.
        rtol: relative tolerance of the default test.

    Returns:
        float (n,), each node's payment.
    """
    liab = _square("liabilities", liabilities)
    e = _vector("external_assets", external_assets, liab.shape[0])
    pbar = liab.sum(axis=1)
    value = e + liab.sum(axis=0)
    short = pbar - value > rtol * np.maximum(pbar, value)
    return np.where(short, np.minimum(value, pbar), pbar)


# ----------------------------------------------------------------------------- DebtRank


@dataclass(frozen=True)
class DebtRankResult:
    """Outcome of :func:`debtrank`.

    Attributes:
        relative_debtrank: R = sum_j h_j(T) v_j - sum_j h_j(1) v_j, the share of the
            system's economic value lost to propagated distress (initial distress excluded).
        distress: h(T), float (n,), the final distress of each node, in [0, 1].
        history: h(1), ..., h(T), float (T, n); row 0 is the initial distress.
    """

    relative_debtrank: float
    distress: np.ndarray
    history: np.ndarray


def debtrank_impact(exposures: object, equity: object) -> np.ndarray:
    """Impact matrix of DebtRank: W[i, j] is the impact of i's distress on j.

    Battiston, S., Puliga, M., Kaushik, R., Tasca, P. & Caldarelli, G. (2012), "DebtRank:
    Too Central to Fail? Financial Networks, the FED and Systemic Risk", Scientific Reports
    2, 541. With A[i, j] the amount i has invested in (lent to) j, if j defaults i loses
    A[i, j]; so the impact of i on j is the share of j's equity that j has put into i,

        W[i, j] = min(1, A[j, i] / E[j]).

    W[i, j] is the impact of i's distress on j: rows are sources of distress, columns are
    the nodes hit (the transpose of the exposure matrix, scaled by the holder's equity).

    Args:
        exposures: A, float (n, n), A[i, j] = amount i has invested in / lent to j; >= 0,
            zero diagonal.
        equity: E, float (n,), each node's equity (capital); > 0.

    Returns:
        W, float (n, n), entries in [0, 1].

    Raises:
        ValueError: If shapes disagree, an exposure is negative or an equity is not > 0.
    """
    a = _square("exposures", exposures)
    n = a.shape[0]
    cap = _vector("equity", equity, n)
    _non_negative("exposures", a)
    _zero_diagonal("exposures", a)
    if np.any(cap <= 0):
        raise ValueError(f"equity: must be > 0 (W divides by it), got min {cap.min():g}")
    return np.minimum(1.0, a.T / cap[None, :])


def debtrank(
    exposures: object,
    equity: object,
    initial_distress: object,
    *,
    economic_value: object | None = None,
) -> DebtRankResult:
    """DebtRank of Battiston et al. (2012): distress propagated once per node.

    Source: Battiston et al. (2012), Scientific Reports 2, 541 (the DebtRank dynamics). Each
    node i has distress h_i in [0, 1] and a state: undistressed (U), distressed (D) or
    inactive (I). At t = 1 the nodes with h_i(1) > 0 are D, the rest U. For t >= 2,

        h_j(t) = min(1, h_j(t-1) + sum_{i : s_i(t-1) = D} W[i, j] h_i(t-1)),

    where W[i, j] = min(1, A[j, i] / E[j]) is the impact of i's distress on j (see
    :func:`debtrank_impact`); then a node that was D becomes I, a U node with h > 0 becomes
    D, and I stays I. So a node passes on its distress only in the step after it became
    distressed, with the level it had then; distress it receives later still counts in h
    but is not passed on. The dynamics stop at the first T with no D node (T <= n + 1).
    The relative DebtRank excludes the initial distress:

        R = sum_j h_j(T) v_j - sum_j h_j(1) v_j.

    Args:
        exposures: A, float (n, n), A[i, j] = amount i has invested in / lent to j (so j's
            distress hits i); >= 0, zero diagonal.
        equity: E, float (n,), each node's equity; > 0.
        initial_distress: h(1), float (n,), in [0, 1] (e.g. 1 for the node that defaults,
            0 elsewhere; the paper's psi for a group).
        economic_value: v, float (n,), >= 0, not all 0, normalised here to sum to 1. By
            default the paper's relative economic value v_i = A_i / sum_j A_j, with
            A_i = sum_l A[i, l] the total i has invested in the network.

    Returns:
        A :class:`DebtRankResult` with R, h(T) and the series h(1), ..., h(T).

    Raises:
        ValueError: On bad shapes, negative amounts, equity <= 0, distress outside [0, 1]
            or an economic value that is negative or sums to 0.
    """
    w = debtrank_impact(exposures, equity)
    n = w.shape[0]
    h = _vector("initial_distress", initial_distress, n)
    if np.any((h < 0) | (h > 1)):
        raise ValueError("initial_distress: must lie in [0, 1]")
    if economic_value is None:
        v = np.asarray(exposures, dtype=float).sum(axis=1)
        if not v.sum() > 0:
            raise ValueError("economic_value: the default (share of exposures) needs some"
                             " exposure > 0; pass economic_value")
    else:
        v = _vector("economic_value", economic_value, n)
        _non_negative("economic_value", v)
        if not v.sum() > 0:
            raise ValueError("economic_value: must not sum to 0")
    v = v / v.sum()

    distressed = h > 0  # state D
    inactive = np.zeros(n, dtype=bool)  # state I; U is neither
    history = [h.copy()]
    while distressed.any():
        h = np.minimum(1.0, h + w.T @ np.where(distressed, h, 0.0))
        inactive |= distressed
        distressed = (h > 0) & ~inactive
        history.append(h.copy())
    relative = float(h @ v - history[0] @ v)
    return DebtRankResult(relative_debtrank=relative, distress=h, history=np.array(history))


# ---------------------------------------------------------- Greenwood-Landier-Thesmar


@dataclass(frozen=True)
class FireSaleVulnerability:
    """Outcome of :func:`fire_sale_vulnerability` (N banks, K assets).

    All quantities are linear in the shock F, so they carry its sign: for a shock of
    negative returns they are negative (sales, price falls, equity losses).

    Attributes:
        net_purchases: B A M F, float (N,), each bank's net purchase in dollars to return to
            target leverage (negative = sales).
        asset_net_purchases: M^T B A M F, float (K,), net purchases of each asset in dollars.
        price_impact: L M^T B A M F, float (K,), each asset's return from the fire sale.
        bank_returns: M L M^T B A M F, float (N,), each bank's return on assets from it.
        aggregate_vulnerability: AV = 1^T A M L M^T B A M F / E, the fire-sale loss of all
            banks as a share of the system's total equity E = sum_n e_n.
        systemicness: S, float (N,), S_n = 1^T A M L M^T delta_n delta_n^T B A M F / E,
            the spillover bank n's deleveraging causes, as a share of E; sum_n S_n = AV.
        indirect_vulnerability: IV, float (N,), IV_n = delta_n^T A M L M^T B A M F / e_n,
            bank n's fire-sale loss as a share of its own equity; sum_n e_n IV_n / E = AV.
    """

    net_purchases: np.ndarray
    asset_net_purchases: np.ndarray
    price_impact: np.ndarray
    bank_returns: np.ndarray
    aggregate_vulnerability: float
    systemicness: np.ndarray
    indirect_vulnerability: np.ndarray


def fire_sale_vulnerability(
    assets: object,
    weights: object,
    leverage: object,
    *,
    price_impact: object,
    shock: object,
    equity: object | None = None,
) -> FireSaleVulnerability:
    """Aggregate vulnerability, systemicness and indirect vulnerability of GLT (2015).

    Greenwood, R., Landier, A. & Thesmar, D. (2015), "Vulnerable Banks", Journal of
    Financial Economics 115(3), 471-485 (the model). N banks hold K assets; bank n has total
    assets a_n, portfolio weights m_n (row n of M, summing to 1) and leverage
    b_n = debt / equity, which it targets. With A = diag(a), B = diag(b), L the (K, K)
    price-impact matrix (return per dollar of net purchase; diagonal in the paper) and F the
    (K,) vector of asset returns of the initial shock:

        bank returns from the shock        M F
        net purchases to restore leverage  B A M F         (bank n: b_n a_n (M F)_n)
        fire-sale asset returns            L M^T B A M F   (sales pro rata to holdings)
        aggregate vulnerability            AV   = 1^T A M L M^T B A M F / E
        systemicness of bank n             S_n  = 1^T A M L M^T delta_n delta_n^T B A M F / E
        indirect vulnerability of bank n   IV_n = delta_n^T A M L M^T B A M F / e_n

    where delta_n is the n-th unit vector, e_n bank n's equity and E = sum_n e_n the total
    equity of the banking system (the paper's normalisation of AV and S_n). Only the
    spillover round counts, not the direct loss A M F. Since sum_n delta_n delta_n^T = I,
    sum_n S_n = AV exactly. IV_n counts the price effect of all banks' sales, n's own
    included.

    Args:
        assets: a, float (N,), total assets of each bank; >= 0.
        weights: M, float (N, K), portfolio weights; >= 0, each row summing to 1.
        leverage: b, float (N,), debt / equity of each bank; >= 0.
        price_impact: L as a float (K,) vector of per-asset impacts l_k (L = diag(l)) or a
            float (K, K) matrix; return per dollar of net purchase.
        shock: F, float (K,), the initial return of each asset (negative = loss).
        equity: e, float (N,), > 0. By default the balance-sheet identity a = d + e with
            b = d / e, i.e. e_n = a_n / (1 + b_n). Pass it when b is not d / e (e.g. capped).

    Returns:
        A :class:`FireSaleVulnerability`.

    Raises:
        ValueError: On bad shapes, negative assets or leverage, weights outside the simplex,
            or equity <= 0.
    """
    m = np.asarray(weights, dtype=float)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"weights: expected a non-empty (N, K) array, got shape {m.shape}")
    n_banks, n_assets = m.shape
    if not np.all(np.isfinite(m)):
        raise ValueError("weights: must be finite")
    _non_negative("weights", m)
    row_sums = m.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=1e-9):
        bad = int(np.argmax(np.abs(row_sums - 1.0)))
        raise ValueError(f"weights: each row must sum to 1, row {bad} sums to {row_sums[bad]:g}")
    a = _vector("assets", assets, n_banks)
    b = _vector("leverage", leverage, n_banks)
    f = _vector("shock", shock, n_assets)
    _non_negative("assets", a)
    _non_negative("leverage", b)
    impact = np.asarray(price_impact, dtype=float)
    if impact.shape == (n_assets,):
        impact = np.diag(impact)
    elif impact.shape != (n_assets, n_assets):
        raise ValueError(f"price_impact: expected shape ({n_assets},) or ({n_assets}, "
                         f"{n_assets}), got {impact.shape}")
    if not np.all(np.isfinite(impact)):
        raise ValueError("price_impact: must be finite")
    if equity is None:
        e = a / (1.0 + b)
    else:
        e = _vector("equity", equity, n_banks)
    if np.any(e <= 0):
        raise ValueError(f"equity: must be > 0, got min {e.min():g}"
                         + (" (from assets / (1 + leverage))" if equity is None else ""))

    net_purchases = b * a * (m @ f)  # B A M F
    asset_net_purchases = m.T @ net_purchases  # M^T B A M F
    price = impact @ asset_net_purchases  # L M^T B A M F
    bank_returns = m @ price  # M L M^T B A M F
    dollar_loss = a * bank_returns  # A M L M^T B A M F
    total_equity = e.sum()
    # 1^T A M L M^T delta_n: the loss to all banks per dollar bank n buys.
    spillover = m @ (impact.T @ (m.T @ a))
    return FireSaleVulnerability(
        net_purchases=net_purchases,
        asset_net_purchases=asset_net_purchases,
        price_impact=price,
        bank_returns=bank_returns,
        aggregate_vulnerability=float(dollar_loss.sum() / total_equity),
        systemicness=spillover * net_purchases / total_equity,
        indirect_vulnerability=dollar_loss / e,
    )
