"""Maker-style CDP protocols: vaults, stability fees, Dog.bark and collateral auctions.

Every CDP protocol of a model lives in one ``CDPs`` object as *ilks* (one collateral asset of
one CDP protocol); each protocol issues one stablecoin. Vaults are one structure-of-arrays
book (``ink`` collateral, ``art`` normalised debt; debt = ``art * rate[ilk]``, Vat.sol).
Auctions are Liquidations 2.0 Dutch auctions (Dog + Clipper) or, per ilk, the Liquidations
1.2 English auctions that failed on Black Thursday (Flipper); the kernels are in
``sim.engine.dog``, ``sim.engine.clipper`` and ``sim.engine.flipper``, named together in
``sim.engine.cdp``.

Ledger per protocol (Vat's ``debt = vice + sum(Art * rate)``, with Vow holding ``sin`` and
its DAI as ``surplus``)::

    total_debt + sin == outstanding + surplus

``outstanding`` is stable minted minus burnt: mint on ``open_vaults`` and on keeper
incentives (``vat.suck``: new stable to the keeper, the cost into ``sin``); burn on
``repay``, takes and won English bids. Stability fees (Jug.drip) raise debt and ``surplus``
together: a claim on vault owners, no tokens. Bad debt is what stays in ``sin`` once
auctions end (``stats[:, BAD_DEBT]`` books each auction's share of it).

Collateral tokens are held by the protocol as vault ``ink``, auction lots and owners' free
``gem`` (lots returned after an auction, Vat.gem); ``held()`` and ``minted()`` let a model
check that tokens held by everyone minus net minted supply stays constant.
"""

from __future__ import annotations

import numpy as np

from sim.engine import cdp as cdp_kernel
from sim.protocols.errors import ProtocolError

SECONDS_PER_YEAR = 365.0 * 86400.0  # Jug.drip over a 365-day year
CURVES = {"stairstep_exponential": cdp_kernel.STAIRSTEP_EXPONENTIAL,
          "exponential": cdp_kernel.EXPONENTIAL, "linear": cdp_kernel.LINEAR}
AUCTION_KINDS = {"dutch": cdp_kernel.DUTCH, "english": cdp_kernel.ENGLISH}
ILK_DEFAULTS = {
    # ETH-A/ETH-B style values (shared/reference/protocols.md); override per ilk.
    "liquidation_ratio": 1.5, "stability_fee": 0.0, "liquidation_penalty": 0.13,
    "dust": 0.0, "debt_ceiling": np.inf, "hole": np.inf, "auction_kind": "dutch",
    "curve": "stairstep_exponential", "buf": 1.3, "cut": 0.99, "step_seconds": 90.0,
    "tau_seconds": 21600.0, "tail_seconds": 8400.0, "cusp": 0.4, "chip": 0.0, "tip": 0.0,
    # Liquidations 1.2 (Black Thursday, March 2020): beg 3%, ttl 10 min, tau 6 h.
    "beg": 0.03, "ttl_seconds": 600.0, "venue": -1,
}


class VaultBook:
    """Vaults as a structure of arrays; grows by whole blocks."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int32)
        self.ilk = np.zeros(0, dtype=np.int32)
        self.ink = np.zeros(0, dtype=np.float64)
        self.art = np.zeros(0, dtype=np.float64)
        self.gem = np.zeros(0, dtype=np.float64)  # free collateral returned by auctions

    def __len__(self) -> int:
        return len(self.ink)

    def append(self, owner, ilk, ink, art) -> slice:
        """Add rows; return the slice they occupy."""
        start = len(self)
        n = len(np.atleast_1d(ink))
        self.owner = np.concatenate([self.owner, np.asarray(owner, dtype=np.int32)])
        self.ilk = np.concatenate([self.ilk, np.asarray(ilk, dtype=np.int32)])
        self.ink = np.concatenate([self.ink, np.asarray(ink, dtype=np.float64)])
        self.art = np.concatenate([self.art, np.asarray(art, dtype=np.float64)])
        self.gem = np.concatenate([self.gem, np.zeros(n)])
        return slice(start, len(self))


class AuctionBook:
    """Collateral auctions (Dutch and English) as a structure of arrays."""

    FLOAT_FIELDS = ("lot", "tab", "due", "top", "tic", "kicked", "start_price", "raised",
                    "sold", "end_time", "bid", "bid_expiry", "end")

    def __init__(self) -> None:
        self.ilk = np.zeros(0, dtype=np.int64)
        self.vault = np.zeros(0, dtype=np.int64)
        self.guy = np.zeros(0, dtype=np.int64)
        self.active = np.zeros(0, dtype=np.bool_)
        self.kind = np.zeros(0, dtype=np.int64)
        for name in self.FLOAT_FIELDS:
            setattr(self, name, np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.lot)

    def append(self, **fields) -> None:
        """Add auctions; unnamed float fields start at 0, ``guy`` at -1."""
        n = len(fields["lot"])
        self.ilk = np.concatenate([self.ilk, np.asarray(fields["ilk"], dtype=np.int64)])
        self.vault = np.concatenate([self.vault, np.asarray(fields["vault"], dtype=np.int64)])
        self.kind = np.concatenate([self.kind, np.asarray(fields["kind"], dtype=np.int64)])
        self.guy = np.concatenate([self.guy, np.full(n, -1, dtype=np.int64)])
        self.active = np.concatenate([self.active, np.ones(n, dtype=np.bool_)])
        for name in self.FLOAT_FIELDS:
            new = np.asarray(fields.get(name, np.zeros(n)), dtype=np.float64)
            setattr(self, name, np.concatenate([getattr(self, name), new]))


class CDPs:
    """Every CDP protocol of the model, as one table of ilks.

    Args:
        names: CDP protocol names.
        stable_asset: asset index of each protocol's stablecoin.
        n_assets: number of assets in the model.
        ilks: one mapping per ilk with ``protocol`` (name or index) and ``asset`` (index),
            and any of ``ILK_DEFAULTS``' keys (``venue``: pool index or -1).
        big_hole: each protocol's ``Hole`` (max stable in all its auctions).
        zero_bid_threshold: auctions whose stable raised per collateral value at kick is
            below this are booked as zero-bid losses.
    """

    def __init__(self, names: list[str], stable_asset, n_assets: int, ilks: list[dict],
                 big_hole, zero_bid_threshold: float = 0.05):
        self.names = list(names)
        self.n_assets = n_assets
        self.stable_asset = np.asarray(stable_asset, dtype=np.int64)
        self.zero_bid_threshold = float(zero_bid_threshold)
        full = []
        for spec in ilks:
            unknown = set(spec) - set(ILK_DEFAULTS) - {"protocol", "asset"}
            if unknown:
                raise ProtocolError(f"unknown ilk parameters {sorted(unknown)}")
            full.append({**ILK_DEFAULTS, **spec})
        self.ilk_protocol = np.array([s["protocol"] if isinstance(s["protocol"], int)
                                      else self.names.index(s["protocol"]) for s in full],
                                     dtype=np.int64)
        self.ilk_asset = np.array([s["asset"] for s in full], dtype=np.int64)
        self.ilk_venue = np.array([s["venue"] for s in full], dtype=np.int64)
        self.ilk_curve = np.array([CURVES[s["curve"]] for s in full], dtype=np.int64)
        self.ilk_auction = np.array([AUCTION_KINDS[s["auction_kind"]] for s in full],
                                    dtype=np.int64)

        def col(key: str) -> np.ndarray:
            return np.array([float(s[key]) for s in full], dtype=np.float64)

        self.liquidation_ratio = col("liquidation_ratio")
        self.stability_fee = col("stability_fee")
        self.liquidation_penalty = col("liquidation_penalty")
        self.chop = 1.0 + self.liquidation_penalty
        self.dust = col("dust")
        self.debt_ceiling = col("debt_ceiling")
        self.hole = col("hole")
        self.buf, self.cut = col("buf"), col("cut")
        self.step_seconds, self.tau_seconds = col("step_seconds"), col("tau_seconds")
        self.tail_seconds, self.cusp = col("tail_seconds"), col("cusp")
        self.chip, self.tip = col("chip"), col("tip")
        self.beg, self.ttl_seconds = col("beg"), col("ttl_seconds")
        self.chost = self.dust * self.chop  # Clipper.upchost: dust * chop

        k, n_protocols = len(full), len(self.names)
        self.rate = np.ones(k)
        self.ilk_art = np.zeros(k)  # Vat Art
        self.dirt = np.zeros(k)
        self.big_hole = np.asarray(big_hole, dtype=np.float64).reshape(n_protocols)
        self.big_dirt = np.zeros(n_protocols)
        self.sin = np.zeros(n_protocols)
        self.surplus = np.zeros(n_protocols)
        self.stable_minted = np.zeros(n_protocols)
        self.stable_burnt = np.zeros(n_protocols)
        self.stats = np.zeros((n_protocols, cdp_kernel.N_STATS))
        self.vaults = VaultBook()
        self.auctions = AuctionBook()

    # --- vaults -----------------------------------------------------------------------------

    def _rows(self, rows) -> np.ndarray:
        # Rows as an index array: a slice from open_vaults, a list, or an array.
        return np.arange(len(self.vaults), dtype=np.int64)[rows]

    def debt_of(self, rows) -> np.ndarray:
        """Stable debt of the given vaults: ``art * rate``."""
        v = self.vaults
        return v.art[rows] * self.rate[v.ilk[rows]]

    def ilk_debt(self) -> np.ndarray:
        """Stable debt per ilk: ``Art * rate``."""
        return self.ilk_art * self.rate

    def total_debt(self) -> np.ndarray:
        """Stable debt of all vaults, per protocol."""
        return np.bincount(self.ilk_protocol, weights=self.ilk_debt(),
                           minlength=len(self.names))

    def collateralisation(self, rows, asset_price) -> np.ndarray:
        """``ink * price / debt`` of the given vaults (``inf`` without debt); unsafe < mat."""
        v = self.vaults
        num = v.ink[rows] * asset_price[self.ilk_asset[v.ilk[rows]]]
        den = self.debt_of(rows)
        return np.divide(num, den, out=np.full(len(num), np.inf), where=den > 0)

    def _check_safe(self, ilk, ink, debt, asset_price) -> None:
        # Vat.frob "not-safe": debt <= ink * spot, spot = price / mat.
        limit = ink * asset_price[self.ilk_asset[ilk]] / self.liquidation_ratio[ilk]
        if np.any(debt > limit * (1 + 1e-12)):
            raise ProtocolError("vault would be unsafe (debt above ink * price / mat)")

    def open_vaults(self, owner, ilk, ink, debt, asset_price) -> tuple[slice, np.ndarray]:
        """Lock collateral and draw stable (Vat.frob): safe, not dusty, under the ceiling.

        Returns:
            (rows of the new vaults, stable minted per vault: the caller credits the owners
            and debits the collateral it locked).
        """
        ilk = np.asarray(ilk, dtype=np.int64)
        ink = np.asarray(ink, dtype=np.float64)
        debt = np.asarray(debt, dtype=np.float64)
        if np.any(ink < 0) or np.any(debt < 0):
            raise ProtocolError("negative collateral or debt")
        self._check_safe(ilk, ink, debt, asset_price)
        if np.any((debt > 0) & (debt < self.dust[ilk])):
            raise ProtocolError("vault debt below dust")
        new = np.bincount(ilk, weights=debt, minlength=len(self.rate))
        if np.any(self.ilk_debt() + new > self.debt_ceiling * (1 + 1e-12)):
            raise ProtocolError("debt ceiling (line) exceeded")
        art = debt / self.rate[ilk]
        self.ilk_art += np.bincount(ilk, weights=art, minlength=len(self.rate))
        minted = np.bincount(self.ilk_protocol[ilk], weights=debt, minlength=len(self.names))
        self.stable_minted += minted
        return self.vaults.append(owner, ilk, ink, art), debt.copy()

    def repay(self, rows, amounts) -> None:
        """Burn stable to pay back debt; the rest must be zero or at least ``dust``."""
        v = self.vaults
        rows = self._rows(rows)
        amounts = np.asarray(amounts, dtype=np.float64)
        ilk = v.ilk[rows]
        debt = self.debt_of(rows)
        if np.any(amounts < 0) or np.any(amounts > debt * (1 + 1e-12)):
            raise ProtocolError("repay must be between 0 and the vault's debt")
        left = np.maximum(debt - amounts, 0.0)
        left[left <= 1e-12 * debt] = 0.0
        if np.any((left > 0) & (left < self.dust[ilk])):
            raise ProtocolError("repay would leave a dusty vault")
        dart = v.art[rows] - left / self.rate[ilk]
        np.subtract.at(v.art, rows, dart)
        np.subtract.at(self.ilk_art, ilk, dart)
        self.stable_burnt += np.bincount(self.ilk_protocol[ilk], weights=amounts,
                                         minlength=len(self.names))

    def add_collateral(self, rows, amounts) -> None:
        """Lock more collateral (the caller debits the owners)."""
        amounts = np.asarray(amounts, dtype=np.float64)
        if np.any(amounts < 0):
            raise ProtocolError("negative collateral")
        np.add.at(self.vaults.ink, self._rows(rows), amounts)

    def remove_collateral(self, rows, amounts, asset_price) -> None:
        """Free collateral (the caller credits the owners); refused if a vault turns unsafe."""
        v = self.vaults
        rows = self._rows(rows)
        amounts = np.asarray(amounts, dtype=np.float64)
        after = v.ink[rows] - amounts
        if np.any(amounts < 0) or np.any(after < -1e-12 * v.ink[rows]):
            raise ProtocolError("collateral withdrawal above the vault's ink")
        self._check_safe(v.ilk[rows], np.maximum(after, 0.0), self.debt_of(rows), asset_price)
        np.subtract.at(v.ink, rows, amounts)
        np.maximum(v.ink, 0.0, out=v.ink)

    def collect(self, rows) -> np.ndarray:
        """Pay out the free collateral auctions returned to these vaults (the caller credits)."""
        rows = self._rows(rows)
        out = self.vaults.gem[rows].copy()
        self.vaults.gem[rows] = 0.0
        return out

    def drip(self, dt_hours: float) -> np.ndarray:
        """Jug.drip: ``rate *= (1 + fee)^(dt / year)``; the fee goes to ``surplus``.

        Returns:
            stable fee accrued per ilk.
        """
        growth = (1.0 + self.stability_fee) ** (dt_hours * 3600.0 / SECONDS_PER_YEAR)
        fee = self.ilk_art * self.rate * (growth - 1.0)
        self.rate *= growth
        self.surplus += np.bincount(self.ilk_protocol, weights=fee, minlength=len(self.names))
        return fee

    # --- liquidations -----------------------------------------------------------------------

    def bark(self, t: float, asset_price, barker: int = -1, keeper_balance=None) -> int:
        """Dog.bark every unsafe vault at oracle prices ``asset_price`` and time ``t`` (s).

        Dutch auctions pay the barker ``tip + chip * tab`` in new stable (Dog.bark's
        ``vat.suck``), credited to ``keeper_balance[barker]``; with ``barker == -1`` (or an
        English ilk: Cat paid nothing) no incentive is paid.

        Returns:
            number of auctions started.
        """
        v = self.vaults
        n = len(v)
        out_vault = np.zeros(n, dtype=np.int64)
        out_dink, out_dart, out_tab = np.zeros(n), np.zeros(n), np.zeros(n)
        ilk_price = np.asarray(asset_price, dtype=np.float64)[self.ilk_asset]
        count = cdp_kernel.bark(v.ilk, v.ink, v.art, self.ilk_art, self.rate,
                                self.liquidation_ratio, self.chop, self.dust, self.hole,
                                self.dirt, self.ilk_protocol, self.big_hole, self.big_dirt,
                                ilk_price, out_vault, out_dink, out_dart, out_tab)
        if count == 0:
            return 0
        vault = out_vault[:count]
        ilk = v.ilk[vault].astype(np.int64)
        due = out_dart[:count] * self.rate[ilk]
        tab = out_tab[:count]
        protocol = self.ilk_protocol[ilk]
        kind = self.ilk_auction[ilk]
        n_p = len(self.names)
        self.sin += np.bincount(protocol, weights=due, minlength=n_p)  # vow.fess
        self.stats[:, cdp_kernel.AUCTIONS_STARTED] += np.bincount(protocol, minlength=n_p)
        start = ilk_price[ilk]
        self.auctions.append(
            ilk=ilk, vault=vault, kind=kind, lot=out_dink[:count], tab=tab, due=due,
            top=start * self.buf[ilk], tic=np.full(count, t), kicked=np.full(count, t),
            start_price=start, end=t + self.tau_seconds[ilk])
        if barker >= 0 and keeper_balance is not None:
            coin = np.where(kind == cdp_kernel.DUTCH, self.tip[ilk] + self.chip[ilk] * tab, 0.0)
            paid = np.bincount(protocol, weights=coin, minlength=n_p)
            self.sin += paid
            self.stable_minted += paid
            self.stats[:, cdp_kernel.KEEPER_INCENTIVES] += paid
            np.add.at(keeper_balance[barker], self.stable_asset, paid)
        return count

    def run_auctions(self, t0: float, t1: float, *, oracle_price, external_price, keepers,
                     pools=None, gas_sink, opportunist=None, opportunist_bid: float = 1e-9
                     ) -> None:
        """Advance every active auction over ``[t0, t1]`` seconds (one model step).

        Args:
            t0, t1: interval in seconds.
            oracle_price: per-asset oracle prices (``top = oracle * buf`` at redo).
            external_price: per-asset prices at which keepers value tokens.
            keepers: has ``balance`` (keepers x assets, updated), ``gas_cost`` and
                ``min_profit`` (numeraire, per transaction) and ``order`` (acting order),
                as ``sim.agents.liquidator.LiquidatorTable``.
            pools: the model's ``sim.protocols.amm.Pools`` (reserves updated), or None when
                no ilk has a venue.
            gas_sink: per-asset gas paid (updated).
            opportunist: bool per keeper, Black Thursday's zero-bidders (English only).
            opportunist_bid: the tiny bid they place (stable).
        """
        a = self.auctions
        if not a.active.any():
            return
        if pools is None:
            rb = rq = fee = amp = peg = np.zeros(1)
            quote = np.zeros(1, dtype=np.int64)
        else:
            rb, rq, fee = pools.reserve_base, pools.reserve_quote, pools.fee
            amp, peg, quote = pools.amp, pools.peg, pools.quote
        order = np.asarray(keepers.order, dtype=np.int64)
        gas = np.asarray(keepers.gas_cost, dtype=np.float64)
        min_profit = np.asarray(keepers.min_profit, dtype=np.float64)
        opp = (np.zeros(len(gas), dtype=np.bool_) if opportunist is None
               else np.asarray(opportunist, dtype=np.bool_))
        oracle_price = np.asarray(oracle_price, dtype=np.float64)
        external_price = np.asarray(external_price, dtype=np.float64)
        dutch = a.active & (a.kind == cdp_kernel.DUTCH)
        english = a.active & (a.kind == cdp_kernel.ENGLISH)
        if dutch.any():
            active = dutch.copy()
            cdp_kernel.run_dutch(
                t0, t1, active, a.ilk, a.vault, a.lot, a.tab, a.due, a.top, a.tic,
                a.start_price, a.raised, a.sold, a.end_time, self.ilk_curve, self.buf,
                self.cut, self.step_seconds, self.tau_seconds, self.tail_seconds, self.cusp,
                self.chip, self.tip, self.chost, self.ilk_asset, self.ilk_protocol,
                self.ilk_venue, self.dirt, self.big_dirt, self.stable_asset, self.sin,
                self.surplus, self.stable_minted, self.stable_burnt, self.vaults.gem,
                oracle_price, external_price, rb, rq, fee, amp, peg, quote, keepers.balance, gas,
                min_profit, order, gas_sink, self.zero_bid_threshold, self.stats)
            a.active[dutch] = active[dutch]
        if english.any():
            active = english.copy()
            cdp_kernel.run_english(
                t0, t1, active, a.ilk, a.vault, a.lot, a.tab, a.due, a.bid, a.guy,
                a.bid_expiry, a.end, a.kicked, a.start_price, a.raised, a.sold, a.end_time,
                self.beg, self.ttl_seconds, self.tau_seconds, self.ilk_asset,
                self.ilk_protocol, self.ilk_venue, self.dirt, self.big_dirt, self.stable_asset,
                self.sin, self.surplus, self.stable_burnt, self.vaults.gem, external_price, rb, rq,
                fee, amp, peg, quote, keepers.balance, gas, min_profit, order, opp, opportunist_bid,
                gas_sink, self.zero_bid_threshold, self.stats)
            a.active[english] = active[english]

    # --- accounting -------------------------------------------------------------------------

    def outstanding(self) -> np.ndarray:
        """Stable tokens in circulation per protocol: minted minus burnt."""
        return self.stable_minted - self.stable_burnt

    def minted(self) -> np.ndarray:
        """Net minted supply per asset (only the protocols' stablecoins are ever minted)."""
        return np.bincount(self.stable_asset, weights=self.outstanding(),
                           minlength=self.n_assets)

    def held(self) -> np.ndarray:
        """Tokens the protocols hold per asset: vault ink, owners' gem, auction lots, bids."""
        v, a = self.vaults, self.auctions
        ilk_asset_of_vault = self.ilk_asset[v.ilk]
        held = np.bincount(ilk_asset_of_vault, weights=v.ink + v.gem, minlength=self.n_assets)
        live = a.active
        held += np.bincount(self.ilk_asset[a.ilk[live]], weights=a.lot[live],
                            minlength=self.n_assets)
        stable = self.stable_asset[self.ilk_protocol[a.ilk[live]]]
        held += np.bincount(stable, weights=a.bid[live], minlength=self.n_assets)
        return held

    def ledger(self) -> tuple[np.ndarray, np.ndarray]:
        """Both sides of ``total_debt + sin == outstanding + surplus``, per protocol."""
        return self.total_debt() + self.sin, self.outstanding() + self.surplus

    def outcome(self) -> np.ndarray:
        """Per auction: stable raised per collateral sold, over the oracle price at kick."""
        a = self.auctions
        value = a.sold * a.start_price
        return np.divide(a.raised, value, out=np.full(len(a), np.nan), where=value > 0)
