"""Construction of a model from its scenario: protocols, agents, receipt tokens.

A mixin of ``StressModel``: each method reads ``self.scenario`` and sets the model's protocol
tables and agent populations. Setup errors name the scenario field (``ScenarioError``).
"""

from __future__ import annotations

import warnings

import numpy as np

from sim.agents.arbitrageur import Arbitrageur, ArbitrageurTable
from sim.agents.delta_hedger import DeltaHedger, DeltaHedgerTable
from sim.agents.hedging import PERP, POOL, SPOT
from sim.agents.holder import Holder, HolderTable
from sim.agents.lender import Lender, LenderTable
from sim.agents.leveraged_trader import AccountTrader, LeveragedTrader, TraderTable
from sim.agents.liquidator import Keeper, Liquidator, LiquidatorTable
from sim.agents.market_maker import MarketMaker, MarketMakerTable, pool_tokens
from sim.agents.option_trader import OptionTrader, OptionTraderTable
from sim.agents.perp_trader import PerpTrader, PerpTraderTable
from sim.agents.redeemer import Redeemer, RedeemerTable
from sim.agents.vault_owner import VaultOwner, VaultOwnerTable
from sim.agents.vol_arbitrageur import VolArbitrageur, VolArbitrageurTable
from sim.engine.greeks import CALL, PUT
from sim.errors import ScenarioError, SimWarning
from sim.protocols.amm import Pools
from sim.protocols.cdp import CDPs
from sim.protocols.errors import ProtocolError
from sim.protocols.lending import LendingPools
from sim.protocols.lending_accounts import AccountBook
from sim.protocols.liquid_staking import LiquidStaking as StakingTable
from sim.protocols.options import OptionsProtocols, VolSurface
from sim.protocols.oracle import Oracles
from sim.protocols.perps import PerpMarkets
from sim.protocols.psm import PegStabilityModule
from sim.protocols.stablecoin import AlgorithmicStablecoin as AlgorithmicTable
from sim.scenario import (
    CDP,
    AlgorithmicStablecoin,
    ConstantProduct,
    Lending,
    LiquidStaking,
    Options,
    Oracle,
    Perpetuals,
    Pool,
    Sale,
    StableSwap,
    draw,
)
from sim.scenario.references import model_priced


class Construction:
    """Builds the protocols and agents of a ``StressModel`` (mixin)."""

    def _index(self, asset: str) -> int:
        return self.assets.index(asset)

    def _fail(self, field: str, message: str) -> None:
        raise ScenarioError(self.scenario.source, field, message)

    def _build_protocols(self) -> None:
        s = self.scenario
        self._build_options()  # first: it prices the option tokens at t = 0
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
                params = mk.model_dump(exclude={"interest_rate", "liquidation_venue", "oracle"})
                params.update(mk.interest_rate.model_dump())
                row.append(params)
                if mk.liquidation_venue is not None:
                    self.venue_pool[p * m + a] = self.pool_names.index(mk.liquidation_venue)
            markets.append(row)
        self.lending = LendingPools(self.lending_names, markets, [
            (c.close_factor, c.close_factor_hf_threshold, c.min_base_max_close_factor_threshold,
             c.min_leftover_base) for c in lendings.values()])
        self.accounts = AccountBook(self.lending)  # multi-collateral accounts, same reserves
        self._build_staking()
        self._build_cdps()
        self._build_algorithmic()
        self._build_perps()

    def _warn_unread_markets(self) -> None:
        """Warn, per lending protocol, of markets that read a moving price with no oracle.

        An asset with no oracle protocol is read as the model prices it every step (no
        delay, heartbeat or deviation: ``sim.protocols.oracle``). That is harmless when the
        price never moves (a stablecoin at 1) and may be meant otherwise: a market says so
        with ``oracle = "exact"``. The external path is whole from the start; an asset the
        model prices (``model_priced``) counts as moving.
        """
        s = self.scenario
        read = {o.asset for o in s.protocols_of(Oracle).values()}
        priced = model_priced(s)
        for name, cfg in s.protocols_of(Lending).items():
            unread = []
            for asset, mk in cfg.markets.items():
                if asset in read or mk.oracle == "exact":
                    continue
                if asset in priced:
                    unread.append(f"{asset} (priced by the model: {priced[asset][0]})")
                    continue
                path = self.prices[:, self._index(asset)]
                if np.ptp(path) > 0:
                    unread.append(f"{asset} (external price {path.min():.6g} to "
                                  f"{path.max():.6g} over the run)")
            if unread:
                warnings.warn(
                    f"protocols.{name}: no oracle reads {', '.join(unread)}; its markets read "
                    "the price every step with no delay, heartbeat or deviation: add an "
                    "oracle protocol, or set oracle = \"exact\" in the market if that is meant",
                    SimWarning, stacklevel=2)

    def _build_options(self) -> None:
        """Options protocols, one volatility surface per asset (their markets'), and series.

        Every option token is a series of its protocol's vault, priced at t = 0 from the
        surface (its supply is recorded once the agents hold their tokens).
        """
        opts = self.scenario.protocols_of(Options)
        self.option_names = list(opts)
        m = len(self.assets)
        market = {}
        for c in opts.values():
            for asset, mk in c.markets.items():
                market[self._index(asset)] = mk
        self.option_assets = np.array(sorted(market), dtype=np.int64)

        def col(key: str, default: float) -> np.ndarray:
            return np.array([getattr(market[a], key) if a in market else default
                             for a in range(m)])

        surface = VolSurface(col("atm_vol", 1.0), skew=col("skew", 0.0), term=col("term", 0.0),
                             reaction_hours=col("reaction_hours", 24.0),
                             premium=col("vol_premium", 0.0))
        rates = {c.rate for c in opts.values()}
        if len(rates) > 1:
            self._fail("protocols", "options protocols must share one rate (got "
                       f"{sorted(rates)})")
        self.options = OptionsProtocols(
            self.option_names, settlement_asset=[self._index(c.settlement) for c in
                                                 opts.values()],
            vault=[c.vault for c in opts.values()], surface=surface,
            rate=rates.pop() if rates else 0.0,
            gamma_limit=[np.inf if c.gamma_limit_usd is None else c.gamma_limit_usd
                         for c in opts.values()],
            vega_limit=[np.inf if c.vega_limit_usd is None else c.vega_limit_usd
                        for c in opts.values()])
        tokens = {name: spec.option for name, spec in self.scenario.assets.items()
                  if spec.option is not None}
        for name, o in tokens.items():
            self.options.add_series(self.option_names.index(o.protocol), self._index(name),
                                    self._index(o.underlying), CALL if o.kind == "call" else PUT,
                                    o.strike, o.expiry_hours)
        self.option_tokens = self.options.series_token
        value = self.options.series_price(self.prices[0], 0.0)
        for name, v in zip(tokens, value, strict=True):
            if not v > 0:
                self._fail(f"assets.{name}.option.strike", "the option is worth nothing at "
                           "the start on its volatility surface; it cannot be priced as a token")
        self.prices[0, self.option_tokens] = value

    def _seed_option_series(self) -> None:
        """The vault wrote every option token the scenario placed: its short row per series."""
        held = self.token_totals()
        for k, token in enumerate(self.options.series_token):
            self.options.issue(k, held[token])

    def _build_perps(self) -> None:
        """Perpetual-futures protocols: one market per (protocol, asset); vaults and hedges."""
        perps = self.scenario.protocols_of(Perpetuals)
        self.perp_names = list(perps)
        markets = [[None if (mk := c.markets.get(asset)) is None else mk.model_dump(
            exclude={"hedge_pool"}) for asset in self.assets] for c in perps.values()]
        self.perps = PerpMarkets(self.perp_names, markets,
                                 settlement_asset=[self._index(c.settlement)
                                                   for c in perps.values()],
                                 insurance_fund=[c.insurance_fund for c in perps.values()],
                                 n_assets=len(self.assets),
                                 cross_margin=[c.margin_mode == "cross" for c in perps.values()])
        for name, c in perps.items():
            for asset, mk in c.markets.items():
                if mk.hedge_pool is not None:
                    k = self.perps.market(name, self._index(asset))
                    self.perps.hedge_pool[k] = self.pool_names.index(mk.hedge_pool)

    def _build_algorithmic(self) -> None:
        """Algorithmic stablecoins; their supplies are seeded after the agents."""
        algos = self.scenario.protocols_of(AlgorithmicStablecoin)
        self.algo_names = list(algos)
        cfgs = list(algos.values())
        self.algo_stable = np.array([self._index(c.stable) for c in cfgs], dtype=np.int64)
        self.algo_sister = np.array([self._index(c.sister) for c in cfgs], dtype=np.int64)
        self.algo_stable_pool = np.array([self.pool_names.index(c.stable_pool) for c in cfgs],
                                         dtype=np.int64)
        self.algo_sister_pool = np.array([self.pool_names.index(c.sister_pool) for c in cfgs],
                                         dtype=np.int64)
        n = len(cfgs)
        self.algo = AlgorithmicTable(
            self.algo_names, base_pool=[c.base_pool for c in cfgs],
            min_spread=[c.min_spread for c in cfgs],
            pool_recovery_period=[c.pool_recovery_period for c in cfgs],
            blocks_per_step=[self.dt_hours * 3600.0 / c.block_seconds for c in cfgs],
            stable_supply=np.zeros(n), sister_supply=np.zeros(n))
        for name, c in algos.items():
            for role in ("stable", "sister"):
                self._check_pool_price(getattr(c, role), getattr(c, f"{role}_pool"), name)

    def _seed_algorithmic(self) -> None:
        """Supplies of algorithmic stablecoins and sisters: every token the scenario placed."""
        held = self.token_totals()
        self.algo.stable_supply[:] = held[self.algo_stable]
        self.algo.sister_supply[:] = held[self.algo_sister]
        self.algo_start_supply = (self.algo.stable_supply.copy(), self.algo.sister_supply.copy())

    def _build_cdps(self) -> None:
        """CDP protocols: one ilk per (protocol, collateral asset); vaults come with owners."""
        cdps = self.scenario.protocols_of(CDP)
        self.cdp_names = list(cdps)
        ilks = []
        self.ilk_of: dict[tuple[str, int], int] = {}
        for name, c in cdps.items():
            for asset, ilk in c.ilks.items():
                self.ilk_of[name, self._index(asset)] = len(ilks)
                params = ilk.model_dump(exclude={"auction", "liquidation_venue"})
                for key in ("debt_ceiling", "hole"):
                    params[key] = np.inf if params[key] is None else params[key]
                venue = ilk.liquidation_venue
                ilks.append({**params, "protocol": name, "asset": self._index(asset),
                             "auction_kind": ilk.auction,
                             "venue": -1 if venue is None else self.pool_names.index(venue)})
        self.cdps = CDPs(self.cdp_names, [self._index(c.stable) for c in cdps.values()],
                         len(self.assets), ilks,
                         big_hole=[np.inf if c.hole is None else c.hole for c in cdps.values()])
        self.cdp_stable_pool = np.array([-1 if c.stable_pool is None else
                                         self.pool_names.index(c.stable_pool)
                                         for c in cdps.values()], dtype=np.int64)
        for name, c in cdps.items():
            if c.stable_pool is not None:
                self._check_pool_price(c.stable, c.stable_pool, name)
        psms = {n: c for n, c in cdps.items() if c.psm is not None}
        self.psm_names = list(psms)
        self.psm_cdp = np.array([self.cdp_names.index(n) for n in psms], dtype=np.int64)
        self.psm_gem = np.array([self._index(c.psm.gem) for c in psms.values()], dtype=np.int64)
        self.psm_stable = self.cdps.stable_asset[self.psm_cdp]
        self.psm = PegStabilityModule(
            self.psm_names, tin=[c.psm.tin for c in psms.values()],
            tout=[c.psm.tout for c in psms.values()],
            line=[np.inf if c.psm.line is None else c.psm.line for c in psms.values()],
            reserve=[c.psm.reserve for c in psms.values()])
        # The stable the PSM minted against its starting reserve circulates outside.
        np.add.at(self.external, self.psm_stable, self.psm.reserve)

    def _check_pool_price(self, token: str, pool_name: str, issuer: str) -> None:
        """A token priced by its pool must start at the pool's price."""
        pool = self.pool_names.index(pool_name)
        want = self.amm.spot()[pool] * self.prices[0, self.amm.quote[pool]]
        if abs(self.prices[0, self._index(token)] - want) > 1e-9 * want:
            self._fail(f"assets.{token}.price", f"must be its pool's price ({want:g}, "
                       f"{pool_name}) at start: {issuer} prices it from the pool")

    def _build_staking(self) -> None:
        """Liquid-staking and wrapped tokens; their supply is seeded after the agents."""
        s = self.scenario
        lsts = s.protocols_of(LiquidStaking)
        self.staking_names = list(lsts)
        cfgs = list(lsts.values())
        self.staking = StakingTable(
            self.staking_names, token=[self._index(c.token) for c in cfgs],
            underlying=[self._index(c.underlying) for c in cfgs], n_assets=len(self.assets),
            staking_apr=[c.staking_apr for c in cfgs], delay_hours=[c.delay_hours for c in cfgs],
            exit_capacity_per_day=[c.exit_capacity_per_day for c in cfgs],
            rate=[c.rate for c in cfgs])
        self.staking_pool = np.array([-1 if c.pool is None else self.pool_names.index(c.pool)
                                      for c in cfgs], dtype=np.int64)
        p0 = self.prices[0]
        for name, c in lsts.items():
            want = p0[self._index(c.underlying)] * c.rate
            if abs(p0[self._index(c.token)] - want) > 1e-9 * want:
                self._fail(f"assets.{c.token}.price", f"must be {c.underlying}'s price times "
                           f"protocols.{name}.rate ({want:g}) at start")

    def _place_sale_tokens(self) -> None:
        """Tokens the scheduled ``sale`` shocks will sell are held outside from the start.

        So an issuer's supply counts them, and the outside world's balance never goes
        negative when they are sold.
        """
        for shock in self.scenario.shocks:
            if isinstance(shock, Sale):
                self.external[self.amm.base[self.pool_names.index(shock.pool)]] += shock.amount

    def _seed_staking(self) -> None:
        """Back every token the scenario placed (pools, collateral, wallets) at its rate."""
        held = self.token_totals()
        for p, name in enumerate(self.staking_names):
            supply = held[self.staking.token[p]]
            if supply > 0:
                # The tokens are already placed; this records their supply and backing.
                self.staking.deposit(p, supply * self.staking.rate[p])
            self.staking.set_mint_enabled(p, self.scenario.protocols[name].mint_enabled)

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

    def _draw_assets(self, weights: dict[str, float], n: int) -> np.ndarray:
        """Asset index of each of ``n`` positions, drawn with the scenario's weights."""
        names = list(weights)
        w = np.array([weights[k] for k in names])
        return np.array([self._index(k) for k in names])[
            self.rng.choice(len(names), size=n, p=w / w.sum())]

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
                                            withdraw_fraction=cfg.withdraw_fraction,
                                            sell_pool=-1 if cfg.sell_on is None else
                                            self.pool_names.index(cfg.sell_on)))
            for row in range(n):
                Lender(self, row, protocols=(cfg.protocol,)).table = self.lenders[-1]

        self.traders: list[TraderTable] = []
        for field, cfg in a.populations("leveraged_traders"):
            self._build_traders(field, cfg)
        for field, cfg in a.populations("multi_collateral_traders"):
            self._build_accounts(field, cfg)

        self.market_makers = None
        if a.market_makers is not None:
            cfg = a.market_makers
            p = self.pool_names.index(cfg.pool)
            shares = np.full(cfg.count, self.amm.lp_supply[p] / cfg.count)
            window = max(2, round(cfg.volatility_window_hours / self.dt_hours))
            self.market_makers = MarketMakerTable(
                p, shares, m, deposit=pool_tokens(self.amm, p, shares, m),
                volatility_limit=cfg.volatility_limit, pull_fraction=cfg.pull_fraction,
                window_steps=window, loss_limit=cfg.loss_limit)
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

        self.vault_owners: list[VaultOwnerTable] = []
        for field, cfg in a.populations("vault_owners"):
            self._build_vault_owners(field, cfg)

        self.keepers = LiquidatorTable.empty(m)
        self.keeper_opportunist = np.zeros(0, dtype=np.bool_)
        if a.keepers is not None:
            cfg = a.keepers
            n = cfg.count
            names = cfg.protocols or self.cdp_names
            stables = np.unique(self.cdps.stable_asset[[self.cdp_names.index(c) for c in names]])
            capital = self._amounts("agents.keepers.capital", cfg.capital, n)
            balance = np.zeros((n, m))
            for k in stables:
                balance[:, k] = capital / len(stables) / p0[k]
            self.keepers = LiquidatorTable(
                balance, self._amounts("agents.keepers.gas_cost", cfg.gas_cost, n),
                self._amounts("agents.keepers.min_profit", cfg.min_profit, n),
                np.zeros(n, dtype=np.bool_))
            self.keeper_opportunist = rng.random(n) < cfg.opportunist_share
            venues = tuple(self.pool_names[v] for v in np.unique(self.cdps.ilk_venue) if v >= 0)
            for row in range(n):
                Keeper(self, row, protocols=(*names, *venues))

        self.perp_traders: list[PerpTraderTable] = []
        for field, cfg in a.populations("perp_traders"):
            self._build_perp_traders(field, cfg)
        self.perps.hedge[:] = self.perps.hedge_target()  # vaults start hedged

        self.option_traders: list[OptionTraderTable] = []
        self.option_forward_market = np.full(m, -1, dtype=np.int64)  # perp market per asset
        for field, cfg in a.populations("option_traders"):
            self._build_option_traders(field, cfg)

        self.delta_hedgers = None
        if a.delta_hedgers is not None:
            cfg = a.delta_hedgers
            desk = self._desk("agents.delta_hedgers", cfg)
            self.delta_hedgers = DeltaHedgerTable(
                protocol=self.option_names.index(cfg.protocol), **desk)
            for row in range(cfg.count):
                DeltaHedger(self, row, protocols=(cfg.protocol, *_venue_protocols(cfg)))

        self.vol_arbitrageurs = None
        if a.vol_arbitrageurs is not None:
            cfg = a.vol_arbitrageurs
            p = self.option_names.index(cfg.protocol)
            desk = self._desk("agents.vol_arbitrageurs", cfg)
            if desk["cash"] != self.options.settlement_asset[p]:
                self._fail("agents.vol_arbitrageurs.cash", "must be the options protocol's "
                           f"settlement token, {self.assets[self.options.settlement_asset[p]]}")
            self.vol_arbitrageurs = VolArbitrageurTable(
                protocol=p, edge=cfg.edge,
                trade_every=round(cfg.trade_every_hours / self.dt_hours),
                tenor_hours=cfg.tenor_hours, trade_value=cfg.trade_value,
                gamma_limit=np.inf if cfg.gamma_limit_usd is None else cfg.gamma_limit_usd,
                vega_limit=np.inf if cfg.vega_limit_usd is None else cfg.vega_limit_usd,
                option_owner=len(self.options.book) + np.arange(cfg.count), **desk)
            self.vol_window = max(2, round(cfg.window_hours / self.dt_hours))
            for row in range(cfg.count):
                VolArbitrageur(self, row, protocols=(cfg.protocol, *_venue_protocols(cfg)))

        self.holders: list[HolderTable] = []
        for field, cfg in a.populations("holders"):
            pool = self.pool_names.index(cfg.pool)
            token = self._index(cfg.token)
            table = HolderTable(
                token=token, pool=pool, quote=self.amm.quote[pool],
                tokens=cfg.amount * rng.dirichlet(np.ones(cfg.count)),
                sell_below=self._amounts(f"{field}.sell_below", cfg.sell_below, cfg.count),
                sell_fraction=cfg.sell_fraction, start_price=p0[token])
            self.holders.append(table)
            for row in range(cfg.count):
                Holder(self, table, row, protocols=(cfg.pool,))

        self.redeemers = None
        if a.redeemers is not None:
            self._build_redeemers(a.redeemers)

    def _open_delta_hedge(self) -> None:
        """The delta hedgers start hedged, once every option (and option token) is written.

        Their inventory offsets the vault's option delta at t = 0 around their own holding
        (the base part of their capital).
        """
        h = self.delta_hedgers
        if h is None:
            return
        start = self._vault_option_delta()
        h.balance[:, h.assets] -= start[h.assets] / len(h)
        if np.any(h.balance < 0):
            self._fail("agents.delta_hedgers.capital", "too small to hold the opening hedge "
                       "(the vault's option delta) in base tokens; raise it or base_share")

    def _build_perp_traders(self, field: str, cfg) -> None:
        rng = self.rng
        p0 = self.prices[0]
        per = cfg.positions_per_agent
        n = cfg.count * per
        if per == 1:
            asset = self._draw_assets(cfg.markets, n)
        else:  # each trader takes the markets in order, cycling
            names = list(cfg.markets)
            asset = np.array([self._index(names[j % len(names)]) for j in range(n)])
        market = np.array([self.perps.market(cfg.protocol, a) for a in asset], dtype=np.int64)
        notional = self._amounts(f"{field}.position_value", cfg.position_value, n)
        leverage = draw(cfg.leverage, rng, n)
        cap = 1.0 / self.perps.initial_margin[market]
        if np.any(notional <= 0) or np.any(leverage <= 0) or np.any(leverage > cap):
            self._fail(f"{field}.leverage", "position_value must be > 0 and leverage in "
                       "(0, 1 / initial_margin] in every draw")
        side = np.where(rng.random(n) < cfg.long_share, 1.0, -1.0)
        settle = self.perps.settlement_asset[self.perp_names.index(cfg.protocol)]
        margin = notional / leverage / p0[settle]  # settlement tokens
        first = len(self.perps.book)  # owners: one id per trader, unique across populations
        owner = first + np.arange(n) // per
        rows = self.perps.open_positions(owner, market, side * notional / p0[asset],
                                         margin=margin * (1 + 1e-12), asset_price=p0)
        wallet = self._amounts(f"{field}.wallet_share", cfg.wallet_share, n) * margin
        self.perp_traders.append(PerpTraderTable(rows, settle, wallet,
                                                 margin_call_ratio=cfg.margin_call_ratio,
                                                 target_ratio=cfg.target_ratio))
        hedges = tuple(dict.fromkeys(self.pool_names[v] for v in self.perps.hedge_pool[market]
                                     if v >= 0))
        for k in range(cfg.count):
            PerpTrader(self, slice(rows.start + k * per, rows.start + (k + 1) * per),
                       protocols=(cfg.protocol, *hedges)).table = self.perp_traders[-1]

    def _option_forwards(self) -> np.ndarray:
        """Per asset, what options on perps are on: the perp's mark (settlement tokens).

        The oracle price for assets with no option on a perp.
        """
        out = self.oracles.price.copy()
        on = self.option_forward_market >= 0
        if on.any():
            out[on] = self.perps.mark_price(self.oracles.price)[self.option_forward_market[on]]
        return out

    def _desk(self, field: str, cfg) -> dict:
        """``HedgingTable`` arguments of a desk (``sim.scenario.HedgingDesk``).

        Capital is split between its own holding of each hedged asset and cash.
        """
        p0 = self.prices[0]
        m = len(self.assets)
        assets = np.array([self._index(k) for k in cfg.venues], dtype=np.int64)
        kind = np.zeros(len(assets), dtype=np.int64)
        venue = np.full(len(assets), -1, dtype=np.int64)
        cash = None if cfg.cash is None else self._index(cfg.cash)
        for j, (asset, name) in enumerate(cfg.venues.items()):
            if name in self.pool_names:
                kind[j], venue[j] = POOL, self.pool_names.index(name)
                quote = int(self.amm.quote[venue[j]])
                cash = quote if cash is None else cash
                if quote != cash:
                    self._fail(f"{field}.venues.{asset}", f"pool '{name}' trades against "
                               f"{self.assets[quote]}, not the desk's cash "
                               f"{self.assets[cash]}; every pool must share one quote")
            elif name in self.perp_names:
                kind[j], venue[j] = PERP, self.perps.market(name, assets[j])
            else:  # "spot" (checked with the scenario's references)
                kind[j] = SPOT
        if cash is None:
            self._fail(f"{field}.cash", "needed when no venue is a pool")
        for j, name in enumerate(cfg.venues.values()):
            if kind[j] == PERP:
                settle = int(self.perps.settlement_asset[self.perp_names.index(name)])
                if settle != cash:
                    self._fail(f"{field}.venues.{self.assets[assets[j]]}", f"perps '{name}' "
                               f"settle in {self.assets[settle]}, not the desk's cash "
                               f"{self.assets[cash]}")
                if cfg.perp_margin < self.perps.initial_margin[venue[j]]:
                    self._fail(f"{field}.perp_margin", "must be >= the market's initial "
                               f"margin ({self.perps.initial_margin[venue[j]]:g})")
        capital = self._amounts(f"{field}.capital", cfg.capital, cfg.count)
        balance = np.zeros((cfg.count, m))
        for a_ in assets:
            balance[:, a_] += capital * cfg.base_share / len(assets) / p0[a_]
        balance[:, cash] += capital * (1 - cfg.base_share) / p0[cash]
        for asset in cfg.delta_target_usd:
            if asset not in cfg.venues:
                self._fail(f"{field}.delta_target_usd.{asset}", "not a hedged asset (venues: "
                           f"{', '.join(cfg.venues)})")
        # Owner ids in the perps book: after every perp trader's, and after the delta
        # hedgers' for the volatility arbitrageurs (built second).
        first_free = int(self.perps.book.owner.max()) + 1 if len(self.perps.book) else 0
        hedgers = getattr(self, "delta_hedgers", None)
        owner = first_free + (len(hedgers) if hedgers is not None else 0)
        return dict(balance=balance, own=balance.copy(), assets=assets, venue_kind=kind,
                    venue=venue, cash=cash, band_usd=cfg.band_usd,
                    every=round(cfg.every_hours / self.dt_hours),
                    target_usd=[cfg.delta_target_usd.get(self.assets[a_], 0.0)
                                for a_ in assets],
                    spot_fee=cfg.spot_fee, perp_margin=cfg.perp_margin,
                    perp_owner=owner + np.arange(cfg.count))

    def _build_option_traders(self, field: str, cfg) -> None:
        p0 = self.prices[0]
        n = cfg.count
        asset = self._draw_assets(cfg.markets, n)
        kind = np.where(self.rng.random(n) < cfg.call_share, 1, -1)  # CALL, PUT
        strike = self._amounts(f"{field}.moneyness", cfg.moneyness, n) * p0[asset]
        expiry = self._amounts(f"{field}.expiry_hours", cfg.expiry_hours, n)
        notional = self._amounts(f"{field}.position_value", cfg.position_value, n)
        if np.any(strike <= 0) or np.any(expiry <= 0) or np.any(notional <= 0):
            self._fail(field, "moneyness, expiry_hours and position_value must be > 0 in "
                       "every draw")
        p = self.option_names.index(cfg.protocol)
        sign = 1.0 if cfg.side == "buy" else -1.0
        if cfg.underlying == "perp":  # options on the perp's mark: which market per asset
            for name in cfg.markets:
                a_ = self._index(name)
                market = self.perps.market(cfg.perp, a_)
                if self.option_forward_market[a_] not in (-1, market):
                    self._fail(f"{field}.perp", f"options on {name} are already on another "
                               "perp; all options on one asset must be on the same perp")
                self.option_forward_market[a_] = market
            self.options.forward = self._option_forwards()
        try:
            owner = len(self.options.book) + np.arange(n)  # unique across populations
            rows, premium = self.options.trade(owner, p, asset, kind, strike, expiry,
                                               sign * notional / p0[asset], price=p0,
                                               now_hours=0.0,
                                               on_forward=cfg.underlying == "perp")
        except ProtocolError as e:
            self._fail(field, str(e))
        table = OptionTraderTable(rows, self.options.settlement_asset[p])
        table.wallet -= np.minimum(premium, 0.0)  # writers hold the premium they received
        self.option_traders.append(table)
        for k in range(rows.start, rows.stop):
            OptionTrader(self, k, protocols=(cfg.protocol,)).table = table

    def _build_redeemers(self, cfg) -> None:
        """Redeemers at the issuers they can use.

        Liquid-staking issuers with a pool, algorithmic stablecoins, CDPs' PSMs with a
        stable pool.
        """
        p0 = self.prices[0]
        wanted = cfg.protocols or [*self.staking_names, *self.algo_names, *self.psm_names]
        lsts = [n for n in wanted if n in self.staking_names
                and self.staking_pool[self.staking_names.index(n)] >= 0]
        algos = [n for n in wanted if n in self.algo_names]
        psms = [n for n in wanted if n in self.psm_names
                and self.cdp_stable_pool[self.cdp_names.index(n)] >= 0]
        issuers = np.array([self.staking_names.index(n) for n in lsts], dtype=np.int64)
        coins = np.array([self.algo_names.index(n) for n in algos], dtype=np.int64)
        psm = np.array([self.psm_names.index(n) for n in psms], dtype=np.int64)
        psm_pools = self.cdp_stable_pool[self.psm_cdp[psm]]
        pools = [*self.staking_pool[issuers], *self.algo_stable_pool[coins],
                 *self.algo_sister_pool[coins], *psm_pools]
        # Capital in what they pay with: LST underlyings, stable pools' quote tokens, gems.
        cash = np.unique([*self.staking.underlying[issuers],
                          *self.amm.quote[self.algo_stable_pool[coins]],
                          *self.amm.quote[psm_pools], *self.psm_gem[psm]]).astype(np.int64)
        capital = self._amounts("agents.redeemers.capital", cfg.capital, cfg.count)
        balance = np.zeros((cfg.count, len(self.assets)))
        for u in cash:
            balance[:, u] = capital / len(cash) / p0[u]
        self.redeemers = RedeemerTable(
            balance, hurdle_rate=cfg.hurdle_rate, protocols=issuers,
            pools=self.staking_pool[issuers], min_return=cfg.min_return, stablecoins=coins,
            stable_pools=self.algo_stable_pool[coins], sister_pools=self.algo_sister_pool[coins],
            psms=psm, psm_pools=psm_pools, psm_gems=self.psm_gem[psm])
        for row in range(cfg.count):
            Redeemer(self, row, protocols=(*lsts, *algos, *psms, *dict.fromkeys(
                self.pool_names[v] for v in pools)))

    def _build_vault_owners(self, field: str, cfg) -> None:
        rng = self.rng
        p0 = self.prices[0]
        n = cfg.count
        asset = self._draw_assets(cfg.collateral, n)
        ilk = np.array([self.ilk_of[cfg.protocol, a] for a in asset], dtype=np.int64)
        value = draw(cfg.position_value, rng, n)
        ratio = draw(cfg.collateralisation, rng, n)
        if np.any(value <= 0):
            self._fail(f"{field}.position_value", "must be > 0 in every draw")
        mat = self.cdps.liquidation_ratio[ilk]
        if np.any(ratio < mat):
            self._fail(f"{field}.collateralisation", f"must be >= the ilk's liquidation_ratio "
                       f"in every draw (got {ratio.min():g} < {mat[np.argmin(ratio)]:g})")
        ink = value / p0[asset]
        debt = value / ratio  # stable units, par = 1 numeraire
        try:
            owner = len(self.cdps.vaults) + np.arange(n)
            rows, minted = self.cdps.open_vaults(owner, ilk, ink, debt, p0)
        except ProtocolError as e:
            self._fail(field, f"cannot open the vaults: {e}")
        stable = self.cdps.stable_asset[self.cdp_names.index(cfg.protocol)]
        self.external[stable] += minted.sum()  # minted stable was spent (on the collateral)
        wallet = self._amounts(f"{field}.wallet_share", cfg.wallet_share, n) * ink
        self.vault_owners.append(VaultOwnerTable(rows, wallet,
                                                 margin_call_ratio=cfg.margin_call_ratio,
                                                 target_ratio=cfg.target_ratio))
        venues = tuple(dict.fromkeys(self.pool_names[v] for v in self.cdps.ilk_venue[ilk]
                                     if v >= 0))
        for k in range(n):
            VaultOwner(self, rows.start + k, protocols=(cfg.protocol, *venues)).table = \
                self.vault_owners[-1]

    def _build_accounts(self, field: str, cfg) -> None:
        """Multi-collateral accounts: every collateral and debt asset of ``cfg`` in each."""
        rng = self.rng
        p0 = self.prices[0]
        lp = self.lending
        n = cfg.count
        value = draw(cfg.position_value, rng, n)
        leverage = draw(cfg.leverage, rng, n)
        if np.any(value <= 0) or np.any(leverage < 1):
            self._fail(field, "position_value must be > 0 and leverage >= 1 in every draw")
        coll = np.array([self._index(k) for k in cfg.collateral])
        debt = np.array([self._index(k) for k in cfg.debt])
        cw = np.array(list(cfg.collateral.values()))
        dw = np.array(list(cfg.debt.values()))
        cw, dw = cw / cw.sum(), dw / dw.sum()
        coll_market = lp.market(cfg.protocol, 0) + coll
        debt_market = lp.market(cfg.protocol, 0) + debt
        ltv_cap = (cw @ lp.ltv[coll_market]) * (1.0 - 1e-9)  # Aave: sum coll P LTV
        debt_value = value * np.minimum(1.0 - 1.0 / leverage, ltv_cap)
        legs = len(coll) + len(debt)
        amount = np.concatenate([np.outer(value, cw) / p0[coll],
                                 np.outer(debt_value, dw) / p0[debt]], axis=1)
        try:
            accounts = self.accounts.open_accounts(
                len(self.accounts) + np.arange(n), np.full(n, legs),
                leg_market=np.tile(np.concatenate([coll_market, debt_market]), n),
                leg_amount=amount.ravel(),
                leg_is_debt=np.tile(np.r_[np.zeros(len(coll), bool), np.ones(len(debt), bool)],
                                    n),
                asset_price=p0)
        except ProtocolError as e:
            self._fail(field, f"cannot open the accounts: {e}")
        np.add.at(self.external, debt, amount[:, len(coll):].sum(axis=0))  # spent
        venues = tuple(dict.fromkeys(self.pool_names[v] for v in self.venue_pool[coll_market]
                                     if v >= 0))
        for k in range(accounts.start, accounts.stop):
            AccountTrader(self, k, protocols=(cfg.protocol, *venues))

    def _build_traders(self, field: str, cfg) -> None:
        rng = self.rng
        p0 = self.prices[0]
        pool = self.lending
        n = cfg.count * cfg.positions_per_agent
        coll_asset = self._draw_assets(cfg.collateral, n)
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
                            protocols=(cfg.protocol, *venues)).table = self.traders[-1]

    # --- the step ---------------------------------------------------------------------------


def _venue_protocols(desk) -> list[str]:
    """The protocols a desk hedges on (its venues but the spot market)."""
    return [v for v in dict.fromkeys(desk.venues.values()) if v != "spot"]
