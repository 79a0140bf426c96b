"""Cross-references of the agents section: each population's protocol, markets and venues.

Lenders, traders and vault owners name markets of their protocols, hedging desks their
venues, holders and market makers their pools, redeemers their issuers and keepers their
CDPs; leverage and collateralisation must be possible in every draw.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.distributions import Constant, Uniform
from sim.scenario.lookup import Lookup
from sim.scenario.protocols import (
    CDP,
    AlgorithmicStablecoin,
    Lending,
    LiquidStaking,
    Options,
    Perpetuals,
    Pool,
)
from sim.scenario.schema import Scenario


def check_agent_references(s: Scenario) -> None:
    """Check every name the agents section points at; raise ``ScenarioError``."""
    look = Lookup(s)
    fail, need_asset, need_pool_of = look.fail, look.need_asset, look.need_pool_of
    need_protocol, market_of = look.need_protocol, look.market_of
    a = s.agents

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
    fail = Lookup(s).fail
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
