"""StressModel: a world of protocols, populations of agents, and the step in five phases.

One step (``docs/architecture.md``, "The step"):

1. **market**: external prices of the step; interest and stability fees accrue, funding
   accrues, option surfaces react to realised volatility and expired options settle,
   redemption tickets due are paid, scheduled exploits, liquidity withdrawals and forced
   sales happen, and the tokens the model prices are marked (``World.mark``);
2. **populations act**: each population's ``step(ctx)`` (``sim.agents.base``), driven by
   Mesa's ``AgentSet.do``: the primary market first (holders, redeemers), then, once the
   issued tokens are marked at its prices, everyone else in ``populations.ACTING`` order;
3. **oracles**: manipulations of oracle pools, then the oracles publish (stale ones do not);
4. **liquidation**: passes until one changes nothing: the lending cascade (numba, to its own
   fixed point), one pass over the multi-collateral accounts, CDP barks and auctions, one
   pass over the perps (whose vaults rehedge on pools); between passes receipt and issued
   tokens are repriced and the oracles publish again (a deviation update), so a loss or a
   sale in one protocol reaches every protocol that holds, prices or sells on what it moved
   within the step;
5. **record**: manipulations unwind, the issuers close their step, and the step is recorded
   (``sim.model.record``).

Every random draw goes through ``self.rng`` (seeded by Mesa from the scenario's seed), so a
(scenario, seed) pair reproduces a run bit for bit. The protocols and the tokens outside the
agents are ``self.world`` (``sim.model.world``); their names are readable on the model too
(``model.amm`` is ``model.world.amm``).
"""

from __future__ import annotations

import warnings

import mesa
import numpy as np

from sim import market, network, shocks
from sim.agents.arbitrageur import Arbitrageurs
from sim.agents.base import Member, StepContext
from sim.agents.delta_hedger import DeltaHedgers
from sim.agents.holder import Holders
from sim.agents.lender import Lenders
from sim.agents.leveraged_trader import LeveragedTraders
from sim.agents.liquidator import Keepers, Liquidators, LiquidatorTable
from sim.agents.market_maker import MarketMakers
from sim.agents.option_trader import OptionTraders
from sim.agents.perp_trader import PerpTraders
from sim.agents.redeemer import Redeemers
from sim.agents.vault_owner import VaultOwners
from sim.agents.vol_arbitrageur import VolArbitrageurs
from sim.engine import cascade as ck
from sim.engine import cdp as cdp_kernel
from sim.engine import perps as perps_kernel
from sim.errors import SimWarning
from sim.model import accounting, populations
from sim.model.kinds import AGENT_KINDS
from sim.model.pnl import COMPONENTS, MarketMakerPnL
from sim.model.record import record
from sim.model.size import check_limits
from sim.model.world import World
from sim.results import Recorder
from sim.scenario import Scenario

MAX_PASSES = 20  # passes of the liquidation phase per step (protocols feeding each other)
REALISED_WINDOW_HOURS = 24.0  # realised volatility the options' surfaces react to

# The populations' tables, readable as model attributes (``model.lenders``): (attribute,
# population class, a list of tables or the one table / None).
TABLES = (("lenders", Lenders, list), ("traders", LeveragedTraders, list),
          ("market_makers", MarketMakers, None), ("arbitrageurs", Arbitrageurs, None),
          ("vault_owners", VaultOwners, list), ("holders", Holders, list),
          ("perp_traders", PerpTraders, list), ("option_traders", OptionTraders, list),
          ("delta_hedgers", DeltaHedgers, None), ("vol_arbitrageurs", VolArbitrageurs, None),
          ("redeemers", Redeemers, None))


class StressModel(mesa.Model):
    """An agent-based stress run of one scenario.

    Args:
        scenario: a validated scenario.
        seed: overrides ``simulation.seed``.
        steps: overrides ``simulation.steps``.
        contagion: when False, receipt tokens keep their issuer's starting backing ratio
            (the counterfactual in which losses do not travel through tokens).
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None, steps: int | None = None,
                 contagion: bool = True):
        self.contagion = contagion
        self.seed_used = scenario.simulation.seed if seed is None else int(seed)
        n_steps = scenario.simulation.steps if steps is None else int(steps)
        check_limits(scenario, n_steps)  # before anything is allocated
        super().__init__(rng=self.seed_used)
        s = self.scenario = scenario
        self.n_steps = n_steps
        self.dt_hours = s.simulation.dt_hours
        self.t = 0
        # A stream of its own: the agents' draws must not depend on the number of steps.
        self.prices = market.price_paths(s, self.rng.spawn(1)[0], self.n_steps)
        self.graph = network.build_graph(s)
        self.world = w = World(s, self.prices, contagion=contagion)  # option tokens priced
        w.warn_unread_markets()
        self.running_max = self.prices[0].copy()
        self.populations = populations.build(self, w, self.rng)
        self.primary = populations.in_order(self.populations, populations.PRIMARY, self.random)
        self.acting = populations.in_order(self.populations, populations.ACTING, self.random)
        self._expose_tables()
        w.place_sale_tokens()
        w.seed_option_series(self.token_totals())
        for hedgers in self.populations:
            if isinstance(hedgers, DeltaHedgers):
                hedgers.open(self.context())
        w.seed_staking(self.token_totals())
        w.seed_algorithmic(self.token_totals())
        self.shocks = shocks.ShockSchedule(s, dt_hours=self.dt_hours, assets=w.assets,
                                           pool_names=w.pool_names)
        w.find_receipts()
        self.cdp_stats_recorded = w.cdps.stats.copy()
        self.liquidation_passes = 0
        self.capped_cascades: list[int] = []  # steps whose cascade hit max_cascade_rounds
        w.options.forward = w.option_forwards()
        self.mm_pnl = MarketMakerPnL(self)
        self.recorder = Recorder(self.n_steps, {
            "asset": w.assets, "protocol": w.protocol_names,
            "round": list(range(1, s.simulation.max_cascade_rounds + 1)),
            "agent_kind": AGENT_KINDS, "pnl_component": COMPONENTS})
        self.last = self.context()  # the last step's context: what the populations reported
        self._bind_world()
        record(self, self.last, np.zeros((len(w.lending_names), ck.N_STATS)),
               np.zeros(ck.N_TOTALS), np.zeros(s.simulation.max_cascade_rounds, dtype=np.int64))

    def __getattr__(self, name: str):
        # The world's protocols and names read on the model (``model.amm``, ``model.lending``)
        # while it is built; ``_bind_world`` then makes them plain attributes.
        if name.startswith("__") or name == "world" or "world" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.world, name)

    def _bind_world(self) -> None:
        """The world's attributes as the model's own (the same objects, read fast).

        The world is complete once the model is built: its protocols and arrays change in
        place from then on, and no attribute of it is rebound.
        """
        for name, value in vars(self.world).items():
            self.__dict__.setdefault(name, value)

    def _expose_tables(self) -> None:
        """Each kind's tables as model attributes (``TABLES``); liquidators and keepers."""
        for attribute, cls, many in TABLES:
            tables = [p.table for p in self.populations if type(p) is cls]
            setattr(self, attribute, tables if many else (tables[0] if tables else None))
        m = len(self.world.assets)
        self.liquidators = self.keepers = LiquidatorTable.empty(m)
        self.keeper_opportunist = np.zeros(0, dtype=np.bool_)
        for p in self.populations:
            if isinstance(p, Keepers):
                self.keepers, self.keeper_opportunist = p.table, p.opportunist
            elif isinstance(p, Liquidators):
                self.liquidators = p.table

    def context(self) -> StepContext:
        """A fresh context of the current step (nothing traded yet)."""
        w = self.world
        return StepContext(
            t=self.t, dt_hours=self.dt_hours, prices=self.prices, world=w, rng=self.rng,
            volume=dict.fromkeys(AGENT_KINDS, 0.0), withdrawn=np.zeros(len(w.protocol_names)),
            exploited=np.zeros(len(w.protocol_names)),
            perp_stats=np.zeros((len(w.perp_names), perps_kernel.N_STATS)))

    # --- the step ---------------------------------------------------------------------------

    def step(self) -> None:
        """Advance one step of ``dt_hours``: the five phases (module docstring)."""
        ctx = self._market(self.t + 1)
        self._act(ctx)
        stale, unwinds = self._oracles(ctx)
        stats, totals, rounds = self._liquidate(ctx, stale)
        self._close(ctx, unwinds, stats, totals, rounds)

    def _market(self, t: int) -> StepContext:
        """Phase 1: the market moves to step ``t`` (module docstring)."""
        self.t = t
        ctx = self.context()
        w = self.world
        w.lending.accrue(self.dt_hours)
        w.staking.accrue(self.dt_hours)
        w.cdps.drip(self.dt_hours)
        w.perps.accrue_funding(w.oracles.price, self.dt_hours)
        self._options_step(ctx)
        self._pay_redemptions(ctx)
        self._protocol_shocks(ctx)
        self._forced_sales(ctx)
        w.mark(t)
        ctx.gas_multiplier = self.shocks.gas_multiplier(t)
        return ctx

    def _act(self, ctx: StepContext) -> None:
        """Phase 2: the primary market, issued tokens marked at its prices, everyone else."""
        self.primary.do("step", ctx)
        t, ext = ctx.t, ctx.external_price
        self.world.mark_receipts(t)
        self.world.mark(t)
        np.maximum(self.running_max, ext, out=self.running_max)
        # Fear reads the market: an option token falls by its time decay alone.
        ctx.drawdown = float(np.max(np.delete(1.0 - ext / self.running_max,
                                              self.world.option_tokens)))
        self.acting.do("step", ctx)

    def _oracles(self, ctx: StepContext) -> tuple[list[int], list]:
        """Phase 3: oracle pools manipulated, then the oracles publish (stale ones do not).

        Returns:
            (stale assets, the manipulations' trades to unwind after the liquidations).
        """
        w = self.world
        unwinds = [(p, shocks.manipulate(w.amm, p, size, w.external))
                   for p, size in self.shocks.manipulations(ctx.t)]
        stale = self.shocks.stale_assets(ctx.t)
        w.publish(ctx.t, stale)
        return stale, unwinds

    def _close(self, ctx: StepContext, unwinds: list, stats: np.ndarray, totals: np.ndarray,
               rounds: np.ndarray) -> None:
        """Phase 5: manipulations unwind, issuers close their step, the step is recorded."""
        w = self.world
        for p, trade in reversed(unwinds):
            shocks.unwind(w.amm, p, trade, w.external)
        w.algo.end_step(w.oracles.price[w.algo_sister])
        w.psm.end_step()
        ctx.forget_book_totals()  # the book is final for the step from here
        self.last = ctx
        record(self, ctx, stats, totals, rounds)

    @property
    def volume(self) -> dict[str, float]:
        """USD traded in the last step per agent kind (the results' ``trade_volume``)."""
        return self.last.volume

    def _liquidate(self, ctx: StepContext, stale: list[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Phase 4: passes of lending cascade and CDP auctions to a fixed point.

        Returns:
            the lending cascade's stats, totals and liquidations per round, summed over the
            passes (rounds of later passes follow the earlier ones).
        """
        t = ctx.t
        w = self.world
        n_rounds = self.scenario.simulation.max_cascade_rounds
        stats = np.zeros((len(self.lending_names), ck.N_STATS))
        totals = np.zeros(ck.N_TOTALS)
        rounds = np.zeros(n_rounds, dtype=np.int64)
        used = 0
        t1 = t * self.dt_hours * 3600.0  # auctions run in seconds
        t0 = t1 - self.dt_hours * 3600.0
        linked = (len(self.cdps.names) > 0 or len(self.receipts) > 0 or len(self.staking) > 0
                  or len(self.algo) > 0 or len(self.perp_names) > 0 or len(self.accounts) > 0)
        ext = self.prices[t]
        capped = 0  # liquidations in the last round of a pass that used every round
        for k in range(MAX_PASSES):
            s_, tot, r = self.lending.liquidate(
                oracle_price=self.oracles.price, oracle_pool=self.oracles.live_pools(stale),
                external_price=ext, venue_pool=self.venue_pool, pools=self.amm,
                liquidators=self.liquidators, arbitrage=self._arbitrage_inputs(),
                gas_sink=self.gas_sink, max_rounds=n_rounds)
            stats += s_
            totals += tot
            capped = int(r[-1]) if tot[ck.CASCADE_ROUNDS] >= n_rounds else 0
            if len(self.accounts):  # one pass over the multi-collateral accounts
                s_a, done = self.accounts.liquidate(
                    oracle_price=self.oracles.price, external_price=ext,
                    venue_pool=self.venue_pool, pools=self.amm, liquidators=self.liquidators,
                    gas_sink=self.gas_sink)
                stats += s_a
                s_ = s_ + s_a
            last = np.flatnonzero(r)
            take = min(last[-1] + 1 if len(last) else 0, n_rounds - used)
            rounds[used:used + take] = r[:take]
            used += take
            activity = (s_[:, ck.LIQUIDATION_COUNT].sum() + self._auctions(t0 if k == 0 else t1, t1)
                        + self._perp_liquidations(ctx))
            self.liquidation_passes = k + 1
            if not linked or activity == 0:
                break
            w.mark_receipts(t)
            w.mark(t)
            w.publish(t, stale)
        if capped:  # no later pass took the cascade up again
            self._cascade_capped(t, n_rounds, capped)
        ctx.volume["liquidator"] = stats[:, ck.SEIZED_COLLATERAL_VALUE].sum()
        ctx.volume["arbitrageur"] += totals[ck.ARBITRAGE_VOLUME]
        return stats, totals, rounds

    def _cascade_capped(self, t: int, n_rounds: int, last_round: int) -> None:
        """Record a step whose cascade stopped at its round limit; warn at the first.

        The kernel stops after ``max_rounds`` even when its last round still liquidated:
        positions made liquidatable by that round's sales wait for the next step.
        """
        self.capped_cascades.append(t)
        if len(self.capped_cascades) == 1:
            warnings.warn(
                f"cascade stopped at max_cascade_rounds = {n_rounds} at hour "
                f"{t * self.dt_hours:g} (step {t}) while its last round still liquidated "
                f"{last_round} position{'s' if last_round != 1 else ''}: later rounds wait for "
                "the next step; raise simulation.max_cascade_rounds", SimWarning, stacklevel=2)

    def _perp_liquidations(self, ctx: StepContext) -> float:
        """One liquidation pass of the perps at the oracle marks; vaults rehedge on pools."""
        if not self.perp_names:
            return 0.0
        self.perps.pool_cross_margin(self.oracles.price)
        stats, _, payout = self.perps.liquidate(self.oracles.price)
        fund = perps_kernel.INSURANCE_FUND
        ctx.perp_stats[:, :fund] += stats[:, :fund]
        for traders in self.perp_traders:
            traders.receive(payout)
        for desk in (self.delta_hedgers, self.vol_arbitrageurs):
            if desk is not None:
                desk.receive(self.perps, payout)
        traded = self.perps.rehedge(self.amm)  # base tokens per market
        ctx.volume["perp_trader"] += traded @ self.prices[self.t, self.perps.market_asset]
        return float(stats[:, perps_kernel.LIQUIDATION_COUNT].sum())

    def _auctions(self, t0: float, t1: float) -> float:
        """Bark unsafe vaults at ``t1`` and run the CDP auctions over ``[t0, t1]`` (seconds).

        Barks happen when the oracle prices of the step are seen, at its end ``t1``: an
        auction kicked now starts at ``top`` and runs on from there (the first pass of a
        step runs the older auctions over the whole step). Returns what happened (auctions
        started plus stable raised), 0 when nothing did.
        """
        c = self.cdps
        if not len(c.names):
            return 0.0
        before = c.stats[:, [cdp_kernel.AUCTIONS_STARTED, cdp_kernel.STABLE_RAISED]].sum()
        keepers = self.keepers
        c.bark(t1, self.oracles.price, barker=int(keepers.order[0]) if len(keepers) else -1,
               keeper_balance=keepers.balance)
        c.run_auctions(t0, t1, oracle_price=self.oracles.price, external_price=self.prices[self.t],
                       keepers=keepers, pools=self.amm, gas_sink=self.gas_sink,
                       opportunist=self.keeper_opportunist)
        return c.stats[:, [cdp_kernel.AUCTIONS_STARTED, cdp_kernel.STABLE_RAISED]].sum() - before

    def _options_step(self, ctx: StepContext) -> None:
        """Volatility surfaces react to realised volatility; expired options settle.

        Realised volatility: ``StepContext.realised_vol`` over ``REALISED_WINDOW_HOURS``;
        options and option-token series settle at the oracle price of their asset. Then the
        option tokens are priced for the step.
        """
        w = self.world
        if not w.option_names:
            return
        realised = ctx.realised_vol(max(2, round(REALISED_WINDOW_HOURS / self.dt_hours)))
        if realised is not None:
            w.options.surface.react(realised, self.dt_hours)
        rows, payoff = w.options.settle(w.oracles.price, ctx.now_hours)
        for traders in self.option_traders:
            traders.receive(rows, payoff)
        if self.vol_arbitrageurs is not None:
            self.vol_arbitrageurs.settle(rows, payoff)
        w.mark_option_tokens(ctx.t)

    def _vault_option_delta(self) -> np.ndarray:
        """The delta hedgers' vault's option delta now (``DeltaHedgers.vault_delta``)."""
        hedgers = next(p for p in self.populations if isinstance(p, DeltaHedgers))
        return hedgers.vault_delta(self.context())

    def _pay_redemptions(self, ctx: StepContext) -> None:
        """Pay the redemption tickets due now: redeemers' to them, others' to the outside."""
        ids, amounts = self.staking.process(self.t * self.dt_hours)
        if len(ids) == 0:
            return
        owner = self.staking.tickets.owner[ids]
        under = self.staking.underlying[self.staking.tickets.protocol[ids]]
        mine = owner >= 0
        if self.redeemers is not None:
            self.redeemers.receive(owner[mine], under[mine], amounts[mine])
        np.add.at(self.external, under[~mine], amounts[~mine])

    def _forced_sales(self, ctx: StepContext) -> None:
        """Holders outside the model selling into a pool (scheduled ``sale`` shocks)."""
        for p, amount in self.shocks.sales(ctx.t):
            got = self.amm.sell_base(p, amount)
            self.external[self.amm.base[p]] -= amount
            self.external[self.amm.quote[p]] += got

    def _protocol_shocks(self, ctx: StepContext) -> None:
        """Exploits and liquidity withdrawals scheduled for the step."""
        t, ext = ctx.t, ctx.external_price
        for name, share in self.shocks.exploit.get(t, []):
            k = self.protocol_names.index(name)
            if name in self.lending_names:
                stolen = shocks.steal_from_lending(self.lending, name, share, self.external)
                ctx.exploited[k] += stolen @ ext
            elif name in self.staking_names:
                p = self.staking_names.index(name)
                under = self.staking.underlying[p]
                lost = self.staking.apply_loss(p, share)  # the backing leaves to the attacker
                self.external[under] += lost
                self.created[under] += lost
                ctx.exploited[k] += lost * ext[under]
            else:
                p = self.pool_names.index(name)
                base, quote = shocks.steal_from_pool(self.amm, p, share, self.external)
                ctx.exploited[k] += base * ext[self.amm.base[p]] + quote * ext[self.amm.quote[p]]
        for p, share in self.shocks.withdrawal.get(t, []):
            mm = self.market_makers
            if mm is not None and mm.pool == p:
                mm.withdraw(self.amm, share)
            else:  # liquidity held by LPs outside the model
                base, quote = self.amm.remove_liquidity(p, self.amm.lp_supply[p] * share)
                self.external[self.amm.base[p]] += base
                self.external[self.amm.quote[p]] += quote
    def _arbitrage_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arb = self.arbitrageurs
        if arb is None:
            return np.zeros((0, len(self.assets))), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return arb.balance, arb.pools, self.rng.permutation(len(arb)).astype(np.int64)

    def agents_using(self, protocol: str) -> list[Member]:
        """The members of every population attached to ``protocol`` (made on request)."""
        return [member for population in self.agents.select(lambda a: protocol in a.protocols)
                for member in population.members()]

    # --- what the model holds (``sim.model.accounting``) -------------------------------------

    def token_totals(self) -> np.ndarray:
        """Tokens per asset over every account (``accounting.token_totals``)."""
        return accounting.token_totals(self)

    def net_issued(self) -> np.ndarray:
        """Tokens issuers created minus destroyed per asset (``accounting.net_issued``)."""
        return accounting.net_issued(self)

    def net_worth(self) -> np.ndarray:
        """Net worth per agent kind at external prices (``accounting.net_worth``)."""
        return accounting.net_worth(self)

    def run(self, progress=None) -> None:
        """Run every remaining step; ``progress(n)`` is called after each step if given."""
        while self.t < self.n_steps:
            self.step()
            if progress is not None:
                progress(1)
