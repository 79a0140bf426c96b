"""Cross-references of a scenario: every name that points elsewhere in the file.

A market's venue must be a pool of that asset, an oracle's pool must price its asset, an
agent's protocol must exist and list the assets it uses, and so on. Errors have the same
one-line form as schema errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.errors import ScenarioError
from sim.scenario.distributions import (
    Constant,
    Uniform,
)
from sim.scenario.market import (
    Replay,
)
from sim.scenario.protocols import (
    CDP,
    AlgorithmicStablecoin,
    Lending,
    LiquidStaking,
    Options,
    Oracle,
    Perpetuals,
    Pool,
)
from sim.scenario.schema import (
    DATA_ROOT_VARIABLE,
    Scenario,
    data_roots,
    replay_path,
)
from sim.scenario.shocks import (
    BridgeFailure,
    Depeg,
    Exploit,
    LiquidityWithdrawal,
    OracleManipulation,
    Sale,
    StaleOracle,
)


def check_references(s: Scenario) -> None:
    """Check every name that points elsewhere in the file; raise ``ScenarioError``."""

    def fail(field: str, message: str) -> None:
        raise ScenarioError(s.source, field, message)

    assets = list(s.assets)

    def need_asset(field: str, name: str) -> None:
        if name not in s.assets:
            fail(field, f"unknown asset '{name}' (assets: {', '.join(assets)})")

    def need_pool_of(field: str, name: str, base: str, verb: str = "trades") -> Any:
        """A pool whose base token is ``base`` (a venue sells it, an oracle prices it)."""
        pool = need_protocol(field, name, Pool, "pool")
        if pool.base != base:
            fail(field, f"pool '{name}' {verb} {pool.base}, not {base}")
        return pool

    def need_protocol(field: str, name: str, kind: type, label: str) -> Any:
        proto = s.protocols.get(name)
        if not isinstance(proto, kind):
            names = [k for k, v in s.protocols.items() if isinstance(v, kind)]
            known = ", ".join(names) or "none"
            fail(field, f"'{name}' is not a {label} protocol ({label}: {known})")
        return proto

    option_tokens = [name for name, spec in s.assets.items() if spec.option is not None]
    for asset in option_tokens:
        here = f"assets.{asset}.option"
        opt = s.assets[asset].option
        proto = need_protocol(f"{here}.protocol", opt.protocol, Options, "options")
        if opt.underlying not in proto.markets:
            fail(f"{here}.underlying", f"'{opt.underlying}' is not a market of "
                 f"'{opt.protocol}' (markets: {', '.join(proto.markets)})")
        if asset in s.market.processes:
            fail(f"market.processes.{asset}", f"'{asset}' is priced by the model from "
                 f"{opt.protocol}'s volatility surface; give it no process")
    for k, jump in enumerate(s.market.jumps):
        if jump.asset in option_tokens:
            fail(f"market.jumps[{k}].asset", f"'{jump.asset}' is an option token, priced by "
                 "the model: move its underlying instead")
    for k, shock in enumerate(s.shocks):
        if isinstance(shock, Depeg | BridgeFailure) and shock.asset in option_tokens:
            fail(f"shocks[{k}].asset", f"'{shock.asset}' is an option token, priced by the "
                 "model: move its underlying instead")
    for asset, spec in s.assets.items():
        if spec.issuer is not None and spec.issuer not in s.protocols:
            fail(f"assets.{asset}.issuer", f"unknown protocol '{spec.issuer}' "
                 f"(protocols: {', '.join(s.protocols)})")
        if spec.underlying is not None:
            here = f"assets.{asset}.underlying"
            issuer = s.protocols.get(spec.issuer) if spec.issuer else None
            if not isinstance(issuer, Lending):
                fail(here, "a receipt token needs issuer = '<lending protocol>'")
            if spec.underlying not in issuer.markets:
                fail(here, f"'{spec.underlying}' is not a market of '{spec.issuer}' "
                     f"(markets: {', '.join(issuer.markets)})")
            if s.assets[spec.underlying].underlying is not None:
                fail(here, "the underlying of a receipt token cannot be a receipt token")
            if asset in s.market.processes:
                fail(f"market.processes.{asset}", f"'{asset}' is priced from "
                     f"{spec.issuer}'s {spec.underlying} market; give it no process")
    for asset in s.market.processes:
        need_asset(f"market.processes.{asset}", asset)
    for asset, proc in s.market.processes.items():
        if isinstance(proc, Replay):
            path, roots = replay_path(s, proc), data_roots(s)
            if not any(path.is_relative_to(root) for root in roots):
                fail(f"market.processes.{asset}.file", f"'{proc.file}' is outside the "
                     f"scenario's folder ({roots[0]}); data files must be inside it, or inside "
                     f"a folder named in ${DATA_ROOT_VARIABLE}")
            if not path.is_file():
                fail(f"market.processes.{asset}.file", f"no such file: {path}")
    for k, shock in enumerate(s.shocks):
        here = f"shocks[{k}]"
        if isinstance(shock, LiquidityWithdrawal | OracleManipulation | Sale):
            need_protocol(f"{here}.pool", shock.pool, Pool, "pool")
        elif isinstance(shock, StaleOracle):
            need_protocol(f"{here}.oracle", shock.oracle, Oracle, "oracle")
        elif isinstance(shock, Exploit):
            target = s.protocols.get(shock.protocol)
            if not isinstance(target, Lending | Pool | LiquidStaking):
                fail(f"{here}.protocol", f"'{shock.protocol}' is not a lending, pool or "
                     "liquid_staking protocol (an exploit steals what a protocol holds)")
            if isinstance(target, Pool) and shock.share >= 1.0:
                fail(f"{here}.share", "must be < 1 for a pool (an empty pool has no price)")
        elif isinstance(shock, Depeg | BridgeFailure):
            need_asset(f"{here}.asset", shock.asset)
    for k, jump in enumerate(s.market.jumps):
        need_asset(f"market.jumps[{k}].asset", jump.asset)
    if s.market.correlation is not None:
        corr = np.asarray(s.market.correlation, dtype=float)
        n = len(assets)
        if corr.shape != (n, n):
            fail("market.correlation", f"must be a {n}x{n} matrix in the order of [assets] "
                 f"({', '.join(assets)}), got shape {corr.shape}")
        if not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1.0):
            fail("market.correlation", "must be symmetric with ones on the diagonal")
        if np.linalg.eigvalsh(corr).min() < -1e-10:
            fail("market.correlation", "must be positive semi-definite")

    oracle_of: dict[str, str] = {}
    surfaces: dict[str, Any] = {}
    for name, proto in s.protocols.items():
        here = f"protocols.{name}"
        if isinstance(proto, Pool):
            need_asset(f"{here}.base", proto.base)
            need_asset(f"{here}.quote", proto.quote)
            if proto.base == proto.quote:
                fail(f"{here}.quote", "must differ from base")
        elif isinstance(proto, Oracle):
            need_asset(f"{here}.asset", proto.asset)
            if proto.asset in oracle_of:
                fail(f"{here}.asset", f"asset '{proto.asset}' already has oracle "
                     f"'{oracle_of[proto.asset]}'")
            oracle_of[proto.asset] = name
            if proto.pool is not None:
                need_pool_of(f"{here}.pool", proto.pool, proto.asset, "prices")
        elif isinstance(proto, LiquidStaking):
            need_asset(f"{here}.token", proto.token)
            need_asset(f"{here}.underlying", proto.underlying)
            if proto.token == proto.underlying:
                fail(f"{here}.underlying", "must differ from token")
            if s.assets[proto.token].issuer != name:
                fail(f"{here}.token", f"set assets.{proto.token}.issuer = '{name}' (the "
                     "protocol issues it)")
            if proto.token in s.market.processes:
                fail(f"market.processes.{proto.token}", f"'{proto.token}' is priced from "
                     f"{name} (its pool or exchange rate); give it no process")
            if proto.pool is not None:
                pool = need_protocol(f"{here}.pool", proto.pool, Pool, "pool")
                if (pool.base, pool.quote) != (proto.token, proto.underlying):
                    fail(f"{here}.pool", f"pool '{proto.pool}' trades {pool.base}/"
                         f"{pool.quote}, not {proto.token}/{proto.underlying}")
        elif isinstance(proto, AlgorithmicStablecoin):
            for role in ("stable", "sister"):
                token = getattr(proto, role)
                need_asset(f"{here}.{role}", token)
                if s.assets[token].issuer != name:
                    fail(f"{here}.{role}", f"set assets.{token}.issuer = '{name}' (the "
                         "protocol mints and burns it)")
                if token in s.market.processes:
                    fail(f"market.processes.{token}", f"'{token}' is priced from its pool "
                         f"({name}.{role}_pool); give it no process")
                need_pool_of(f"{here}.{role}_pool", getattr(proto, f"{role}_pool"), token)
            if proto.stable == proto.sister:
                fail(f"{here}.sister", "must differ from stable")
        elif isinstance(proto, Options):
            need_asset(f"{here}.settlement", proto.settlement)
            if proto.settlement in option_tokens:
                fail(f"{here}.settlement", "cannot be an option token")
            for asset in proto.markets:
                need_asset(f"{here}.markets.{asset}", asset)
                if asset in option_tokens:
                    fail(f"{here}.markets.{asset}", "options cannot be written on an option "
                         "token")
                if asset == proto.settlement:
                    fail(f"{here}.markets.{asset}", "options cannot be on the settlement asset")
                other = surfaces.setdefault(asset, (name, proto.markets[asset]))
                if other[1] != proto.markets[asset]:
                    fail(f"{here}.markets.{asset}", f"'{asset}' already has a different "
                         f"volatility surface in '{other[0]}' (one surface per asset)")
        elif isinstance(proto, Perpetuals):
            need_asset(f"{here}.settlement", proto.settlement)
            for asset, mk in proto.markets.items():
                need_asset(f"{here}.markets.{asset}", asset)
                if asset == proto.settlement:
                    fail(f"{here}.markets.{asset}", "a market cannot trade its settlement asset")
                if mk.hedge_pool is not None:
                    need_pool_of(f"{here}.markets.{asset}.hedge_pool", mk.hedge_pool, asset)
        elif isinstance(proto, CDP):
            need_asset(f"{here}.stable", proto.stable)
            if s.assets[proto.stable].issuer != name:
                fail(f"{here}.stable", f"set assets.{proto.stable}.issuer = '{name}' (the "
                     "protocol mints it)")
            if proto.stable_pool is not None:
                need_pool_of(f"{here}.stable_pool", proto.stable_pool, proto.stable)
                if proto.stable in s.market.processes:
                    fail(f"market.processes.{proto.stable}", f"'{proto.stable}' is priced "
                         f"from {proto.stable_pool}; give it no process")
            if proto.psm is not None:
                need_asset(f"{here}.psm.gem", proto.psm.gem)
                if proto.psm.gem == proto.stable:
                    fail(f"{here}.psm.gem", "must differ from the stable")
            for asset, ilk in proto.ilks.items():
                need_asset(f"{here}.ilks.{asset}", asset)
                if asset == proto.stable:
                    fail(f"{here}.ilks.{asset}", "a CDP cannot take its own stablecoin")
                if ilk.liquidation_venue is not None:
                    need_pool_of(f"{here}.ilks.{asset}.liquidation_venue",
                                 ilk.liquidation_venue, asset, "sells")
        elif isinstance(proto, Lending):
            for asset, market in proto.markets.items():
                need_asset(f"{here}.markets.{asset}", asset)
                if market.liquidation_venue is not None:
                    need_pool_of(f"{here}.markets.{asset}.liquidation_venue",
                                 market.liquidation_venue, asset, "sells")
    if not s.protocols_of(Lending):
        fail("protocols", "a scenario needs a protocol of kind 'lending' (found none)")
    priced = model_priced(s)
    moves = [(f"market.jumps[{k}].asset", "a jump", jump.asset)
             for k, jump in enumerate(s.market.jumps)]
    moves += [(f"shocks[{k}].asset", f"a {shock.kind}", shock.asset)
              for k, shock in enumerate(s.shocks) if isinstance(shock, Depeg | BridgeFailure)]
    for field, what, asset in moves:
        if asset in priced and asset not in option_tokens:  # option tokens: checked above
            how, instead = priced[asset]
            fail(field, f"'{asset}' is priced by the model ({how}), not from its external "
                 f"price path: {what} there changes nothing; {instead}")
    for name, proto in s.protocols_of(Lending).items():
        for asset, market in proto.markets.items():
            if market.oracle == "exact" and asset in oracle_of:
                fail(f"protocols.{name}.markets.{asset}.oracle", f"'{asset}' has oracle "
                     f"'{oracle_of[asset]}', which the market reads: remove oracle = \"exact\"")

    a = s.agents

    def market_of(field: str, proto_name: str, asset: str) -> None:
        proto = need_protocol(f"{field}.protocol", proto_name, Lending, "lending")
        if asset not in proto.markets:
            fail(field, f"'{asset}' is not a market of '{proto_name}' "
                 f"(markets: {', '.join(proto.markets)})")

    for here, lenders in a.populations("lenders"):
        need_protocol(f"{here}.protocol", lenders.protocol, Lending, "lending")
        for asset in lenders.supply:
            market_of(f"{here}.supply.{asset}", lenders.protocol, asset)
        if lenders.sell_on is not None:
            pool = need_protocol(f"{here}.sell_on", lenders.sell_on, Pool, "pool")
            if pool.base not in lenders.supply:
                fail(f"{here}.sell_on", f"pool '{lenders.sell_on}' trades {pool.base}, which "
                     f"the lenders do not supply ({', '.join(lenders.supply)})")
    for here, t in a.populations("leveraged_traders"):
        need_protocol(f"{here}.protocol", t.protocol, Lending, "lending")
        market_of(f"{here}.debt_asset", t.protocol, t.debt_asset)
        for asset in t.collateral:
            market_of(f"{here}.collateral.{asset}", t.protocol, asset)
            if asset == t.debt_asset:
                fail(f"{here}.collateral.{asset}", "collateral must differ from debt_asset")
        if isinstance(t.leverage, Constant | Uniform) and _low(t.leverage) < 1.0:
            fail(f"{here}.leverage", "leverage must be >= 1")
    for here, t in a.populations("multi_collateral_traders"):
        need_protocol(f"{here}.protocol", t.protocol, Lending, "lending")
        for side in ("collateral", "debt"):
            for asset in getattr(t, side):
                market_of(f"{here}.{side}.{asset}", t.protocol, asset)
        if isinstance(t.leverage, Constant | Uniform) and _low(t.leverage) < 1.0:
            fail(f"{here}.leverage", "leverage must be >= 1")
    check_redeemers(s)
    check_cdp_agents(s)
    for here, t in a.populations("perp_traders"):
        perp = need_protocol(f"{here}.protocol", t.protocol, Perpetuals, "perpetuals")
        for asset in t.markets:
            if asset not in perp.markets:
                fail(f"{here}.markets.{asset}", f"'{asset}' is not a market of "
                     f"'{t.protocol}' (markets: {', '.join(perp.markets)})")
        if isinstance(t.leverage, Constant | Uniform):
            most = t.leverage.value if isinstance(t.leverage, Constant) else t.leverage.high
            cap = min(1.0 / perp.markets[a].initial_margin for a in t.markets)
            if most > cap * (1 + 1e-12) or _low(t.leverage) <= 0:
                fail(f"{here}.leverage", f"must be in (0, {cap:g}] (1 / initial_margin) in "
                     f"every draw")
    for here, t in a.populations("option_traders"):
        opt = need_protocol(f"{here}.protocol", t.protocol, Options, "options")
        if t.side == "write" and t.call_share > 0:
            fail(f"{here}.call_share", "writers write cash-secured puts only: set 0")
        for asset in t.markets:
            if asset not in opt.markets:
                fail(f"{here}.markets.{asset}", f"'{asset}' is not a market of "
                     f"'{t.protocol}' (markets: {', '.join(opt.markets)})")
        if t.underlying == "perp":
            if t.perp is None:
                fail(f"{here}.perp", "name the perpetuals protocol the options are on")
            perp = need_protocol(f"{here}.perp", t.perp, Perpetuals, "perpetuals")
            for asset in t.markets:
                if asset not in perp.markets:
                    fail(f"{here}.markets.{asset}", f"'{asset}' is not a market of "
                         f"'{t.perp}' (markets: {', '.join(perp.markets)})")
        elif t.perp is not None:
            fail(f"{here}.perp", "only for underlying = \"perp\"")
    if "spot" in s.protocols:
        fail("protocols.spot", "the name 'spot' is reserved for the spot market (a hedging "
             "venue); rename the protocol")
    for here in ("agents.delta_hedgers", "agents.vol_arbitrageurs"):
        h = getattr(a, here.split(".")[1])
        if h is None:
            continue
        opt = need_protocol(f"{here}.protocol", h.protocol, Options, "options")
        if h.cash is not None:
            need_asset(f"{here}.cash", h.cash)
        for asset, venue in h.venues.items():
            field = f"{here}.venues.{asset}"
            if asset not in opt.markets:
                fail(field, f"'{asset}' is not a market of '{h.protocol}' (markets: "
                     f"{', '.join(opt.markets)})")
            if venue == "spot":
                continue
            kind = s.protocols.get(venue)
            if isinstance(kind, Perpetuals):
                if asset not in kind.markets:
                    fail(field, f"'{asset}' is not a market of '{venue}' (markets: "
                         f"{', '.join(kind.markets)})")
            elif isinstance(kind, Pool):
                need_pool_of(field, venue, asset, "trades")
            else:
                fail(field, f"'{venue}' is not a pool, a perpetuals protocol or \"spot\"")
        if h.cash is None and not any(isinstance(s.protocols.get(v), Pool)
                                      for v in h.venues.values()):
            fail(f"{here}.cash", "needed when no venue is a pool (the token the desk holds "
                 "besides the hedged assets)")
    for here, h in a.populations("holders"):
        need_asset(f"{here}.token", h.token)
        need_pool_of(f"{here}.pool", h.pool, h.token, "sells")
    if a.market_makers is not None:
        need_protocol("agents.market_makers.pool", a.market_makers.pool, Pool, "pool")
    if a.liquidators is not None:
        need_asset("agents.liquidators.capital_asset", a.liquidators.capital_asset)
    if a.arbitrageurs is not None and a.arbitrageurs.pools is not None:
        for k, pool in enumerate(a.arbitrageurs.pools):
            need_protocol(f"agents.arbitrageurs.pools[{k}]", pool, Pool, "pool")


def model_priced(s: Scenario) -> dict[str, tuple[str, str]]:
    """Assets whose price the model sets every step, ignoring their external price path.

    Staked and wrapped tokens (their pool's spot, or the exchange rate, times the
    underlying's price), algorithmic stablecoins and their sisters and CDP stablecoins with
    a ``stable_pool`` (their pool's spot), lending receipt tokens (the underlying's price
    times the issuer's backing ratio) and option tokens (their volatility surface). A jump,
    depeg or bridge failure of such an asset's external price changes nothing.

    Returns:
        asset -> (how it is priced, what moves it instead), as phrases for a message.
    """
    out: dict[str, tuple[str, str]] = {}
    for name, proto in s.protocols.items():
        if isinstance(proto, LiquidStaking):
            if proto.pool is None:
                out[proto.token] = (f"{proto.underlying}'s price times {name}'s exchange rate",
                                    f"to move it, take {name}'s backing (an exploit shock)")
            else:
                out[proto.token] = (f"{proto.underlying}'s price times the spot of pool "
                                    f"'{proto.pool}'", f"to move it, sell it into "
                                    f"'{proto.pool}' (a sale shock) or take {name}'s backing "
                                    "(an exploit shock)")
        elif isinstance(proto, AlgorithmicStablecoin | CDP):
            pools = ({proto.stable: proto.stable_pool, proto.sister: proto.sister_pool}
                     if isinstance(proto, AlgorithmicStablecoin) else
                     {proto.stable: proto.stable_pool} if proto.stable_pool else {})
            for token, pool in pools.items():
                out[token] = (f"the spot of pool '{pool}', where {name} prices it",
                              f"to move it, sell it into '{pool}' (a sale shock) or pull "
                              "that pool's liquidity (a liquidity_withdrawal shock)")
    for asset, spec in s.assets.items():
        if spec.underlying is not None:
            out[asset] = (f"{spec.underlying}'s price times {spec.issuer}'s backing ratio",
                          f"move {spec.underlying}, or take {spec.issuer}'s cash (an exploit "
                          "shock)")
        elif spec.option is not None:
            out[asset] = (f"{spec.option.protocol}'s volatility surface",
                          f"move its underlying {spec.option.underlying}")
    return out


def check_redeemers(s: Scenario) -> None:
    """The issuers redeemers use: liquid-staking or algorithmic-stablecoin protocols."""
    r = s.agents.redeemers
    if r is None:
        return
    known = [k for k, v in s.protocols.items()
             if isinstance(v, LiquidStaking | AlgorithmicStablecoin)
             or (isinstance(v, CDP) and v.psm is not None and v.stable_pool is not None)]
    if not known:
        raise ScenarioError(s.source, "agents.redeemers", "no liquid_staking, "
                            "algorithmic_stablecoin or cdp protocol with a psm and a "
                            "stable_pool to redeem at")
    for k, name in enumerate(r.protocols or []):
        if name not in known:
            raise ScenarioError(s.source, f"agents.redeemers.protocols[{k}]",
                                f"'{name}' is not an issuer redeemers can use (issuers: "
                                f"{', '.join(known)})")


def check_cdp_agents(s: Scenario) -> None:
    """Vault owners use a CDP's ilks; keepers serve CDP protocols."""

    def fail(field: str, message: str) -> None:
        raise ScenarioError(s.source, field, message)

    cdps = s.protocols_of(CDP)
    known = ", ".join(cdps) or "none"
    for here, owners in s.agents.populations("vault_owners"):
        cdp = cdps.get(owners.protocol)
        if cdp is None:
            fail(f"{here}.protocol", f"'{owners.protocol}' is not a cdp protocol (cdp: "
                 f"{known})")
        for asset in owners.collateral:
            if asset not in cdp.ilks:
                fail(f"{here}.collateral.{asset}", f"'{asset}' is not an ilk of "
                     f"'{owners.protocol}' (ilks: {', '.join(cdp.ilks)})")
        low = _low(owners.collateralisation) if isinstance(
            owners.collateralisation, Constant | Uniform) else None
        mat = min(cdp.ilks[a].liquidation_ratio for a in owners.collateral)
        if low is not None and low < mat:
            fail(f"{here}.collateralisation", f"must be >= the liquidation_ratio ({mat:g}) "
                 f"in every draw, got {low:g}")
    k = s.agents.keepers
    if k is None:
        return
    if not cdps:
        fail("agents.keepers", "no cdp protocol to keep")
    for j, name in enumerate(k.protocols or []):
        if name not in cdps:
            fail(f"agents.keepers.protocols[{j}]", f"'{name}' is not a cdp protocol (cdp: "
                 f"{known})")


def _low(dist: Constant | Uniform) -> float:
    return dist.value if isinstance(dist, Constant) else dist.low
