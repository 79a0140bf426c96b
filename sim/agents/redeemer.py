"""Redeemers: arbitrageurs who close a token's gap to its redemption value through its issuer.

A liquid-staking token is worth its exchange rate in underlying, but only after the
redemption queue pays: ``wait`` hours (``LiquidStaking.expected_wait_hours``). A redeemer buys
the token on its pool while the pool's ask, after fee, is below

    ``rate / (1 + hurdle_rate * wait / 8760)``

(the rate discounted at its required return over the wait), and requests redemption of what
it bought; the underlying comes back when the ticket is paid. The wait depends on the amount
queued, so the price limit is computed for the queue as it is, the order sized, and the limit
recomputed once with the order's own place in the queue. Capital locked in tickets cannot be
used again until they are paid: a run on the token outlasts the redeemers' capital. When the
token trades above the rate and minting is open, a redeemer mints at the rate and sells into
the pool down to the rate (no wait, no hurdle).

An algorithmic stablecoin is worth 1 numeraire of its sister token at the issuer, at once.
Below the peg a redeemer buys the stable on its pool, swaps it at the issuer for the sister
(``AlgorithmicStablecoin.burn_stable``, at the sister's oracle price, minus the spread) and
sells the sister on its pool; above the peg, the reverse. The trade size maximises the round
trip's profit (golden-section search: with constant-product and StableSwap pools and the
issuer's virtual pools, the proceeds are concave in the size), and the trade is done if it
returns at least ``min_return``. The sale of the sister is what makes the mechanism pro-
cyclical: defending the peg mints the sister and sells it into a falling market.

Redeemers act at the start of every step, in a random order (the model's RNG), each with
its own capital.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, amounts, by_group
from sim.protocols.amm import Pools
from sim.protocols.liquid_staking import HOURS_PER_YEAR, LiquidStaking
from sim.protocols.psm import PegStabilityModule
from sim.protocols.stablecoin import AlgorithmicStablecoin

GOLDEN = (5 ** 0.5 - 1) / 2
SEARCH_STEPS = 60  # golden-section steps: the bracket shrinks to 0.618^60 ~ 3e-13 of itself


class Redeemer(Member):
    """A redeemer: row ``index`` of its population's ``RedeemerTable``."""


class Redeemers(Population):
    """The redeemers of ``[agents.redeemers]`` (a ``RedeemerTable``)."""

    kind = "redeemer"
    Member = Redeemer

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> Redeemers:
        """Redeemers at the issuers they can use.

        Liquid-staking issuers with a pool, algorithmic stablecoins, CDPs' PSMs with a
        stable pool. Capital is split over what they pay with: LST underlyings, stable
        pools' quote tokens, gems.
        """
        w = world
        p0 = w.prices[0]
        wanted = cfg.protocols or [*w.staking_names, *w.algo_names, *w.psm_names]
        lsts = [n for n in wanted if n in w.staking_names
                and w.staking_pool[w.staking_names.index(n)] >= 0]
        algos = [n for n in wanted if n in w.algo_names]
        psms = [n for n in wanted if n in w.psm_names
                and w.cdp_stable_pool[w.cdp_names.index(n)] >= 0]
        issuers = np.array([w.staking_names.index(n) for n in lsts], dtype=np.int64)
        coins = np.array([w.algo_names.index(n) for n in algos], dtype=np.int64)
        psm = np.array([w.psm_names.index(n) for n in psms], dtype=np.int64)
        psm_pools = w.cdp_stable_pool[w.psm_cdp[psm]]
        pools = [*w.staking_pool[issuers], *w.algo_stable_pool[coins],
                 *w.algo_sister_pool[coins], *psm_pools]
        cash = np.unique([*w.staking.underlying[issuers],
                          *w.amm.quote[w.algo_stable_pool[coins]],
                          *w.amm.quote[psm_pools], *w.psm_gem[psm]]).astype(np.int64)
        capital = amounts(w.scenario.source, f"{name}.capital", cfg.capital, rng, cfg.count)
        balance = np.zeros((cfg.count, len(w.assets)))
        for u in cash:
            balance[:, u] = capital / len(cash) / p0[u]
        table = RedeemerTable(
            balance, hurdle_rate=cfg.hurdle_rate, protocols=issuers,
            pools=w.staking_pool[issuers], min_return=cfg.min_return, stablecoins=coins,
            stable_pools=w.algo_stable_pool[coins], sister_pools=w.algo_sister_pool[coins],
            psms=psm, psm_pools=psm_pools, psm_gems=w.psm_gem[psm])
        protocols = (*lsts, *algos, *psms, *dict.fromkeys(w.pool_names[v] for v in pools))
        return cls(model, table, name=name, protocols=protocols, size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Redeem at liquid-staking issuers, algorithmic stablecoins and PSMs, in turn."""
        w, t = ctx.world, self.table
        volume = t.act(w.staking, w.amm, ctx.now_hours, ctx.rng)
        volume += t.act_algorithmic(w.algo, w.amm, w.oracles.price, ctx.external_price,
                                    w.algo_sister, ctx.rng)
        volume += t.act_psm(w.psm, w.amm, ctx.external_price, ctx.rng)
        ctx.volume[self.kind] = volume

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Balances (tokens) and the underlying their open redemption tickets claim."""
        st = ctx.world.staking
        m = len(ctx.external_price)
        out = Holdings.zeros(1 if members is None else len(members), m)
        out.tokens[:] = by_group(self.table.balance, members)
        ids, claim = st.open_claims()
        owner = st.tickets.owner[ids]
        group = np.full(len(self.table), -1, dtype=np.int64)
        group[np.arange(len(self.table)) if members is None
              else np.asarray(members, dtype=np.int64)] = (
            0 if members is None else np.arange(len(members)))
        mine = owner >= 0
        mine[mine] = group[owner[mine]] >= 0
        under = st.underlying[st.tickets.protocol[ids[mine]]]
        np.add.at(out.claims, (group[owner[mine]], under), claim[mine])
        return out


class RedeemerTable:
    """Balances (redeemers x assets), the required return, and the issuers they use.

    Args:
        balance: token balances per redeemer and asset.
        hurdle_rate: annual return asked for capital locked in a redemption queue.
        protocols: indices (in ``LiquidStaking``) of the issuers they redeem at.
        pools: the pool of each of those issuers (token base, underlying quote).
        min_return: least return of a round trip through an algorithmic stablecoin.
        stablecoins: indices (in ``AlgorithmicStablecoin``) of those they use.
        stable_pools, sister_pools: each of those protocols' pools.
        psms: indices (in ``PegStabilityModule``) of the PSMs they use.
        psm_pools, psm_gems: each of those PSMs' stable pool and gem asset.
    """

    def __init__(self, balance: np.ndarray, *, hurdle_rate: float, protocols: np.ndarray,
                 pools: np.ndarray, min_return: float = 0.001,
                 stablecoins: np.ndarray | None = None, stable_pools: np.ndarray | None = None,
                 sister_pools: np.ndarray | None = None, psms: np.ndarray | None = None,
                 psm_pools: np.ndarray | None = None, psm_gems: np.ndarray | None = None):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.hurdle_rate = float(hurdle_rate)
        self.protocols = np.asarray(protocols, dtype=np.int64)
        self.pools = np.asarray(pools, dtype=np.int64)
        self.min_return = float(min_return)
        none = np.zeros(0, dtype=np.int64)
        self.stablecoins = none if stablecoins is None else np.asarray(stablecoins, np.int64)
        self.stable_pools = none if stable_pools is None else np.asarray(stable_pools, np.int64)
        self.sister_pools = none if sister_pools is None else np.asarray(sister_pools, np.int64)
        self.psms = none if psms is None else np.asarray(psms, np.int64)
        self.psm_pools = none if psm_pools is None else np.asarray(psm_pools, np.int64)
        self.psm_gems = none if psm_gems is None else np.asarray(psm_gems, np.int64)

    def __len__(self) -> int:
        return len(self.balance)

    def limit_price(self, staking: LiquidStaking, p: int, owed: float, now_hours: float) -> float:
        """Highest price (underlying per token) worth paying to redeem ``owed`` underlying."""
        wait = staking.expected_wait_hours(p, owed, now_hours)
        return staking.rate[p] / (1.0 + self.hurdle_rate * wait / HOURS_PER_YEAR)

    def act(self, staking: LiquidStaking, amm: Pools, now_hours: float,
            rng: np.random.Generator) -> float:
        """Trade every issuer's pool toward its redemption value; return the volume (tokens).

        Volume is counted in the tokens' underlying units (the numeraire value is the
        caller's).
        """
        volume = 0.0
        for k in rng.permutation(len(self)):
            for p, v in zip(self.protocols, self.pools, strict=True):
                volume += self._discount(k, staking, amm, int(p), int(v), now_hours)
                volume += self._premium(k, staking, amm, int(p), int(v))
        return volume

    def _discount(self, k, staking, amm, p, v, now_hours) -> float:
        under = staking.underlying[p]
        cash = self.balance[k, under]
        if cash <= 0 or staking.rate[p] <= 0:
            return 0.0
        limit = self.limit_price(staking, p, 0.0, now_hours)
        size = min(cash, amm.input_to_price(v, sell_base=False, target=1.0 / limit))
        if size <= 0:
            return 0.0
        # The order's own place in the queue lengthens the wait: price it once more.
        tokens = amm.quote_sell_quote(v, size)
        limit = self.limit_price(staking, p, tokens * staking.rate[p], now_hours)
        size = min(cash, amm.input_to_price(v, sell_base=False, target=1.0 / limit))
        if size <= 0:
            return 0.0
        bought = amm.sell_quote(v, size)
        self.balance[k, under] -= size
        staking.request_redemption(p, bought, now_hours, owner=k)
        return size

    def _premium(self, k, staking, amm, p, v) -> float:
        under = staking.underlying[p]
        cash = self.balance[k, under]
        if cash <= 0 or not staking.mint_enabled[p] or staking.rate[p] <= 0:
            return 0.0
        tokens = amm.input_to_price(v, sell_base=True, target=staking.rate[p])
        tokens = min(tokens, cash / staking.rate[p])
        if tokens <= 0:
            return 0.0
        minted = staking.deposit(p, tokens * staking.rate[p])
        self.balance[k, under] -= tokens * staking.rate[p]
        self.balance[k, under] += amm.sell_base(v, minted)
        return tokens * staking.rate[p]

    def act_algorithmic(self, algo: AlgorithmicStablecoin, amm: Pools, oracle_price: np.ndarray,
                        external_price: np.ndarray, sister_asset: np.ndarray,
                        rng: np.random.Generator) -> float:
        """Trade every algorithmic stablecoin's pools toward its peg; return the volume (USD).

        Args:
            algo: the algorithmic stablecoins (swaps recorded there).
            amm: the pools.
            oracle_price: per-asset oracle prices (the issuer swaps at the sister's).
            external_price: per-asset prices at which redeemers value tokens.
            sister_asset: asset index of each protocol's sister token.
            rng: the model's generator (acting order).
        """
        volume = 0.0
        for k in rng.permutation(len(self)):
            for p, sp, lp in zip(self.stablecoins, self.stable_pools, self.sister_pools,
                                 strict=True):
                p = int(p)
                price = oracle_price[sister_asset[p]]
                # Below the peg: buy the stable, burn it for the sister, sell the sister.
                volume += self._round_trip(
                    k, amm, external_price, first=int(sp), last=int(lp),
                    swap=lambda x, p=p, q=price, do=False: (
                        algo.burn_stable if do else algo.quote_burn_stable)(p, x, q).minted,
                    limit=external_price[amm.quote[sp]])
                # Above it: buy the sister, burn it for the stable, sell the stable.
                volume += self._round_trip(
                    k, amm, external_price, first=int(lp), last=int(sp),
                    swap=lambda x, p=p, q=price, do=False: (
                        algo.burn_sister if do else algo.quote_burn_sister)(p, x, q).minted,
                    limit=external_price[amm.quote[lp]] / price)
        return volume

    def act_psm(self, psm: PegStabilityModule, amm: Pools, external_price: np.ndarray,
                rng: np.random.Generator) -> float:
        """Trade every PSM's stable pool toward par through the PSM; return the volume (USD).

        Below par: buy the stable on its pool and swap it for gem at the PSM (``buyGem``,
        paying ``gem (1 + tout)``). Above par: swap gem for the stable (``sellGem``, receiving
        ``gem (1 - tin)``) and sell the stable on its pool.

        Args:
            psm: the PSMs (swaps recorded there; those used are ``self.psms``).
            amm: the pools.
            external_price: per-asset prices at which redeemers value tokens.
            rng: the model's generator (acting order).
        """
        volume = 0.0
        for k in rng.permutation(len(self)):
            for p, sp, gem in zip(self.psms, self.psm_pools, self.psm_gems, strict=True):
                p, sp, gem = int(p), int(sp), int(gem)
                # The stable the PSM's reserve can take back (buyGem fills at most it).
                cap = amm.input_for_output(sp, sell_base=False,
                                           want=psm.reserve[p] * (1.0 + psm.tout[p]))
                volume += self._round_trip(
                    k, amm, external_price, first=sp, last=-1, get=gem,
                    swap=lambda x, p=p, do=False: (psm.buy_gem if do else psm.quote_buy_gem)(
                        p, x / (1.0 + psm.tout[p])).gem,
                    limit=external_price[amm.quote[sp]] * (1.0 + psm.tout[p]) / external_price[gem],
                    cap=cap * (1.0 - 1e-9))
                volume += self._round_trip(
                    k, amm, external_price, first=-1, last=sp, pay=gem,
                    swap=lambda x, p=p, do=False: (psm.sell_gem if do else psm.quote_sell_gem)(
                        p, x).dai,
                    limit=0.0, cap=max(psm.line[p] - psm.reserve[p], 0.0))
        return volume

    def _round_trip(self, k, amm, value, *, first, last, swap, limit, pay=-1, get=-1,
                    cap=np.inf) -> float:
        """One redeemer's most profitable round trip through an issuer; the volume (USD).

        Pay tokens (the quote of pool ``first``, or ``pay`` without one), buy on ``first``
        (when >= 0), swap the result at the issuer (``swap(amount, do=...)`` returns what it
        gives), sell that on ``last`` (when >= 0, else keep it as ``get``). The size paid
        maximises the profit at ``value`` prices (golden-section search on ``[0, hi]``; hi is
        the cash, at most ``cap``, and no more than lifts ``first`` to the rate ``limit`` base
        per quote, beyond which nothing pays); it is done if it returns at least
        ``min_return``. ``cap`` keeps the swap within what the issuer fills in full.
        """
        pay = amm.quote[first] if first >= 0 else pay
        get = amm.quote[last] if last >= 0 else get
        cash = self.balance[k, pay]
        if cash <= 0:
            return 0.0

        def proceeds(size: float, do: bool = False) -> float:  # tokens of `get` for `size`
            bought = (amm.sell_quote if do else amm.quote_sell_quote)(first, size) \
                if first >= 0 else size
            got = swap(bought, do=do)
            if last < 0:
                return got
            return (amm.sell_base if do else amm.quote_sell_base)(last, got)

        def profit(size: float) -> float:
            return proceeds(size) * value[get] - size * value[pay]

        hi = min(cash, cap)
        if first >= 0:
            hi = min(hi, amm.input_to_price(first, sell_base=False, target=limit))
        if not hi > 0:
            return 0.0
        lo = 0.0
        a, b = hi - GOLDEN * hi, GOLDEN * hi
        fa, fb = profit(a), profit(b)
        for _ in range(SEARCH_STEPS):
            if fa < fb:
                lo, a, fa = a, b, fb
                b = lo + GOLDEN * (hi - lo)
                fb = profit(b)
            else:
                hi, b, fb = b, a, fa
                a = hi - GOLDEN * (hi - lo)
                fa = profit(a)
        size = a if fa >= fb else b
        if size <= 0 or profit(size) < size * value[pay] * self.min_return:
            return 0.0
        self.balance[k, pay] -= size
        self.balance[k, get] += proceeds(size, do=True)
        return size * value[pay]

    def receive(self, owners: np.ndarray, underlying: np.ndarray, amounts: np.ndarray) -> None:
        """Credit paid redemption tickets to their owners (rows)."""
        np.add.at(self.balance, (owners, underlying), amounts)
