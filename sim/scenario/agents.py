"""The ``[agents]`` table: one class per agent population kind.

Numeric behaviour that varies across agents is a ``Distribution``; lenders, leveraged
traders, vault owners, holders, option and perp traders may be one table or an array of
tables (one population per protocol or behaviour).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import (
    Fraction,
    OpenFraction,
    Strict,
)
from sim.scenario.distributions import Constant, Distribution, Uniform


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
