"""What a model holds and records: token totals, net worth, the per-step record.

A mixin of ``StressModel``; the recorded variables are catalogued in ``sim.results``.
"""

from __future__ import annotations

import numpy as np

from sim.engine import cascade as ck
from sim.model.kinds import AGENT_KINDS


class Accounting:
    """Token totals, net worth per agent kind, and the per-step record (mixin)."""

    def token_totals(self) -> np.ndarray:
        """Tokens per asset summed over every account.

        Conserved up to ``net_issued``: only issuers mint and burn (staking deposits and
        redemptions, staking rewards and losses).
        """
        m = len(self.assets)
        amm = self.amm
        pool = self.lending
        total = (pool.per_asset(pool.cash + pool.total_coll + pool.treasury)
                 + np.bincount(amm.base, weights=amm.reserve_base, minlength=m)
                 + np.bincount(amm.quote, weights=amm.reserve_quote, minlength=m)
                 + self.liquidators.balance.sum(axis=0) + self.external + self.gas_sink)
        for lenders in self.lenders:
            total += lenders.wallet.sum(axis=0)
        total += self._trader_wallets()
        if self.market_makers is not None:
            total += self.market_makers.wallet.sum(axis=0)
        if self.arbitrageurs is not None:
            total += self.arbitrageurs.balance.sum(axis=0)
        if self.redeemers is not None:
            total += self.redeemers.balance.sum(axis=0)
        return total + self.staking.held()

    def net_issued(self) -> np.ndarray:
        """Tokens created minus destroyed per asset since the start, by every issuer.

        Staked tokens minted minus burnt, staking rewards minus losses, and backing an
        attacker took (destroyed for the protocol, created in the attacker's hands).
        """
        return self.staking.minted() + self.staking.net_created() + self.created

    def _trader_wallets(self) -> np.ndarray:
        """Traders' spare funds per asset (each row holds its debt asset)."""
        out = np.zeros(len(self.assets))
        for traders in self.traders:
            out[traders.debt_asset] += traders.wallet.sum()
        return out

    def net_worth(self, coll: np.ndarray, debt: np.ndarray) -> np.ndarray:
        """Net worth per agent kind at external prices (order of ``AGENT_KINDS``)."""
        ext = self.prices[self.t]
        out = np.zeros(len(AGENT_KINDS))
        pool = self.lending
        for lenders in self.lenders:
            out[0] += (lenders.claims(pool) + lenders.wallet.sum(0)) @ ext
        if self.traders:
            out[1] = pool.per_asset(coll - debt) @ ext + self._trader_wallets() @ ext
        if self.market_makers is not None:
            mm = self.market_makers
            p = mm.pool
            share = mm.shares.sum() / self.amm.lp_supply[p]
            out[2] = (share * (self.amm.reserve_base[p] * ext[self.amm.base[p]]
                               + self.amm.reserve_quote[p] * ext[self.amm.quote[p]])
                      + mm.wallet.sum(0) @ ext)
        out[3] = self.liquidators.balance.sum(0) @ ext
        if self.arbitrageurs is not None:
            out[4] = self.arbitrageurs.balance.sum(0) @ ext
        if self.redeemers is not None:
            out[5] = self.redeemers.balance.sum(0) @ ext + self._ticket_claims() @ ext
        return out

    def _ticket_claims(self) -> np.ndarray:
        """Underlying claimed by the redeemers' open tickets, per asset."""
        st = self.staking
        t = st.tickets
        open_ = ~t.paid & (t.owner >= 0)
        claim = np.minimum(t.owed[open_], t.tokens[open_] * st.rate[t.protocol[open_]])
        return np.bincount(st.underlying[t.protocol[open_]], weights=claim,
                           minlength=len(self.assets))

    def _record(self, stats: np.ndarray, totals: np.ndarray, rounds: np.ndarray) -> None:
        pool = self.lending
        price = self.oracles.price
        coll, debt, insolvent = pool.totals(price)
        n_proto = len(self.protocol_names)
        lending_rows = [self.protocol_names.index(n) for n in self.lending_names]

        def per_protocol(values: np.ndarray) -> np.ndarray:
            out = np.zeros(n_proto)
            out[lending_rows] = values
            return out

        def per_market(values: np.ndarray) -> np.ndarray:
            out = np.full((n_proto, len(self.assets)), np.nan)
            out[lending_rows] = np.where(pool.listed, values, np.nan).reshape(
                len(lending_rows), len(self.assets))
            return out

        ext = self.prices[self.t]
        tvl = np.zeros(n_proto)
        held = (pool.cash + pool.total_coll) * pool.market_price(ext)
        tvl[lending_rows] = np.bincount(pool.market_protocol, weights=held,
                                        minlength=len(lending_rows))
        amm_price = np.full(n_proto, np.nan)
        depth = np.full(n_proto, np.nan)
        rbase = np.full(n_proto, np.nan)
        rquote = np.full(n_proto, np.nan)
        amm = self.amm
        if len(amm):
            idx = [self.protocol_names.index(n) for n in self.pool_names]
            amm_price[idx] = amm.spot() * price[amm.quote]
            depth[idx] = amm.depth() * amm_price[idx]
            rbase[idx] = amm.reserve_base
            rquote[idx] = amm.reserve_quote
            tvl[idx] = amm.reserve_base * ext[amm.base] + amm.reserve_quote * ext[amm.quote]
        peg = np.full(n_proto, np.nan)
        queue = np.full(n_proto, np.nan)
        st = self.staking
        if len(st):
            idx = [self.protocol_names.index(n) for n in self.staking_names]
            spot = amm.spot()
            market = np.where(self.staking_pool >= 0, spot[self.staking_pool], st.rate)
            peg[idx] = np.divide(market, st.rate, out=np.zeros(len(st)), where=st.rate > 0)
            queue[idx] = st.queue_owed() * ext[st.underlying]
            tvl[idx] = (st.backing + st.retained) * ext[st.underlying]
        self.recorder.record(self.t, {
            "external_price": self.prices[self.t],
            "oracle_price": price,
            "amm_price": amm_price,
            "tvl": tvl,
            "pool_depth": depth,
            "pool_reserve_base": rbase,
            "pool_reserve_quote": rquote,
            "liquidated_value": per_protocol(stats[:, ck.DEBT_REPAID_VALUE]),
            "seized_collateral_value": per_protocol(stats[:, ck.COLLATERAL_SEIZED_VALUE]),
            "liquidation_count": per_protocol(stats[:, ck.N_LIQUIDATIONS]),
            "bad_debt": per_protocol(stats[:, ck.BAD_DEBT_VALUE]),
            "insolvent_debt": per_protocol(insolvent[:, 0]),
            "liquidatable_count": per_protocol(insolvent[:, 1]),
            "liquidator_profit": per_protocol(stats[:, ck.LIQUIDATOR_PROFIT]),
            "utilisation": per_market(pool.utilisation()),
            "borrow_rate": per_market(pool.borrow_rate()),
            "total_collateral": per_market(coll),
            "total_debt": per_market(debt),
            "available_liquidity": per_market(pool.cash),
            "deficit": per_market(pool.deficit),
            "backing_ratio": per_market(pool.backing_ratio()),
            "peg": peg,
            "redemption_queue": queue,
            "exploit_loss": self.exploited,
            "gas_multiplier": self.gas_multiplier,
            "cascade_rounds": float(np.count_nonzero(rounds)),  # rounds that liquidated
            "round_liquidations": rounds,
            "net_worth": self.net_worth(coll, debt),
            "trade_volume": np.array([self.volume[k] for k in AGENT_KINDS]),
        })
