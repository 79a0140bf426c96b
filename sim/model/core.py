"""StressModel: wires market, protocols and agents, and owns the step order.

One step: market (external prices) -> interest and stability fees accrue, option surfaces
react and expired options settle, option tokens are priced -> redemptions paid -> exploits,
liquidity withdrawals and forced sales -> agents act (redeemers, arbitrageurs, market makers,
lenders, leveraged traders, vault owners) -> oracle manipulations -> oracles publish (stale
ones do not) -> liquidation phase (at this step's gas cost) -> manipulations unwind ->
record.

The liquidation phase runs in passes until one pass changes nothing: the lending cascade
(numba, to its own fixed point), one pass over the multi-collateral accounts, CDP barks and
auctions, one pass over the perps (whose vaults rehedge on pools), then receipt and staked tokens
are repriced and the oracles publish again (a deviation update), so a loss or a sale in one
protocol reaches every protocol that holds, prices or sells on what it moved within the step.
Every random draw goes through ``self.rng`` (seeded by Mesa from the scenario's seed), so a
(scenario, seed) pair reproduces a run bit for bit.
"""

from __future__ import annotations

import warnings

import mesa
import numpy as np

from sim import market, network, shocks
from sim.engine import cascade as ck
from sim.engine import cdp as cdp_kernel
from sim.engine import perps as perps_kernel
from sim.errors import SimWarning
from sim.model.accounting import Accounting
from sim.model.build import Construction
from sim.model.kinds import AGENT_KINDS
from sim.model.pnl import COMPONENTS, MarketMakerPnL
from sim.model.size import check_limits
from sim.results import Recorder
from sim.scenario import Scenario

MAX_PASSES = 20  # passes of the liquidation phase per step (protocols feeding each other)
REALISED_WINDOW_HOURS = 24.0  # realised volatility the options' surfaces react to
HOURS_PER_YEAR = 365.0 * 24.0


class StressModel(Construction, Accounting, mesa.Model):
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
        self.assets = list(s.assets)
        self.protocol_names = list(s.protocols)
        m = len(self.assets)
        self.t = 0
        # A stream of its own: the agents' draws must not depend on the number of steps.
        self.prices = market.price_paths(s, self.rng.spawn(1)[0], self.n_steps)
        self.external = np.zeros(m)  # tokens held by the outside world (CEX, spenders)
        self.gas_sink = np.zeros(m)  # tokens paid as gas
        self.volume = dict.fromkeys(AGENT_KINDS, 0.0)
        self.graph = network.build_graph(s)
        self._build_protocols()  # prices the option tokens at t = 0
        self._warn_unread_markets()
        self.running_max = self.prices[0].copy()
        self._build_agents()
        self._place_sale_tokens()
        self._seed_option_series()
        self._open_delta_hedge()
        self._seed_staking()
        self._seed_algorithmic()
        self.created = np.zeros(m)  # tokens an attacker took out of a protocol's backing
        self.shocks = shocks.ShockSchedule(s, dt_hours=self.dt_hours, assets=self.assets,
                                           pool_names=self.pool_names)
        self.receipts = self._receipt_tokens()
        self.exploited = np.zeros(len(self.protocol_names))  # value stolen this step
        self.gas_multiplier = 1.0
        self.cdp_stats_recorded = self.cdps.stats.copy()
        self.algo_step = None  # flows of the algorithmic stablecoins in the last step
        self.perp_stats = np.zeros((len(self.perp_names), perps_kernel.N_STATS))
        self.liquidation_passes = 0
        self.capped_cascades: list[int] = []  # steps whose cascade hit max_cascade_rounds
        self.withdrawn = np.zeros(len(self.protocol_names))  # lenders' withdrawals (USD)
        self.hedge_sold = np.zeros(len(self.assets))  # base tokens the delta hedgers sold
        self.hedge_cost = 0.0  # what their trades cost beyond value (fees and impact)
        self.vol_arb_hedge_cost = 0.0
        self.vol_arb_hedge_sold = np.zeros(len(self.assets))
        self.options.forward = self._option_forwards()
        self.mm_pnl = MarketMakerPnL(self)
        self.recorder = Recorder(self.n_steps, {
            "asset": self.assets, "protocol": self.protocol_names,
            "round": list(range(1, s.simulation.max_cascade_rounds + 1)),
            "agent_kind": AGENT_KINDS, "pnl_component": COMPONENTS})
        self._record(np.zeros((len(self.lending_names), ck.N_STATS)), np.zeros(ck.N_TOTALS),
                     np.zeros(s.simulation.max_cascade_rounds, dtype=np.int64))

    def step(self) -> None:
        """Advance one step of ``dt_hours``."""
        self.t += 1
        t = self.t
        ext = self.prices[t]
        self.volume = dict.fromkeys(AGENT_KINDS, 0.0)
        self.hedge_sold = np.zeros(len(self.assets))
        self.hedge_cost = 0.0
        self.vol_arb_hedge_cost = 0.0
        self.vol_arb_hedge_sold = np.zeros(len(self.assets))
        self.lending.accrue(self.dt_hours)
        self.staking.accrue(self.dt_hours)
        self.cdps.drip(self.dt_hours)
        self.perps.accrue_funding(self.oracles.price, self.dt_hours)
        self._options_step(t)
        self.perp_stats = np.zeros((len(self.perp_names), perps_kernel.N_STATS))
        self._pay_redemptions()
        self._protocol_shocks(t, ext)
        self._forced_sales(t)
        self._price_issued(t)
        for holders in self.holders:
            self.volume["holder"] += holders.act(self.amm, ext) * ext[holders.token]
        if self.redeemers is not None:
            self.volume["redeemer"] = self.redeemers.act(
                self.staking, self.amm, self.t * self.dt_hours, self.rng)
            self.volume["redeemer"] += self.redeemers.act_algorithmic(
                self.algo, self.amm, self.oracles.price, ext, self.algo_sister, self.rng)
            self.volume["redeemer"] += self.redeemers.act_psm(self.psm, self.amm, ext,
                                                              self.rng)
        self._price_receipts(t)
        self._price_issued(t)
        np.maximum(self.running_max, ext, out=self.running_max)
        if self.arbitrageurs is not None:
            self.volume["arbitrageur"] = self.arbitrageurs.act(self.amm, ext, self.external,
                                                               self.rng)
        if self.market_makers is not None:
            mm = self.market_makers
            mm.act(self.amm, self.prices[: t + 1, self.amm.base[mm.pool]], self.dt_hours,
                   prices=ext)
        # Fear reads the market: an option token falls by its time decay alone.
        drawdown = float(np.max(np.delete(1.0 - ext / self.running_max, self.option_tokens)))
        self.withdrawn = np.zeros(len(self.protocol_names))
        for lenders in self.lenders:
            paid, sold = lenders.act(self.lending, drawdown, self.amm)
            self.withdrawn[self.protocol_names.index(lenders.protocol)] += paid @ ext
            if lenders.sell_pool >= 0:
                self.volume["lender"] += sold * ext[self.amm.base[lenders.sell_pool]]
        for traders in self.traders:
            self.volume["leveraged_trader"] += traders.act(
                self.lending, self.oracles.price, ext, self.amm, self.venue_pool, self.external)
        for owners in self.vault_owners:
            self.volume["vault_owner"] += owners.act(self.cdps, self.oracles.price)
        for traders in self.perp_traders:
            traders.act(self.perps, self.oracles.price)
        self._desks(t, ext)
        unwinds = [(p, shocks.manipulate(self.amm, p, size, self.external))
                   for p, size in self.shocks.manipulations(t)]
        stale = self.shocks.stale_assets(t)
        self.oracles.update(t, self.prices[: t + 1], self.amm.spot(), stale)
        self.options.forward = self._option_forwards()
        self.gas_multiplier = self.shocks.gas_multiplier(t)
        for table in (self.liquidators, self.keepers):
            if len(table):
                table.set_gas_multiplier(self.gas_multiplier)
                table.shuffle(self.rng)
        stats, totals, rounds = self._liquidate(t, stale)
        self.volume["liquidator"] = stats[:, ck.COLLATERAL_SEIZED_VALUE].sum()
        self.volume["arbitrageur"] += totals[ck.ARBITRAGE_VOLUME]
        for p, trade in reversed(unwinds):
            shocks.unwind(self.amm, p, trade, self.external)
        self.algo_step = self.algo.end_step(self.oracles.price[self.algo_sister])
        self.psm.end_step()
        self._record(stats, totals, rounds)

    def _liquidate(self, t: int, stale: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The liquidation phase: passes of lending cascade and CDP auctions to a fixed point.

        Returns:
            the lending cascade's stats, totals and liquidations per round, summed over the
            passes (rounds of later passes follow the earlier ones).
        """
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
                value_price=ext, venue_pool=self.venue_pool, pools=self.amm,
                liquidators=self.liquidators, arbitrage=self._arbitrage_inputs(),
                gas_sink=self.gas_sink, max_rounds=n_rounds)
            stats += s_
            totals += tot
            capped = int(r[-1]) if tot[ck.ROUNDS] >= n_rounds else 0
            if len(self.accounts):  # one pass over the multi-collateral accounts
                s_a, done = self.accounts.liquidate(
                    oracle_price=self.oracles.price, value_price=ext,
                    venue_pool=self.venue_pool, pools=self.amm, liquidators=self.liquidators,
                    gas_sink=self.gas_sink)
                stats += s_a
                s_ = s_ + s_a
            last = np.flatnonzero(r)
            take = min(last[-1] + 1 if len(last) else 0, n_rounds - used)
            rounds[used:used + take] = r[:take]
            used += take
            activity = (s_[:, ck.N_LIQUIDATIONS].sum() + self._auctions(t0 if k == 0 else t1, t1)
                        + self._perp_liquidations())
            self.liquidation_passes = k + 1
            if not linked or activity == 0:
                break
            self._price_receipts(t)
            self._price_issued(t)
            self.oracles.update(t, self.prices[: t + 1], self.amm.spot(), stale)
            self.options.forward = self._option_forwards()
        if capped:  # no later pass took the cascade up again
            self._cascade_capped(t, n_rounds, capped)
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

    def _perp_liquidations(self) -> float:
        """One liquidation pass of the perps at the oracle marks; vaults rehedge on pools."""
        if not self.perp_names:
            return 0.0
        self.perps.pool_cross_margin(self.oracles.price)
        stats, _, payout = self.perps.liquidate(self.oracles.price)
        fund = perps_kernel.INSURANCE_FUND
        self.perp_stats[:, :fund] += stats[:, :fund]
        for traders in self.perp_traders:
            traders.receive(payout)
        for desk in (self.delta_hedgers, self.vol_arbitrageurs):
            if desk is not None:
                desk.receive(self.perps, payout)
        traded = self.perps.rehedge(self.amm)  # base tokens per market
        self.volume["perp_trader"] += traded @ self.prices[self.t, self.perps.market_asset]
        return float(stats[:, perps_kernel.N_LIQUIDATIONS].sum())

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
        c.run_auctions(t0, t1, oracle_price=self.oracles.price, value_price=self.prices[self.t],
                       keepers=keepers, pools=self.amm, gas_sink=self.gas_sink,
                       opportunist=self.keeper_opportunist)
        return c.stats[:, [cdp_kernel.AUCTIONS_STARTED, cdp_kernel.STABLE_RAISED]].sum() - before

    def _options_step(self, t: int) -> None:
        """Volatility surfaces react to realised volatility; expired options settle.

        Realised volatility is the root mean square of the external log returns of the last
        ``REALISED_WINDOW_HOURS``, annualised (realised variance, not demeaned: a steady
        fall is volatility too); options and option-token series settle at the oracle price
        of their asset. Then the option tokens are priced for the step.
        """
        if not self.option_names:
            return
        realised = self._realised_vol(max(2, round(REALISED_WINDOW_HOURS / self.dt_hours)))
        if realised is not None:
            self.options.surface.react(realised, self.dt_hours)
        rows, payoff = self.options.settle(self.oracles.price, t * self.dt_hours)
        for traders in self.option_traders:
            traders.receive(rows, payoff)
        if self.vol_arbitrageurs is not None:
            self.vol_arbitrageurs.settle(rows, payoff)
        self._price_option_tokens(t)

    def _price_option_tokens(self, t: int) -> None:
        """Option tokens: the surface's value at the underlying's price, or the reserve's."""
        if len(self.option_tokens):
            self.prices[t, self.option_tokens] = self.options.series_price(
                self.prices[t], t * self.dt_hours)

    def _realised_vol(self, window: int) -> np.ndarray | None:
        """Realised volatility per asset over the last ``window`` steps (None: too early).

        The root mean square of the external log returns, annualised (realised variance,
        not demeaned: a steady fall is volatility too). Option tokens have no surface of
        their own: their columns read 0.
        """
        past = self.prices[max(0, self.t - window): self.t + 1].copy()
        if len(past) < 3:
            return None
        past[:, self.option_tokens] = 1.0  # not priced yet this step
        returns = np.diff(np.log(past), axis=0)
        return np.sqrt((returns ** 2).mean(axis=0) * HOURS_PER_YEAR / self.dt_hours)

    def _desks(self, t: int, ext: np.ndarray) -> None:
        """Volatility arbitrageurs trade options and hedge them; delta hedgers hedge the vault.

        The arbitrageurs trade first, so the vault's hedgers see their trades.
        """
        venues = dict(amm=self.amm, perps=self.perps, price=ext,
                      oracle_price=self.oracles.price, external=self.external, rng=self.rng)
        now = t * self.dt_hours
        va = self.vol_arbitrageurs
        if va is not None:
            realised = self._realised_vol(self.vol_window)
            if realised is not None:
                va.trade(t, self.options, realised, price=ext, now_hours=now, rng=self.rng)
            sold = va.hedge(t, va.desk_delta(self.options, ext, now),
                            force=bool(va.traded.any()), **venues)
            self.volume["vol_arbitrageur"] = np.abs(sold) @ ext
            self.vol_arb_hedge_cost = va.cost
            self.vol_arb_hedge_sold = sold
        if self.delta_hedgers is not None:
            sold = self.delta_hedgers.act(t, self._vault_option_delta(), **venues)
            self.hedge_sold = sold
            self.hedge_cost = self.delta_hedgers.cost
            self.volume["hedger"] = np.abs(sold) @ ext

    def _vault_option_delta(self) -> np.ndarray:
        """The hedged options vault's delta per asset at market prices.

        Minus the traders' option delta, plus its own short in the option-token series.
        """
        opt = self.options
        b = opt.book
        live = np.flatnonzero((b.size != 0) & (b.protocol == self.delta_hedgers.protocol))
        out = np.zeros(len(self.assets))
        if len(live):
            per_unit = opt.greeks(self.prices[self.t], self.t * self.dt_hours, live)[1]
            np.add.at(out, b.asset[live], per_unit * opt.vault_position(live))
        return out

    def _pay_redemptions(self) -> None:
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

    def _price_issued(self, t: int) -> None:
        """Price the tokens their pools price, at step ``t``, then the option tokens.

        Staked tokens: the underlying's price times their pool's spot (the rate without a
        pool); algorithmic stablecoins, their sisters and CDP stablecoins with a
        ``stable_pool``: pool spot times the quote's price. Option tokens last, since their
        underlying may be one of those.
        """
        spot = self.amm.spot()
        for p, v in enumerate(self.staking_pool):
            token, under = self.staking.token[p], self.staking.underlying[p]
            ratio = spot[v] if v >= 0 else self.staking.rate[p]
            self.prices[t, token] = self.prices[t, under] * ratio
        priced = self.cdp_stable_pool >= 0
        for tokens, pools in ((self.algo_stable, self.algo_stable_pool),
                              (self.algo_sister, self.algo_sister_pool),
                              (self.cdps.stable_asset[priced], self.cdp_stable_pool[priced])):
            self.prices[t, tokens] = spot[pools] * self.prices[t, self.amm.quote[pools]]
        self._price_option_tokens(t)

    def _forced_sales(self, t: int) -> None:
        """Holders outside the model selling into a pool (scheduled ``sale`` shocks)."""
        for p, amount in self.shocks.sales(t):
            got = self.amm.sell_base(p, amount)
            self.external[self.amm.base[p]] -= amount
            self.external[self.amm.quote[p]] += got

    def _protocol_shocks(self, t: int, ext: np.ndarray) -> None:
        """Exploits and liquidity withdrawals scheduled for step ``t``."""
        self.exploited[:] = 0.0
        for name, share in self.shocks.exploit.get(t, []):
            k = self.protocol_names.index(name)
            if name in self.lending_names:
                stolen = shocks.steal_from_lending(self.lending, name, share, self.external)
                self.exploited[k] += stolen @ ext
            elif name in self.staking_names:
                p = self.staking_names.index(name)
                under = self.staking.underlying[p]
                lost = self.staking.apply_loss(p, share)  # the backing leaves to the attacker
                self.external[under] += lost
                self.created[under] += lost
                self.exploited[k] += lost * ext[under]
            else:
                p = self.pool_names.index(name)
                base, quote = shocks.steal_from_pool(self.amm, p, share, self.external)
                self.exploited[k] += base * ext[self.amm.base[p]] + quote * ext[self.amm.quote[p]]
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

    def agents_using(self, protocol: str) -> mesa.agent.AgentSet:
        """The agents attached to ``protocol`` on the dependency graph."""
        return self.agents.select(lambda a: protocol in a.protocols)

    def run(self, progress=None) -> None:
        """Run every remaining step; ``progress(n)`` is called after each step if given."""
        while self.t < self.n_steps:
            self.step()
            if progress is not None:
                progress(1)
