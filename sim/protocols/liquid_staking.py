"""Liquid staking and wrapped tokens: a share token backed by an underlying, redeemed by a queue.

Each protocol ``p`` issues one token (asset ``token[p]``, e.g. wstETH) backed by underlying
(asset ``underlying[p]``, e.g. ETH) that it holds (staked). The token is a non-rebasing share
like wstETH: ``rate[p]`` is underlying per token and grows with staking rewards; a slashing or
a hack lowers it. A bridge-wrapped token (e.g. WBTC) is the same kind with ``staking_apr`` 0
and a redemption delay; a bridge failure is a loss of (almost) all of its backing.

Minting is instant at the current rate (and can be paused per protocol: ``mint_enabled``).
Redemption goes through a FIFO queue, as Lido's WithdrawalQueue (docs.lido.fi,
"WithdrawalQueueERC721" and "Accounting oracle"):

- A request burns the tokens from circulation and opens a ticket. The underlying it can
  receive is capped at its value at request time (``owed = tokens * rate``): it earns no
  rewards while queued. Lido keeps the locked shares until finalisation and burns the excess
  then, "effectively distributing them among the other token holders"; here the queued tokens
  keep sharing the backing (``queued_tokens``) and the surplus goes to the remaining shares
  when the ticket is paid.
- Losses while queued are borne pro rata: a ticket is paid ``min(owed, tokens * rate)`` with
  the rate at payment (Lido: "the redemption rate at the finalization step may be lower than
  the rate at the time of the withdrawal request due to slashing or penalties"). Rewards
  accrued since the request cushion a loss first, as in Lido.
- Exits are rate-limited: the underlying of each ticket leaves staking at most at
  ``exit_capacity_per_day`` (underlying units), FIFO from the request, and is paid
  ``delay_hours`` after its exit completes. ``exit_clear_hours`` is the time the exit pipeline
  clears, the continuous-time twin of Electra's ``earliest_exit_epoch`` bookkeeping in
  ``compute_exit_epoch_and_update_churn`` (ethereum/consensus-specs). A ticket's payment time
  is fixed at request: ``max(now, exit_clear) + cumulative owed / capacity + delay``, so a
  later change of capacity affects later requests only.

The capacity stands in for Ethereum's validator exit churn (``churn_limit_per_day``): phase 0
``max(MIN_PER_EPOCH_CHURN_LIMIT = 4, active validators // CHURN_LIMIT_QUOTIENT = 65536)``
validators per epoch at 225 epochs a day; Electra (EIP-7251) meters balance instead,
``min(256 ETH, max(128 ETH, total active balance // 65536))`` per epoch
(``electra_exit_churn_per_day``). The real churn is shared by every staking protocol; here
each protocol has its own. ``delay_hours`` stands for ``MIN_VALIDATOR_WITHDRAWABILITY_DELAY``
(256 epochs, ~27.3 h), the withdrawal sweep and the oracle report (1-5 days in total as
quoted by integrators, unverified), or a bridge's processing time.

Accounting, per protocol, at every step (to rounding):
``backing == rate * (supply + queued_tokens)``; each open ticket claims
``min(owed, tokens * rate) <= tokens * rate``. Underlying enters with deposits and staking
rewards (``rewards``), leaves with payments and losses (``losses``); underlying left over when
no token remains goes to ``retained`` (owned by the protocol). Tokens are minted at deposit and
burnt at request (``minted_total``, ``burnt_total``), so "tokens held by all accounts minus net
minted supply" is constant for the model.
"""

from __future__ import annotations

import math

import numpy as np

from sim.protocols.errors import ProtocolError

HOURS_PER_YEAR = 8760.0
HOURS_PER_DAY = 24.0
EPOCHS_PER_DAY = 225  # 86,400 s / (32 slots * 12 s)
VALIDATOR_BALANCE = 32.0  # ETH per pre-Electra validator (MAX_EFFECTIVE_BALANCE)
DUST = 1e-12  # token shares below this share of all ever minted count as none left


def churn_limit_per_day(active_validators: int) -> float:
    """Phase-0 exit churn in ETH per day (consensus-specs ``get_validator_churn_limit``).

    ``max(4, active_validators // 65536)`` validators of 32 ETH per epoch, 225 epochs a day.
    """
    per_epoch = max(4, active_validators // 65536)
    return per_epoch * VALIDATOR_BALANCE * EPOCHS_PER_DAY


def electra_exit_churn_per_day(total_active_balance: float) -> float:
    """Electra exit churn in ETH per day (``get_activation_exit_churn_limit``, EIP-7251).

    ``min(256, max(128, total_active_balance // 65536))`` ETH per epoch (whole ETH), 225
    epochs a day.
    """
    balance_churn = max(128.0, math.floor(total_active_balance / 65536))
    return min(256.0, balance_churn) * EPOCHS_PER_DAY


class RedemptionTickets:
    """Redemption requests as a structure of arrays; a ticket id is its row."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int64)
        self.protocol = np.zeros(0, dtype=np.int64)
        self.tokens = np.zeros(0, dtype=np.float64)  # burnt at request
        self.owed = np.zeros(0, dtype=np.float64)  # underlying at the request rate: the cap
        self.request_hours = np.zeros(0, dtype=np.float64)
        self.payable_hours = np.zeros(0, dtype=np.float64)
        self.paid = np.zeros(0, dtype=bool)
        self.amount_paid = np.zeros(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.tokens)

    def append(self, *, owner, protocol, tokens, owed, request_hours, payable_hours
               ) -> np.ndarray:
        """Add open tickets; return their ids."""
        start = len(self)
        n = len(tokens)
        self.owner = np.concatenate([self.owner, np.broadcast_to(owner, n).astype(np.int64)])
        self.protocol = np.concatenate([self.protocol, np.full(n, protocol, dtype=np.int64)])
        self.tokens = np.concatenate([self.tokens, tokens])
        self.owed = np.concatenate([self.owed, owed])
        self.request_hours = np.concatenate([self.request_hours, np.full(n, request_hours)])
        self.payable_hours = np.concatenate([self.payable_hours, payable_hours])
        self.paid = np.concatenate([self.paid, np.zeros(n, dtype=bool)])
        self.amount_paid = np.concatenate([self.amount_paid, np.zeros(n)])
        return np.arange(start, len(self), dtype=np.int64)


class LiquidStaking:
    """Every liquid-staking / wrapped-token protocol of the model, as arrays per protocol.

    Args:
        names: protocol names.
        token: asset index of each protocol's token.
        underlying: asset index of each protocol's backing asset.
        n_assets: number of assets of the model (for per-asset totals).
        staking_apr: annual staking reward rate per protocol (0 for a bridge).
        delay_hours: hours from a ticket's exit to its payment.
        exit_capacity_per_day: underlying that can leave staking per day (``inf``: no limit).
        rate: initial underlying per token (default 1).
        mint_enabled: whether deposits are open (default all).
    """

    def __init__(self, names: list[str], *, token, underlying, n_assets: int, staking_apr,
                 delay_hours, exit_capacity_per_day, rate=None, mint_enabled=None):
        self.names = list(names)
        n = len(self.names)
        self.n_assets = int(n_assets)

        def col(values, dtype=np.float64, default=None) -> np.ndarray:
            if values is None:
                values = default
            return np.array(np.broadcast_to(np.asarray(values, dtype=dtype), n))

        self.token = col(token, np.int64)
        self.underlying = col(underlying, np.int64)
        self.staking_apr = col(staking_apr)
        self.delay_hours = col(delay_hours)
        self.exit_capacity_per_day = col(exit_capacity_per_day)
        self.rate = col(rate, default=1.0)
        self.mint_enabled = col(mint_enabled, bool, default=True)
        for name, values, ok in [
            ("token", self.token, (self.token >= 0) & (self.token < self.n_assets)),
            ("underlying", self.underlying,
             (self.underlying >= 0) & (self.underlying < self.n_assets)),
            ("staking_apr", self.staking_apr, self.staking_apr >= 0),
            ("delay_hours", self.delay_hours, self.delay_hours >= 0),
            ("exit_capacity_per_day", self.exit_capacity_per_day,
             self.exit_capacity_per_day > 0),
            ("rate", self.rate, (self.rate > 0) & np.isfinite(self.rate)),
        ]:
            if not ok.all():
                raise ValueError(f"liquid staking {name}: invalid value(s) {values[~ok]}")

        self.supply = np.zeros(n)  # tokens in circulation
        self.queued_tokens = np.zeros(n)  # burnt by open tickets, still sharing the backing
        self.backing = np.zeros(n)  # underlying held for holders and the queue
        self.retained = np.zeros(n)  # underlying left when no token remains
        self.exit_clear_hours = np.zeros(n)
        self.minted_total = np.zeros(n)
        self.burnt_total = np.zeros(n)
        self.deposited = np.zeros(n)
        self.paid_total = np.zeros(n)
        self.paid_step = np.zeros(n)
        self.rewards = np.zeros(n)  # underlying created by staking
        self.losses = np.zeros(n)  # underlying destroyed (slashing, hacks, bridge failure)
        self.tickets = RedemptionTickets()

    def __len__(self) -> int:
        return len(self.names)

    def index(self, protocol: str | int) -> int:
        """Protocol index of ``protocol`` (a name or an index)."""
        return self.names.index(protocol) if isinstance(protocol, str) else int(protocol)

    # --- minting and staking ----------------------------------------------------------------

    def deposit(self, protocol: str | int, amount):
        """Deposit underlying and mint tokens at the current rate: ``tokens = amount / rate``.

        Args:
            protocol: name or index.
            amount: underlying per depositor (a scalar or an array).

        Returns:
            Tokens minted, in the shape of ``amount``.
        """
        p = self.index(protocol)
        amounts = _checked(amount, "deposit amount")
        if not self.mint_enabled[p]:
            raise ProtocolError(f"{self.names[p]}: minting is paused")
        if self.rate[p] <= 0:
            raise ProtocolError(f"{self.names[p]}: backing lost, the rate is zero")
        minted = amounts / self.rate[p]
        self.backing[p] += amounts.sum()
        self.deposited[p] += amounts.sum()
        self.supply[p] += minted.sum()
        self.minted_total[p] += minted.sum()
        return minted if minted.ndim else float(minted)

    def accrue(self, dt_hours: float) -> None:
        """Add one step of staking rewards: ``rate *= 1 + staking_apr * dt / 8760``.

        Rewards accrue on the whole backing, the queue's share included; the queue's part
        returns to the holders when its tickets are paid at their capped amount (Lido).
        """
        growth = self.staking_apr * dt_hours / HOURS_PER_YEAR
        reward = self.backing * growth
        self.backing += reward
        self.rewards += reward
        self.rate *= 1.0 + growth

    def apply_loss(self, protocol: str | int, share: float) -> float:
        """Destroy ``share`` of the backing (slashing, hack, bridge failure); return the loss.

        Holders and open tickets share it pro rata through the rate: ``rate *= 1 - share``.
        """
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"loss share must be in [0, 1], got {share}")
        p = self.index(protocol)
        lost = self.backing[p] * share
        self.backing[p] -= lost
        self.losses[p] += lost
        self.rate[p] *= 1.0 - share
        return float(lost)

    def set_mint_enabled(self, protocol: str | int, enabled: bool) -> None:
        """Open or pause the instant mint path (a paused bridge, a crisis)."""
        self.mint_enabled[self.index(protocol)] = bool(enabled)

    # --- redemption -------------------------------------------------------------------------

    def request_redemption(self, protocol: str | int, tokens, now_hours: float, *,
                           owner) -> np.ndarray:
        """Burn tokens and queue their underlying at the current rate, FIFO behind the queue.

        Args:
            protocol: name or index.
            tokens: tokens per request (a scalar or an array), in queue order.
            now_hours: time of the request.
            owner: owner id per request (or one for all).

        Returns:
            The new ticket ids.
        """
        p = self.index(protocol)
        tokens = np.atleast_1d(_checked(tokens, "redeemed tokens"))
        total = tokens.sum()
        if total > self.supply[p] * (1 + 1e-12):
            raise ProtocolError(f"{self.names[p]}: redeeming {total} of {self.supply[p]} tokens")
        owed = tokens * self.rate[p]
        hours_per_unit = HOURS_PER_DAY / self.exit_capacity_per_day[p]  # 0 without a limit
        start = max(self.exit_clear_hours[p], now_hours)
        exit_done = start + np.cumsum(owed) * hours_per_unit
        if len(exit_done):
            self.exit_clear_hours[p] = exit_done[-1]
        self.supply[p] = max(self.supply[p] - total, 0.0)
        self.queued_tokens[p] += total
        self.burnt_total[p] += total
        return self.tickets.append(owner=owner, protocol=p, tokens=tokens, owed=owed,
                                   request_hours=now_hours,
                                   payable_hours=exit_done + self.delay_hours[p])

    def process(self, now_hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Pay every open ticket whose exit and delay have passed, FIFO per protocol.

        A batch is paid at the rate before it (Lido finalises a batch at one share rate):
        ``min(owed, tokens * rate)``; the rest of the tickets' share of the backing goes to
        the remaining shares (or to ``retained`` when none remain).

        Returns:
            (ticket ids paid, underlying paid per ticket).
        """
        t = self.tickets
        self.paid_step[:] = 0.0
        due = np.flatnonzero(~t.paid & (t.payable_hours <= now_hours))
        if len(due) == 0:
            return due, np.zeros(0)
        p = t.protocol[due]
        share_value = t.tokens[due] * self.rate[p]
        amounts = np.minimum(t.owed[due], share_value)
        t.paid[due] = True
        t.amount_paid[due] = amounts
        n = len(self)
        paid = np.bincount(p, weights=amounts, minlength=n)
        redeemed = np.bincount(p, weights=t.tokens[due], minlength=n)
        surplus = np.bincount(p, weights=share_value - amounts, minlength=n)
        still_open = np.bincount(t.protocol[~t.paid], minlength=n) > 0
        self.queued_tokens = np.where(still_open, np.maximum(self.queued_tokens - redeemed, 0.0),
                                      0.0)
        self.backing = np.maximum(self.backing - paid, 0.0)
        self.paid_step[:] = paid
        self.paid_total += paid
        shares = self.supply + self.queued_tokens
        left = shares > DUST * self.minted_total
        # Surplus raises the rate of the shares left; with none left it is the protocol's.
        self.rate += np.divide(surplus, shares, out=np.zeros(n), where=left)
        orphan = np.where(left, 0.0, self.backing)
        self.retained += orphan
        self.backing -= orphan
        return due, amounts

    # --- quotes for agents ------------------------------------------------------------------

    def redemption_value(self, protocol: str | int, tokens) -> float | np.ndarray:
        """Underlying that ``tokens`` redeem for at the current rate (before any queue loss)."""
        value = np.asarray(tokens, dtype=np.float64) * self.rate[self.index(protocol)]
        return value if value.ndim else float(value)

    def expected_wait_hours(self, protocol: str | int, amount: float, now_hours: float) -> float:
        """Hours until a request of ``amount`` underlying made now would be paid.

        ``max(exit_clear - now, 0) + amount / capacity_per_hour + delay_hours``: the queue
        ahead, then this request's own exit, then the delay. Exact if nothing changes.
        """
        p = self.index(protocol)
        queue_ahead = max(self.exit_clear_hours[p] - now_hours, 0.0)
        own_exit = amount * HOURS_PER_DAY / self.exit_capacity_per_day[p]
        return float(queue_ahead + own_exit + self.delay_hours[p])

    # --- records and conservation -----------------------------------------------------------

    def open_claims(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids of the open tickets, underlying each claims now: ``min(owed, tokens * rate)``)."""
        t = self.tickets
        ids = np.flatnonzero(~t.paid)
        return ids, np.minimum(t.owed[ids], t.tokens[ids] * self.rate[t.protocol[ids]])

    def queue_owed(self) -> np.ndarray:
        """Underlying claimed by open tickets per protocol: ``sum min(owed, tokens * rate)``."""
        ids, claim = self.open_claims()
        return np.bincount(self.tickets.protocol[ids], weights=claim, minlength=len(self))

    def record(self) -> dict[str, np.ndarray]:
        """Per-protocol state for the recorder (copies)."""
        return {
            "supply": self.supply.copy(),
            "backing": self.backing.copy(),
            "rate": self.rate.copy(),
            "queue_owed": self.queue_owed(),
            "paid_step": self.paid_step.copy(),
        }

    def minted(self) -> np.ndarray:
        """Net tokens minted (minted minus burnt) per asset."""
        return np.bincount(self.token, weights=self.minted_total - self.burnt_total,
                           minlength=self.n_assets)

    def held(self) -> np.ndarray:
        """Underlying held by the protocols (backing and retained) per asset."""
        return np.bincount(self.underlying, weights=self.backing + self.retained,
                           minlength=self.n_assets)

    def net_created(self) -> np.ndarray:
        """Underlying created by staking rewards minus underlying lost, per asset."""
        return np.bincount(self.underlying, weights=self.rewards - self.losses,
                           minlength=self.n_assets)


def _checked(values, what: str) -> np.ndarray:
    """Values as float64, refusing negative or non-finite amounts."""
    out = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(out) & (out >= 0)):
        raise ProtocolError(f"{what} must be finite and >= 0, got {values}")
    return out
