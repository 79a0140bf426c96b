"""The agent populations of a run: built from the scenario's ``[agents]`` sections, in order.

Each population is one Mesa agent (``sim.agents.base.Population``) built by its kind's
``from_scenario``. The build order is fixed (it is the order of the generator's draws, so
part of a seed's meaning): lenders, leveraged traders (positions, then multi-collateral
accounts), market makers, liquidators, arbitrageurs, vault owners, keepers, perp traders,
option traders, delta hedgers, volatility arbitrageurs, holders, redeemers.

They act in another order (``ACTING``): the primary market first (holders selling, redeemers
at the issuers), then, once the tokens the model prices are marked at its prices,
arbitrageurs, market makers, lenders, traders, vault owners, perp traders, the options desks
(volatility arbitrageurs first, so the vault's hedgers see their trades) and last the
liquidators and keepers taking their place in the step's queue.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.arbitrageur import Arbitrageurs
from sim.agents.base import Population
from sim.agents.delta_hedger import DeltaHedgers
from sim.agents.holder import Holders
from sim.agents.lender import Lenders
from sim.agents.leveraged_trader import AccountTraders, LeveragedTraders
from sim.agents.liquidator import Keepers, Liquidators
from sim.agents.market_maker import MarketMakers
from sim.agents.option_trader import OptionTraders
from sim.agents.perp_trader import PerpTraders
from sim.agents.redeemer import Redeemers
from sim.agents.vault_owner import VaultOwners
from sim.agents.vol_arbitrageur import VolArbitrageurs

# The primary market: it trades before the model's prices of issued tokens are marked.
PRIMARY = (Holders, Redeemers)
# Everyone else, in the order they act.
ACTING = (Arbitrageurs, MarketMakers, Lenders, LeveragedTraders, AccountTraders, VaultOwners,
          PerpTraders, VolArbitrageurs, DeltaHedgers, Liquidators, Keepers)


def build(model: mesa.Model, world, rng: np.random.Generator) -> list[Population]:
    """Every population of ``world.scenario``, in build order (module docstring)."""
    a = world.scenario.agents
    out: list[Population] = []

    def add(cls, kind: str, **kwargs) -> None:
        for name, cfg in a.populations(kind):
            out.append(cls.from_scenario(model, name, cfg, world, rng, **kwargs))

    add(Lenders, "lenders")
    add(LeveragedTraders, "leveraged_traders")
    add(AccountTraders, "multi_collateral_traders")
    add(MarketMakers, "market_makers")
    add(Liquidators, "liquidators")
    if len(world.amm):
        add(Arbitrageurs, "arbitrageurs")
    add(VaultOwners, "vault_owners")
    add(Keepers, "keepers")
    add(PerpTraders, "perp_traders")
    world.perps.hedge[:] = world.perps.hedge_target()  # vaults start hedged
    add(OptionTraders, "option_traders")
    add(DeltaHedgers, "delta_hedgers")
    hedgers = sum(len(p) for p in out if isinstance(p, DeltaHedgers))
    add(VolArbitrageurs, "vol_arbitrageurs", after=hedgers)
    add(Holders, "holders")
    add(Redeemers, "redeemers")
    return out


def in_order(populations: list[Population], classes: tuple[type, ...],
             random) -> mesa.agent.AgentSet:
    """The populations of ``classes``, in that order (each class's in build order)."""
    ordered = [p for cls in classes for p in populations if type(p) is cls]
    return mesa.agent.AgentSet(ordered, random=random)
