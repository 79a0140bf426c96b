"""European options protocols: a volatility surface per asset, an option book, a writer vault.

Crypto conventions: a 365-day year, trading every hour, annualised volatility, cash
settlement in the protocol's settlement token at expiry. Options on spot are priced with
Black-Scholes, options on a perpetual or future with Black-76 (``sim.engine.greeks``).

**Volatility surface** (our parameterisation, one per asset; not SVI): at-the-money level
``atm`` (annualised), a term structure and a skew in standardised log-moneyness,

    sigma(K, T) = max(floor, atm * (T / T_ref) ** term + skew * ln(K / F) / sqrt(T))

with F the forward. The ATM level reacts to realised volatility: each step it moves toward
``realised + premium`` (the volatility risk premium) by the weight ``1 - exp(-dt / tau)``, an
exponential moving average with time constant ``tau`` hours.

**Book and vault.** Traders buy (``size > 0``) or sell (``size < 0``) options from the
protocol's vault (a writer pool, as Lyra's market-maker vault or an options AMM) at the
surface's price; the premium moves between the trader and the vault in settlement tokens.
At expiry each option pays ``size * max(S - K, 0)`` (call) or ``size * max(K - S, 0)`` (put)
from the vault to the holder (or the holder to the vault for a short). The vault's
settlement balance can go negative only as recorded bad debt. Writers (traders who sell to
the vault) write cash-secured puts only: the strike times the size is locked until expiry.
Settlement tokens held by the protocol (``held``: the vaults, the writers' collateral and
the series' redemption reserves) change only by premiums, collateral and payoffs: the model
checks conservation.

**Option tokens** (Opyn's oTokens: one ERC-20 per series, minted by the writer against
collateral and redeemable after expiry for the payoff). A *series* is a token the vault
wrote before the run: the vault holds one short row in the book for it, ``size = -supply``
(the tokens in existence), so the vault carries the series' Greeks and its hedgers see them;
whoever holds the tokens holds the long side. Before expiry a token is worth the option's
value on the surface (``series_price``). At expiry the series settles like a row: the vault
moves ``supply * intrinsic`` settlement tokens into the series' redemption reserve (pro rata
with the other payoffs, and bad debt, when the vault cannot pay all), and from then on a
token is a claim on ``reserve / supply`` settlement tokens. Nobody has to redeem: tokens and
reserve just wait.

**Risk limits.** A vault may have limits per asset on its *cash gamma* ``gamma S^2 / 100``
(how much the value of its delta changes for a 1% move of the underlying, USD) and its vega
per volatility point ``vega / 100`` (USD), the units desks quote. A trade is taken only if
it leaves the vault within both limits, or moves it toward them; trades are considered in
order, so a book fills until the limit binds. A refused row stays in the book with
``size == 0``.

**Options on perps.** Rows with ``on_forward`` are options on a perpetual's mark (or a
future): Black-76 with the forward ``F`` in place of spot, settled at ``F``. The forwards per
asset are the protocol's mark feed ``forward`` (the model sets it from the perps' marks) or
passed to a call; without either the spot prices are used.
"""

from __future__ import annotations

import numpy as np

from sim.engine.greeks import CALL, PUT, black76, black_scholes
from sim.protocols.errors import ProtocolError

HOURS_PER_YEAR = 365.0 * 24.0


class VolSurface:
    """Implied-volatility surfaces of the model's assets (arrays indexed by asset).

    Args:
        atm: starting at-the-money volatility per asset (annualised).
        skew: volatility per unit of standardised log-moneyness ``ln(K/F)/sqrt(T)``
            (negative: puts dearer, as in crypto after a crash).
        term: power of the term structure ``(T / T_ref) ** term`` (negative: inverted).
        term_ref_years: the maturity ``T_ref`` at which the ATM level applies.
        reaction_hours: time constant ``tau`` of the ATM level's reaction to realised vol
            (hours; one value or one per asset).
        premium: volatility risk premium added to realised volatility.
        floor: lowest volatility the surface quotes.
    """

    def __init__(self, atm, skew, term, *, term_ref_years=30.0 / 365.0, reaction_hours=24.0,
                 premium=0.0, floor=0.05):
        self.atm = np.asarray(atm, dtype=np.float64).copy()
        n = len(self.atm)
        self.skew = np.broadcast_to(np.asarray(skew, dtype=np.float64), (n,)).copy()
        self.term = np.broadcast_to(np.asarray(term, dtype=np.float64), (n,)).copy()
        self.term_ref_years = float(term_ref_years)
        self.reaction_hours = np.broadcast_to(np.asarray(reaction_hours, dtype=np.float64),
                                              (n,)).copy()
        self.premium = np.broadcast_to(np.asarray(premium, dtype=np.float64), (n,)).copy()
        self.floor = float(floor)
        if np.any(self.atm <= 0) or self.term_ref_years <= 0 or np.any(self.reaction_hours <= 0):
            raise ProtocolError("atm, term_ref_years and reaction_hours must be > 0")

    def react(self, realised: np.ndarray, dt_hours: float) -> None:
        """Move the ATM level toward ``realised + premium`` (EWMA with time constant tau)."""
        weight = 1.0 - np.exp(-dt_hours / self.reaction_hours)
        target = np.maximum(np.asarray(realised, dtype=np.float64) + self.premium, self.floor)
        self.atm += weight * (target - self.atm)

    def vol(self, asset, strike, forward, t_years) -> np.ndarray:
        """Implied volatility of options (arrays broadcast together)."""
        asset = np.asarray(asset, dtype=np.int64)
        t = np.maximum(np.asarray(t_years, dtype=np.float64), 1e-9)
        k = np.log(np.asarray(strike, dtype=np.float64) / np.asarray(forward, dtype=np.float64))
        level = self.atm[asset] * (t / self.term_ref_years) ** self.term[asset]
        return np.maximum(level + self.skew[asset] * k / np.sqrt(t), self.floor)


class OptionBook:
    """Option positions as a structure of arrays; settled rows keep ``size == 0``."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int64)
        self.protocol = np.zeros(0, dtype=np.int64)
        self.asset = np.zeros(0, dtype=np.int64)
        self.kind = np.zeros(0, dtype=np.int64)
        self.on_forward = np.zeros(0, dtype=np.bool_)
        self.strike = np.zeros(0)
        self.expiry = np.zeros(0)  # hours since the start
        self.size = np.zeros(0)
        self.collateral = np.zeros(0)  # settlement tokens a writer locked (cash-secured put)
        self.series = np.zeros(0, dtype=np.int64)  # option-token series of a vault row, or -1

    def __len__(self) -> int:
        return len(self.size)

    def append(self, **fields) -> slice:
        """Add rows; return the slice they occupy."""
        start = len(self)
        n = len(np.atleast_1d(fields["size"]))
        fields.setdefault("collateral", 0.0)
        fields.setdefault("series", -1)
        for name in ("owner", "protocol", "asset", "kind", "on_forward", "strike", "expiry",
                     "size", "collateral", "series"):
            old = getattr(self, name)
            new = np.broadcast_to(np.asarray(fields[name], dtype=old.dtype), (n,))
            setattr(self, name, np.concatenate([old, new]))
        return slice(start, start + n)


class OptionsProtocols:
    """Every options protocol of the model: its vault (the writer) and the shared book.

    Args:
        names: protocol names.
        settlement_asset: asset index of each protocol's settlement token (a USD stable:
            prices and payoffs are in it at par).
        vault: settlement tokens in each vault at the start.
        surface: the model's ``VolSurface``.
        rate: the continuously compounded rate used to discount (annual).
    """

    def __init__(self, names: list[str], *, settlement_asset, vault, surface: VolSurface,
                 rate: float = 0.0, gamma_limit=None, vega_limit=None):
        self.names = list(names)
        n = len(self.names)
        self.gamma_limit = np.full(n, np.inf) if gamma_limit is None else \
            np.asarray(gamma_limit, dtype=np.float64).copy()
        self.vega_limit = np.full(n, np.inf) if vega_limit is None else \
            np.asarray(vega_limit, dtype=np.float64).copy()
        self.settlement_asset = np.asarray(settlement_asset, dtype=np.int64)
        self.vault = np.asarray(vault, dtype=np.float64).copy()
        self.surface = surface
        self.rate = float(rate)
        self.book = OptionBook()
        self.forward: np.ndarray | None = None  # the perp marks options on perps are on
        self.bad_debt = np.zeros(len(self.names))
        # Option-token series (one per token asset): the token, its vault row in the book,
        # the tokens in existence, the redemption reserve and payout per token after expiry.
        self.series_token = np.zeros(0, dtype=np.int64)
        self.series_row = np.zeros(0, dtype=np.int64)
        self.series_supply = np.zeros(0)
        self.reserve = np.zeros(0)
        self.payout = np.zeros(0)
        self.settled = np.zeros(0, dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.names)

    def underlying_price(self, price: np.ndarray, rows, forward=None) -> np.ndarray:
        """The price each row's option is on: spot, or the forward for ``on_forward`` rows."""
        b = self.book
        rows = np.asarray(rows, dtype=np.int64)
        s = np.asarray(price, dtype=np.float64)[b.asset[rows]]
        forward = self.forward if forward is None else forward
        if forward is not None:
            s = np.where(b.on_forward[rows], np.asarray(forward, dtype=np.float64)[
                b.asset[rows]], s)
        return s

    def add_series(self, protocol: int, token: int, asset: int, kind: int, strike: float,
                   expiry_hours: float) -> int:
        """Register an option-token series written by ``protocol``'s vault; return its index.

        Its vault row starts empty (``size = 0``); ``issue`` records the tokens in existence.
        """
        if kind not in (CALL, PUT) or strike <= 0 or expiry_hours <= 0:
            raise ProtocolError("a series needs kind CALL or PUT, strike > 0 and expiry > 0")
        k = len(self.series_token)
        rows = self.book.append(owner=-1, protocol=protocol, asset=asset, kind=kind,
                                on_forward=False, strike=strike, expiry=expiry_hours,
                                size=0.0, series=k)
        self.series_token = np.append(self.series_token, token)
        self.series_row = np.append(self.series_row, rows.start)
        for name in ("series_supply", "reserve", "payout"):
            setattr(self, name, np.append(getattr(self, name), 0.0))
        self.settled = np.append(self.settled, False)
        return k

    def issue(self, k: int, supply: float) -> None:
        """Record that the vault wrote (and sold) ``supply`` tokens of series ``k``.

        No premium moves: the vault's balance is what it holds after the sale.
        """
        if supply < 0:
            raise ProtocolError("a series' supply cannot be negative")
        self.series_supply[k] = supply
        self.book.size[self.series_row[k]] = -supply

    def vault_position(self, rows) -> np.ndarray:
        """The vault's size on book rows: the trader's opposite, or a series' own short."""
        b = self.book
        return np.where(b.series[rows] >= 0, b.size[rows], -b.size[rows])

    def series_price(self, price: np.ndarray, now_hours: float) -> np.ndarray:
        """Price of one token of each series (numeraire), at per-asset ``price``.

        Before settlement the option's value on the surface (``greeks``); after it the claim
        on the redemption reserve, ``reserve / supply`` settlement tokens at their price.
        """
        value = self.greeks(price, now_hours, self.series_row)[0]
        settlement = np.asarray(price)[self.series_settlement()]
        return np.where(self.settled, self.claim_per_token() * settlement, value)

    def series_settlement(self) -> np.ndarray:
        """Asset index of each series' settlement token."""
        return self.settlement_asset[self.book.protocol[self.series_row]]

    def claim_per_token(self) -> np.ndarray:
        """Settlement tokens a settled series' token claims: ``reserve / supply``.

        The payout per token where no token exists (0 before settlement).
        """
        return np.divide(self.reserve, self.series_supply, out=self.payout.copy(),
                         where=self.series_supply > 0)

    def greeks(self, price: np.ndarray, now_hours: float, rows=None, forward=None
               ) -> tuple[np.ndarray, ...]:
        """(value, delta, gamma, vega, theta) per option unit of the rows, at ``price``.

        ``price`` is per asset (the underlying's spot); ``forward``, per asset, is the perp
        mark or future that ``on_forward`` rows are on (default: ``price``). Volatility from
        the surface; expired rows are worth their intrinsic value.
        """
        b = self.book
        rows = np.arange(len(b)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return tuple(np.zeros(0) for _ in range(5))
        return self.quote(b.asset[rows], b.kind[rows], b.strike[rows], b.expiry[rows],
                          self.underlying_price(price, rows, forward), now_hours,
                          on_forward=b.on_forward[rows])

    def quote(self, asset, kind, strike, expiry_hours, underlying, now_hours: float, *,
              on_forward=False) -> tuple[np.ndarray, ...]:
        """(value, delta, gamma, vega, theta) per unit of options not (yet) in the book.

        ``underlying`` is each option's spot (Black-Scholes) or, with ``on_forward``, its
        forward (Black-76); arrays broadcast together.
        """
        asset, kind, k, expiry, s, fwd = np.broadcast_arrays(
            np.asarray(asset, dtype=np.int64), np.asarray(kind, dtype=np.int64),
            np.asarray(strike, dtype=np.float64), np.asarray(expiry_hours, dtype=np.float64),
            np.asarray(underlying, dtype=np.float64), np.asarray(on_forward, dtype=np.bool_))
        n = len(np.atleast_1d(s))
        asset, kind, k, expiry, s, fwd = (np.atleast_1d(x) for x in
                                          (asset, kind, k, expiry, s, fwd))
        out = [np.zeros(n) for _ in range(5)]
        t = np.maximum(expiry - now_hours, 0.0) / HOURS_PER_YEAR
        rate = np.full(n, self.rate)
        vol = self.surface.vol(asset, k, s, t)
        for on_fwd in (False, True):
            mask = fwd == on_fwd
            if not mask.any():
                continue
            parts = [np.empty(int(mask.sum())) for _ in range(5)]
            if on_fwd:
                black76(kind[mask], s[mask], k[mask], t[mask], vol[mask], rate[mask], *parts)
            else:
                black_scholes(kind[mask], s[mask], k[mask], t[mask], vol[mask], rate[mask],
                              np.zeros(int(mask.sum())), *parts)
            for o, part in zip(out, parts, strict=True):
                o[mask] = part
        return tuple(out)

    def risk(self, protocol: int, price: np.ndarray, now_hours: float, n_assets: int,
             forward=None) -> tuple[np.ndarray, np.ndarray]:
        """The vault's cash gamma ``gamma S^2 / 100`` and vega ``vega / 100`` per asset (USD).

        The vault holds the opposite of every open row of its protocol.
        """
        b = self.book
        live = np.flatnonzero((b.size != 0) & (b.protocol == protocol))
        _, _, gam, veg, _ = self.greeks(price, now_hours, live, forward)
        s = self.underlying_price(price, live, forward)
        w = -b.size[live]
        return (np.bincount(b.asset[live], weights=w * gam * s * s / 100.0, minlength=n_assets),
                np.bincount(b.asset[live], weights=w * veg / 100.0, minlength=n_assets))

    def _within_limits(self, rows: np.ndarray, size: np.ndarray, gam: np.ndarray,
                       veg: np.ndarray, price, now_hours: float, forward) -> np.ndarray:
        """Which new ``rows`` the vaults take, in order, under their gamma and vega limits."""
        b = self.book
        take = np.ones(len(rows), dtype=bool)
        n_assets = int(b.asset.max()) + 1
        s = self.underlying_price(price, rows, forward)
        for p in np.unique(b.protocol[rows]):
            if np.isinf(self.gamma_limit[p]) and np.isinf(self.vega_limit[p]):
                continue
            mine = b.protocol[rows] == p
            b.size[rows[mine]] = 0.0  # the vault's risk before the new rows
            g, v = self.risk(p, price, now_hours, n_assets, forward)
            b.size[rows[mine]] = size[mine]
            for i in np.flatnonzero(mine):
                a = b.asset[rows[i]]
                dg = -size[i] * gam[i] * s[i] ** 2 / 100.0
                dv = -size[i] * veg[i] / 100.0
                ok_g = abs(g[a] + dg) <= self.gamma_limit[p] or abs(g[a] + dg) < abs(g[a])
                ok_v = abs(v[a] + dv) <= self.vega_limit[p] or abs(v[a] + dv) < abs(v[a])
                if ok_g and ok_v:
                    g[a] += dg
                    v[a] += dv
                else:
                    take[i] = False
        return take

    def trade(self, owner, protocol, asset, kind, strike, expiry_hours, size, *, price,
              now_hours: float, on_forward=False, forward=None) -> tuple[slice, np.ndarray]:
        """Open positions against the vault at the surface's price, within its limits.

        A trader who writes (``size < 0``) sells the option to the vault and must secure
        it: only puts, cash-secured, with ``strike * |size|`` settlement tokens locked as
        collateral until expiry (a written call would need the underlying: not offered).
        Rows the vault's gamma or vega limit refuses keep ``size == 0``.

        Returns:
            (rows, premium per row in settlement tokens: paid by the trader when > 0, i.e.
            buying; received when < 0, i.e. writing; 0 for a refused row). The caller moves
            the trader's tokens (premium, and for writers the collateral in
            ``book.collateral``).
        """
        size = np.atleast_1d(np.asarray(size, dtype=np.float64))
        kind = np.broadcast_to(np.asarray(kind, dtype=np.int64), size.shape)
        if np.any(size == 0) or not np.all(np.isin(kind, (CALL, PUT))):
            raise ProtocolError("options need a non-zero size and kind CALL or PUT")
        if np.any((size < 0) & (kind == CALL)):
            raise ProtocolError("a written option must be a cash-secured put")
        if np.any(np.asarray(expiry_hours, dtype=np.float64) <= now_hours):
            raise ProtocolError("an option must expire after now")
        if np.any(np.asarray(strike, dtype=np.float64) <= 0):
            raise ProtocolError("strikes must be > 0")
        strike = np.broadcast_to(np.asarray(strike, dtype=np.float64), size.shape)
        rows = self.book.append(owner=owner, protocol=protocol, asset=asset, kind=kind,
                                on_forward=on_forward, strike=strike, expiry=expiry_hours,
                                size=size, collateral=np.where(size < 0, -size * strike, 0.0))
        new = np.arange(rows.start, rows.stop)
        value, _, gam, veg, _ = self.greeks(price, now_hours, new, forward)
        take = self._within_limits(new, size, gam, veg, price, now_hours, forward)
        self.book.size[new[~take]] = 0.0
        self.book.collateral[new[~take]] = 0.0
        premium = np.where(take, size * value, 0.0)
        after = self.vault + np.bincount(self.book.protocol[rows], weights=premium,
                                         minlength=len(self.vault))
        if np.any(after < 0):
            self.book.size[rows] = 0.0  # undo: the vault cannot pay the writers' premiums
            self.book.collateral[rows] = 0.0
            raise ProtocolError("the vault cannot pay the premiums of the written options")
        self.vault = after
        return rows, premium

    def settle(self, price: np.ndarray, now_hours: float, forward=None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Settle every option expired by ``now_hours`` at ``price``; close its row.

        Options on a forward settle at ``forward`` (per asset; default ``price``).
        Option-token series settle too: the vault moves what their holders are owed into
        each series' redemption reserve (``reserve``, ``payout`` per token).

        Returns:
            (traders' rows settled, settlement tokens paid to each row's owner: a holder's
            payoff, or what a writer's collateral has left after paying its payoff to the
            vault). A vault that cannot pay books the gap as bad debt and pays what it has,
            pro rata to the rows and series it owes.
        """
        b = self.book
        unsettled = np.zeros(len(b), dtype=np.bool_)  # series settle even with no supply
        unsettled[self.series_row[~self.settled]] = True
        rows = np.flatnonzero(((b.size != 0) | unsettled) & (b.expiry <= now_hours))
        if len(rows) == 0:
            return rows, np.zeros(0)
        s = self.underlying_price(price, rows, forward)
        intrinsic = np.maximum(b.kind[rows] * (s - b.strike[rows]), 0.0)
        series = b.series[rows] >= 0
        # What the vault owes each row (> 0) or is owed by it (< 0: a writer's payoff); the
        # holders of a series' tokens are owed supply * intrinsic (its row is the vault's).
        due = b.size[rows] * intrinsic
        due[series] = -due[series]
        for p in range(len(self.names)):
            mine = b.protocol[rows] == p
            won = mine & (due > 0)
            owed = due[won].sum()
            can = self.vault[p] - due[mine & (due < 0)].sum()  # writers pay first
            if owed > max(can, 0.0):  # the winners share what the vault has; rest: bad debt
                scale = max(can, 0.0) / owed
                self.bad_debt[p] += owed * (1.0 - scale)
                due[won] *= scale
            self.vault[p] -= due[mine].sum()
        k = b.series[rows[series]]
        self.reserve[k] += due[series]
        self.payout[k] = np.divide(due[series], self.series_supply[k],
                                   out=intrinsic[series].copy(), where=self.series_supply[k] > 0)
        self.settled[k] = True
        # A writer pays its (negative) payoff out of its collateral and gets the rest back.
        paid = np.where(b.size[rows] < 0, b.collateral[rows] + due, due)
        b.size[rows] = 0.0
        b.collateral[rows] = 0.0
        return rows[~series], paid[~series]

    def held_by_protocol(self) -> np.ndarray:
        """Settlement tokens each protocol holds (``held`` per protocol, not per asset).

        Its vault, its writers' collateral and its series' redemption reserves.
        """
        n, b = len(self.names), self.book
        return (self.vault
                + np.bincount(b.protocol, weights=b.collateral, minlength=n)
                + np.bincount(b.protocol[self.series_row], weights=self.reserve, minlength=n))

    def held(self, n_assets: int) -> np.ndarray:
        """Settlement tokens the protocols hold per asset.

        The vaults, the writers' collateral and the series' redemption reserves.
        """
        b = self.book
        return (np.bincount(self.settlement_asset, weights=self.vault, minlength=n_assets)
                + np.bincount(self.settlement_asset[b.protocol], weights=b.collateral,
                              minlength=n_assets)
                + np.bincount(self.series_settlement(), weights=self.reserve,
                              minlength=n_assets))
