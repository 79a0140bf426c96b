"""What a model holds and records: token totals, net worth, the per-step record.

A mixin of ``StressModel``; the recorded variables are catalogued in ``sim.results``.
"""

from __future__ import annotations

import numpy as np

from sim.engine import cascade as ck
from sim.engine import cdp as cdp_kernel
from sim.engine import perps as perps_kernel
from sim.model import exposure, systemic
from sim.model.kinds import AGENT_KINDS
from sim.model.pnl import COMPONENTS

# Greenwood-Landier-Thesmar's standard stress: every asset falls 1%.
FIRE_SALE_SHOCK = -0.01


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
        for owners in self.vault_owners:
            total += owners.held(self.cdps, m)
        total += self.keepers.balance.sum(axis=0)
        for holders in self.holders:
            total += holders.held(m)
        for traders in self.perp_traders:
            total[traders.settlement] += traders.wallet.sum()
        perps = self.perps
        total += (np.bincount(perps.settlement_asset, weights=perps.settlement_held(),
                              minlength=m) + perps.hedge_held(self.amm.quote))
        total += (np.bincount(self.psm_gem, weights=self.psm.reserve, minlength=m)
                  + np.bincount(self.psm_stable, weights=self.psm.surplus, minlength=m))
        total += self.options.held(m)
        for desk in (self.delta_hedgers, self.vol_arbitrageurs):
            if desk is not None:
                total += desk.balance.sum(axis=0)
        for traders in self.option_traders:
            total[traders.settlement] += traders.wallet.sum()
        return total + self.staking.held() + self.cdps.held() + self._algo_held()

    def _algo_held(self) -> np.ndarray:
        """Spread fees the algorithmic stablecoins minted to their reward pools, per asset."""
        m = len(self.assets)
        return (np.bincount(self.algo_stable, weights=self.algo.reward_stable, minlength=m)
                + np.bincount(self.algo_sister, weights=self.algo.reward_sister, minlength=m))

    def net_issued(self) -> np.ndarray:
        """Tokens created minus destroyed per asset since the start, by every issuer.

        Staked tokens minted minus burnt, staking rewards minus losses, CDP stablecoins
        minted minus burnt (vaults and PSMs), algorithmic stablecoins and sisters minted minus
        burnt, and backing an attacker took (destroyed for the protocol, created in the
        attacker's hands).
        """
        m = len(self.assets)
        stable0, sister0 = self.algo_start_supply
        algo = (np.bincount(self.algo_stable, weights=self.algo.stable_supply - stable0,
                            minlength=m)
                + np.bincount(self.algo_sister, weights=self.algo.sister_supply - sister0,
                              minlength=m))
        psm = np.bincount(self.psm_stable, weights=self.psm.dai_minted - self.psm.dai_burnt,
                          minlength=m)
        return (self.staking.minted() + self.staking.net_created() + self.cdps.minted()
                + algo + psm + self.created)

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
        c = self.cdps
        for owners in self.vault_owners:
            rows = owners.rows
            asset = c.ilk_asset[c.vaults.ilk[rows]]
            stable = c.stable_asset[c.ilk_protocol[c.vaults.ilk[rows]]]
            out[6] += ((c.vaults.ink[rows] + c.vaults.gem[rows] + owners.wallet) @ ext[asset]
                       - c.debt_of(rows) @ ext[stable])
        out[7] = self.keepers.balance.sum(0) @ ext
        for holders in self.holders:
            out[8] += holders.held(len(self.assets)) @ ext
        for traders in self.perp_traders:
            equity = self.perps.equity(ext, traders.rows)
            out[9] += (traders.wallet.sum() + equity.sum()) * ext[traders.settlement]
        if self.option_traders:
            b = self.options.book
            value = self.options.greeks(ext, self.t * self.dt_hours)[0] * b.size + b.collateral
            for traders in self.option_traders:
                out[10] += (traders.wallet.sum() + value[traders.rows].sum()) * ext[
                    traders.settlement]
        for k, desk in ((11, self.delta_hedgers), (12, self.vol_arbitrageurs)):
            if desk is not None:
                out[k] = (desk.balance.sum(0) @ ext
                          + desk.perp_equity(self.perps, ext).sum() * ext[desk.cash])
        va = self.vol_arbitrageurs
        if va is not None:
            b = self.options.book
            rows = va.book_rows(self.options)
            value = self.options.greeks(ext, self.t * self.dt_hours, rows)[0] * b.size[rows]
            out[12] += (value.sum() + b.collateral[rows].sum()) * ext[va.cash]
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
        va = self.vol_arbitrageurs
        pool = self.lending
        price = self.oracles.price
        coll, debt, insolvent = pool.totals(price)
        if len(self.accounts):
            coll_a, debt_a, insolvent_a = self.accounts.totals(price)
            coll, debt, insolvent = coll + coll_a, debt + debt_a, insolvent + insolvent_a
        n_proto = len(self.protocol_names)
        lending_rows = [self.protocol_names.index(n) for n in self.lending_names]
        cdp_rows = [self.protocol_names.index(n) for n in self.cdp_names]

        def per_protocol(values: np.ndarray) -> np.ndarray:
            out = np.zeros(n_proto)
            out[lending_rows] = values
            return out

        def per_market(values: np.ndarray, cdp: np.ndarray | None = None) -> np.ndarray:
            out = np.full((n_proto, len(self.assets)), np.nan)
            out[lending_rows] = np.where(pool.listed, values, np.nan).reshape(
                len(lending_rows), len(self.assets))
            if cdp is not None:
                out[cdp_rows] = cdp
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
        lp_pnl = np.full(n_proto, np.nan)
        pulled = np.full(n_proto, np.nan)
        mm = self.market_makers
        if mm is not None:  # the pool's makers together: summed P&L over summed deposit value
            k = self.protocol_names.index(self.pool_names[mm.pool])
            lp_pnl[k] = mm.pnl(amm, ext).sum() / (mm.deposit.sum(0) @ ext)
            pulled[k] = mm.liquidity_pulled(amm, ext)
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
        for p, name in enumerate(self.cdp_names):
            if self.cdp_stable_pool[p] >= 0:
                peg[self.protocol_names.index(name)] = ext[self.cdps.stable_asset[p]]
        for p, name in enumerate(self.psm_names):
            tvl[self.protocol_names.index(name)] += self.psm.reserve[p] * ext[self.psm_gem[p]]
        backing = np.full(n_proto, np.nan)
        if len(self.algo):
            idx = [self.protocol_names.index(n) for n in self.algo_names]
            peg[idx] = ext[self.algo_stable]  # the stable's par is 1 numeraire
            backing[idx] = self.algo.implied_backing(ext[self.algo_sister])
        clearing = systemic.clearing(self)
        kinds = len(AGENT_KINDS)
        delta = exposure.delta(self, coll, debt)
        gamma, vega = exposure.gamma(self), exposure.vega(self)
        glt = systemic.fire_sale(self, np.full(len(self.assets), FIRE_SALE_SHOCK))
        systemicness = np.zeros(n_proto)
        for label, value in zip(glt["population"], glt["systemicness"], strict=True):
            if value == value:  # NaN: a population with no equity left
                systemicness[self.protocol_names.index(label.split(":")[0])] += value
        cdp = self._cdp_record(ext)
        tvl += cdp["tvl"]
        perp = self._perp_record(ext)
        tvl += perp["tvl"]
        o = self.options
        if len(o):
            idx = [self.protocol_names.index(n) for n in self.option_names]
            tvl[idx] += o.held_by_protocol() * ext[o.settlement_asset]
        self.recorder.record(self.t, {
            "external_price": self.prices[self.t],
            "oracle_price": price,
            "amm_price": amm_price,
            "tvl": tvl,
            "pool_depth": depth,
            "pool_reserve_base": rbase,
            "pool_reserve_quote": rquote,
            "pool_quote_share": rquote / (rbase + rquote),
            "lp_pnl": lp_pnl,
            "liquidity_pulled": pulled,
            "liquidated_value": (per_protocol(stats[:, ck.DEBT_REPAID_VALUE]) + cdp["repaid"]
                                 + perp["notional"]),
            "seized_collateral_value": (per_protocol(stats[:, ck.COLLATERAL_SEIZED_VALUE])
                                        + cdp["sold"]),
            "liquidation_count": (per_protocol(stats[:, ck.N_LIQUIDATIONS]) + cdp["started"]
                                  + perp["count"]),
            "bad_debt": (per_protocol(stats[:, ck.BAD_DEBT_VALUE]) + cdp["bad_debt"]
                         + perp["bad_debt"]),
            "insurance_fund": perp["insurance_fund"],
            "adl_value": perp["adl"],
            "open_interest": perp["open_interest"],
            "funding_rate": perp["funding_rate"],
            "insolvent_debt": per_protocol(insolvent[:, 0]) + cdp["insolvent"],
            "liquidatable_count": per_protocol(insolvent[:, 1]) + cdp["unsafe"],
            "auction_recovery": cdp["recovery"],
            "zero_bid_loss": cdp["zero_bid"],
            "liquidator_profit": per_protocol(stats[:, ck.LIQUIDATOR_PROFIT]),
            "utilisation": per_market(pool.utilisation()),
            "borrow_rate": per_market(pool.borrow_rate()),
            "total_collateral": per_market(coll, cdp["collateral"]),
            "total_debt": per_market(debt, cdp["debt"]),
            "available_liquidity": per_market(pool.cash),
            "deficit": per_market(pool.deficit),
            "backing_ratio": per_market(pool.backing_ratio()),
            "peg": peg,
            "redemption_queue": queue,
            "implied_backing": backing,
            "supply": self._supply(),
            "exploit_loss": self.exploited,
            "withdrawals": self.withdrawn,
            "clearing_shortfall": clearing["clearing_shortfall"],
            "contagion_shortfall": clearing["contagion_shortfall"],
            "fire_sale_vulnerability": glt["aggregate_vulnerability"],
            "fire_sale_systemicness": systemicness,
            "gas_multiplier": self.gas_multiplier,
            "cascade_rounds": float(np.count_nonzero(rounds)),  # rounds that liquidated
            "liquidation_passes": float(self.liquidation_passes),
            "round_liquidations": rounds,
            "net_worth": self.net_worth(coll, debt),
            "net_delta": delta[:kinds],
            "net_gamma": gamma[:kinds],
            "net_vega": vega[:kinds],
            "protocol_net_delta": delta[kinds:-1],
            "protocol_net_gamma": gamma[kinds:-1],
            "protocol_net_vega": vega[kinds:-1],
            "hedge_sold": self.hedge_sold,
            "vol_arbitrageur_options": (np.zeros(len(self.assets)) if va is None
                                        else va.traded),
            "vol_arbitrageur_hedge_sold": self.vol_arb_hedge_sold,
            "hedge_cost": np.array([self.hedge_cost if k == "hedger" else
                                    self.vol_arb_hedge_cost if k == "vol_arbitrageur" else 0.0
                                    for k in AGENT_KINDS]),
            "mm_pnl": (self.mm_pnl.step(self, self.hedge_cost) if self.t > 0
                       else np.zeros(len(COMPONENTS))),
            "atm_vol": np.where(np.isin(np.arange(len(self.assets)), self.option_assets),
                                self.options.surface.atm, np.nan),
            "trade_volume": np.array([self.volume[k] for k in AGENT_KINDS]),
        })

    def _cdp_record(self, ext: np.ndarray) -> dict[str, np.ndarray]:
        """CDP variables of the step, per protocol (zeros or NaN where not a CDP).

        Auction figures are this step's changes of the protocols' cumulative stats: debt
        covered is the stable raised, bad debt the debt left in ``sin`` by auctions whose
        lot ran out; ``auction_recovery`` is stable raised per collateral value sold.
        """
        c = self.cdps
        n_proto = len(self.protocol_names)
        out = {key: np.zeros(n_proto) for key in
               ("repaid", "sold", "started", "bad_debt", "insolvent", "unsafe", "tvl",
                "zero_bid")}
        out["recovery"] = np.full(n_proto, np.nan)
        m = len(self.assets)
        out["collateral"] = np.full((len(c.names), m), np.nan)
        out["debt"] = np.full((len(c.names), m), np.nan)
        if not len(c.names):
            return out
        rows = [self.protocol_names.index(n) for n in self.cdp_names]
        delta = c.stats - self.cdp_stats_recorded
        self.cdp_stats_recorded = c.stats.copy()
        p_stable = ext[c.stable_asset]
        raised = delta[:, cdp_kernel.STABLE_RAISED] * p_stable
        sold = delta[:, cdp_kernel.COLLATERAL_SOLD_VALUE]
        out["repaid"][rows] = raised
        out["sold"][rows] = sold
        out["started"][rows] = delta[:, cdp_kernel.AUCTIONS_STARTED]
        out["bad_debt"][rows] = delta[:, cdp_kernel.BAD_DEBT] * p_stable
        out["zero_bid"][rows] = delta[:, cdp_kernel.ZERO_BID_LOSS]
        out["recovery"][rows] = np.divide(raised, sold, out=np.full(len(rows), np.nan),
                                          where=sold > 0)
        v = c.vaults
        protocol = c.ilk_protocol[v.ilk]
        asset = c.ilk_asset[v.ilk]
        coll = v.ink * ext[asset]
        debt_tokens = c.debt_of(slice(None))
        debt = debt_tokens * p_stable[protocol]
        n_cdp = len(c.names)
        for p in range(n_cdp):
            mine = protocol == p
            out["collateral"][p] = np.where(
                np.isin(np.arange(m), c.ilk_asset[c.ilk_protocol == p]),
                np.bincount(asset[mine], weights=v.ink[mine], minlength=m), np.nan)
            out["debt"][p, c.stable_asset[p]] = debt_tokens[mine].sum()
        out["insolvent"][rows] = np.bincount(protocol, weights=np.maximum(debt - coll, 0.0),
                                             minlength=n_cdp)
        price = self.oracles.price
        unsafe = c.collateralisation(slice(None), price) < c.liquidation_ratio[v.ilk]
        out["unsafe"][rows] = np.bincount(protocol[unsafe], minlength=n_cdp)
        a = c.auctions
        lots = np.bincount(c.ilk_protocol[a.ilk[a.active]], weights=(
            a.lot[a.active] * ext[c.ilk_asset[a.ilk[a.active]]]), minlength=n_cdp)
        gem = np.bincount(protocol, weights=v.gem * ext[asset], minlength=n_cdp)
        out["tvl"][rows] = np.bincount(protocol, weights=coll, minlength=n_cdp) + lots + gem
        return out

    def _supply(self) -> np.ndarray:
        """Tokens each issuer has outstanding, per (protocol, asset); NaN for other pairs.

        Option tokens: the series' supply, written by the options protocol's vault.
        """
        out = np.full((len(self.protocol_names), len(self.assets)), np.nan)
        rows = {n: k for k, n in enumerate(self.protocol_names)}
        st = self.staking
        for p, name in enumerate(self.staking_names):
            out[rows[name], st.token[p]] = st.supply[p]
        psm = np.bincount(self.psm_cdp, weights=self.psm.reserve, minlength=len(self.cdp_names))
        for p, name in enumerate(self.cdp_names):
            out[rows[name], self.cdps.stable_asset[p]] = self.cdps.outstanding()[p] + psm[p]
        for p, name in enumerate(self.algo_names):
            out[rows[name], self.algo_stable[p]] = self.algo.stable_supply[p]
            out[rows[name], self.algo_sister[p]] = self.algo.sister_supply[p]
        opt = self.options
        for k, token in enumerate(opt.series_token):  # written by the vault before the run
            name = opt.names[opt.book.protocol[opt.series_row[k]]]
            out[rows[name], token] = opt.series_supply[k]
        return out

    def _perp_record(self, ext: np.ndarray) -> dict[str, np.ndarray]:
        """Perp variables of the step, per protocol (and market); NaN where not perps."""
        pm = self.perps
        n_proto, m = len(self.protocol_names), len(self.assets)
        out = {key: np.zeros(n_proto) for key in ("notional", "count", "bad_debt", "tvl")}
        for key in ("insurance_fund", "adl"):
            out[key] = np.full(n_proto, np.nan)
        for key in ("open_interest", "funding_rate"):
            out[key] = np.full((n_proto, m), np.nan)
        if not self.perp_names:
            return out
        rows = [self.protocol_names.index(n) for n in self.perp_names]
        p = ext[pm.settlement_asset]
        st = self.perp_stats
        out["notional"][rows] = st[:, perps_kernel.LIQUIDATED_NOTIONAL] * p
        out["count"][rows] = st[:, perps_kernel.N_LIQUIDATIONS]
        out["bad_debt"][rows] = st[:, perps_kernel.BAD_DEBT] * p
        out["adl"][rows] = st[:, perps_kernel.ADL_AMOUNT] * p
        out["insurance_fund"][rows] = pm.insurance_fund * p
        k = np.flatnonzero(pm.hedge_pool >= 0)
        per_market = (pm.hedge[k] * ext[pm.market_asset[k]]
                      + pm.hedge_cash[k] * ext[self.amm.quote[pm.hedge_pool[k]]])
        hedges = np.bincount(pm.market_protocol[k], weights=per_market,
                             minlength=len(self.perp_names))
        out["tvl"][rows] = pm.settlement_held() * p + hedges
        listed = pm.listed.reshape(len(self.perp_names), m)
        oi = (pm.long_oi + pm.short_oi).reshape(len(self.perp_names), m)
        rate = pm.funding_rate.reshape(len(self.perp_names), m) * 24.0 / self.dt_hours
        out["open_interest"][rows] = np.where(listed, oi, np.nan)
        out["funding_rate"][rows] = np.where(listed, rate, np.nan)
        return out
