"""Perpetual-futures protocols: isolated margin, skew funding, insurance fund and ADL.

All perp protocols of a model live in one table of *markets* (one asset of one protocol;
market ``k = protocol * n_assets + asset``, as in ``sim.protocols.lending``) and share one
structure-of-arrays position book. Margin is held in one settlement asset per protocol
(e.g. USDC); every position has its own margin (isolated margin; cross margin comes later).

Margin rules follow dYdX v4 (initial 5% / maintenance 3% for large caps,
``shared/reference/protocols.md``); funding is Synthetix SIP-80's skew-proportional rate;
losses beyond a position's margin go to the protocol's insurance fund, then to
auto-deleveraging, then to bad debt (``sim.engine.perps``).

Counterparty and the accounting identity: each market has a vault (a backstop / LP account,
as GMX's GLP or Synthetix's debt pool) that takes the opposite side of the net open
interest. Its unrealised P&L is minus the traders' unrealised P&L (price and funding), so at
every mark, per market::

    sum(equity of positions) + vault_equity = sum(margin) + vault_balance

and, per protocol, the settlement tokens held,
``sum(margin) + sum(vault_balance) + insurance_fund``, change only by deposits (opening,
``add_margin``, ``fund_vault``) and payouts (closing, liquidation). Bad debt is the part of
the vault's winnings that no one could pay; it is recorded, never silent. The protocol mints
and burns nothing.
"""

from __future__ import annotations

import numpy as np

from sim.engine import perps as perps_kernel
from sim.protocols.errors import ProtocolError

PARAMETERS = ("initial_margin", "maintenance_margin", "liquidation_fee", "max_funding_rate",
              "skew_scale")


class PerpBook:
    """Positions as a structure of arrays; closed rows stay with ``size == 0``."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int32)
        self.market = np.zeros(0, dtype=np.int32)
        self.size = np.zeros(0, dtype=np.float64)
        self.entry_price = np.zeros(0, dtype=np.float64)
        self.margin = np.zeros(0, dtype=np.float64)
        self.funding_entry = np.zeros(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.size)

    def append(self, owner, market, size, entry_price, margin, funding_entry) -> slice:
        """Add rows; return the slice they occupy."""
        start = len(self)
        self.owner = np.concatenate([self.owner, np.asarray(owner, dtype=np.int32)])
        self.market = np.concatenate([self.market, np.asarray(market, dtype=np.int32)])
        self.size = np.concatenate([self.size, np.asarray(size, dtype=np.float64)])
        self.entry_price = np.concatenate([self.entry_price,
                                           np.asarray(entry_price, dtype=np.float64)])
        self.margin = np.concatenate([self.margin, np.asarray(margin, dtype=np.float64)])
        self.funding_entry = np.concatenate([self.funding_entry,
                                             np.asarray(funding_entry, dtype=np.float64)])
        return slice(start, len(self))


def check_market(protocol: str, asset: int, params: dict) -> None:
    """Refuse inconsistent market parameters with a message naming the field."""
    where = f"perps {protocol!r} asset {asset}"
    for key in PARAMETERS:
        if key not in params:
            raise ValueError(f"{where}: {key}: missing")
    im, mm = params["initial_margin"], params["maintenance_margin"]
    if not 0.0 < mm <= im <= 1.0:
        raise ValueError(f"{where}: need 0 < maintenance_margin <= initial_margin <= 1, "
                         f"got {mm} and {im}")
    if not 0.0 <= params["liquidation_fee"] < 1.0:
        raise ValueError(f"{where}: liquidation_fee: must be in [0, 1), "
                         f"got {params['liquidation_fee']}")
    if params["max_funding_rate"] < 0.0:
        raise ValueError(f"{where}: max_funding_rate: must be >= 0, "
                         f"got {params['max_funding_rate']}")
    if not params["skew_scale"] > 0.0:
        raise ValueError(f"{where}: skew_scale: must be > 0, got {params['skew_scale']}")


class PerpMarkets:
    """Every perpetual-futures protocol of the model, as one table of markets.

    Args:
        names: perp protocol names.
        markets: per protocol, per asset, the market's parameters (a mapping with
            ``initial_margin``, ``maintenance_margin``, ``liquidation_fee`` (fraction of the
            notional), ``max_funding_rate`` (per day), ``skew_scale`` (contracts) and
            optionally ``vault_balance`` (settlement tokens)) or None.
        settlement_asset: per protocol, the asset index margin is held in.
        insurance_fund: per protocol, the insurance fund's settlement tokens.
        cross_margin: per protocol, whether each owner's positions share one margin account
            (default: isolated margin everywhere).
        n_assets: assets of the model (default: the length of ``markets[0]``; needed when
            there is no protocol).
    """

    def __init__(self, names: list[str], markets: list[list[dict | None]], *,
                 settlement_asset, insurance_fund, n_assets: int | None = None,
                 cross_margin=None):
        self.names = list(names)
        n_protocols = len(names)
        self.n_assets = m = n_assets if n_assets is not None else (
            len(markets[0]) if markets else 0)
        for p, per_protocol in enumerate(markets):
            for a, mk in enumerate(per_protocol):
                if mk is not None:
                    check_market(self.names[p], a, mk)
        flat = [mk for per_protocol in markets for mk in per_protocol]
        self.listed = np.array([mk is not None for mk in flat], dtype=bool)
        self.market_asset = np.tile(np.arange(m, dtype=np.int64), n_protocols)
        self.market_protocol = np.repeat(np.arange(n_protocols, dtype=np.int64), m)
        self.settlement_asset = np.asarray(settlement_asset, dtype=np.int64)
        self.insurance_fund = np.asarray(insurance_fund, dtype=np.float64).copy()
        self.cross_margin = (np.zeros(n_protocols, dtype=bool) if cross_margin is None
                             else np.asarray(cross_margin, dtype=bool))

        def col(key: str, default: float = 0.0) -> np.ndarray:
            return np.array([mk.get(key, default) if mk is not None else default
                             for mk in flat], dtype=np.float64)

        self.initial_margin = col("initial_margin", 1.0)
        self.maintenance_margin = col("maintenance_margin", 1.0)
        self.liquidation_fee = col("liquidation_fee")
        self.max_funding_rate = col("max_funding_rate")
        self.skew_scale = col("skew_scale", 1.0)
        self.vault_balance = col("vault_balance")

        k = len(flat)
        # The vault's hedge (GLP-style: the vault holds the asset against its short): base
        # tokens held and the quote tokens its trades left, per market; no pool, no hedge.
        self.hedge_pool = np.full(k, -1, dtype=np.int64)
        self.hedge = np.zeros(k)
        self.hedge_cash = np.zeros(k)
        self.funding_index = np.zeros(k)
        self.funding_rate = np.zeros(k)  # the last step's rate, for the record
        self.long_oi = np.zeros(k)
        self.short_oi = np.zeros(k)
        self.open_cost = np.zeros(k)  # sum(size * entry_price): the vault's cost basis
        self.funding_basis = np.zeros(k)  # sum(size * funding_entry)
        self.book = PerpBook()

    def market(self, protocol: str | int, asset: int) -> int:
        """Market index of ``asset`` in ``protocol`` (a name or an index)."""
        p = self.names.index(protocol) if isinstance(protocol, str) else protocol
        return p * self.n_assets + asset

    def markets_of(self, protocol: str | int) -> slice:
        """The market indices of one protocol, as a slice (in asset order)."""
        p = self.names.index(protocol) if isinstance(protocol, str) else protocol
        return slice(p * self.n_assets, (p + 1) * self.n_assets)

    def mark_price(self, asset_price: np.ndarray) -> np.ndarray:
        """Per-market mark prices in settlement tokens.

        The oracle price of each market's asset over that of its protocol's settlement asset
        (both in the numeraire), so margins and P&L are in settlement tokens whatever the
        settlement asset trades at.
        """
        price = np.asarray(asset_price, dtype=np.float64)
        settle = self.settlement_asset[self.market_protocol] if len(self.settlement_asset) \
            else np.zeros(len(self.market_asset), dtype=np.int64)
        return price[self.market_asset] / price[settle]

    # --- the vault and the ledger -----------------------------------------------------------

    def fund_vault(self, market: int, amount: float) -> None:
        """Deposit settlement tokens into a market's vault (an LP deposit)."""
        if not self.listed[market] or amount < 0.0:
            raise ProtocolError(f"cannot fund the vault of market {market} with {amount}")
        self.vault_balance[market] += amount

    def vault_equity(self, asset_price: np.ndarray) -> np.ndarray:
        """Each vault's balance plus the P&L of its ``-net`` position, from its own bases.

        ``vault_balance + open_cost - net mark + net funding_index - funding_basis`` with
        ``net = long_oi - short_oi``: minus the traders' unrealised P&L, computed from the
        running sums rather than the book.
        """
        net = self.long_oi - self.short_oi
        mark = self.mark_price(asset_price)
        return (self.vault_balance + self.open_cost - net * mark + net * self.funding_index
                - self.funding_basis)

    def settlement_held(self) -> np.ndarray:
        """Settlement tokens held per protocol: margins, vaults and insurance fund."""
        n_protocols = len(self.names)
        b = self.book
        margins = np.bincount(self.market_protocol[b.market], weights=b.margin,
                              minlength=n_protocols)
        vaults = np.bincount(self.market_protocol, weights=self.vault_balance,
                             minlength=n_protocols)
        return margins + vaults + self.insurance_fund

    # --- the vault's hedge ------------------------------------------------------------------

    def hedge_target(self) -> np.ndarray:
        """Base tokens each vault holds to offset its ``-net`` position: ``max(net, 0)``.

        A vault that is net long (traders net short) would hedge by selling the asset short,
        which a pool cannot do: it stays unhedged.
        """
        return np.where(self.hedge_pool >= 0, np.maximum(self.long_oi - self.short_oi, 0.0),
                        0.0)

    def rehedge(self, pools) -> np.ndarray:
        """Trade each hedged market's pool until the hedge matches ``hedge_target``.

        Excess base is sold on the pool; a shortfall is bought with the hedge's quote tokens
        (as far as they go). Returns the base tokens traded per market.

        Args:
            pools: the model's ``sim.protocols.amm.Pools`` (reserves updated).
        """
        traded = np.zeros(len(self.hedge))
        target = self.hedge_target()
        for k in np.flatnonzero(self.hedge_pool >= 0):
            v = int(self.hedge_pool[k])
            gap = self.hedge[k] - target[k]
            if gap > 1e-12 * max(target[k], 1.0):
                self.hedge_cash[k] += pools.sell_base(v, gap)
                self.hedge[k] -= gap
                traded[k] = gap
            elif gap < 0 and self.hedge_cash[k] > 0:
                cost = min(self.hedge_cash[k], pools.input_for_output(v, sell_base=False,
                                                                      want=-gap))
                got = pools.sell_quote(v, cost)
                self.hedge_cash[k] -= cost
                self.hedge[k] += got
                traded[k] = got
        return traded

    def hedge_held(self, pool_quote: np.ndarray) -> np.ndarray:
        """Hedge tokens per asset: base held and quote tokens left by the hedge's trades."""
        k = self.hedge_pool >= 0
        quote = np.asarray(pool_quote, dtype=np.int64)[self.hedge_pool[k]]
        return (np.bincount(self.market_asset[k], weights=self.hedge[k],
                            minlength=self.n_assets)
                + np.bincount(quote, weights=self.hedge_cash[k], minlength=self.n_assets))

    # --- positions --------------------------------------------------------------------------

    def equity(self, asset_price: np.ndarray, rows=None) -> np.ndarray:
        """Equity of the given rows (all rows by default) at the mark prices."""
        b = self.book
        out = np.empty(len(b))
        perps_kernel.position_equity(b.market, b.size, b.entry_price, b.margin,
                                     b.funding_entry, self.mark_price(asset_price),
                                     self.funding_index, out)
        return out if rows is None else out[rows]

    def liquidation_price(self, rows) -> np.ndarray:
        """Mark at which each row's equity equals its maintenance requirement.

        Solving ``margin + s (p - entry) - s dF = MM |s| p`` for ``p``:
        ``p = (s entry + s dF - margin) / (s (1 - MM))`` for a long,
        ``... / (s (1 + MM))`` for a short. ``dF`` is the funding accrued so far.
        """
        b = self.book
        s = b.size[rows]
        k = b.market[rows]
        mm = self.maintenance_margin[k]
        df = self.funding_index[k] - b.funding_entry[rows]
        top = s * b.entry_price[rows] + s * df - b.margin[rows]
        return top / (s * np.where(s > 0, 1.0 - mm, 1.0 + mm))

    def _count_open_interest(self, market, size, entry_price, funding_entry, sign) -> None:
        """Add (``sign`` +1) or remove (-1) positions from the per-market running sums."""
        n_markets = len(self.listed)

        def per_market(weights):
            return sign * np.bincount(market, weights=weights, minlength=n_markets)

        self.long_oi += per_market(np.maximum(size, 0.0))
        self.short_oi += per_market(np.maximum(-size, 0.0))
        self.open_cost += per_market(size * entry_price)
        self.funding_basis += per_market(size * funding_entry)

    def open_positions(self, owner, market, size, *, margin, asset_price,
                       entry_price=None) -> slice:
        """Deposit margin and open positions against the vault, checking initial margin.

        dYdX v4: a trade may not leave equity below the initial margin requirement
        ``IM |size| mark``. Positions open at ``entry_price`` (default: the mark), so with
        no slippage the check is ``margin >= IM |size| mark``.

        Args:
            owner: int[n], owning agent of each position.
            market: int[n], market of each position.
            size: float[n], signed base units (long > 0, non-zero).
            margin: float[n], settlement tokens deposited (>= 0).
            asset_price: float[m], oracle price per asset.
            entry_price: float[n] or None, execution price of each opening trade.

        Returns:
            slice, the rows of the new positions.
        """
        market = np.asarray(market, dtype=np.int64)
        size = np.asarray(size, dtype=np.float64)
        margin = np.asarray(margin, dtype=np.float64)
        mark = self.mark_price(asset_price)[market]
        entry = mark if entry_price is None else np.asarray(entry_price, dtype=np.float64)
        if not self.listed[market].all():
            raise ProtocolError("position on an unlisted market")
        if np.any(size == 0.0) or np.any(margin < 0.0) or np.any(entry <= 0.0):
            raise ProtocolError("positions need a non-zero size, margin >= 0, entry > 0")
        equity = margin + size * (mark - entry)
        required = self.initial_margin[market] * np.abs(size) * mark
        if np.any(equity < required * (1.0 - 1e-12)):
            raise ProtocolError("margin below the initial margin requirement")
        funding_entry = self.funding_index[market]
        self._count_open_interest(market, size, entry, funding_entry, 1.0)
        return self.book.append(owner, market, size, np.broadcast_to(entry, size.shape),
                                margin, funding_entry)

    def _open_rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if len(np.unique(rows)) != len(rows):
            raise ProtocolError("a row appears twice")
        if np.any(self.book.size[rows] == 0.0):
            raise ProtocolError("position is closed")
        return rows

    def add_margin(self, rows, amounts) -> None:
        """Deposit more settlement tokens into open positions."""
        rows = self._open_rows(rows)
        amounts = np.broadcast_to(np.asarray(amounts, dtype=np.float64), rows.shape)
        if np.any(amounts < 0.0):
            raise ProtocolError("margin top-ups must be >= 0")
        self.book.margin[rows] += amounts

    def close_positions(self, rows, execution_price) -> np.ndarray:
        """Close positions in full at ``execution_price``; the vault settles their P&L.

        Realised P&L ``size (execution_price - entry) - size dF`` is paid by the vault; the
        owner receives ``margin + P&L``. A position that would end below zero is bankrupt at
        that price and must go through ``liquidate`` instead.

        Args:
            rows: int[r], open rows (each once).
            execution_price: float or float[r], settlement tokens per base unit.

        Returns:
            float64[r], settlement tokens paid out to each row's owner.
        """
        b = self.book
        rows = self._open_rows(rows)
        price = np.broadcast_to(np.asarray(execution_price, dtype=np.float64), rows.shape)
        s = b.size[rows]
        k = b.market[rows].astype(np.int64)
        pnl = s * (price - b.entry_price[rows]) - s * (self.funding_index[k]
                                                        - b.funding_entry[rows])
        paid = b.margin[rows] + pnl
        if np.any(paid < 0.0):
            raise ProtocolError("position is bankrupt at that price; liquidate it")
        np.subtract.at(self.vault_balance, k, pnl)
        self._count_open_interest(k, s, b.entry_price[rows], b.funding_entry[rows], -1.0)
        b.size[rows] = 0.0
        b.margin[rows] = 0.0
        return paid

    # --- funding and liquidations -----------------------------------------------------------

    def accrue_funding(self, asset_price: np.ndarray, dt_hours: float) -> np.ndarray:
        """Accrue one step of skew funding (``sim.engine.perps.accrue_funding``).

        Returns:
            float64[K], this step's funding rate per market (longs pay when > 0).
        """
        perps_kernel.accrue_funding(self.long_oi, self.short_oi, self.mark_price(asset_price),
                                    self.skew_scale, self.max_funding_rate, float(dt_hours),
                                    self.funding_index, self.funding_rate)
        return self.funding_rate.copy()

    def pool_cross_margin(self, asset_price: np.ndarray) -> None:
        """Cross margin: spread each owner's equity over its positions by requirement.

        Margin moves between an owner's open positions (its sum is kept) so that each holds
        the account's equity in proportion to its maintenance requirement. After this, every
        position of an account has the account's equity / requirement, so the isolated
        liquidation pass liquidates all of an account's positions or none, exactly when its
        total equity falls below its total requirement (dYdX v4 cross margin), and a
        bankrupt account's shortfall is spread over its positions. A position's margin, and
        an account's, may go negative: the account borrows against its positions' unrealised
        profit, as a dYdX v4 subaccount's USDC balance can.
        """
        b = self.book
        if not self.cross_margin.any() or len(b) == 0:
            return
        open_ = (b.size != 0) & self.cross_margin[self.market_protocol[b.market]]
        rows = np.flatnonzero(open_)
        if len(rows) == 0:
            return
        k = b.market[rows].astype(np.int64)
        mark = self.mark_price(asset_price)[k]
        equity = self.equity(asset_price, rows)
        need = self.maintenance_margin[k] * np.abs(b.size[rows]) * mark
        # Accounts: (protocol, owner).
        key = self.market_protocol[k] * (int(b.owner.max()) + 1) + b.owner[rows]
        _, account = np.unique(key, return_inverse=True)
        total_equity = np.bincount(account, weights=equity)
        total_need = np.bincount(account, weights=need)
        target = total_equity[account] * need / total_need[account]
        b.margin[rows] += target - equity

    def liquidate(self, asset_price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run one liquidation pass over the book at the mark prices.

        Returns:
            (stats, closed_size, payout): float64[P, N_STATS] per protocol (slots in
            ``sim.engine.perps``), float64[K] signed contracts closed per market (the
            vault's hedge flow: positive means long exposure left the book), and float64[n]
            settlement tokens released to each row's owner.
        """
        b = self.book
        stats = np.zeros((len(self.names), perps_kernel.N_STATS))
        closed = np.zeros(len(self.listed))
        payout = np.zeros(len(b))
        perps_kernel.liquidate_pass(
            b.market, b.size, b.entry_price, b.margin, b.funding_entry, self.market_protocol,
            self.maintenance_margin, self.liquidation_fee, self.mark_price(asset_price),
            self.funding_index, self.long_oi, self.short_oi, self.open_cost,
            self.funding_basis, self.vault_balance, self.insurance_fund, payout, closed, stats)
        return stats, closed, payout
