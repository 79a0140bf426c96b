"""Protocol tables of a scenario (``[protocols.<name>]``, one class per ``kind``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator

from sim.scenario.base import Fraction, OpenFraction, Strict


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
    oracle: Literal["exact"] | None = Field(
        None, description="\"exact\": with no oracle protocol for the asset, the market "
        "reads its price as the model sets it every step (no delay, heartbeat or deviation), "
        "as intended; unset, that fallback makes a warning when the price moves")

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


class Pool(Strict):
    """An AMM pool trading ``base`` against ``quote`` (the kinds below)."""

    base: str
    quote: str
    reserve_base: PositiveFloat = Field(description="Initial base-token reserve")
    fee: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.003


class ConstantProduct(Pool):
    """Uniswap-v2-style pool; the quote reserve is set from the base's external price."""

    kind: Literal["constant_product"]


class StableSwap(Pool):
    """Curve-style two-coin StableSwap pool for a pegged pair (stETH/ETH, DAI/USDC).

    ``amplification`` is the whitepaper's ``A`` (``Ann = A n^n``); a deployed Curve contract's
    ``A()`` for two coins is ``2 A``. ``peg`` is the quote value of one base token at balance.
    """

    kind: Literal["stableswap"]
    reserve_quote: PositiveFloat | None = Field(
        None, description="Initial quote reserve; default reserve_base * peg (balanced)")
    amplification: PositiveFloat = 50.0
    peg: PositiveFloat = 1.0
    fee: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0004


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


class LiquidStaking(Strict):
    """A liquid-staking or bridge-wrapped token: ``token`` is backed by ``underlying``.

    Minting is instant at the exchange rate; redemption goes through a FIFO queue limited by
    ``exit_capacity_per_day`` and paid ``delay_hours`` after the exit
    (``sim.protocols.liquid_staking``). ``pool``: where the token trades against its
    underlying; its spot is the token's market price (stETH traded 98.5% on Curve in 2022).
    """

    kind: Literal["liquid_staking"]
    token: str
    underlying: str
    rate: PositiveFloat = Field(1.0, description="Underlying per token at start")
    staking_apr: NonNegativeFloat = 0.0
    delay_hours: NonNegativeFloat = Field(
        27.3, description="Exit to payment; 27.3 h = 256 epochs (Ethereum withdrawability)")
    exit_capacity_per_day: PositiveFloat = Field(
        description="Underlying that can leave per day (validator exit churn)")
    mint_enabled: bool = True
    pool: str | None = Field(None, description="Pool trading token (base) against underlying")


class CdpIlk(Strict):
    """One collateral type (ilk) of a CDP protocol: Vat, Jug, Dog and Clipper parameters.

    Defaults are ETH-A/ETH-B values (``shared/reference/protocols.md``). ``auction`` picks
    Liquidations 2.0 Dutch auctions (Clipper, ``curve``/``buf``/``cut``/``step_seconds``/
    ``tau_seconds``/``tail_seconds``/``cusp``/``chip``/``tip``) or the Liquidations 1.2
    English auctions of Black Thursday (Flipper, ``beg``/``ttl_seconds``/``tau_seconds``).
    """

    liquidation_ratio: Annotated[float, Field(gt=1.0)] = Field(
        1.5, description="Spotter mat: collateral value / debt below which a vault is unsafe")
    stability_fee: NonNegativeFloat = Field(0.0, description="Annual (Jug duty - 1)")
    liquidation_penalty: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.13, description="Dog chop - 1: tab = debt * (1 + penalty)")
    dust: NonNegativeFloat = Field(0.0, description="Least debt of a vault (stable)")
    debt_ceiling: PositiveFloat | None = Field(None, description="Vat line (stable); none: no cap")
    hole: PositiveFloat | None = Field(None, description="Dog ilk hole: most stable in auctions")
    auction: Literal["dutch", "english"] = "dutch"
    curve: Literal["stairstep_exponential", "exponential", "linear"] = "stairstep_exponential"
    buf: Annotated[float, Field(ge=1.0)] = Field(1.3, description="top = oracle price * buf")
    cut: OpenFraction = Field(0.99, description="Price factor per step (exponential curves)")
    step_seconds: PositiveFloat = 90.0
    tau_seconds: PositiveFloat = Field(
        21600.0, description="Linear curve: seconds to zero; English: auction length")
    tail_seconds: PositiveFloat = Field(8400.0, description="Reset after this many seconds")
    cusp: OpenFraction = Field(0.4, description="Reset when price / top falls below cusp")
    chip: Fraction = Field(0.0, description="Keeper incentive: share of the tab")
    tip: NonNegativeFloat = Field(0.0, description="Keeper incentive: flat (stable)")
    beg: OpenFraction = Field(0.03, description="English: least relative bid increase")
    ttl_seconds: PositiveFloat = Field(600.0, description="English: bid lifetime")
    liquidation_venue: str | None = Field(
        None, description="Pool where keepers sell bought collateral; none: off-chain")


class Psm(Strict):
    """A Peg Stability Module of a CDP (Maker ``psm.sol``): its stable 1:1 against ``gem``.

    ``sellGem`` locks gem and mints stable minus the toll ``tin``; ``buyGem`` pays gem for
    stable plus the toll ``tout``; the PSM's debt (= its gem reserve) stays under ``line``.
    """

    gem: str = Field(description="The reserve stablecoin (USDC)")
    tin: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    tout: NonNegativeFloat = 0.0
    line: PositiveFloat | None = Field(None, description="Debt ceiling (stable); none: no cap")
    reserve: NonNegativeFloat = Field(0.0, description="Gem locked at start")


class CDP(Strict):
    """A Maker-style CDP protocol issuing the stablecoin ``stable`` against ``ilks``.

    Vaults lock collateral and mint ``stable``; unsafe vaults are barked (Dog) and their
    collateral auctioned to keepers for ``stable``, which is burnt (``sim.protocols.cdp``).
    """

    kind: Literal["cdp"]
    stable: str = Field(description="The stablecoin it mints (an asset with issuer = this)")
    ilks: dict[str, CdpIlk] = Field(min_length=1, description="Collateral types by asset")
    hole: PositiveFloat | None = Field(None, description="Dog Hole: most stable in all "
                                       "auctions; none: no cap")
    stable_pool: str | None = Field(None, description="Pool trading the stable (base); its "
                                    "price is then the pool's, and its peg can break")
    psm: Psm | None = None


class AlgorithmicStablecoin(Strict):
    """A stablecoin minted and burnt against a sister token (Terra's market module).

    Anyone may burn 1 ``stable`` for 1 numeraire of ``sister`` at the sister's oracle price,
    or the reverse, minus a spread set by virtual pools of size ``base_pool`` whose imbalance
    decays over ``pool_recovery_period`` blocks (``sim.protocols.stablecoin``). Both tokens
    are priced by their pools: ``stable_pool`` and ``sister_pool`` trade them (as base)
    against a quote token. Defaults: columbus-5 before May 2022 (BasePool 50M SDR, taken as
    USD here; 36 blocks; MinStabilitySpread 0.5%; ~6 s blocks).
    """

    kind: Literal["algorithmic_stablecoin"]
    stable: str
    sister: str
    stable_pool: str = Field(description="Pool trading the stable (base) against a quote")
    sister_pool: str = Field(description="Pool trading the sister (base) against a quote")
    base_pool: PositiveFloat = Field(50e6, description="BasePool (numeraire)")
    min_spread: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.005
    pool_recovery_period: Annotated[float, Field(ge=1.0)] = Field(
        36.0, description="Blocks over which the pools' imbalance decays")
    block_seconds: PositiveFloat = 6.0


class PerpMarket(Strict):
    """One perpetual-futures market (dYdX v4 margins, Synthetix SIP-80 skew funding).

    A vault takes the other side of the traders' net position (GMX's GLP); with a
    ``hedge_pool`` it holds the asset against it and trades the pool as the net position
    changes, so liquidations of longs become sales on the pool.
    """

    initial_margin: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    maintenance_margin: Annotated[float, Field(gt=0.0, le=1.0)] = 0.03
    liquidation_fee: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.015, description="Share of the notional paid to the insurance fund (dYdX v4 max)")
    max_funding_rate: NonNegativeFloat = Field(0.1, description="Per day, at full skew")
    skew_scale: PositiveFloat = Field(description="Contracts of skew at which funding is max")
    vault_balance: NonNegativeFloat = Field(0.0, description="Settlement tokens in the vault")
    hedge_pool: str | None = Field(None, description="Pool (base = the asset) where the vault "
                                   "hedges its position; none: unhedged")

    @model_validator(mode="after")
    def _margins(self) -> PerpMarket:
        if self.maintenance_margin > self.initial_margin:
            raise ValueError(f"maintenance_margin must be <= initial_margin, got "
                             f"{self.maintenance_margin} > {self.initial_margin}")
        return self


class Perpetuals(Strict):
    """Perpetual futures on ``markets`` (by asset), margined in ``settlement`` tokens."""

    kind: Literal["perpetuals"]
    settlement: str
    margin_mode: Literal["isolated", "cross"] = Field(
        "isolated", description="isolated: each position its own margin; cross: one margin "
        "account per trader for all its positions")
    markets: dict[str, PerpMarket] = Field(min_length=1)
    insurance_fund: NonNegativeFloat = Field(0.0, description="Settlement tokens at start")


class OptionsMarket(Strict):
    """The implied-volatility surface of one asset (``sim.protocols.options.VolSurface``).

    ``sigma(K, T) = max(floor, atm_vol (T / 30 days) ** term + skew ln(K / F) / sqrt(T))``;
    the ATM level moves toward realised volatility plus ``vol_premium`` with time constant
    ``reaction_hours``.
    """

    atm_vol: PositiveFloat = Field(0.8, description="Annualised ATM volatility at 30 days")
    skew: float = Field(-0.1, description="Vol per unit of ln(K/F)/sqrt(T)")
    term: float = Field(0.0, description="Power of the term structure (T / 30 days)")
    reaction_hours: PositiveFloat = 24.0
    vol_premium: float = Field(0.05, description="Implied minus realised, in the long run")


class Options(Strict):
    """European options written by the protocol's vault, cash-settled in ``settlement``.

    The vault's risk limits, per asset: a trade is taken if, for its gamma (``gamma S^2 /
    100``, the change of its delta's value for a 1% move) and for its vega (``vega / 100``,
    per volatility point) alike, it leaves the vault within the limit or reduces the
    exposure; otherwise it is refused.
    """

    kind: Literal["options"]
    settlement: str
    vault: NonNegativeFloat = Field(0.0, description="Settlement tokens in the writer vault")
    rate: float = Field(0.0, description="Continuously compounded rate for discounting")
    gamma_limit_usd: PositiveFloat | None = Field(
        None, description="Most |gamma S^2 / 100| of the vault per asset; none: no limit")
    vega_limit_usd: PositiveFloat | None = Field(
        None, description="Most |vega / 100| of the vault per asset; none: no limit")
    markets: dict[str, OptionsMarket] = Field(min_length=1)


Protocol = Annotated[Lending | ConstantProduct | StableSwap | Oracle | LiquidStaking | CDP
                     | AlgorithmicStablecoin | Perpetuals | Options,
                     Field(discriminator="kind")]


