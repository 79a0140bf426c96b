"""The tables the lending liquidation kernels read and write, as named bundles of arrays.

Each bundle is a named tuple of numpy arrays: numba passes it to a kernel as a tuple of
arrays and resolves every field at compile time, so a bundle costs nothing inside a kernel
(it costs about 1 us per bundle when a kernel is called from Python: numba fingerprints a
tuple subclass by its class and field names; measured 8.5 against 4.4 us for a cascade call
with five bundles and no round). A caller builds each bundle once, by name, from its own
tables; the kernels read the fields by name. Arrays marked in/out are updated in place.

The bundles are written as ``Table`` subclasses rather than ``typing.NamedTuple`` because the
engine imports only numpy and numba (``tests/test_layering.py``); numba takes any tuple
subclass with ``_fields`` and ``_asdict`` for a named tuple.

Indices: ``n`` positions, ``A`` accounts with ``L`` legs, ``K`` markets (one asset of one
lending protocol), ``m`` assets, ``p`` pools, ``l`` liquidators, ``k`` arbitrageurs.
"""


class Table(tuple):
    """A tuple whose items are named by the class's ``_fields``, as a named tuple.

    Built from positional items, by name, or both (``Table(a, b, c=...)``), every field
    required; each field reads as an attribute.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __new__(cls, *items, **named):
        """The table of ``items`` (in field order) then ``named`` fields."""
        if len(items) > len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} fields, got {len(items)}")
        values = list(items)
        for name in cls._fields[len(items):]:
            if name not in named:
                raise TypeError(f"{cls.__name__} needs field {name!r}")
            values.append(named.pop(name))
        if named:
            raise TypeError(f"{cls.__name__} has no field {sorted(named)[0]!r}")
        return super().__new__(cls, values)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for i, name in enumerate(cls._fields):
            setattr(cls, name, property(lambda self, i=i: self[i]))

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._fields)})"


class PositionTable(Table):
    """Single-pair positions: one collateral market and one debt market each.

    Fields:
        coll_market: int32[n], market of the collateral.
        debt_market: int32[n], market of the debt.
        coll: float64[n], collateral tokens (in/out).
        scaled_debt: float64[n], debt tokens / borrow index (in/out).
    """

    _fields = ("coll_market", "debt_market", "coll", "scaled_debt")


class LegTable(Table):
    """Multi-collateral accounts in CSR form: account ``a`` owns legs ``start[a]:start[a + 1]``.

    Fields:
        start: int64[A + 1], first leg of each account.
        market: int32[L], market of each leg.
        amount: float64[L], collateral tokens, or scaled debt of a debt leg (in/out).
        is_debt: bool[L], whether a leg is debt.
    """

    _fields = ("start", "market", "amount", "is_debt")


class MarketTable(Table):
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

    _fields = (
        "asset", "protocol", "liquidation_threshold", "liquidation_bonus",
        "liquidation_protocol_fee", "borrow_index", "cash", "treasury", "deficit", "total_coll",
        "total_scaled_debt", "close_factor", "close_factor_hf_threshold",
        "min_base_max_close_factor_threshold", "min_leftover_base", "venue_pool",
    )


class PoolTable(Table):
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

    _fields = ("reserve_base", "reserve_quote", "fee", "amp", "peg", "base", "quote")


class LiquidatorTable(Table):
    """The liquidators of a step.

    Fields:
        balance: float64[l, m], token balances (in/out).
        gas_cost: float64[l], gas per liquidation (numeraire).
        min_profit: float64[l], least profit worth a liquidation (numeraire).
        atomic: bool[l], flash-loan bots: must sell seized collateral on the venue.
        order: int64[l], the order in which they act this step.
    """

    _fields = ("balance", "gas_cost", "min_profit", "atomic", "order")


class ArbitrageurTable(Table):
    """The arbitrageurs who back-run the pools at the end of each cascade round.

    Fields:
        balance: float64[k, m], inventories (in/out).
        pools: int64[q], pools they trade.
        order: int64[k], their acting order.
    """

    _fields = ("balance", "pools", "order")
