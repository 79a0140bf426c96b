"""The world a run happens in: the protocols, their wiring, and the tokens outside agents.

Built once from the scenario's typed protocol sections (``World(scenario, prices)``): pools,
oracles, lending (positions and multi-collateral accounts), liquid staking, CDPs and their
PSMs, algorithmic stablecoins, perps and options, in the order each needs the others. It
also holds the tokens no agent holds (``external``: the outside world's; ``gas_sink``: paid
as gas; ``created``: taken out of a protocol's backing by an attacker) and marks the tokens
the model prices (``mark``: staked tokens, pool-priced stablecoins, receipt tokens, option
tokens) at a step. Agents are not built here (``sim.model.populations``). Setup errors name
the scenario field (``ScenarioError``).
"""

from __future__ import annotations

import warnings

import numpy as np

from sim.engine.greeks import CALL, PUT
from sim.errors import ScenarioError, SimWarning
from sim.protocols.amm import Pools
from sim.protocols.cdp import CDPs
from sim.protocols.lending import CloseFactor, LendingPools
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
)
from sim.scenario.references import model_priced


class World:
    """The protocols of one run and the tokens outside its agents.

    Args:
        scenario: a validated scenario.
        prices: the external price paths (steps + 1, assets); row 0 is completed here with
            the option tokens' starting prices, later rows by ``mark`` as the run goes.
        contagion: when False, receipt tokens keep their issuer's starting backing ratio.
    """

    def __init__(self, scenario, prices: np.ndarray, *, contagion: bool = True):
        self.scenario = scenario
        self.prices = prices
        self.contagion = contagion
        self.dt_hours = scenario.simulation.dt_hours
        self.assets = list(scenario.assets)
        self.protocol_names = list(scenario.protocols)
        m = len(self.assets)
        self.external = np.zeros(m)  # tokens held by the outside world (CEX, spenders)
        self.gas_sink = np.zeros(m)  # tokens paid as gas
        self.created = np.zeros(m)  # tokens an attacker took out of a protocol's backing
        self._build()  # prices the option tokens at t = 0
        # Per asset, the perp market its options are written on (-1: on the oracle price).
        self.option_forward_market = np.full(m, -1, dtype=np.int64)
        self.receipts: list[tuple[int, int, int]] = []  # set by ``find_receipts``

    def index(self, asset: str) -> int:
        """The column of ``asset``."""
        return self.assets.index(asset)

    def fail(self, field: str, message: str) -> None:
        """Refuse the scenario: ``message`` about ``field`` of its file."""
        raise ScenarioError(self.scenario.source, field, message)

    def _build(self) -> None:
        s = self.scenario
        self._build_options()  # first: it prices the option tokens at t = 0
        p0 = self.prices[0]
        pools = s.protocols_of(Pool)
        self.pool_names = list(pools)
        base = np.array([self.index(p.base) for p in pools.values()], dtype=np.int64)
        quote = np.array([self.index(p.quote) for p in pools.values()], dtype=np.int64)
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
            a = self.index(o.asset)
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
            CloseFactor(close_factor=c.close_factor,
                        close_factor_hf_threshold=c.close_factor_hf_threshold,
                        min_base_max_close_factor_threshold=c.min_base_max_close_factor_threshold,
                        min_leftover_base=c.min_leftover_base) for c in lendings.values()])
        self.accounts = AccountBook(self.lending)  # multi-collateral accounts, same reserves
        self._build_staking()
        self._build_cdps()
        self._build_algorithmic()
        self._build_perps()

    def warn_unread_markets(self) -> None:
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
                path = self.prices[:, self.index(asset)]
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
                market[self.index(asset)] = mk
        self.option_assets = np.array(sorted(market), dtype=np.int64)

        def col(key: str, default: float) -> np.ndarray:
            return np.array([getattr(market[a], key) if a in market else default
                             for a in range(m)])

        surface = VolSurface(col("atm_vol", 1.0), skew=col("skew", 0.0), term=col("term", 0.0),
                             reaction_hours=col("reaction_hours", 24.0),
                             premium=col("vol_premium", 0.0))
        rates = {c.rate for c in opts.values()}
        if len(rates) > 1:
            self.fail("protocols", "options protocols must share one rate (got "
                       f"{sorted(rates)})")
        self.options = OptionsProtocols(
            self.option_names, settlement_asset=[self.index(c.settlement) for c in
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
            self.options.add_series(self.option_names.index(o.protocol), self.index(name),
                                    self.index(o.underlying), CALL if o.kind == "call" else PUT,
                                    o.strike, o.expiry_hours)
        self.option_tokens = self.options.series_token
        value = self.options.series_price(self.prices[0], 0.0)
        for name, v in zip(tokens, value, strict=True):
            if not v > 0:
                self.fail(f"assets.{name}.option.strike", "the option is worth nothing at "
                           "the start on its volatility surface; it cannot be priced as a token")
        self.prices[0, self.option_tokens] = value

    def seed_option_series(self, held: np.ndarray) -> None:
        """The vault wrote every option token the scenario placed (``held``: tokens per asset).

        Its short row per series.
        """
        for k, token in enumerate(self.options.series_token):
            self.options.issue(k, held[token])

    def _build_perps(self) -> None:
        """Perpetual-futures protocols: one market per (protocol, asset); vaults and hedges."""
        perps = self.scenario.protocols_of(Perpetuals)
        self.perp_names = list(perps)
        markets = [[None if (mk := c.markets.get(asset)) is None else mk.model_dump(
            exclude={"hedge_pool"}) for asset in self.assets] for c in perps.values()]
        self.perps = PerpMarkets(self.perp_names, markets,
                                 settlement_asset=[self.index(c.settlement)
                                                   for c in perps.values()],
                                 insurance_fund=[c.insurance_fund for c in perps.values()],
                                 n_assets=len(self.assets),
                                 cross_margin=[c.margin_mode == "cross" for c in perps.values()])
        for name, c in perps.items():
            for asset, mk in c.markets.items():
                if mk.hedge_pool is not None:
                    k = self.perps.market(name, self.index(asset))
                    self.perps.hedge_pool[k] = self.pool_names.index(mk.hedge_pool)

    def _build_algorithmic(self) -> None:
        """Algorithmic stablecoins; their supplies are seeded after the agents."""
        algos = self.scenario.protocols_of(AlgorithmicStablecoin)
        self.algo_names = list(algos)
        cfgs = list(algos.values())
        self.algo_stable = np.array([self.index(c.stable) for c in cfgs], dtype=np.int64)
        self.algo_sister = np.array([self.index(c.sister) for c in cfgs], dtype=np.int64)
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

    def seed_algorithmic(self, held: np.ndarray) -> None:
        """Supplies of algorithmic stablecoins and sisters: every token placed (``held``)."""
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
                self.ilk_of[name, self.index(asset)] = len(ilks)
                params = ilk.model_dump(exclude={"auction", "liquidation_venue"})
                for key in ("debt_ceiling", "hole"):
                    params[key] = np.inf if params[key] is None else params[key]
                venue = ilk.liquidation_venue
                ilks.append({**params, "protocol": name, "asset": self.index(asset),
                             "auction_kind": ilk.auction,
                             "venue": -1 if venue is None else self.pool_names.index(venue)})
        self.cdps = CDPs(self.cdp_names, [self.index(c.stable) for c in cdps.values()],
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
        self.psm_gem = np.array([self.index(c.psm.gem) for c in psms.values()], dtype=np.int64)
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
        if abs(self.prices[0, self.index(token)] - want) > 1e-9 * want:
            self.fail(f"assets.{token}.price", f"must be its pool's price ({want:g}, "
                       f"{pool_name}) at start: {issuer} prices it from the pool")

    def _build_staking(self) -> None:
        """Liquid-staking and wrapped tokens; their supply is seeded after the agents."""
        s = self.scenario
        lsts = s.protocols_of(LiquidStaking)
        self.staking_names = list(lsts)
        cfgs = list(lsts.values())
        self.staking = StakingTable(
            self.staking_names, token=[self.index(c.token) for c in cfgs],
            underlying=[self.index(c.underlying) for c in cfgs], n_assets=len(self.assets),
            staking_apr=[c.staking_apr for c in cfgs], delay_hours=[c.delay_hours for c in cfgs],
            exit_capacity_per_day=[c.exit_capacity_per_day for c in cfgs],
            rate=[c.rate for c in cfgs])
        self.staking_pool = np.array([-1 if c.pool is None else self.pool_names.index(c.pool)
                                      for c in cfgs], dtype=np.int64)
        p0 = self.prices[0]
        for name, c in lsts.items():
            want = p0[self.index(c.underlying)] * c.rate
            if abs(p0[self.index(c.token)] - want) > 1e-9 * want:
                self.fail(f"assets.{c.token}.price", f"must be {c.underlying}'s price times "
                           f"protocols.{name}.rate ({want:g}) at start")

    def place_sale_tokens(self) -> None:
        """Tokens the scheduled ``sale`` shocks will sell are held outside from the start.

        So an issuer's supply counts them, and the outside world's balance never goes
        negative when they are sold.
        """
        for shock in self.scenario.shocks:
            if isinstance(shock, Sale):
                self.external[self.amm.base[self.pool_names.index(shock.pool)]] += shock.amount

    def seed_staking(self, held: np.ndarray) -> None:
        """Back every staked token placed (``held``: pools, collateral, wallets) at its rate."""
        for p, name in enumerate(self.staking_names):
            supply = held[self.staking.token[p]]
            if supply > 0:
                # The tokens are already placed; this records their supply and backing.
                self.staking.deposit(p, supply * self.staking.rate[p])
            self.staking.set_mint_enabled(p, self.scenario.protocols[name].mint_enabled)

    def find_receipts(self) -> None:
        """Every lending receipt token as (token, underlying, market); checks start prices."""
        out = []
        for name, spec in self.scenario.assets.items():
            if spec.underlying is None:
                continue
            token, under = self.index(name), self.index(spec.underlying)
            if abs(self.prices[0, token] - self.prices[0, under]) > 1e-9 * self.prices[0, under]:
                self.fail(f"assets.{name}.price", f"must equal {spec.underlying}'s price "
                           f"({self.prices[0, under]:g}) at start: a receipt token is priced "
                           "from its underlying")
            out.append((token, under, self.lending.market(spec.issuer, under)))
        self.receipts = out

    def mark_receipts(self, t: int) -> None:
        """Receipt tokens: the underlying's external price times the issuer's backing ratio."""
        if not self.receipts:
            return
        ratio = self.lending.backing_ratio() if self.contagion else None
        for token, under, k in self.receipts:
            self.prices[t, token] = self.prices[t, under] * (1.0 if ratio is None else ratio[k])

    def option_forwards(self) -> np.ndarray:
        """Per asset, what options on perps are on: the perp's mark (settlement tokens).

        The oracle price for assets with no option on a perp.
        """
        out = self.oracles.price.copy()
        on = self.option_forward_market >= 0
        if on.any():
            out[on] = self.perps.mark_price(self.oracles.price)[self.option_forward_market[on]]
        return out

    def mark(self, t: int) -> None:
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
        self.mark_option_tokens(t)

    def mark_option_tokens(self, t: int) -> None:
        """Option tokens: the surface's value at the underlying's price, or the reserve's."""
        if len(self.option_tokens):
            self.prices[t, self.option_tokens] = self.options.series_price(
                self.prices[t], t * self.dt_hours)

    def publish(self, t: int, stale: list[int]) -> None:
        """Oracles publish at step ``t`` (``stale`` assets do not); option forwards follow."""
        self.oracles.update(t, self.prices[: t + 1], self.amm.spot(), stale)
        self.options.forward = self.option_forwards()
