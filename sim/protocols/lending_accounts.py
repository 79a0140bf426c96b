"""Multi-collateral lending accounts (Aave v3 style) on the reserves of ``LendingPools``.

The single-pair book of ``sim.protocols.lending`` holds positions with one collateral market
and one debt market. An ``AccountBook`` holds accounts with several *legs* in one lending
protocol, as an Aave v3 user does: collateral legs (tokens) and debt legs (scaled debt, Aave's
``scaledBalanceOf``), in CSR form (``leg_start[a]`` .. ``leg_start[a + 1]`` index the leg
arrays). It reads and moves the same per-market reserves (``cash``, ``total_coll``,
``total_scaled_debt``, ``deficit``, ``treasury``) as the single-pair book, so the reserve ledger
``cash + debt + deficit + exploit_loss == supplied + treasury_claim`` keeps holding with the
accounts' debt legs counted in ``total_scaled_debt``.

Health factor over the account (Aave v3 ``GenericLogic.calculateUserAccountData``):
``HF = sum coll_i P_i LT_i / sum debt_j P_j``; borrowing is limited by
``sum debt_j P_j <= sum coll_i P_i LTV_i``. Liquidation follows aave-v3-origin v3.3
(``sim.engine.accounts``), one pass per call.

At most one collateral leg and one debt leg per market and account (Aave keeps one balance
per reserve and user); a market may be both collateral and debt of one account.
"""

from __future__ import annotations

import numpy as np

from sim.engine import accounts as accounts_kernel
from sim.engine import cascade as cascade_kernel
from sim.engine.tables import LegTable
from sim.protocols.errors import ProtocolError
from sim.protocols.lending import LendingPools, liquidator_table, pool_table

_TOL = 1e-12  # relative slack of the LTV and liquidity checks, as ``LendingPools``


class AccountBook:
    """Accounts with several collateral and debt legs, on the markets of ``pools``.

    Args:
        pools: the lending protocols whose reserves the accounts use (updated in place).
    """

    def __init__(self, pools: LendingPools) -> None:
        self.pools = pools
        self.owner = np.zeros(0, dtype=np.int32)
        self.protocol = np.zeros(0, dtype=np.int64)  # lending protocol of each account
        self.leg_start = np.zeros(1, dtype=np.int64)
        self.leg_market = np.zeros(0, dtype=np.int32)
        self.leg_amount = np.zeros(0, dtype=np.float64)
        self.leg_is_debt = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return len(self.owner)

    def legs_of(self, account: int) -> slice:
        """The legs of one account, as a slice of the leg arrays."""
        return slice(int(self.leg_start[account]), int(self.leg_start[account + 1]))

    def leg_account(self) -> np.ndarray:
        """The account of every leg (int64)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.leg_start))

    def leg_debt(self) -> np.ndarray:
        """Debt tokens of every leg (0 for collateral legs)."""
        index = self.pools.borrow_index[self.leg_market]
        return np.where(self.leg_is_debt, self.leg_amount * index, 0.0)

    # --- opening and changing accounts ------------------------------------------------------

    def open_accounts(self, owner, leg_count, *, leg_market, leg_amount, leg_is_debt,
                      asset_price) -> slice:
        """Deposit collateral legs and borrow debt legs of new accounts (Aave supply + borrow).

        Args:
            owner: int[n], owner of each new account.
            leg_count: int[n], number of legs of each new account.
            leg_market: int[sum(leg_count)], market of each leg, accounts one after another.
            leg_amount: float[sum(leg_count)], collateral tokens or debt tokens borrowed.
            leg_is_debt: bool[sum(leg_count)], whether a leg is borrowed.
            asset_price: float64[m], oracle prices for the LTV check.

        Returns:
            The slice of account indices the new accounts occupy.

        Raises:
            ProtocolError: a leg on an unlisted market, legs of one account in two protocols,
                two legs of one account on the same market and side, a negative amount,
                borrowing above ``sum coll P LTV`` or above the reserves' cash.
        """
        lp = self.pools
        owner = np.asarray(owner, dtype=np.int32)
        leg_count = np.asarray(leg_count, dtype=np.int64)
        market = np.asarray(leg_market, dtype=np.int32)
        amount = np.asarray(leg_amount, dtype=np.float64)
        is_debt = np.asarray(leg_is_debt, dtype=bool)
        n = len(owner)
        if len(leg_count) != n or np.any(leg_count < 0):
            raise ProtocolError("leg_count must give one count >= 0 per owner")
        if not len(market) == len(amount) == len(is_debt) == leg_count.sum():
            raise ProtocolError("leg arrays must hold sum(leg_count) legs")
        if not lp.listed[market].all():
            raise ProtocolError("leg on an unlisted market")
        if not np.all(np.isfinite(amount) & (amount >= 0.0)):
            raise ProtocolError("leg amounts must be finite and >= 0")
        account = np.repeat(np.arange(n, dtype=np.int64), leg_count)
        start = np.concatenate([[0], np.cumsum(leg_count)])
        protocol = lp.market_protocol[market]
        first = np.zeros(n, dtype=np.int64)
        first[leg_count > 0] = protocol[start[:-1][leg_count > 0]]
        if np.any(protocol != first[account]):
            raise ProtocolError("all legs of an account must be in one lending protocol")
        key = (account * len(lp.cash) + market) * 2 + is_debt
        if len(np.unique(key)) != len(key):
            raise ProtocolError("two legs of one account on the same market and side")
        price = lp.market_price(asset_price)
        value = amount * price[market]
        borrowed = np.bincount(account, weights=np.where(is_debt, value, 0.0), minlength=n)
        limit = np.bincount(account, weights=np.where(is_debt, 0.0, value * lp.ltv[market]),
                            minlength=n)
        if np.any(borrowed > limit * (1 + _TOL)):
            raise ProtocolError("borrow above LTV")
        k = len(lp.cash)
        need = np.bincount(market, weights=np.where(is_debt, amount, 0.0), minlength=k)
        if np.any(need > lp.cash * (1 + _TOL)):
            raise ProtocolError("borrow exceeds available liquidity")
        scaled = np.where(is_debt, amount / lp.borrow_index[market], amount)
        lp.cash -= need
        lp.total_scaled_debt += np.bincount(market, weights=np.where(is_debt, scaled, 0.0),
                                            minlength=k)
        lp.total_coll += np.bincount(market, weights=np.where(is_debt, 0.0, amount),
                                     minlength=k)
        first_new = len(self)
        self.owner = np.concatenate([self.owner, owner])
        self.protocol = np.concatenate([self.protocol, first])
        self.leg_start = np.concatenate([self.leg_start, self.leg_start[-1] + start[1:]])
        self.leg_market = np.concatenate([self.leg_market, market])
        self.leg_amount = np.concatenate([self.leg_amount, scaled])
        self.leg_is_debt = np.concatenate([self.leg_is_debt, is_debt])
        return slice(first_new, len(self))

    def find_legs(self, accounts, markets, is_debt: bool) -> np.ndarray:
        """Leg index of each (account, market) on one side, or -1 where there is none."""
        accounts = np.asarray(accounts, dtype=np.int64)
        markets = np.asarray(markets, dtype=np.int64)
        k = len(self.pools.cash)
        leg_key = (self.leg_account() * k + self.leg_market) * 2 + self.leg_is_debt
        order = np.argsort(leg_key, kind="stable")
        wanted = (accounts * k + markets) * 2 + int(is_debt)
        pos = np.searchsorted(leg_key[order], wanted)
        found = pos < len(order)
        found[found] = leg_key[order[pos[found]]] == wanted[found]
        legs = np.full(len(wanted), -1, dtype=np.int64)
        legs[found] = order[pos[found]]
        return legs

    def repay(self, accounts, markets, amounts) -> np.ndarray:
        """Repay debt legs (Aave ``repay``); each amount is capped at that leg's debt.

        Args:
            accounts: int[n], the accounts.
            markets: int[n], the debt market repaid in each.
            amounts: float[n], debt tokens offered.

        Returns:
            float64[n], debt tokens repaid (moved into the reserves' cash).
        """
        legs = self.find_legs(accounts, markets, is_debt=True)
        if np.any(legs < 0):
            raise ProtocolError("repay of a market the account does not borrow")
        amounts = np.asarray(amounts, dtype=np.float64)
        if np.any(amounts < 0.0):
            raise ProtocolError("repay amounts must be >= 0")
        lp = self.pools
        d = self.leg_market[legs]
        index = lp.borrow_index[d]
        scaled = amounts / index
        if len(np.unique(legs)) == len(legs):
            repaid = np.minimum(scaled, self.leg_amount[legs])
            self.leg_amount[legs] -= repaid
        else:
            # Several requests on one leg are capped one after another, in request order.
            repaid = np.zeros(len(legs))
            for i, (leg, want) in enumerate(zip(legs, scaled, strict=True)):
                repaid[i] = min(want, self.leg_amount[leg])
                self.leg_amount[leg] -= repaid[i]
        np.subtract.at(lp.total_scaled_debt, d, repaid)
        tokens = repaid * index
        np.add.at(lp.cash, d, tokens)
        return tokens

    def add_collateral(self, accounts, markets, amounts) -> None:
        """Deposit more collateral (Aave ``supply`` as collateral); adds a leg where needed.

        Args:
            accounts: int[n], the accounts.
            markets: int[n], the collateral market of each deposit (in the account's
                protocol).
            amounts: float[n], tokens deposited (>= 0).
        """
        lp = self.pools
        accounts = np.asarray(accounts, dtype=np.int64)
        markets = np.asarray(markets, dtype=np.int64)
        amounts = np.asarray(amounts, dtype=np.float64)
        if not lp.listed[markets].all():
            raise ProtocolError("collateral on an unlisted market")
        if np.any(lp.market_protocol[markets] != self.protocol[accounts]):
            raise ProtocolError("collateral must be in the account's lending protocol")
        if not np.all(np.isfinite(amounts) & (amounts >= 0.0)):
            raise ProtocolError("collateral amounts must be finite and >= 0")
        legs = self.find_legs(accounts, markets, is_debt=False)
        have = legs >= 0
        np.add.at(self.leg_amount, legs[have], amounts[have])
        np.add.at(lp.total_coll, markets, amounts)
        if have.all():
            return
        # New legs: one per (account, market), appended after the account's other legs.
        k = len(lp.cash)
        key, inverse = np.unique(accounts[~have] * k + markets[~have], return_inverse=True)
        new_amount = np.bincount(inverse, weights=amounts[~have], minlength=len(key))
        leg_account = np.concatenate([self.leg_account(), key // k])
        order = np.argsort(leg_account, kind="stable")
        self.leg_market = np.concatenate([self.leg_market, (key % k).astype(np.int32)])[order]
        self.leg_amount = np.concatenate([self.leg_amount, new_amount])[order]
        self.leg_is_debt = np.concatenate([self.leg_is_debt, np.zeros(len(key), bool)])[order]
        counts = np.bincount(leg_account, minlength=len(self))
        self.leg_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # --- health and totals ------------------------------------------------------------------

    def health_of(self, accounts, asset_price: np.ndarray) -> np.ndarray:
        """Aave health factors ``sum coll P LT / sum debt P`` of the accounts (inf: no debt)."""
        lp = self.pools
        accounts = np.asarray(accounts, dtype=np.int64)
        out = np.empty(len(accounts))
        accounts_kernel.account_health(self.leg_table(), accounts, lp.market_price(asset_price),
                                       lp.liquidation_threshold, lp.borrow_index, out)
        return out

    def totals(self, asset_price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The accounts' contribution to the lending totals (``LendingPools.totals``).

        Returns:
            (collateral tokens per market, debt tokens per market, per protocol: net
            insolvent debt in numeraire and the number of accounts with HF < 1).
        """
        lp = self.pools
        k = len(lp.cash)
        coll, debt = np.zeros(k), np.zeros(k)
        insolvent = np.zeros((len(lp.names), 2))
        accounts_kernel.account_totals(self.leg_table(), lp.market_price(asset_price),
                                       lp.liquidation_threshold, lp.borrow_index,
                                       lp.market_protocol, coll, debt, insolvent)
        return coll, debt, insolvent

    # --- liquidations -----------------------------------------------------------------------

    def liquidate(self, *, oracle_price, external_price, venue_pool, pools, liquidators,
                  gas_sink) -> tuple[np.ndarray, int]:
        """One liquidation pass over the accounts (one block at fixed oracle prices).

        Arguments as ``LendingPools.liquidate``: ``venue_pool`` per market, ``pools`` the AMM
        pool table, ``liquidators`` with ``balance`` (l x assets), ``gas_cost``,
        ``min_profit``, ``atomic`` and ``order``. Everything is updated in place; the caller
        loops passes (with the single-pair cascade and oracle updates) to a fixed point.

        Returns:
            (stats per protocol, slots of ``sim.engine.cascade``; number of liquidations).
        """
        lp = self.pools
        stats = np.zeros((len(lp.names), cascade_kernel.N_STATS))
        done = accounts_kernel.liquidate_accounts(
            self.leg_table(), lp.market_table(venue_pool), pool_table(pools),
            liquidator_table(liquidators), oracle_price, external_price, gas_sink, stats)
        return stats, int(done)

    def leg_table(self) -> tuple:
        """The legs as the account kernels take them (arrays shared, not copied)."""
        return LegTable.pack(start=self.leg_start, market=self.leg_market,
                             amount=self.leg_amount, is_debt=self.leg_is_debt)
