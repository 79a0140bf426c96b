"""The scenario schema: typed tables with defaults, unknown keys are errors.

``Scenario.model_json_schema()`` is what ``sim schema`` prints. Types are strict: a quoted
number or a boolean where a number is expected is an error, not a silent conversion.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sim.scenario.base import (
    Fraction,
    Name,
    OpenFraction,
    Strict,
    check_name,
    short,
    slug,
)
from sim.scenario.protocols import Protocol

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


# --- shocks --------------------------------------------------------------------------------


class Shock(Strict):
    """Base of scheduled events: each starts at ``at_hours``."""

    at_hours: NonNegativeFloat


class GasSpike(Shock):
    """Gas costs of liquidators multiplied by ``multiplier`` for ``duration_hours``."""

    kind: Literal["gas_spike"]
    multiplier: Annotated[float, Field(ge=1.0)]
    duration_hours: PositiveFloat


class LiquidityWithdrawal(Shock):
    """Liquidity providers pull ``share`` of a pool's liquidity at once."""

    kind: Literal["liquidity_withdrawal"]
    pool: str
    share: Annotated[float, Field(gt=0.0, lt=1.0)]


class StaleOracle(Shock):
    """An oracle stops publishing for ``duration_hours`` (a stale feed)."""

    kind: Literal["stale_oracle"]
    oracle: str
    duration_hours: PositiveFloat


class OracleManipulation(Shock):
    """A flash-loan attacker moves a pool's spot by ``size`` (relative) for a window.

    Each step of the window the trade lands right before the oracles read the pool and is
    unwound after the cascade.
    """

    kind: Literal["oracle_manipulation"]
    pool: str
    size: Annotated[float, Field(gt=-1.0)]
    duration_hours: PositiveFloat


class Sale(Shock):
    """Holders outside the model sell ``amount`` base tokens into a pool over a window.

    The sale is spread evenly over ``duration_hours`` (a fund unwinding, a whale exiting).
    """

    kind: Literal["sale"]
    pool: str
    amount: PositiveFloat = Field(description="Base tokens sold in all")
    duration_hours: PositiveFloat


class Exploit(Shock):
    """A share of a protocol's holdings (lending cash, or pool reserves) is stolen."""

    kind: Literal["exploit"]
    protocol: str
    share: Annotated[float, Field(gt=0.0, le=1.0)]


class Depeg(Shock):
    """An asset's external price drops to ``price``.

    It recovers linearly to the underlying path over ``recovery_hours`` (0: never).
    """

    kind: Literal["depeg"]
    asset: str
    price: PositiveFloat
    recovery_hours: NonNegativeFloat = 0.0


class BridgeFailure(Shock):
    """A wrapped asset's bridge fails: its external price keeps ``residual`` of its value."""

    kind: Literal["bridge_failure"]
    asset: str
    residual: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01


ShockSpec = Annotated[
    GasSpike | LiquidityWithdrawal | StaleOracle | OracleManipulation | Sale | Exploit | Depeg
    | BridgeFailure, Field(discriminator="kind")]


# --- agents --------------------------------------------------------------------------------


class Lenders(Strict):
    """Suppliers: withdraw when utilisation or fear (price drawdown) crosses their limit.

    With ``sell_on`` they sell what they withdraw of that pool's base token on it, in the
    same step (a run: depositors leave the protocol and the token).
    """

    count: PositiveInt = 20
    protocol: str
    supply: dict[str, PositiveFloat] = Field(min_length=1, description="Tokens per asset, total")
    withdraw_utilisation: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    fear_drawdown: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.2, high=0.5)
    )
    withdraw_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    sell_on: str | None = Field(
        None, description="Pool where lenders sell what they withdraw of its base token (UST "
        "leaving Anchor was sold); none: they keep it")


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


class MultiCollateralTraders(Strict):
    """Leveraged traders with Aave v3 accounts: several collateral and debt assets each.

    Each account holds every ``collateral`` asset (shares of its collateral value) and owes
    every ``debt`` asset (shares of its debt value); its health factor is taken over all of
    them (``sim.protocols.lending_accounts``). The accounts are held, not traded: they are
    liquidated when their health factor falls below 1.
    """

    count: PositiveInt = 50
    protocol: str
    collateral: dict[str, PositiveFloat] = Field(
        min_length=1, description="Share of each account's collateral value per asset")
    debt: dict[str, PositiveFloat] = Field(
        min_length=1, description="Share of each account's debt value per asset")
    position_value: Distribution = Field(description="Collateral value per account (numeraire)")
    leverage: Distribution = Field(description="Target leverage = collateral / equity")


class MarketMakers(Strict):
    """AMM liquidity providers that pull liquidity when volatility or their losses are high.

    They own the pool's initial liquidity in equal shares. Each pulls ``pull_fraction`` of
    its liquidity when realised volatility crosses ``volatility_limit`` or, with
    ``loss_limit``, when its P&L against holding what it deposited falls below
    ``-loss_limit`` of the deposit's value; it returns once volatility is under the limit and
    the loss has recovered above half the limit (``sim.agents.market_maker``).
    """

    count: PositiveInt = 5
    pool: str
    volatility_limit: PositiveFloat = Field(
        1.5, description="Annualised realised volatility above which makers pull")
    pull_fraction: OpenFraction = Field(  # an empty pool has no price
        0.5, description="Share of a maker's liquidity it pulls (either rule)")
    volatility_window_hours: PositiveFloat = Field(
        4.0, description="Window of the realised volatility (hours)")
    loss_limit: OpenFraction | None = Field(
        None, description="A maker pulls when its P&L against holding its deposit (impermanent "
        "loss plus fees, external prices) falls below -loss_limit of the deposit's value and "
        "returns when it is back above -loss_limit / 2; default: losses never pull")


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


class Redeemers(Strict):
    """Arbitrageurs who buy a token below its redemption value and redeem it at its issuer.

    For a liquid-staking token: buy it on its pool while the discount to the exchange rate
    beats ``hurdle_rate`` over the expected wait in the redemption queue, and mint-and-sell
    when it trades at a premium. Capital is in the tokens' underlyings. For an algorithmic
    stablecoin: below the peg, buy the stable, swap it at the issuer for the sister and sell
    that; above it, the reverse; while a round trip returns ``min_return``. Capital is in the
    stable pool's quote token.
    """

    count: PositiveInt = 5
    capital: Distribution = Field(description="Capital per redeemer (numeraire)")
    hurdle_rate: NonNegativeFloat = Field(
        0.2, description="Annual return a redeemer asks for capital locked in a queue")
    min_return: Fraction = Field(
        0.001, description="Least return per round trip through an algorithmic stablecoin "
        "(buy, swap at the issuer, sell)")
    protocols: list[str] | None = Field(None, description="Issuers they redeem at; default: all")


class Holders(Strict):
    """Holders of a token outside any protocol, who sell it on a pool when its price falls.

    Each holder sells ``sell_fraction`` of what it still holds every step while the token's
    price is below ``sell_below`` times its start price (a run on a stablecoin: depositors
    leaving at different levels of fear).
    """

    count: PositiveInt = 100
    token: str
    amount: PositiveFloat = Field(description="Tokens held in all, split at random")
    pool: str = Field(description="Pool where they sell (the token is its base)")
    sell_below: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.9, high=0.99),
        description="Price as a share of the start price below which a holder sells")
    sell_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2


class PerpTraders(Strict):
    """Perpetual-futures traders: isolated-margin positions, topped up on margin calls.

    A trader whose equity falls below ``margin_call_ratio`` times the maintenance requirement
    adds margin from its wallet (``wallet_share`` of its margin at opening), back up to
    ``target_ratio`` times it; a trader with an empty wallet is liquidated.
    """

    count: PositiveInt = 100
    protocol: str
    markets: dict[str, PositiveFloat] = Field(
        min_length=1, description="Share of positions per market asset (weights)")
    positions_per_agent: PositiveInt = Field(
        1, description="Positions per trader; above 1 they take the markets in order, "
        "cycling (the weights then do not apply)")
    long_share: Fraction = 0.5
    position_value: Distribution = Field(description="Notional per position (numeraire)")
    leverage: Distribution = Field(description="Notional / margin at opening")
    wallet_share: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.0, high=0.5),
        description="Spare settlement tokens as a share of the margin")
    margin_call_ratio: Annotated[float, Field(gt=1.0)] = 1.5
    target_ratio: Annotated[float, Field(gt=1.0)] = 3.0

    @model_validator(mode="after")
    def _ratio_order(self) -> PerpTraders:
        if self.target_ratio <= self.margin_call_ratio:
            raise ValueError(f"target_ratio must be > margin_call_ratio, got "
                             f"{self.target_ratio} <= {self.margin_call_ratio}")
        return self


class OptionTraders(Strict):
    """Traders of European options with an options protocol's vault, held to expiry.

    At the start each trader buys one option (``side = "buy"``): a call with probability
    ``call_share``, on an asset drawn by ``markets`` weights, with strike ``moneyness`` times
    spot and expiry ``expiry_hours`` from now, for ``position_value`` of notional
    (numeraire). Writers (``side = "write"``) sell cash-secured puts to the vault instead
    (``call_share`` must be 0). With ``underlying = "perp"`` the options are on the asset's
    perpetual (``perp``, a perpetuals protocol listing it): Black-76 on the perp's mark,
    settled at the mark.
    """

    count: PositiveInt = 50
    protocol: str
    markets: dict[str, PositiveFloat] = Field(min_length=1)
    side: Literal["buy", "write"] = Field(
        "buy", description="Buy from the vault, or write cash-secured puts to it")
    underlying: Literal["spot", "perp"] = Field(
        "spot", description="Options on the spot price (Black-Scholes) or on a perpetual's "
        "mark (Black-76)")
    perp: str | None = Field(None, description="The perpetuals protocol, for underlying = perp")
    call_share: Fraction = 0.5
    moneyness: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.8, high=1.2),
        description="Strike / spot at the purchase")
    expiry_hours: Distribution = Field(
        default_factory=lambda: Constant(dist="constant", value=168.0))
    position_value: Distribution = Field(description="Notional per option (numeraire)")


class HedgingDesk(Strict):
    """What every desk that hedges its delta has: capital, venues, a band and a frequency.

    Capital (numeraire) is split between the desk's own holding of each hedged asset
    (``base_share``, the inventory it hedges around) and its ``cash`` token. Every
    ``every_hours`` it trades each hedged asset on its venue (``venues``: asset -> venue) so
    that its options delta plus its inventory beyond its own holding (and its perp positions)
    equals ``delta_target_usd`` (at the market price), when it is more than ``band_usd``
    away. A venue is a pool whose base is the asset (fees and price impact by the pool's
    formula), a perpetuals protocol listing the asset (a perp position margined in its
    settlement token, which must be ``cash``: no price impact, funding paid or earned), or
    ``"spot"``: the outside market at the external price, paying ``spot_fee`` a trade.
    """

    capital: Distribution
    venues: dict[str, str] = Field(
        min_length=1, description="asset -> pool, perpetuals protocol or \"spot\"")
    cash: str | None = Field(None, description="Token of the desk's cash; default: the quote "
                             "of its pools (required with only spot or perp venues)")
    base_share: Fraction = 0.5
    band_usd: NonNegativeFloat = 10_000.0
    every_hours: PositiveFloat = 1.0
    delta_target_usd: dict[str, float] = Field(
        default_factory=dict, description="asset -> net delta it aims at (USD); default 0")
    spot_fee: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0005, description="Fee per spot trade (a share of its value)")
    perp_margin: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.2, description="Margin posted per unit of perp notional (>= the initial margin)")


class DeltaHedgers(HedgingDesk):
    """The market makers of an options protocol's vault, who keep its net delta flat.

    The delta they hedge is the vault's option delta (minus the traders'). They start hedged.
    """

    count: PositiveInt = 1
    protocol: str


class VolArbitrageurs(HedgingDesk):
    """Volatility arbitrage: trade implied against realised volatility, delta-hedged.

    Every ``trade_every_hours``, for each asset of ``venues``, a trader compares the surface's
    at-the-money implied volatility at ``tenor_hours`` with the realised volatility of the
    asset over the last ``window_hours`` (root mean square of the log returns, annualised).
    When implied exceeds realised by more than ``edge`` it sells volatility: it writes an
    at-the-money cash-secured put to the vault; when realised exceeds implied by more than
    ``edge`` it buys volatility: an at-the-money straddle (a call and a put). Each trade is
    ``trade_value`` of notional per option, and is made only while the trader's cash covers
    it and its gamma and vega stay within ``gamma_limit_usd`` (the change of its delta's
    value for a 1% move: ``gamma S^2 / 100``) and ``vega_limit_usd`` (value per volatility
    point: ``vega / 100``), per asset. It delta-hedges its options like a delta hedger and
    holds them to expiry (hedging every ``every_hours``).
    """

    count: PositiveInt = 1
    protocol: str
    trade_every_hours: PositiveFloat = 24.0
    edge: NonNegativeFloat = Field(0.05, description="Implied minus realised vol that trades")
    tenor_hours: PositiveFloat = 168.0
    window_hours: PositiveFloat = 24.0
    trade_value: PositiveFloat = Field(description="Notional per option traded (numeraire)")
    gamma_limit_usd: PositiveFloat | None = Field(
        None, description="Most |gamma S^2 / 100| per asset (USD per 1% move); none: no limit")
    vega_limit_usd: PositiveFloat | None = Field(
        None, description="Most |vega / 100| per asset (USD per vol point); none: no limit")


class VaultOwners(Strict):
    """CDP vault owners: lock collateral, mint the stablecoin and spend it.

    Owners with spare collateral (``wallet_share`` of the vault's collateral) add it when the
    vault's collateralisation falls below ``margin_call_ratio`` times the liquidation ratio,
    back up to ``target_ratio`` times it; the others wait to be barked.
    """

    count: PositiveInt = 50
    protocol: str
    collateral: dict[str, PositiveFloat] = Field(
        min_length=1, description="Share of vaults per collateral asset (weights)")
    position_value: Distribution = Field(description="Collateral value per vault (numeraire)")
    collateralisation: Distribution = Field(
        description="Collateral value / debt at opening; at least the ilk's liquidation_ratio")
    wallet_share: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.0, high=0.2),
        description="Spare collateral tokens as a share of the vault's collateral")
    margin_call_ratio: Annotated[float, Field(gt=1.0)] = 1.1
    target_ratio: Annotated[float, Field(gt=1.0)] = 1.4

    @model_validator(mode="after")
    def _ratio_order(self) -> VaultOwners:
        if self.target_ratio <= self.margin_call_ratio:
            raise ValueError(f"target_ratio must be > margin_call_ratio, got "
                             f"{self.target_ratio} <= {self.margin_call_ratio}")
        return self


class Keepers(Strict):
    """CDP auction keepers: stablecoin capital, gas per bid or take, a minimum profit.

    ``opportunist_share`` of them are Black Thursday's zero-bidders, who bid almost nothing
    on English auctions nobody else bids on.
    """

    count: PositiveInt = 5
    capital: Distribution = Field(description="Stablecoin capital per keeper (numeraire)")
    gas_cost: Distribution = Field(description="Gas per bid or take (numeraire)")
    min_profit: Distribution = Field(description="Minimum profit per take (numeraire)")
    opportunist_share: Fraction = 0.0
    protocols: list[str] | None = Field(None, description="CDP protocols they serve; "
                                        "default: all")


def _as_list(value: Any) -> Any:
    """One table or an array of tables: always a list."""
    return [value] if isinstance(value, dict) else value


class Agents(Strict):
    """Agent populations; each kind is optional.

    Lenders, leveraged traders (single- and multi-collateral), vault owners, holders and perp
    traders may be one table or an array of tables (``[[agents.lenders]]``), one population
    per protocol or behaviour.
    """

    lenders: Annotated[list[Lenders], BeforeValidator(
        _as_list, json_schema_input_type=Lenders | list[Lenders])] | None = None
    leveraged_traders: Annotated[list[LeveragedTraders], BeforeValidator(
        _as_list, json_schema_input_type=LeveragedTraders | list[LeveragedTraders])] | None = None
    multi_collateral_traders: Annotated[list[MultiCollateralTraders], BeforeValidator(
        _as_list, json_schema_input_type=MultiCollateralTraders | list[MultiCollateralTraders]
    )] | None = None
    market_makers: MarketMakers | None = None
    liquidators: Liquidators | None = None
    arbitrageurs: Arbitrageurs | None = None
    redeemers: Redeemers | None = None
    vault_owners: Annotated[list[VaultOwners], BeforeValidator(
        _as_list, json_schema_input_type=VaultOwners | list[VaultOwners])] | None = None
    keepers: Keepers | None = None
    holders: Annotated[list[Holders], BeforeValidator(
        _as_list, json_schema_input_type=Holders | list[Holders])] | None = None
    option_traders: Annotated[list[OptionTraders], BeforeValidator(
        _as_list, json_schema_input_type=OptionTraders | list[OptionTraders])] | None = None
    delta_hedgers: DeltaHedgers | None = None
    vol_arbitrageurs: VolArbitrageurs | None = None
    perp_traders: Annotated[list[PerpTraders], BeforeValidator(
        _as_list, json_schema_input_type=PerpTraders | list[PerpTraders])] | None = None

    def populations(self, kind: str) -> list[tuple[str, Any]]:
        """(field path, population) pairs of one kind, in file order."""
        value = getattr(self, kind)
        if value is None:
            return []
        if not isinstance(value, list):
            return [(f"agents.{kind}", value)]
        if len(value) == 1:
            return [(f"agents.{kind}", value[0])]
        return [(f"agents.{kind}[{k}]", v) for k, v in enumerate(value)]


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


class Sample(Strict):
    """Points sampled over ranges of scenario fields (``sim.batch.design``).

    ``latin_hypercube``: ``n`` points, one per stratum of every range (McKay, Beckman and
    Conover 1979; scipy's ``qmc.LatinHypercube``). ``sobol``: Saltelli's scheme for Sobol
    indices, ``n (D + 2)`` points for D ranges (first and total order; SALib); ``n`` a power
    of 2. ``morris``: ``n`` trajectories of D + 1 points on a ``levels`` grid (Morris 1991;
    SALib), for elementary effects.
    """

    method: Literal["latin_hypercube", "sobol", "morris"]
    n: PositiveInt = Field(description="Points (latin_hypercube), base samples (sobol) or "
                           "trajectories (morris)")
    ranges: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, description="dotted field path -> [low, high]")
    levels: Annotated[int, Field(ge=2)] = Field(4, description="morris: grid levels")
    seed: NonNegativeInt = Field(0, description="Seed of the sample (not of the runs)")

    @model_validator(mode="after")
    def _check(self) -> Sample:
        for path, (low, high) in self.ranges.items():
            if not low < high:
                raise ValueError(f"range of '{path}' must have low < high, got [{low}, {high}]")
        if self.method == "sobol" and self.n & (self.n - 1):
            raise ValueError(f"sobol needs n a power of 2 (Saltelli's scheme), got {self.n}")
        return self


class Batch(Strict):
    """How ``sim batch`` runs this file: replications times design points.

    Design points are the full grid of ``grid`` (every combination), times the lists of
    ``zip`` taken together (equal lengths), times the points of ``sample``; each field is a
    dotted path into the file (``protocols.aave.markets.WETH.liquidation_threshold``, list
    items by index: ``market.jumps.0.size``). Every point runs ``replications`` times; the
    replication's seed derives from ``seed`` alone, so every point sees the same random paths
    (common random numbers: differences between points are the parameters' effect).
    """

    replications: PositiveInt = 1
    seed: NonNegativeInt = 0
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    sample: Sample | None = None

    @model_validator(mode="after")
    def _check(self) -> Batch:
        for group in ("grid", "zip"):
            for path, values in getattr(self, group).items():
                if not values:
                    raise ValueError(f"{group} '{path}' has no values")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have one length, got {sorted(lengths)}")
        seen: dict[str, str] = {}
        groups = (("grid", self.grid), ("zip", self.zip),
                  ("sample", self.sample.ranges if self.sample else {}))
        for group, paths in groups:
            for path in paths:
                if path in seen:
                    raise ValueError(f"'{path}' is in both {seen[path]} and {group}")
                seen[path] = group
                if path == "simulation.seed" or path.split(".")[0] == "batch":
                    raise ValueError(f"'{path}' cannot be swept (seeds come from batch.seed)")
        return self


class Figure(Strict):
    """A recorded figure of a historical event, and where the results hold its simulated twin.

    The simulated value of a run: the result ``variable`` at the ``select`` labels (e.g.
    ``{ protocol = "maker" }``), reduced over time by ``reduce``, summed over any other dim.
    """

    name: str
    recorded: float | None = Field(None, description="The recorded value")
    recorded_low: float | None = Field(None, description="Or a recorded range: its low end")
    recorded_high: float | None = None
    units: str = "USD"
    variable: str = Field(description="A result variable (sim.results.VARIABLES)")
    select: dict[str, str] = Field(default_factory=dict, description="dim -> label")
    reduce: Literal["sum", "min", "max", "first", "last"] = Field(
        "sum", description="Over time: sum (flows), min/max (lows, peaks), first/last")
    source: str = Field(description="Where the recorded figure comes from")
    note: str = ""

    @model_validator(mode="after")
    def _recorded(self) -> Figure:
        ranged = self.recorded_low is not None and self.recorded_high is not None
        if (self.recorded is None) == (not ranged):
            raise ValueError("give either recorded, or recorded_low and recorded_high")
        if ranged and self.recorded_low > self.recorded_high:
            raise ValueError(f"recorded_low must be <= recorded_high, got "
                             f"{self.recorded_low} > {self.recorded_high}")
        return self

    @property
    def low(self) -> float:
        """The recorded value, or the low end of the recorded range."""
        return self.recorded if self.recorded is not None else self.recorded_low

    @property
    def high(self) -> float:
        """The recorded value, or the high end of the recorded range."""
        return self.recorded if self.recorded is not None else self.recorded_high


class Counterfactual(Strict):
    """A lever a risk team would pull: the same event with some fields set otherwise."""

    name: str
    description: str = ""
    set: dict[str, Any] = Field(min_length=1, description="dotted field path -> value")


class History(Strict):
    """What really happened in a historical event, for ``sim validate-history``."""

    event: str
    date: str
    sources: list[str] = Field(default_factory=list)
    figures: list[Figure] = Field(min_length=1)
    counterfactuals: list[Counterfactual] = Field(default_factory=list)


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
