"""The tables the lending liquidation kernels read and write, as named bundles of arrays.

Each table is a named tuple of numpy arrays (``collections.namedtuple``), read by field name
in Python and in the kernels, where numba resolves every field at compile time: a table costs
nothing inside a kernel. Arrays marked in/out are updated in place.

At the call from Python a kernel takes each table as a *plain* tuple in field order, built by
name with ``Table.pack(field=...)``, and names it again in its first lines
(``book = PositionTable(*book)``). The reason is the call's cost: numba types a plain tuple of
arrays in its C dispatcher, but a tuple subclass in Python, array by array (measured: five
tables cost 6.6 us per call named and 2.3 us plain; 40 loose arrays cost the old cascade
about 3 us). A kernel given named tables works the same, more slowly, and is compiled apart.

Indices: ``n`` positions, ``A`` accounts with ``L`` legs, ``K`` markets (one asset of one
lending protocol), ``m`` assets, ``p`` pools, ``l`` liquidators, ``k`` arbitrageurs.
"""

from collections import namedtuple


class _Pack:
    """``pack``: the plain tuple a kernel takes, built by field name."""

    __slots__ = ()

    @classmethod
    def pack(cls, **fields) -> tuple:
        """The arrays of ``fields`` (every field, by name) as a plain tuple in field order."""
        return tuple(cls(**fields))


class PositionTable(_Pack, namedtuple("PositionTable",
                                      "coll_market debt_market coll scaled_debt")):
    """Single-pair positions: one collateral market and one debt market each.

    Fields:
        coll_market: int32[n], market of the collateral.
        debt_market: int32[n], market of the debt.
        coll: float64[n], collateral tokens (in/out).
        scaled_debt: float64[n], debt tokens / borrow index (in/out).
    """

    __slots__ = ()


class LegTable(_Pack, namedtuple("LegTable", "start market amount is_debt")):
    """Multi-collateral accounts in CSR form: account ``a`` owns legs ``start[a]:start[a + 1]``.

    Fields:
        start: int64[A + 1], first leg of each account.
        market: int32[L], market of each leg.
        amount: float64[L], collateral tokens, or scaled debt of a debt leg (in/out).
        is_debt: bool[L], whether a leg is debt.
    """

    __slots__ = ()


class MarketTable(_Pack, namedtuple("MarketTable", (
        "asset", "protocol", "liquidation_threshold", "liquidation_bonus",
        "liquidation_protocol_fee", "borrow_index", "cash", "treasury", "deficit", "total_coll",
        "total_scaled_debt", "close_factor", "close_factor_hf_threshold",
        "min_base_max_close_factor_threshold", "min_leftover_base", "venue_pool",
    ))):
    """Per market: its asset, its protocol's rules, its reserve and where its collateral sells.

    The close-factor rules are the market's protocol's (``sim.engine.liquidation``), repeated
    per market so that a kernel reads them with the market's other parameters.

    Fields:
        asset: int64[K], asset of each market.
        protocol: int64[K], lending protocol of each market (row of ``stats``).
        liquidation_threshold: float64[K], fraction.
        liquidation_bonus: float64[K], fraction (0.05 for Aave's 10500).
        liquidation_protocol_fee: float64[K], share of the bonus collateral.
        borrow_index: float64[K], debt tokens per unit of scaled debt.
        cash: float64[K], reserve liquidity (in/out).
        treasury: float64[K], protocol-fee tokens (in/out).
        deficit: float64[K], booked bad debt (in/out).
        total_coll: float64[K], collateral tokens of the book (in/out).
        total_scaled_debt: float64[K], scaled debt of the book (in/out).
        close_factor: float64[K], share of the debt one liquidation may repay.
        close_factor_hf_threshold: float64[K], HF at or below which all may go.
        min_base_max_close_factor_threshold: float64[K], small-position value.
        min_leftover_base: float64[K], value a partial liquidation must leave.
        venue_pool: int64[K], pool where seized collateral is sold, or -1.
    """

    __slots__ = ()


class PoolTable(_Pack, namedtuple("PoolTable",
                                  "reserve_base reserve_quote fee amp peg base quote")):
    """Every AMM pool of the model (``sim.engine.amm``).

    Fields:
        reserve_base: float64[p] (in/out).
        reserve_quote: float64[p] (in/out).
        fee: float64[p], swap fee.
        amp: float64[p], StableSwap amplification (0: constant product).
        peg: float64[p], quote value of one base token at balance.
        base: int64[p], asset of the base token.
        quote: int64[p], asset of the quote token.
    """

    __slots__ = ()


class LiquidatorTable(_Pack, namedtuple("LiquidatorTable",
                                        "balance gas_cost min_profit atomic order")):
    """The liquidators of a step.

    Fields:
        balance: float64[l, m], token balances (in/out).
        gas_cost: float64[l], gas per liquidation (numeraire).
        min_profit: float64[l], least profit worth a liquidation (numeraire).
        atomic: bool[l], flash-loan bots: must sell seized collateral on the venue.
        order: int64[l], the order in which they act this step.
    """

    __slots__ = ()


class ArbitrageurTable(_Pack, namedtuple("ArbitrageurTable", "balance pools order")):
    """The arbitrageurs who back-run the pools at the end of each cascade round.

    Fields:
        balance: float64[k, m], inventories (in/out).
        pools: int64[q], pools they trade.
        order: int64[k], their acting order.
    """

    __slots__ = ()
