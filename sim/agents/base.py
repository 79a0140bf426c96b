"""The face every agent population shows the model: a Mesa agent, a step context, holdings.

A *population* is one scenario section of one agent kind (``[agents.lenders.aave]``, the
``[agents.liquidators]``): its members' state lives in a structure-of-arrays table (one
numpy array per field) and its behaviour is a vectorised rule over that table. Mesa carries
each population as one ``mesa.Agent`` (a ``Population``): the model's ``AgentSet`` holds the
populations, ``AgentSet.do("step", ctx)`` runs their rules in phase order, and selection and
grouping (``agents_using``, by kind) go through it. A member (one lender, one trader owning
its rows) is an identity made on request (``Population.member``), not a Mesa agent, so a
million positions cost their table's arrays and nothing per position (a ``mesa.Agent`` costs
about 480 bytes and 5 us to create, benchmarks/README.md).

Every population answers the same two calls:

- ``step(ctx)``: act on this step's ``StepContext`` (the step, external and oracle prices,
  the protocols as venues, the generator) and report what it traded in ``ctx``;
- ``holdings(ctx, members=None)``: its balance sheet (``Holdings``), the one place that says
  what its members own and owe. Net worth, exposure (delta, gamma, vega), token conservation
  and per-member views all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import mesa
import numpy as np

from sim.errors import ScenarioError
from sim.protocols.liquid_staking import HOURS_PER_YEAR
from sim.scenario import draw


class Holdings(NamedTuple):
    """A population's balance sheet, per group of members (rows) and asset, in tokens.

    Attributes:
        tokens: float (g, m), tokens in the members' own wallets: what token conservation
            counts (``StressModel.token_totals``).
        claims: float (g, m), delta-one claims on protocols minus debts to them: a supply
            balance at the market's backing ratio, collateral minus debt, an LP share of a
            pool's reserves, a redemption ticket, the equity of a perp or option account (in
            its settlement token).
        value: float (g,), USD value of derivative positions beyond tokens and claims
            (options at the surface's value; zero for perps, whose equity is a claim).
        delta, gamma, vega: float (g, m), Greeks of derivative positions per asset: a perp's
            size, options' delta, gamma and vega, an LP share's gamma.
    """

    tokens: np.ndarray
    claims: np.ndarray
    value: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray

    @classmethod
    def zeros(cls, groups: int, n_assets: int) -> Holdings:
        """An empty balance sheet for ``groups`` groups (views of one zeroed block)."""
        block = np.zeros((5, groups, n_assets))
        return cls(block[0], block[1], np.zeros(groups), block[2], block[3], block[4])

    def net_worth(self, price: np.ndarray) -> np.ndarray:
        """USD per group at ``price``: tokens and claims at price, plus derivative value."""
        return (self.tokens + self.claims) @ price + self.value

    def exposure(self) -> np.ndarray:
        """Delta per group and asset: tokens, claims and derivative delta."""
        return self.tokens + self.claims + self.delta


@dataclass
class StepContext:
    """What a population sees and reports in one step.

    Attributes:
        t: the step.
        dt_hours: its length.
        prices: the external price paths (all steps; row ``t`` is this step's, marked in
            place as issued tokens are repriced).
        world: the protocols (venues, oracles, the outside world's tokens): a
            ``sim.model.world.World``.
        rng: the model's generator.
        volume: USD traded this step per agent kind (the results' ``trade_volume``).
        withdrawn: USD lenders withdrew this step, per protocol.
        gas_multiplier: this step's gas cost over the base (gas spikes).
        drawdown: the largest fall of an external price from its running peak (option
            tokens aside), set once the primary market has traded.
        hedge_sold, hedge_cost: base tokens the delta hedgers sold, per asset, and what
            their trades cost beyond value (USD); ``vol_arb_hedge_sold``,
            ``vol_arb_hedge_cost`` the same for the volatility arbitrageurs.
        exploited: USD stolen from each protocol this step.
        perp_stats: the perps' liquidation stats of this step (``sim.engine.perps``).
    """

    t: int
    dt_hours: float
    prices: np.ndarray
    world: Any
    rng: np.random.Generator
    volume: dict[str, float]
    withdrawn: np.ndarray
    exploited: np.ndarray
    perp_stats: np.ndarray
    drawdown: float = 0.0
    gas_multiplier: float = 1.0
    hedge_sold: np.ndarray = field(default=None)
    hedge_cost: float = 0.0
    vol_arb_hedge_sold: np.ndarray = field(default=None)
    vol_arb_hedge_cost: float = 0.0
    _book_totals: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        m = self.prices.shape[1]
        if self.hedge_sold is None:
            self.hedge_sold = np.zeros(m)
        if self.vol_arb_hedge_sold is None:
            self.vol_arb_hedge_sold = np.zeros(m)

    @property
    def external_price(self) -> np.ndarray:
        """This step's external prices (the results' ``external_price``; marks show)."""
        return self.prices[self.t]

    @property
    def history(self) -> np.ndarray:
        """External prices up to and including this step."""
        return self.prices[: self.t + 1]

    @property
    def now_hours(self) -> float:
        """Hours since the start."""
        return self.t * self.dt_hours

    def book_totals(self, rows: slice = slice(None)) -> tuple[np.ndarray, ...]:
        """The lending book's totals over ``rows`` at the oracle prices, once per context.

        ``LendingPools.totals``: collateral and debt tokens per market, insolvent debt and
        positions under water per protocol. Kept for the context's life: read it when the
        book no longer changes in the step (the record phase), so the record and a
        population covering the same rows share one pass over the book.
        """
        lp = self.world.lending
        start, stop, _ = rows.indices(len(lp.book))
        if (start, stop) not in self._book_totals:
            self._book_totals[start, stop] = lp.totals(self.world.oracles.price,
                                                       slice(start, stop))
        return self._book_totals[start, stop]

    def forget_book_totals(self) -> None:
        """Drop the kept ``book_totals`` (the book changed since they were taken)."""
        self._book_totals.clear()

    def realised_vol(self, window: int) -> np.ndarray | None:
        """Realised volatility per asset over the last ``window`` steps (None: too early).

        The root mean square of the external log returns, annualised (realised variance,
        not demeaned: a steady fall is volatility too). Option tokens have no surface of
        their own: their columns read 0.
        """
        past = self.prices[max(0, self.t - window): self.t + 1].copy()
        if len(past) < 3:
            return None
        past[:, self.world.option_tokens] = 1.0  # not priced yet this step
        returns = np.diff(np.log(past), axis=0)
        return np.sqrt((returns ** 2).mean(axis=0) * HOURS_PER_YEAR / self.dt_hours)


class Member:
    """One member of a population (a lender, a trader and the rows it owns): an identity.

    Made on request by ``Population.member``; it holds no state of its own.
    """

    __slots__ = ("population", "index")

    def __init__(self, population: Population, index: int):
        self.population = population
        self.index = index

    @property
    def kind(self) -> str:
        """The agent kind (``sim.model.kinds.AGENT_KINDS``)."""
        return self.population.kind

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols it uses (nodes of the dependency graph)."""
        return self.population.protocols

    def holdings(self, ctx: StepContext) -> Holdings:
        """Its balance sheet (one group)."""
        return self.population.holdings(ctx, [self.index])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.population.name!r}, {self.index})"


class Population(mesa.Agent):
    """One population of an agent kind, as one Mesa agent (module docstring).

    Subclasses set ``kind`` (its row in the results' ``agent_kind``) and ``Member`` (the
    identity class of one member), build themselves with ``from_scenario`` and implement
    ``step`` and ``holdings``.

    Args:
        model: the model.
        table: the members' state and rule (a ``*Table``).
        name: the scenario section it comes from (``agents.lenders.aave``).
        protocols: names of the protocols its members use.
        size: number of members.
        per: positions per member (member ``k`` owns table positions ``k * per`` to
            ``(k + 1) * per - 1``).
    """

    kind: ClassVar[str] = ""
    Member: ClassVar[type[Member]] = Member

    def __init__(self, model: mesa.Model, table: Any, *, name: str,
                 protocols: tuple[str, ...], size: int, per: int = 1):
        super().__init__(model)
        self.table = table
        self.name = name
        self.protocols = tuple(protocols)
        self.size = int(size)
        self.per = int(per)

    def __len__(self) -> int:
        return self.size

    def step(self, ctx: StepContext) -> None:
        """Act on this step (the default: nothing, the kind acts elsewhere)."""

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """The balance sheet: of the whole population (one group), or one group per member.

        Args:
            ctx: the step.
            members: member indices, or None for the population summed.
        """
        raise NotImplementedError

    def positions(self, members=None) -> tuple[np.ndarray, np.ndarray, int]:
        """(table positions, the group of each, number of groups) of ``members``.

        ``members`` None: every position, in one group (the population summed).
        """
        idx, g = groups(members, self.size)
        pos = (idx[:, None] * self.per + np.arange(self.per)).ravel()
        group = np.zeros(len(pos), dtype=np.int64) if members is None else np.repeat(
            np.arange(g), self.per)
        return pos, group, g

    def member(self, index: int) -> Member:
        """Member ``index`` (0-based), made on request."""
        if not 0 <= index < self.size:
            raise IndexError(f"{self.name} has {self.size} members, not {index + 1}")
        return self.Member(self, index)

    def members(self) -> list[Member]:
        """Every member, made on request."""
        return [self.Member(self, k) for k in range(self.size)]


def groups(members, size: int) -> tuple[np.ndarray, int]:
    """(member indices, number of groups) for ``holdings``: all in one group when None."""
    if members is None:
        return np.arange(size), 1
    idx = np.asarray(members, dtype=np.int64)
    return idx, len(idx)


def by_group(values: np.ndarray, members) -> np.ndarray:
    """Rows of per-member ``values`` for ``members``; summed to one row when None."""
    if members is None:
        return values.sum(axis=0, keepdims=True)
    return values[np.asarray(members, dtype=np.int64)]


def scatter(group: np.ndarray, asset: np.ndarray, weights: np.ndarray, n_groups: int,
            n_assets: int) -> np.ndarray:
    """Sum ``weights`` into a (groups, assets) grid at (``group``, ``asset``)."""
    return np.bincount(group * n_assets + asset, weights=weights,
                       minlength=n_groups * n_assets).reshape(n_groups, n_assets)


# --- building from the scenario ----------------------------------------------------------


def amounts(source: str, field_: str, dist, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws of a money-like setting, which must never be negative."""
    values = draw(dist, rng, n)
    if np.any(values < 0):
        raise ScenarioError(source, field_, f"must be >= 0 in every draw (got {values.min():g})")
    return values


def draw_assets(world, weights: dict[str, float], n: int,
                rng: np.random.Generator) -> np.ndarray:
    """Asset index of each of ``n`` positions, drawn with the scenario's weights."""
    names = list(weights)
    w = np.array([weights[k] for k in names])
    return np.array([world.index(k) for k in names])[
        rng.choice(len(names), size=n, p=w / w.sum())]
