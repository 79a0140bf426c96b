"""Scenario files: a TOML schema, validated into typed objects with defaults.

Unknown keys are errors (a typo must never be silently ignored), and every error is one
line: ``file: field.path: what was expected, got what``. ``Scenario.model_json_schema()``
is what ``sim schema`` prints, so editors can check scenario files as they are typed.

Cross-references (a market's venue, an agent's protocol, an oracle's pool) are checked after
the field types, by ``check_references``, with the same one-line errors.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from sim.errors import ScenarioError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class Strict(BaseModel):
    """Base of every scenario table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)


# --- distributions -------------------------------------------------------------------------


class Constant(Strict):
    """Every draw is ``value``."""

    dist: Literal["constant"]
    value: float


class Uniform(Strict):
    """Uniform on ``[low, high]``."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low}, high={self.high}")
        return self


class LogNormal(Strict):
    """``median * exp(sigma * N(0, 1))``."""

    dist: Literal["lognormal"]
    median: PositiveFloat
    sigma: NonNegativeFloat


Distribution = Annotated[Constant | Uniform | LogNormal, Field(discriminator="dist")]


def draw(dist: Constant | Uniform | LogNormal, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` values from a scenario distribution with the model's generator."""
    if isinstance(dist, Constant):
        return np.full(n, dist.value)
    if isinstance(dist, Uniform):
        return rng.uniform(dist.low, dist.high, n)
    return dist.median * np.exp(dist.sigma * rng.standard_normal(n))


# --- simulation and market ---------------------------------------------------------------


class Simulation(Strict):
    """Clock, seed and engine limits."""

    name: str | None = Field(None, description="Result folder name; defaults to the file stem")
    steps: PositiveInt = Field(96, description="Number of steps")
    dt_hours: PositiveFloat = Field(0.25, description="Step length in hours")
    seed: int = Field(0, ge=0, description="Seed of the model's random generator")
    max_cascade_rounds: int = Field(50, ge=1, le=10_000)


class Asset(Strict):
    """A token; ``price`` is its external price at time 0 in the numeraire (USD)."""

    price: PositiveFloat


class ConstantProcess(Strict):
    """The external price stays at its initial value (scheduled jumps still apply)."""

    kind: Literal["constant"]


class GBM(Strict):
    """Geometric Brownian motion; ``drift`` and ``volatility`` annualised (365-day year)."""

    kind: Literal["gbm"]
    drift: float = 0.0
    volatility: NonNegativeFloat


class JumpDiffusion(Strict):
    """Merton jump diffusion: GBM plus Poisson jumps with normal log sizes."""

    kind: Literal["jump_diffusion"]
    drift: float = 0.0
    volatility: NonNegativeFloat
    jump_intensity: NonNegativeFloat = Field(description="Expected jumps per year")
    jump_mean: float = Field(description="Mean log jump size")
    jump_std: NonNegativeFloat = Field(description="Std of the log jump size")


class ShockPath(Strict):
    """Deterministic path: piecewise-linear price multiplier through ``[hours, multiplier]``."""

    kind: Literal["shock_path"]
    points: list[Annotated[tuple[NonNegativeFloat, PositiveFloat], Field(strict=False)]] = Field(
        min_length=1, description="[hours, price multiplier] pairs")

    @model_validator(mode="after")
    def _increasing(self) -> ShockPath:
        hours = [p[0] for p in self.points]
        if any(b <= a for a, b in zip(hours, hours[1:], strict=False)):
            raise ValueError("points must have strictly increasing hours")
        return self


class Replay(Strict):
    """Replay a price path from a CSV file with an ``hours`` column and one column per asset.

    ``file`` is relative to the scenario file. Prices are interpolated linearly at step times
    and rescaled so the first row equals the asset's initial price.
    """

    kind: Literal["replay"]
    file: str
    column: str | None = Field(None, description="Column to read; defaults to the asset name")


Process = Annotated[
    ConstantProcess | GBM | JumpDiffusion | ShockPath | Replay, Field(discriminator="kind")
]


class Jump(Strict):
    """A scheduled jump: the external price is multiplied by ``1 + size`` at ``at_hours``."""

    asset: str
    at_hours: NonNegativeFloat
    size: float = Field(gt=-1.0, description="Relative change, e.g. -0.25")


class Market(Strict):
    """Exogenous external prices: one process per asset, correlated Brownian drivers."""

    processes: dict[str, Process] = Field(default_factory=dict)
    correlation: list[list[float]] | None = Field(
        None, description="Correlation of the Brownian drivers, in the order of [assets]"
    )
    jumps: list[Jump] = Field(default_factory=list)


# --- protocols -----------------------------------------------------------------------------


class InterestRate(Strict):
    """Kinked (two-slope) annual borrow rate (Aave's DefaultReserveInterestRateStrategy)."""

    base_rate: NonNegativeFloat = 0.0
    slope1: NonNegativeFloat = 0.04
    slope2: NonNegativeFloat = 0.75
    optimal_utilisation: OpenFraction = 0.8


class LendingMarket(Strict):
    """One reserve of a lending pool (Aave v3 parameters, fractions not basis points)."""

    ltv: Annotated[float, Field(ge=0.0, lt=1.0)]
    liquidation_threshold: Annotated[float, Field(gt=0.0, le=1.0)]
    liquidation_bonus: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        description="Bonus as a fraction: 0.05 is Aave's 10500"
    )
    liquidation_protocol_fee: Fraction = 0.1
    reserve_factor: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.15
    interest_rate: InterestRate = Field(default_factory=InterestRate)
    liquidation_venue: str | None = Field(
        None, description="Pool where liquidators sell this collateral; none: sold off-chain"
    )

    @model_validator(mode="after")
    def _aave_bounds(self) -> LendingMarket:
        if self.ltv > self.liquidation_threshold:
            raise ValueError(
                f"ltv must be <= liquidation_threshold, got {self.ltv} > "
                f"{self.liquidation_threshold}"
            )
        # Aave v3 ReserveConfiguration: liquidationThreshold * liquidationBonus <= 100%.
        if self.liquidation_threshold * (1.0 + self.liquidation_bonus) > 1.0 + 1e-12:
            raise ValueError(
                "liquidation_threshold * (1 + liquidation_bonus) must be <= 1 (Aave v3), got "
                f"{self.liquidation_threshold * (1.0 + self.liquidation_bonus):.4f}"
            )
        return self


class Lending(Strict):
    """Aave-v3-like lending pool."""

    kind: Literal["lending"]
    markets: dict[str, LendingMarket] = Field(min_length=1)
    close_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    close_factor_hf_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    min_base_max_close_factor_threshold: NonNegativeFloat = 2000.0
    min_leftover_base: NonNegativeFloat = 1000.0


class ConstantProduct(Strict):
    """Uniswap-v2-style pool; the quote reserve is set from the base's external price."""

    kind: Literal["constant_product"]
    base: str
    quote: str
    reserve_base: PositiveFloat = Field(description="Initial base-token reserve")
    fee: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.003


class Oracle(Strict):
    """Price feed of one asset: an external feed (Chainlink-like) or a pool's spot price."""

    kind: Literal["oracle"]
    asset: str
    source: Literal["external", "amm"] = "external"
    pool: str | None = Field(None, description="Pool read when source = 'amm'")
    heartbeat_hours: PositiveFloat = 1.0
    deviation: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.005
    delay_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _pool_for_amm(self) -> Oracle:
        if self.source == "amm" and self.pool is None:
            raise ValueError("source = 'amm' needs pool = '<pool protocol>'")
        if self.source == "external" and self.pool is not None:
            raise ValueError("pool is only read when source = 'amm'")
        return self


Protocol = Annotated[Lending | ConstantProduct | Oracle, Field(discriminator="kind")]


# --- agents --------------------------------------------------------------------------------


class Lenders(Strict):
    """Suppliers: withdraw when utilisation or fear (price drawdown) crosses their limit."""

    count: PositiveInt = 20
    protocol: str
    supply: dict[str, PositiveFloat] = Field(min_length=1, description="Tokens per asset, total")
    withdraw_utilisation: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    fear_drawdown: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.2, high=0.5)
    )
    withdraw_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class LeveragedTraders(Strict):
    """Borrowers at a target leverage who top up, deleverage or get liquidated."""

    count: PositiveInt = 100
    positions_per_agent: PositiveInt = 1
    protocol: str
    collateral: dict[str, PositiveFloat] = Field(
        min_length=1, description="Share of positions per collateral asset (weights)"
    )
    debt_asset: str
    position_value: Distribution = Field(description="Collateral value per position (numeraire)")
    leverage: Distribution = Field(description="Target leverage = collateral / equity")
    margin_call_health: Annotated[float, Field(gt=1.0)] = 1.1
    target_health: Annotated[float, Field(gt=1.0)] = 1.4
    wallet_share: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.0, high=0.2),
        description="Spare funds, in the debt asset, as a share of the collateral value",
    )
    deleverage_share: Fraction = 0.3

    @model_validator(mode="after")
    def _health_order(self) -> LeveragedTraders:
        if self.target_health <= self.margin_call_health:
            raise ValueError(
                f"target_health must be > margin_call_health, got {self.target_health} <= "
                f"{self.margin_call_health}"
            )
        return self


class MarketMakers(Strict):
    """AMM liquidity providers that pull liquidity when realised volatility is high."""

    count: PositiveInt = 5
    pool: str
    volatility_limit: PositiveFloat = Field(1.5, description="Annualised realised volatility")
    pull_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    volatility_window_hours: PositiveFloat = 4.0


class Liquidators(Strict):
    """Keepers with limited capital who liquidate only when it pays."""

    count: PositiveInt = 10
    capital_asset: str
    capital: Distribution = Field(description="Starting capital per liquidator (numeraire)")
    gas_cost: Distribution = Field(description="Gas per liquidation (numeraire)")
    min_profit: Distribution = Field(description="Minimum profit per liquidation (numeraire)")
    atomic_share: Fraction = Field(
        1.0, description="Share that must sell seized collateral on the venue (flash loans)")


class Arbitrageurs(Strict):
    """Close the gap between pool and external prices with limited capital."""

    count: PositiveInt = 3
    capital: Distribution = Field(description="Capital per arbitrageur (numeraire)")
    pools: list[str] | None = Field(None, description="Pools they trade; default: all")


class Agents(Strict):
    """Agent populations; each kind is optional."""

    lenders: Lenders | None = None
    leveraged_traders: LeveragedTraders | None = None
    market_makers: MarketMakers | None = None
    liquidators: Liquidators | None = None
    arbitrageurs: Arbitrageurs | None = None


class Scenario(Strict):
    """A whole scenario file."""

    description: str = ""
    simulation: Simulation = Field(default_factory=Simulation)
    assets: dict[str, Asset] = Field(min_length=1)
    market: Market = Field(default_factory=Market)
    protocols: dict[str, Protocol] = Field(min_length=1)
    agents: Agents = Field(default_factory=Agents)

    _source: str = PrivateAttr("<scenario>")
    _text: str = PrivateAttr("")

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
        return self.simulation.name or Path(self._source).stem

    def protocols_of(self, kind: type) -> dict[str, Any]:
        """Protocols of one schema class, in file order."""
        return {k: v for k, v in self.protocols.items() if isinstance(v, kind)}


# --- loading -------------------------------------------------------------------------------


def _field_path(loc: tuple, data: Any) -> str:
    """Dotted path of a pydantic error location, dropping union tags absent from the data."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            parts.append(f"[{part}]")
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not parts_has_tag(node, part):
            parts.append(part)  # a missing key: name it
            node = None
    return ".".join(parts).replace(".[", "[")


def parts_has_tag(node: dict, part: str) -> bool:
    """True when ``part`` is the tag of a discriminated union (``kind``/``dist`` value)."""
    return node.get("kind") == part or node.get("dist") == part


def _message(err: dict, data: Any) -> tuple[str, str]:
    loc = err["loc"]
    path = _field_path(loc, data)
    kind = err["type"]
    if kind == "extra_forbidden":
        return path, _unknown_key_message(loc, data)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "missing":
        typo = _misspelt(loc, data)
        if typo is not None:
            return _field_path(typo, data), _unknown_key_message(typo, data)
        return path, "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err["ctx"]["discriminator"].strip("'")
        if kind == "union_tag_not_found":
            return f"{path}.{tag}", "required field is missing"
        return f"{path}.{tag}", (f"unknown {tag} {err['ctx']['tag']!r} "
                                 f"(expected one of: {err['ctx']['expected_tags']})")
    given = err.get("input")
    if kind not in ("model_type", "dict_type") and not isinstance(given, dict | list):
        msg = f"{msg[0].lower()}{msg[1:]}, got {given!r}"
    else:
        msg = f"{msg[0].lower()}{msg[1:]}"
    return path, msg


def _misspelt(loc: tuple, data: Any) -> tuple | None:
    """Location of an unknown key next to the missing key at ``loc`` that looks like it."""
    node = data
    for part in loc[:-1]:
        if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
    if not isinstance(node, dict):
        return None
    allowed = set(_allowed_keys(loc[:-1], data))
    if not allowed:
        return None
    unknown = [k for k in node if k not in allowed]
    close = difflib.get_close_matches(str(loc[-1]), unknown, n=1)
    return (*loc[:-1], close[0]) if close else None


def _unknown_key_message(loc: tuple, data: Any) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1], data)
    hint = ""
    if allowed:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = (
            f" (did you mean '{close[0]}'?)"
            if close
            else f" (expected one of: {', '.join(sorted(allowed))})"
        )
    return f"unknown key '{key}'{hint}"


def _allowed_keys(parent_loc: tuple, data: Any) -> list[str]:
    """Keys the schema allows at ``parent_loc``, found by walking the JSON schema with the data."""
    root = Scenario.model_json_schema()
    defs = root.get("$defs", {})

    def resolve(node: dict, value: Any) -> dict:
        while True:
            if "$ref" in node:
                node = defs[node["$ref"].rsplit("/", 1)[-1]]
            elif "oneOf" in node or "anyOf" in node:
                options = node.get("oneOf") or node.get("anyOf")
                tag = node.get("discriminator", {}).get("propertyName")
                chosen = None
                for opt in options:
                    opt_r = resolve(opt, value)
                    props = opt_r.get("properties", {})
                    if opt_r.get("type") == "null":
                        continue
                    if tag and isinstance(value, dict):
                        if props.get(tag, {}).get("const") == value.get(tag):
                            chosen = opt_r
                            break
                    elif isinstance(value, dict) and opt_r.get("type") == "object":
                        chosen = opt_r
                        break
                if chosen is None:
                    return {}
                node = chosen
            else:
                return node

    node = resolve(root, data)
    value = data
    for part in parent_loc:
        if isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
            node = resolve(node.get("items", {}), value)
            continue
        if not isinstance(value, dict) or part not in value:
            continue  # a union tag in the location
        value = value[part]
        props = node.get("properties", {})
        if part in props:
            node = resolve(props[part], value)
        elif isinstance(node.get("additionalProperties"), dict):
            node = resolve(node["additionalProperties"], value)
        else:
            return []
    return list(node.get("properties", {}))


def parse_scenario(data: dict, *, source: str = "<scenario>", text: str = "") -> Scenario:
    """Validate a scenario mapping; raise ``ScenarioError`` naming the first bad field."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        path, msg = _message(errors[0], data)
        raise ScenarioError(source, path, msg) from None
    scenario._source = source
    scenario._text = text
    check_references(scenario)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (TOML)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"invalid TOML: {exc}") from None
    return parse_scenario(data, source=source, text=text)


# --- cross-references ----------------------------------------------------------------------


def check_references(s: Scenario) -> None:
    """Check every name that points elsewhere in the file; raise ``ScenarioError``."""

    def fail(field: str, message: str) -> None:
        raise ScenarioError(s.source, field, message)

    assets = list(s.assets)

    def need_asset(field: str, name: str) -> None:
        if name not in s.assets:
            fail(field, f"unknown asset '{name}' (assets: {', '.join(assets)})")

    def need_protocol(field: str, name: str, kind: type, label: str) -> Any:
        proto = s.protocols.get(name)
        if not isinstance(proto, kind):
            names = [k for k, v in s.protocols.items() if isinstance(v, kind)]
            known = ", ".join(names) or "none"
            fail(field, f"'{name}' is not a {label} protocol ({label}: {known})")
        return proto

    for asset in s.market.processes:
        need_asset(f"market.processes.{asset}", asset)
    for asset, proc in s.market.processes.items():
        if isinstance(proc, Replay) and not replay_path(s, proc).is_file():
            fail(f"market.processes.{asset}.file", f"no such file: {replay_path(s, proc)}")
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
    for name, proto in s.protocols.items():
        here = f"protocols.{name}"
        if isinstance(proto, ConstantProduct):
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
                pool = need_protocol(f"{here}.pool", proto.pool, ConstantProduct,
                                     "constant_product")
                if proto.asset != pool.base:
                    fail(f"{here}.pool", f"pool '{proto.pool}' prices {pool.base}, "
                         f"not {proto.asset}")
        elif isinstance(proto, Lending):
            for asset, market in proto.markets.items():
                need_asset(f"{here}.markets.{asset}", asset)
                if market.liquidation_venue is not None:
                    field = f"{here}.markets.{asset}.liquidation_venue"
                    pool = need_protocol(field, market.liquidation_venue, ConstantProduct,
                                         "constant_product")
                    if pool.base != asset:
                        fail(field, f"pool '{market.liquidation_venue}' sells {pool.base}, "
                             f"not {asset}")
    lending = s.protocols_of(Lending)
    if not lending:
        fail("protocols", "a scenario needs exactly one protocol of kind 'lending' (found 0)")
    if len(lending) > 1:
        fail("protocols", "one lending protocol per scenario for now "
             f"(found {', '.join(lending)})")

    a = s.agents

    def market_of(field: str, proto_name: str, asset: str) -> None:
        proto = need_protocol(f"{field}.protocol", proto_name, Lending, "lending")
        if asset not in proto.markets:
            fail(field, f"'{asset}' is not a market of '{proto_name}' "
                 f"(markets: {', '.join(proto.markets)})")

    if a.lenders is not None:
        need_protocol("agents.lenders.protocol", a.lenders.protocol, Lending, "lending")
        for asset in a.lenders.supply:
            market_of(f"agents.lenders.supply.{asset}", a.lenders.protocol, asset)
    if a.leveraged_traders is not None:
        t = a.leveraged_traders
        need_protocol("agents.leveraged_traders.protocol", t.protocol, Lending, "lending")
        market_of("agents.leveraged_traders.debt_asset", t.protocol, t.debt_asset)
        for asset in t.collateral:
            market_of(f"agents.leveraged_traders.collateral.{asset}", t.protocol, asset)
            if asset == t.debt_asset:
                fail(f"agents.leveraged_traders.collateral.{asset}",
                     "collateral must differ from debt_asset")
        if isinstance(t.leverage, Constant | Uniform) and _low(t.leverage) < 1.0:
            fail("agents.leveraged_traders.leverage", "leverage must be >= 1")
    if a.market_makers is not None:
        need_protocol("agents.market_makers.pool", a.market_makers.pool, ConstantProduct,
                      "constant_product")
    if a.liquidators is not None:
        need_asset("agents.liquidators.capital_asset", a.liquidators.capital_asset)
    if a.arbitrageurs is not None and a.arbitrageurs.pools is not None:
        for k, pool in enumerate(a.arbitrageurs.pools):
            need_protocol(f"agents.arbitrageurs.pools[{k}]", pool, ConstantProduct,
                          "constant_product")


def _low(dist: Constant | Uniform) -> float:
    return dist.value if isinstance(dist, Constant) else dist.low


def replay_path(s: Scenario, proc: Replay) -> Path:
    """A replay file's path, relative to the scenario file's folder."""
    return (Path(s.source).parent / proc.file).resolve()
