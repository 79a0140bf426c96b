"""StressModel: wires market, protocols and agents, and owns the step order.

One step: market (external prices) -> interest accrues -> exploits and liquidity withdrawals
-> agents act (arbitrageurs, market makers, lenders, leveraged traders) -> oracle
manipulations -> oracles publish (stale ones do not) -> liquidation cascade (at this step's
gas cost) -> manipulations unwind -> record.
Every random draw goes through ``self.rng`` (seeded by Mesa from the scenario's seed), so a
(scenario, seed) pair reproduces a run bit for bit.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim import market, network, shocks
from sim.agents.arbitrageur import Arbitrageur, ArbitrageurTable
from sim.agents.lender import Lender, LenderTable
from sim.agents.leveraged_trader import LeveragedTrader, TraderTable
from sim.agents.liquidator import Liquidator, LiquidatorTable
from sim.agents.market_maker import MarketMaker, MarketMakerTable
from sim.engine import cascade as ck
from sim.errors import ScenarioError
from sim.protocols.amm import Pools
from sim.protocols.lending import LendingPools
from sim.protocols.oracle import Oracles
from sim.results import Recorder
from sim.scenario import ConstantProduct, Lending, Oracle, Pool, Scenario, StableSwap, draw

AGENT_KINDS = ["lender", "leveraged_trader", "market_maker", "liquidator", "arbitrageur"]


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
        super().__init__(rng=self.seed_used)
        s = self.scenario = scenario
        self.n_steps = s.simulation.steps if steps is None else int(steps)
        self.dt_hours = s.simulation.dt_hours
        self.assets = list(s.assets)
        self.protocol_names = list(s.protocols)
        m = len(self.assets)
        self.t = 0
        # A stream of its own: the agents' draws must not depend on the number of steps.
        self.prices = market.price_paths(s, self.rng.spawn(1)[0], self.n_steps)
        self.running_max = self.prices[0].copy()
        self.external = np.zeros(m)  # tokens held by the outside world (CEX, spenders)
        self.gas_sink = np.zeros(m)  # tokens paid as gas
        self.volume = dict.fromkeys(AGENT_KINDS, 0.0)
        self.graph = network.build_graph(s)
        self._build_protocols()
        self._build_agents()
        self.shocks = shocks.ShockSchedule(s, dt_hours=self.dt_hours, assets=self.assets,
                                           pool_names=self.pool_names)
        self.receipts = self._receipt_tokens()
        self.exploited = np.zeros(len(self.protocol_names))  # value stolen this step
        self.gas_multiplier = 1.0
        self.recorder = Recorder(self.n_steps, {
            "asset": self.assets, "protocol": self.protocol_names,
            "round": list(range(1, s.simulation.max_cascade_rounds + 1)),
            "agent_kind": AGENT_KINDS})
        self._record(np.zeros((len(self.lending_names), ck.N_STATS)), np.zeros(ck.N_TOTALS),
                     np.zeros(s.simulation.max_cascade_rounds, dtype=np.int64))

    # --- construction -----------------------------------------------------------------------

    def _index(self, asset: str) -> int:
        return self.assets.index(asset)

    def _fail(self, field: str, message: str) -> None:
        raise ScenarioError(self.scenario.source, field, message)

    def _build_protocols(self) -> None:
        s = self.scenario
        p0 = self.prices[0]
        pools = s.protocols_of(Pool)
        self.pool_names = list(pools)
        base = np.array([self._index(p.base) for p in pools.values()], dtype=np.int64)
        quote = np.array([self._index(p.quote) for p in pools.values()], dtype=np.int64)
        rb = np.array([p.reserve_base for p in pools.values()])
        # A constant-product pool starts at the external price; a StableSwap pool at its
        # reserves (balanced at the peg unless reserve_quote is given).
        rq = np.array([
            p.reserve_base * p0[b] / p0[q] if isinstance(p, ConstantProduct)
            else (p.reserve_quote if p.reserve_quote is not None else p.reserve_base * p.peg)
            for p, b, q in zip(pools.values(), base, quote, strict=True)])
        stable = [isinstance(p, StableSwap) for p in pools.values()]
        self.amm = Pools(
            self.pool_names, base, quote, rb, rq, np.array([p.fee for p in pools.values()]),
            amp=np.array([p.amplification if st else 0.0 for p, st in
                          zip(pools.values(), stable, strict=True)]),
            peg=np.array([p.peg if st else 1.0 for p, st in
                          zip(pools.values(), stable, strict=True)]))

        m = len(self.assets)
        pool = np.full(m, -1, dtype=np.int64)
        heartbeat = np.ones(m, dtype=np.int64)
        deviation = np.zeros(m)
        delay = np.zeros(m, dtype=np.int64)
        for o in s.protocols_of(Oracle).values():
            a = self._index(o.asset)
            heartbeat[a] = Oracles.heartbeat_in_steps(o.heartbeat_hours, self.dt_hours)
            deviation[a] = o.deviation
            delay[a] = o.delay_steps
            if o.source == "amm":
                pool[a] = self.pool_names.index(o.pool)
        self.oracles = Oracles(pool, heartbeat, deviation, delay, p0, self.amm.quote)
        self.oracles.read_pools(self.amm.spot(), 0)

        lendings = s.protocols_of(Lending)
        self.lending_names = list(lendings)
        self.venue_pool = np.full(len(lendings) * m, -1, dtype=np.int64)  # per market
        markets: list[list[dict | None]] = []
        for p, cfg in enumerate(lendings.values()):
            row: list[dict | None] = []
            for a, asset in enumerate(self.assets):
                mk = cfg.markets.get(asset)
                if mk is None:
                    row.append(None)
                    continue
                params = mk.model_dump(exclude={"interest_rate", "liquidation_venue"})
                params.update(mk.interest_rate.model_dump())
                row.append(params)
                if mk.liquidation_venue is not None:
                    self.venue_pool[p * m + a] = self.pool_names.index(mk.liquidation_venue)
            markets.append(row)
        self.lending = LendingPools(self.lending_names, markets, [
            (c.close_factor, c.close_factor_hf_threshold, c.min_base_max_close_factor_threshold,
             c.min_leftover_base) for c in lendings.values()])

    def _receipt_tokens(self) -> list[tuple[int, int, int]]:
        """(token, underlying, market) of every lending receipt token; checks start prices."""
        out = []
        for name, spec in self.scenario.assets.items():
            if spec.underlying is None:
                continue
            token, under = self._index(name), self._index(spec.underlying)
            if abs(self.prices[0, token] - self.prices[0, under]) > 1e-9 * self.prices[0, under]:
                self._fail(f"assets.{name}.price", f"must equal {spec.underlying}'s price "
                           f"({self.prices[0, under]:g}) at start: a receipt token is priced "
                           "from its underlying")
            out.append((token, under, self.lending.market(spec.issuer, under)))
        return out

    def _price_receipts(self, t: int) -> None:
        """Receipt tokens: the underlying's external price times the issuer's backing ratio."""
        if not self.receipts:
            return
        ratio = self.lending.backing_ratio() if self.contagion else None
        for token, under, k in self.receipts:
            self.prices[t, token] = self.prices[t, under] * (1.0 if ratio is None else ratio[k])

    def _amounts(self, field: str, dist, n: int) -> np.ndarray:
        """Draws of a money-like setting, which must never be negative."""
        values = draw(dist, self.rng, n)
        if np.any(values < 0):
            self._fail(field, f"must be >= 0 in every draw (got {values.min():g})")
        return values

    def _build_agents(self) -> None:
        a = self.scenario.agents
        m = len(self.assets)
        p0 = self.prices[0]
        rng = self.rng

        self.lenders: list[LenderTable] = []
        for _, cfg in a.populations("lenders"):
            n = cfg.count
            shares = np.zeros((n, m))
            for asset, amount in cfg.supply.items():
                k = self._index(asset)
                market = self.lending.market(cfg.protocol, k)
                shares[:, k] = self.lending.supply(market, amount * rng.dirichlet(np.ones(n)))
            self.lenders.append(LenderTable(cfg.protocol, shares, draw(cfg.fear_drawdown, rng, n),
                                            withdraw_utilisation=cfg.withdraw_utilisation,
                                            withdraw_fraction=cfg.withdraw_fraction))
            for row in range(n):
                Lender(self, row, protocols=(cfg.protocol,))

        self.traders: list[TraderTable] = []
        for field, cfg in a.populations("leveraged_traders"):
            self._build_traders(field, cfg)

        self.market_makers = None
        if a.market_makers is not None:
            cfg = a.market_makers
            p = self.pool_names.index(cfg.pool)
            shares = np.full(cfg.count, self.amm.lp_supply[p] / cfg.count)
            window = max(2, round(cfg.volatility_window_hours / self.dt_hours))
            self.market_makers = MarketMakerTable(
                p, shares, m, volatility_limit=cfg.volatility_limit,
                pull_fraction=cfg.pull_fraction, window_steps=window)
            for row in range(cfg.count):
                MarketMaker(self, row, protocols=(cfg.pool,))

        self.liquidators = LiquidatorTable.empty(m)
        if a.liquidators is not None:
            cfg = a.liquidators
            n = cfg.count
            balance = np.zeros((n, m))
            k = self._index(cfg.capital_asset)
            balance[:, k] = self._amounts("agents.liquidators.capital", cfg.capital, n) / p0[k]
            self.liquidators = LiquidatorTable(
                balance, self._amounts("agents.liquidators.gas_cost", cfg.gas_cost, n),
                self._amounts("agents.liquidators.min_profit", cfg.min_profit, n),
                                               rng.random(n) < cfg.atomic_share)
            venues = tuple(self.pool_names[p] for p in np.unique(self.venue_pool) if p >= 0)
            for row in range(n):
                Liquidator(self, row, protocols=(*self.lending_names, *venues))

        self.arbitrageurs = None
        if a.arbitrageurs is not None and len(self.amm):
            cfg = a.arbitrageurs
            names = cfg.pools or self.pool_names
            pools = np.array([self.pool_names.index(n) for n in names], dtype=np.int64)
            self.arbitrageurs = ArbitrageurTable.with_capital(
                self._amounts("agents.arbitrageurs.capital", cfg.capital, cfg.count), pools,
                self.amm, p0)
            for row in range(cfg.count):
                Arbitrageur(self, row, protocols=tuple(names))

    def _build_traders(self, field: str, cfg) -> None:
        rng = self.rng
        p0 = self.prices[0]
        pool = self.lending
        n = cfg.count * cfg.positions_per_agent
        names = list(cfg.collateral)
        weights = np.array([cfg.collateral[k] for k in names])
        coll_asset = np.array([self._index(k) for k in names])[
            rng.choice(len(names), size=n, p=weights / weights.sum())]
        d = self._index(cfg.debt_asset)
        coll_market = pool.market(cfg.protocol, 0) + coll_asset
        debt_market = pool.market(cfg.protocol, d)
        value = draw(cfg.position_value, rng, n)
        leverage = draw(cfg.leverage, rng, n)
        if np.any(value <= 0) or np.any(leverage < 1):
            self._fail(field, "position_value must be > 0 and leverage >= 1 in every draw")
        ltv_cap = pool.ltv[coll_market] * (1.0 - 1e-9)
        debt_value = value * np.minimum(1.0 - 1.0 / leverage, ltv_cap)
        debt = debt_value / p0[d]
        if debt.sum() > pool.cash[debt_market]:
            suppliers = [f"{here}.supply.{cfg.debt_asset}" for here, lenders in
                         self.scenario.agents.populations("lenders")
                         if lenders.protocol == cfg.protocol]
            fix = f"raise {suppliers[0]}" if suppliers else f"add lenders to {cfg.protocol}"
            self._fail(field, f"traders borrow {debt.sum():,.0f} {cfg.debt_asset} from "
                       f"{cfg.protocol} but its lenders supply only "
                       f"{pool.cash[debt_market]:,.0f}; {fix} or lower position_value")
        owner = np.arange(n) // cfg.positions_per_agent
        rows = pool.open_positions(owner, coll_market, np.full(n, debt_market),
                                   value / p0[coll_asset], debt, p0)
        self.external[d] += debt.sum()  # borrowed funds were spent on the collateral
        wallet = self._amounts(f"{field}.wallet_share", cfg.wallet_share, n) * value / p0[d]
        self.traders.append(TraderTable(rows, d, wallet,
                                        rng.random(n) < cfg.deleverage_share,
                                        margin_call_health=cfg.margin_call_health,
                                        target_health=cfg.target_health))
        venues = tuple(dict.fromkeys(
            self.pool_names[v] for v in self.venue_pool[np.unique(coll_market)] if v >= 0))
        for k in range(cfg.count):
            LeveragedTrader(self, slice(rows.start + k * cfg.positions_per_agent,
                                        rows.start + (k + 1) * cfg.positions_per_agent),
                            protocols=(cfg.protocol, *venues))

    # --- the step ---------------------------------------------------------------------------

    def step(self) -> None:
        """Advance one step of ``dt_hours``."""
        self.t += 1
        t = self.t
        ext = self.prices[t]
        self.volume = dict.fromkeys(AGENT_KINDS, 0.0)
        self.lending.accrue(self.dt_hours)
        self._protocol_shocks(t, ext)
        self._price_receipts(t)
        np.maximum(self.running_max, ext, out=self.running_max)
        if self.arbitrageurs is not None:
            self.volume["arbitrageur"] = self.arbitrageurs.act(self.amm, ext, self.external,
                                                               self.rng)
        if self.market_makers is not None:
            mm = self.market_makers
            mm.act(self.amm, self.prices[: t + 1, self.amm.base[mm.pool]], self.dt_hours)
        drawdown = float(np.max(1.0 - ext / self.running_max))
        for lenders in self.lenders:
            lenders.act(self.lending, drawdown)
        for traders in self.traders:
            self.volume["leveraged_trader"] += traders.act(
                self.lending, self.oracles.price, ext, self.amm, self.venue_pool, self.external)
        unwinds = [(p, shocks.manipulate(self.amm, p, size, self.external))
                   for p, size in self.shocks.manipulations(t)]
        stale = self.shocks.stale_assets(t)
        self.oracles.update(t, self.prices[: t + 1], self.amm.spot(), stale)
        self.gas_multiplier = self.shocks.gas_multiplier(t)
        self.liquidators.set_gas_multiplier(self.gas_multiplier)
        self.liquidators.shuffle(self.rng)
        stats, totals, rounds = self.lending.liquidate(
            oracle_price=self.oracles.price, oracle_pool=self.oracles.live_pools(stale),
            value_price=ext,
            venue_pool=self.venue_pool, pools=self.amm, liquidators=self.liquidators,
            arbitrage=self._arbitrage_inputs(), gas_sink=self.gas_sink,
            max_rounds=self.scenario.simulation.max_cascade_rounds)
        self.volume["liquidator"] = stats[:, ck.COLLATERAL_SEIZED_VALUE].sum()
        self.volume["arbitrageur"] += totals[ck.ARBITRAGE_VOLUME]
        for p, trade in reversed(unwinds):
            shocks.unwind(self.amm, p, trade, self.external)
        self._record(stats, totals, rounds)

    def _protocol_shocks(self, t: int, ext: np.ndarray) -> None:
        """Exploits and liquidity withdrawals scheduled for step ``t``."""
        self.exploited[:] = 0.0
        for name, share in self.shocks.exploit.get(t, []):
            k = self.protocol_names.index(name)
            if name in self.lending_names:
                stolen = shocks.steal_from_lending(self.lending, name, share, self.external)
                self.exploited[k] += stolen @ ext
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

    # --- accounting -------------------------------------------------------------------------

    def token_totals(self) -> np.ndarray:
        """Tokens per asset summed over every account (conserved: nothing is minted)."""
        m = len(self.assets)
        amm = self.amm
        pool = self.lending
        total = (pool.per_asset(pool.cash + pool.total_coll + pool.treasury)
                 + np.bincount(amm.base, weights=amm.reserve_base, minlength=m)
                 + np.bincount(amm.quote, weights=amm.reserve_quote, minlength=m)
                 + self.liquidators.balance.sum(axis=0) + self.external + self.gas_sink)
        for lenders in self.lenders:
            total += lenders.wallet.sum(axis=0)
        total += self._trader_wallets()
        if self.market_makers is not None:
            total += self.market_makers.wallet.sum(axis=0)
        if self.arbitrageurs is not None:
            total += self.arbitrageurs.balance.sum(axis=0)
        return total

    def _trader_wallets(self) -> np.ndarray:
        """Traders' spare funds per asset (each row holds its debt asset)."""
        out = np.zeros(len(self.assets))
        for traders in self.traders:
            out[traders.debt_asset] += traders.wallet.sum()
        return out

    def net_worth(self, coll: np.ndarray, debt: np.ndarray) -> np.ndarray:
        """Net worth per agent kind at external prices (order of ``AGENT_KINDS``)."""
        ext = self.prices[self.t]
        out = np.zeros(len(AGENT_KINDS))
        pool = self.lending
        for lenders in self.lenders:
            out[0] += (lenders.claims(pool) + lenders.wallet.sum(0)) @ ext
        if self.traders:
            out[1] = pool.per_asset(coll - debt) @ ext + self._trader_wallets() @ ext
        if self.market_makers is not None:
            mm = self.market_makers
            p = mm.pool
            share = mm.shares.sum() / self.amm.lp_supply[p]
            out[2] = (share * (self.amm.reserve_base[p] * ext[self.amm.base[p]]
                               + self.amm.reserve_quote[p] * ext[self.amm.quote[p]])
                      + mm.wallet.sum(0) @ ext)
        out[3] = self.liquidators.balance.sum(0) @ ext
        if self.arbitrageurs is not None:
            out[4] = self.arbitrageurs.balance.sum(0) @ ext
        return out

    def _record(self, stats: np.ndarray, totals: np.ndarray, rounds: np.ndarray) -> None:
        pool = self.lending
        price = self.oracles.price
        coll, debt, insolvent = pool.totals(price)
        n_proto = len(self.protocol_names)
        lending_rows = [self.protocol_names.index(n) for n in self.lending_names]

        def per_protocol(values: np.ndarray) -> np.ndarray:
            out = np.zeros(n_proto)
            out[lending_rows] = values
            return out

        def per_market(values: np.ndarray) -> np.ndarray:
            out = np.full((n_proto, len(self.assets)), np.nan)
            out[lending_rows] = np.where(pool.listed, values, np.nan).reshape(
                len(lending_rows), len(self.assets))
            return out

        ext = self.prices[self.t]
        tvl = np.zeros(n_proto)
        held = (pool.cash + pool.total_coll) * pool.market_price(ext)
        tvl[lending_rows] = np.bincount(pool.market_protocol, weights=held,
                                        minlength=len(lending_rows))
        amm_price = np.full(n_proto, np.nan)
        depth = np.full(n_proto, np.nan)
        rbase = np.full(n_proto, np.nan)
        rquote = np.full(n_proto, np.nan)
        amm = self.amm
        if len(amm):
            idx = [self.protocol_names.index(n) for n in self.pool_names]
            amm_price[idx] = amm.spot() * price[amm.quote]
            depth[idx] = amm.depth() * amm_price[idx]
            rbase[idx] = amm.reserve_base
            rquote[idx] = amm.reserve_quote
            tvl[idx] = amm.reserve_base * ext[amm.base] + amm.reserve_quote * ext[amm.quote]
        self.recorder.record(self.t, {
            "external_price": self.prices[self.t],
            "oracle_price": price,
            "amm_price": amm_price,
            "tvl": tvl,
            "pool_depth": depth,
            "pool_reserve_base": rbase,
            "pool_reserve_quote": rquote,
            "liquidated_value": per_protocol(stats[:, ck.DEBT_REPAID_VALUE]),
            "seized_collateral_value": per_protocol(stats[:, ck.COLLATERAL_SEIZED_VALUE]),
            "liquidation_count": per_protocol(stats[:, ck.N_LIQUIDATIONS]),
            "bad_debt": per_protocol(stats[:, ck.BAD_DEBT_VALUE]),
            "insolvent_debt": per_protocol(insolvent[:, 0]),
            "liquidatable_count": per_protocol(insolvent[:, 1]),
            "liquidator_profit": per_protocol(stats[:, ck.LIQUIDATOR_PROFIT]),
            "utilisation": per_market(pool.utilisation()),
            "borrow_rate": per_market(pool.borrow_rate()),
            "total_collateral": per_market(coll),
            "total_debt": per_market(debt),
            "available_liquidity": per_market(pool.cash),
            "deficit": per_market(pool.deficit),
            "backing_ratio": per_market(pool.backing_ratio()),
            "exploit_loss": self.exploited,
            "gas_multiplier": self.gas_multiplier,
            "cascade_rounds": float(np.count_nonzero(rounds)),  # rounds that liquidated
            "round_liquidations": rounds,
            "net_worth": self.net_worth(coll, debt),
            "trade_volume": np.array([self.volume[k] for k in AGENT_KINDS]),
        })
