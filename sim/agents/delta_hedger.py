"""Delta hedgers: the market makers of an options vault, who keep its net delta flat.

The vault that writes (or buys) options carries their delta: minus the traders' option
delta, per asset. The hedgers keep a holding of each asset of their own (``own``, the base
part of their capital) and hedge the vault's delta around it on a venue (a pool, the spot
market, or perps: ``sim.agents.hedging``): every ``every`` steps, when the vault's option
delta plus their inventory beyond ``own`` is worth more than ``band_usd`` away from the
target, they trade it back. A vault short gamma (it wrote options) must sell the asset as
its price falls and buy as it rises: its hedging adds to the move; a vault long gamma
hedges against it.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Member, StepContext
from sim.agents.hedging import Desks, HedgingTable, desk_arguments, desk_protocols, venues


class DeltaHedger(Member):
    """A hedger: row ``index`` of its population's ``DeltaHedgerTable``."""


class DeltaHedgers(Desks):
    """The hedgers of ``[agents.delta_hedgers]``: an options vault's market makers."""

    kind = "delta_hedger"
    Member = DeltaHedger

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> DeltaHedgers:
        """A desk per hedger; they start hedged once every option is written (``open``)."""
        table = DeltaHedgerTable(protocol=world.option_names.index(cfg.protocol),
                                 **desk_arguments(world, name, cfg, rng))
        return cls(model, table, name=name, protocols=desk_protocols(cfg), size=cfg.count)

    def vault_delta(self, ctx: StepContext) -> np.ndarray:
        """The hedged vault's option delta per asset at external prices.

        Minus the traders' option delta, plus its own short in the option-token series.
        """
        opt = ctx.world.options
        b = opt.book
        live = np.flatnonzero((b.size != 0) & (b.protocol == self.table.protocol))
        out = np.zeros(len(ctx.external_price))
        if len(live):
            per_unit = opt.greeks(ctx.external_price, ctx.now_hours, live)[1]
            np.add.at(out, b.asset[live], per_unit * opt.vault_position(live))
        return out

    def open(self, ctx: StepContext) -> None:
        """Start hedged: inventory offsets the vault's option delta around their holding."""
        h = self.table
        start = self.vault_delta(ctx)
        h.balance[:, h.assets] -= start[h.assets] / len(h)
        if np.any(h.balance < 0):
            ctx.world.fail(f"{self.name}.capital", "too small to hold the opening hedge "
                           "(the vault's option delta) in base tokens; raise it or base_share")

    def step(self, ctx: StepContext) -> None:
        """Hedge the vault's option delta (on hedging steps)."""
        sold = self.table.act(ctx.t, self.vault_delta(ctx), **venues(ctx))
        ctx.hedge_sold = sold
        ctx.hedge_cost = self.table.cost
        ctx.volume[self.kind] = np.abs(sold) @ ctx.external_price


class DeltaHedgerTable(HedgingTable):
    """The hedgers of one options protocol's vault (``protocol``, its index)."""

    def __init__(self, balance: np.ndarray, *, protocol: int = 0, **kwargs):
        super().__init__(balance, **kwargs)
        self.protocol = int(protocol)

    def act(self, t: int, option_delta: np.ndarray, **venues) -> np.ndarray:
        """Hedge the vault's ``option_delta`` (tokens per asset) at step ``t``.

        ``venues`` are ``HedgingTable.hedge``'s keyword arguments. Returns base tokens sold
        per asset.
        """
        return self.hedge(t, option_delta, **venues)
