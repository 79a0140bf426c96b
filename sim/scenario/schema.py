"""The scenario schema: the whole file (``Scenario``), its clock, assets and dependencies.

``Scenario.model_json_schema()`` is what ``sim schema`` prints. Types are strict: a quoted
number or a boolean where a number is expected is an error, not a silent conversion. The
tables of each section live in their own module: ``distributions``, ``market``, ``shocks``,
``agents``, ``experiments`` and ``protocols``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sim.scenario.agents import Agents
from sim.scenario.base import (
    Name,
    Strict,
    check_name,
    short,
    slug,
)
from sim.scenario.experiments import Batch, History
from sim.scenario.market import Market, Replay
from sim.scenario.protocols import Protocol
from sim.scenario.shocks import ShockSpec

# --- simulation and assets -----------------------------------------------------------------


class Simulation(Strict):
    """Clock, seed and engine limits."""

    name: Name | None = Field(
        None, description="Result folder name (letters, digits, '_', '.', '-'); defaults to "
        "the file stem with other characters replaced by '-'")
    steps: PositiveInt = Field(96, description="Number of steps")
    dt_hours: PositiveFloat = Field(0.25, description="Step length in hours")
    seed: int = Field(0, ge=0, description="Seed of the model's random generator")
    max_cascade_rounds: int = Field(50, ge=1, le=10_000)


class AssetOption(Strict):
    """A tokenised option series (Opyn's oToken): one ERC-20 per series.

    The options ``protocol``'s vault wrote every token in existence at the start (sold
    before the run); the model prices the token each step at the option's value on the
    protocol's volatility surface (Black-Scholes at the underlying's external price) and, after
    expiry, at its claim on the series' redemption reserve (``sim.protocols.options``).
    """

    protocol: str = Field(description="The options protocol whose vault writes the series")
    underlying: str = Field(description="A market of that protocol")
    kind: Literal["call", "put"]
    strike: PositiveFloat
    expiry_hours: PositiveFloat = Field(description="Hours from the start to expiry")


class Asset(Strict):
    """A token; ``price`` is its external price at time 0 in the numeraire (USD).

    An option token (``option``) has no ``price``: the model prices it, and its options
    protocol is its issuer.
    """

    option: AssetOption | None = Field(
        None, description="A tokenised option series (oToken); then omit price")
    price: PositiveFloat | None = Field(None, description="Required unless option is given")
    issuer: str | None = Field(
        None, description="Protocol that issues this token: its losses devalue the token")
    underlying: str | None = Field(
        None, description="For a lending receipt token (aUSDC): the asset it claims in the "
        "issuer's market; its price is the underlying's times the market's backing ratio")

    @field_validator("price")
    @classmethod
    def _price_unless_option(cls, price: float | None, info: ValidationInfo) -> float | None:
        # ``option`` is validated first (field order); an invalid one is reported instead.
        if "option" not in info.data:
            return price
        if info.data["option"] is None and price is None:
            raise PydanticCustomError("missing", "Field required")
        if info.data["option"] is not None and price is not None:
            raise ValueError("omit price: an option token is priced by the model "
                             "(Black-Scholes on its protocol's volatility surface)")
        return price

    @model_validator(mode="after")
    def _option_issuer(self) -> Asset:
        if self.option is None:
            return self
        if self.underlying is not None:
            raise ValueError("an option token has no underlying (that is for receipt "
                             "tokens); give option.underlying instead")
        if self.issuer is not None and self.issuer != self.option.protocol:
            raise ValueError(f"an option token is issued by its option.protocol "
                             f"('{self.option.protocol}'), got issuer = '{self.issuer}'")
        self.issuer = self.option.protocol  # the vault that wrote the series issues it
        return self


EdgeKind = Literal["collateral", "oracle", "liquidation_venue", "deposits", "backing"]


class Edge(Strict):
    """A dependency between protocols: how stress travels from ``to`` back to ``from``.

    ``collateral``: ``from`` accepts ``to``'s token; ``oracle``: ``from`` reads its price from
    ``to``; ``liquidation_venue``: ``from`` sells seized collateral on ``to``; ``deposits``:
    ``from`` keeps funds in ``to``; ``backing``: ``from``'s token is backed by assets in ``to``.
    """

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    kind: EdgeKind


class Scenario(Strict):
    """A whole scenario file."""

    description: str = ""
    simulation: Simulation = Field(default_factory=Simulation)
    assets: dict[str, Asset] = Field(min_length=1)
    market: Market = Field(default_factory=Market)
    protocols: dict[str, Protocol] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list, description="Protocol dependencies")
    shocks: list[ShockSpec] = Field(default_factory=list, description="Scheduled events")
    agents: Agents = Field(default_factory=Agents)
    batch: Batch = Field(default_factory=Batch, description="How `sim batch` runs the file")
    history: History | None = Field(None, description="A historical event's recorded figures")

    _source: str = PrivateAttr("<scenario>")
    _text: str = PrivateAttr("")

    @field_validator("assets", "protocols")
    @classmethod
    def _names(cls, table: dict, info: ValidationInfo) -> dict:
        for key in table:
            try:
                check_name(key)
            except ValueError as exc:
                raise ValueError(f"{info.field_name[:-1]} name {short(key)}: {exc}") from None
        return table
    _data: dict = PrivateAttr(default_factory=dict)

    @property
    def data(self) -> dict:
        """The mapping the scenario was validated from (the parsed TOML)."""
        return self._data

    @property
    def source(self) -> str:
        """Path of the file this scenario came from (or ``<scenario>``)."""
        return self._source

    @property
    def text(self) -> str:
        """The scenario file's text, stored with the results."""
        return self._text

    @property
    def name(self) -> str:
        """Result folder name: ``simulation.name`` or the file stem."""
        return self.simulation.name or slug(Path(self._source).stem)

    def protocols_of(self, kind: type) -> dict[str, Any]:
        """Protocols of one schema class, in file order."""
        return {k: v for k, v in self.protocols.items() if isinstance(v, kind)}


DATA_ROOT_VARIABLE = "SIM_DATA_ROOT"


def data_roots(s: Scenario) -> list[Path]:
    """Folders a scenario may read data files from: its own, and ``$SIM_DATA_ROOT``'s.

    ``SIM_DATA_ROOT`` holds one or more folders (separated by ``os.pathsep``) that every
    scenario may read from, for data kept outside the scenarios' folders.
    """
    roots = [Path(s.source).parent.resolve()]
    extra = os.environ.get(DATA_ROOT_VARIABLE, "")
    roots += [Path(p).resolve() for p in extra.split(os.pathsep) if p]
    return roots


def replay_path(s: Scenario, proc: Replay) -> Path:
    """A replay file's path, relative to the scenario file's folder (symlinks resolved)."""
    return (Path(s.source).parent / proc.file).resolve()
