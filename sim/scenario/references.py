"""Cross-references of a scenario: every name that points elsewhere in the file.

A market's venue must be a pool of that asset, an oracle's pool must price its asset, a
shock's pool or oracle must exist, an option token's protocol must list its underlying, and
so on; the agents section is checked by ``agent_references``. Errors have the same one-line
form as schema errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.scenario.agent_references import (
    check_agent_references,
    check_cdp_agents,
    check_redeemers,
)
from sim.scenario.lookup import Lookup
from sim.scenario.market import Replay
from sim.scenario.priced import model_priced
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

__all__ = ["check_agent_references", "check_cdp_agents", "check_redeemers", "check_references",
           "model_priced"]


def check_references(s: Scenario) -> None:
    """Check every name that points elsewhere in the file; raise ``ScenarioError``."""
    look = Lookup(s)
    fail, need_asset, need_pool_of = look.fail, look.need_asset, look.need_pool_of
    need_protocol = look.need_protocol
    assets = list(s.assets)

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
    check_agent_references(s)
