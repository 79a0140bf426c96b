"""Delta hedging on a venue: the rule shared by every desk that hedges (issue #4).

A desk holds tokens (``balance``: desks x assets), its own holding of each hedged asset
(``own``, the inventory it hedges around), and perp positions when it hedges on perps. Its
*net delta* in a hedged asset is the delta handed to it (an options book's) plus its
inventory beyond ``own`` plus its perp positions. Every ``every`` steps, when the net delta
is worth more than ``band_usd`` away from the target ``target_usd``, the desks trade it back
to the target, each as far as its tokens go, in a random order: desks that share one book
(the vault's hedgers) split its hedge equally; desks with books of their own (volatility
arbitrageurs) each hedge their own.

Venues, per hedged asset:

- ``POOL``: the asset's pool (base = the asset), trading against the desk's cash (the pool's
  quote), with the pool's fee and price impact (``sim.protocols.amm``).
- ``SPOT``: the outside market at the external price, with a fee ``spot_fee`` per trade's
  value; the tokens come from or go to the outside world (``external``).
- ``PERP``: a perp position per desk in the asset's market of a perpetuals protocol, opened
  and resized at the mark (closed and reopened: P&L realised each time), margined with
  ``perp_margin`` of its notional in the desk's cash (the protocol's settlement token); no
  fee and no price impact, but funding is paid or earned, and the perps vault takes the
  other side (and hedges it on its pool if it has one).

What a hedge costs beyond the value it moves (fees and impact at the external prices) is
``cost`` (numeraire), reset at every hedging step.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Population, StepContext, amounts, by_group
from sim.protocols.amm import Pools
from sim.protocols.errors import ProtocolError
from sim.protocols.perps import PerpMarkets

POOL, SPOT, PERP = 0, 1, 2


class HedgingTable:
    """Balances, own holdings and perp positions of a set of desks, and the hedging rule.

    Args:
        balance: float[n, m], token balances per desk and asset.
        own: float[n, m], each desk's own holding per asset (what it hedges around).
        assets: int[h], the hedged assets.
        venue_kind: int[h], ``POOL``, ``SPOT`` or ``PERP`` per hedged asset.
        venue: int[h], the pool index (``POOL``) or perp market index (``PERP``); unused
            for ``SPOT``.
        cash: asset index of the desks' cash token.
        band_usd: net delta value within which nothing is traded.
        every: steps between hedges.
        target_usd: float[h], the net delta each asset is hedged to (numeraire).
        spot_fee: fee per spot trade, a share of its value.
        perp_margin: margin per unit of perp notional.
        perp_owner: int[n], the desks' owner ids in the perps book.
    """

    def __init__(self, balance: np.ndarray, *, own: np.ndarray, assets, venue_kind, venue,
                 cash: int, band_usd: float, every: int, target_usd=None,
                 spot_fee: float = 0.0, perp_margin: float = 1.0, perp_owner=None):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.own = np.asarray(own, dtype=np.float64)
        self.assets = np.asarray(assets, dtype=np.int64)
        self.venue_kind = np.asarray(venue_kind, dtype=np.int64)
        self.venue = np.asarray(venue, dtype=np.int64)
        self.cash = int(cash)
        self.band_usd = float(band_usd)
        self.every = max(1, int(every))
        h = len(self.assets)
        self.target_usd = np.zeros(h) if target_usd is None else np.asarray(
            target_usd, dtype=np.float64)
        self.spot_fee = float(spot_fee)
        self.perp_margin = float(perp_margin)
        n = len(self.balance)
        self.perp_owner = np.arange(n, dtype=np.int64) if perp_owner is None else \
            np.asarray(perp_owner, dtype=np.int64)
        self.perp_row = np.full((n, h), -1, dtype=np.int64)  # open perp row per desk, asset
        self.cost = 0.0

    def __len__(self) -> int:
        return len(self.balance)

    # --- perps ------------------------------------------------------------------------------

    def perp_size(self, perps: PerpMarkets) -> np.ndarray:
        """float[n, m]: each desk's perp position per asset (base units)."""
        out = np.zeros_like(self.balance)
        for j, a in enumerate(self.assets):
            rows = self.perp_row[:, j]
            open_ = rows >= 0
            out[open_, a] = perps.book.size[rows[open_]]
        return out

    def perp_equity(self, perps: PerpMarkets, price: np.ndarray) -> np.ndarray:
        """float[n]: each desk's perp equity in settlement tokens at the oracle ``price``."""
        out = np.zeros(len(self))
        rows = self.perp_row
        if (rows >= 0).any():
            equity = perps.equity(price)
            for j in range(rows.shape[1]):
                open_ = rows[:, j] >= 0
                out[open_] += equity[rows[open_, j]]
        return out

    def receive(self, perps: PerpMarkets, payout: np.ndarray) -> None:
        """Credit what a perp liquidation released (``payout`` over the book).

        Rows the liquidation closed are forgotten.
        """
        for j in range(self.perp_row.shape[1]):
            for k in np.flatnonzero(self.perp_row[:, j] >= 0):
                row = self.perp_row[k, j]
                self.balance[k, self.cash] += payout[row]
                if perps.book.size[row] == 0.0:
                    self.perp_row[k, j] = -1

    # --- hedging ----------------------------------------------------------------------------

    def net_delta(self, delta: np.ndarray, perps: PerpMarkets | None) -> np.ndarray:
        """float[h]: the desks' net delta per hedged asset (tokens), all desks together."""
        inventory = (self.balance - self.own).sum(0)
        if perps is not None:
            inventory = inventory + self.perp_size(perps).sum(0)
        return np.asarray(delta, dtype=np.float64)[self.assets] + inventory[self.assets]

    def hedge(self, t: int, delta: np.ndarray, *, amm: Pools, perps: PerpMarkets | None,
              price: np.ndarray, oracle_price: np.ndarray, external: np.ndarray,
              rng: np.random.Generator, force: bool = False) -> np.ndarray:
        """Hedge at step ``t`` if it is a hedging step; return base tokens sold per asset.

        Args:
            t: the step.
            delta: the delta handed to the desks, tokens: float[m] for one book they share
                (they hedge it together, in equal shares: the vault's hedgers), or
                float[n, m] for each desk's own book (each hedges its own, with its own
                band: the volatility arbitrageurs).
            amm: the pools.
            perps: the perps (needed for ``PERP`` venues).
            price: float[m], external prices (band, spot trades, cost).
            oracle_price: float[m], oracle prices (perp marks).
            external: float[m], the outside world's tokens (spot trades move them).
            rng: the model's generator (acting order).
            force: hedge even if ``t`` is not a hedging step (after a trade).

        Returns:
            float64[m], base tokens sold (> 0) or bought (< 0) per asset (perp positions
            count: shortening a perp is selling).
        """
        sold = np.zeros(len(price))
        self.cost = 0.0
        if t % self.every and not force:
            return sold
        delta = np.asarray(delta, dtype=np.float64)
        target = self.target_usd / price[self.assets]
        if delta.ndim == 2:  # each desk its own book
            inventory = self.balance - self.own
            if perps is not None:
                inventory = inventory + self.perp_size(perps)
            net = (delta + inventory)[:, self.assets] - target
        else:  # one shared book, hedged together in equal shares
            net = np.broadcast_to((self.net_delta(delta, perps) - target) / len(self),
                                  (len(self), len(self.assets)))
        for j, a in enumerate(self.assets):
            for k in rng.permutation(len(self)):
                if abs(net[:, j].sum() if delta.ndim == 1 else net[k, j]) * price[a] \
                        <= self.band_usd:
                    continue
                want = net[k, j]
                if self.venue_kind[j] == POOL:
                    sold[a] += self._pool(k, a, int(self.venue[j]), want, amm, price)
                elif self.venue_kind[j] == SPOT:
                    sold[a] += self._spot(k, a, want, price, external)
                else:
                    sold[a] += self._perp(k, j, want, perps, oracle_price)
        return sold

    def _pool(self, k: int, a: int, v: int, want: float, amm: Pools,
              price: np.ndarray) -> float:
        """Desk ``k`` sells ``want`` base (buys when < 0) on pool ``v``; base sold."""
        quote = self.cash
        if want > 0:
            amount = min(want, self.balance[k, a])
            if amount <= 0:
                return 0.0
            got = amm.sell_base(v, amount)
            self.balance[k, quote] += got
            self.balance[k, a] -= amount
            self.cost += amount * price[a] - got * price[quote]
            return amount
        cost = min(amm.input_for_output(v, sell_base=False, want=-want), self.balance[k, quote])
        if cost <= 0:
            return 0.0
        got = amm.sell_quote(v, cost)
        self.balance[k, quote] -= cost
        self.balance[k, a] += got
        self.cost += cost * price[quote] - got * price[a]
        return -got

    def _spot(self, k: int, a: int, want: float, price: np.ndarray,
              external: np.ndarray) -> float:
        """Desk ``k`` trades ``want`` base with the outside world at ``price`` less the fee."""
        c = self.cash
        fee = self.spot_fee
        if want > 0:  # sell base for cash
            base = min(want, self.balance[k, a])
            cash = base * price[a] * (1.0 - fee) / price[c]
        else:  # spend cash on base
            spend = min(-want * price[a] * (1.0 + fee) / price[c], self.balance[k, c])
            base = -spend * price[c] / (price[a] * (1.0 + fee))
            cash = -spend
        if base == 0:
            return 0.0
        self.balance[k, a] -= base
        self.balance[k, c] += cash
        external[a] += base
        external[c] -= cash
        self.cost += abs(base) * price[a] * fee
        return base

    def _perp(self, k: int, j: int, want: float, perps: PerpMarkets,
              oracle_price: np.ndarray) -> float:
        """Desk ``k`` moves its perp position in hedged asset ``j`` by ``-want``."""
        market = int(self.venue[j])
        mark = perps.mark_price(oracle_price)[market]
        row = int(self.perp_row[k, j])
        size = perps.book.size[row] if row >= 0 else 0.0
        if row >= 0:
            if perps.equity(oracle_price, [row])[0] < 0.0:
                return 0.0  # bankrupt at the mark: the liquidation pass deals with it
            self.balance[k, self.cash] += perps.close_positions([row], mark)[0]
            self.perp_row[k, j] = -1
        new = size - want
        margin = min(self.balance[k, self.cash], self.perp_margin * abs(new) * mark)
        most = margin / (perps.initial_margin[market] * mark)  # the initial-margin cap
        new = float(np.sign(new) * min(abs(new), most))
        if abs(new) * mark > 1e-9:
            try:
                rows = perps.open_positions([self.perp_owner[k]], [market], [new],
                                            margin=[margin], asset_price=oracle_price)
            except ProtocolError:  # rounding at the initial-margin cap: stay flat
                new = 0.0
            else:
                self.balance[k, self.cash] -= margin
                self.perp_row[k, j] = rows.start
        else:
            new = 0.0
        return size - new


def desk_arguments(world, name: str, cfg, rng: np.random.Generator, *, after: int = 0
                   ) -> dict:
    """``HedgingTable`` arguments of a desk section (``sim.scenario.HedgingDesk``).

    Capital is split between its own holding of each hedged asset and cash. Its owner ids in
    the perps book follow every perp trader's and ``after`` more (desks built before).
    """
    p0 = world.prices[0]
    m = len(world.assets)
    assets = np.array([world.index(k) for k in cfg.venues], dtype=np.int64)
    kind = np.zeros(len(assets), dtype=np.int64)
    venue = np.full(len(assets), -1, dtype=np.int64)
    cash = None if cfg.cash is None else world.index(cfg.cash)
    for j, (asset, venue_name) in enumerate(cfg.venues.items()):
        if venue_name in world.pool_names:
            kind[j], venue[j] = POOL, world.pool_names.index(venue_name)
            quote = int(world.amm.quote[venue[j]])
            cash = quote if cash is None else cash
            if quote != cash:
                world.fail(f"{name}.venues.{asset}", f"pool '{venue_name}' trades against "
                           f"{world.assets[quote]}, not the desk's cash "
                           f"{world.assets[cash]}; every pool must share one quote")
        elif venue_name in world.perp_names:
            kind[j], venue[j] = PERP, world.perps.market(venue_name, assets[j])
        else:  # "spot" (checked with the scenario's references)
            kind[j] = SPOT
    if cash is None:
        world.fail(f"{name}.cash", "needed when no venue is a pool")
    for j, venue_name in enumerate(cfg.venues.values()):
        if kind[j] == PERP:
            settle = int(world.perps.settlement_asset[world.perp_names.index(venue_name)])
            if settle != cash:
                world.fail(f"{name}.venues.{world.assets[assets[j]]}", f"perps "
                           f"'{venue_name}' settle in {world.assets[settle]}, not the desk's "
                           f"cash {world.assets[cash]}")
            if cfg.perp_margin < world.perps.initial_margin[venue[j]]:
                world.fail(f"{name}.perp_margin", "must be >= the market's initial "
                           f"margin ({world.perps.initial_margin[venue[j]]:g})")
    capital = amounts(world.scenario.source, f"{name}.capital", cfg.capital, rng, cfg.count)
    balance = np.zeros((cfg.count, m))
    for a_ in assets:
        balance[:, a_] += capital * cfg.base_share / len(assets) / p0[a_]
    balance[:, cash] += capital * (1 - cfg.base_share) / p0[cash]
    for asset in cfg.delta_target_usd:
        if asset not in cfg.venues:
            world.fail(f"{name}.delta_target_usd.{asset}", "not a hedged asset (venues: "
                       f"{', '.join(cfg.venues)})")
    book = world.perps.book
    owner = (int(book.owner.max()) + 1 if len(book) else 0) + after
    return dict(balance=balance, own=balance.copy(), assets=assets, venue_kind=kind,
                venue=venue, cash=cash, band_usd=cfg.band_usd,
                every=round(cfg.every_hours / world.dt_hours),
                target_usd=[cfg.delta_target_usd.get(world.assets[a_], 0.0) for a_ in assets],
                spot_fee=cfg.spot_fee, perp_margin=cfg.perp_margin,
                perp_owner=owner + np.arange(cfg.count))


def desk_protocols(cfg) -> tuple[str, ...]:
    """The options protocol of a desk and the protocols it hedges on (not the spot market)."""
    return (cfg.protocol, *(v for v in dict.fromkeys(cfg.venues.values()) if v != "spot"))


def venues(ctx: StepContext) -> dict:
    """``HedgingTable.hedge``'s venue arguments for this step."""
    w = ctx.world
    return dict(amm=w.amm, perps=w.perps, price=ctx.external_price, oracle_price=w.oracles.price,
                external=w.external, rng=ctx.rng)


class Desks(Population):
    """A population of hedging desks (a ``HedgingTable``): what every desk holds.

    Tokens (``balance``), perp positions (their size is delta, their equity at the oracle
    marks a claim in cash; net worth marks them at external prices: ``value`` is the
    difference, USD).
    """

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Tokens, perp equity and perp sizes of the desks (class docstring)."""
        t, pm = self.table, ctx.world.perps
        out = Holdings.zeros(1 if members is None else len(members), len(ctx.external_price))
        out.tokens[:] = by_group(t.balance, members)
        out.delta[:] = by_group(t.perp_size(pm), members)
        oracle_equity = t.perp_equity(pm, ctx.world.oracles.price)
        out.claims[:, t.cash] = by_group(oracle_equity[:, None], members)[:, 0]
        marked = t.perp_equity(pm, ctx.external_price) - oracle_equity
        out.value[:] = by_group(marked[:, None], members)[:, 0] * ctx.external_price[t.cash]
        return out
