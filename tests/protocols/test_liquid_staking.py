"""Liquid staking / wrapped tokens: rate, mint, FIFO redemption queue, losses, conservation.

Sources: Lido WithdrawalQueueERC721 and Accounting oracle docs (docs.lido.fi): FIFO queue,
payout capped at the request-time value, lower if losses come before finalisation; Ethereum
consensus-specs churn limits (phase 0 ``get_validator_churn_limit``, Electra
``get_activation_exit_churn_limit``). Expected values are hand calculations in the comments.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.protocols.lending import ProtocolError
from sim.protocols.liquid_staking import (
    LiquidStaking,
    churn_limit_per_day,
    electra_exit_churn_per_day,
)

ETH, WSTETH, BTC, WBTC = range(4)


def lst(*, apr=0.0, delay=24.0, capacity=2400.0, rate=1.0) -> LiquidStaking:
    """One ETH liquid-staking protocol (wstETH)."""
    return LiquidStaking(["lido"], token=[WSTETH], underlying=[ETH], n_assets=4,
                         staking_apr=[apr], delay_hours=[delay],
                         exit_capacity_per_day=[capacity], rate=[rate])


def two() -> LiquidStaking:
    """An LST with rewards and a bridge (apr 0, 3-day delay, no exit limit)."""
    return LiquidStaking(["lido", "wbtc"], token=[WSTETH, WBTC], underlying=[ETH, BTC],
                         n_assets=4, staking_apr=[0.04, 0.0], delay_hours=[48.0, 72.0],
                         exit_capacity_per_day=[5000.0, np.inf], rate=[1.15, 1.0])


# --- rate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("dt_hours", "steps", "expected"), [
    # (1 + 0.04 / 8760)^8760: ln = 8760 ln(1 + 4.5662e-6) = 0.04 - 9.13e-8,
    # e^0.04 = 1.0408107742 -> 1.0408107742 (1 - 9.13e-8) = 1.0408106792.
    (1.0, 8760, 1.0408106792),
    # (1 + 0.04 / 365)^365: ln = 0.04 - 365 (0.04 / 365)^2 / 2 = 0.04 - 2.19e-6 -> 1.0408084949
    # (the next term, + 365 x^3 / 3, adds 1.6e-10 before the exponential: 1.0408084931).
    (24.0, 365, 1.0408084931),
])
def test_rate_grows_at_apr_compounded_per_step(dt_hours, steps, expected):
    ls = lst(apr=0.04)
    ls.deposit(0, 1000.0)
    for _ in range(steps):
        ls.accrue(dt_hours)
    assert ls.rate[0] == pytest.approx(expected, rel=1e-9)
    # Below continuous compounding e^0.04 = 1.0408107742, as it must be.
    assert ls.rate[0] < math.exp(0.04)
    # The backing grew by the same factor and the growth is recorded as rewards.
    assert ls.backing[0] == pytest.approx(1000.0 * expected, rel=1e-9)
    assert ls.rewards[0] == pytest.approx(1000.0 * (expected - 1.0), rel=1e-6)


def test_bridge_rate_stays_one_without_rewards():
    ls = two()
    ls.deposit("wbtc", 10.0)
    ls.accrue(8760.0)
    assert ls.rate[1] == 1.0
    assert ls.rewards[1] == 0.0


# --- deposit and redeem ---------------------------------------------------------------------


def test_deposit_redeem_round_trip_at_the_rate():
    ls = lst(rate=1.2, capacity=np.inf, delay=0.0)
    # 12 ETH at 1.2 ETH per wstETH -> 10 wstETH.
    assert ls.deposit(0, 12.0) == pytest.approx(10.0)
    assert ls.minted()[WSTETH] == pytest.approx(10.0)
    ids = ls.request_redemption(0, 10.0, 0.0, owner=7)
    assert ls.minted()[WSTETH] == pytest.approx(0.0)  # burnt at request
    paid_ids, amounts = ls.process(0.0)
    assert list(paid_ids) == list(ids)
    assert amounts == pytest.approx([12.0])
    assert ls.backing[0] == pytest.approx(0.0, abs=1e-12)
    assert ls.supply[0] == 0.0 and ls.queued_tokens[0] == 0.0
    assert ls.tickets.owner[ids[0]] == 7


def test_round_trip_after_a_day_of_rewards():
    ls = lst(apr=0.04, rate=1.2, capacity=np.inf, delay=0.0)
    tokens = ls.deposit(0, 12.0)
    ls.accrue(24.0)
    # Rate 1.2 (1 + 0.04 * 24 / 8760) = 1.2 * 1.000109589 = 1.2001315; 10 tokens -> 12.0013151.
    assert ls.redemption_value(0, tokens) == pytest.approx(12.0013151, rel=1e-8)
    ls.request_redemption(0, tokens, 24.0, owner=0)
    _, amounts = ls.process(24.0)
    assert amounts == pytest.approx([12.0013151], rel=1e-8)


def test_paused_mint_and_bad_amounts_are_refused():
    ls = lst()
    ls.set_mint_enabled("lido", False)
    with pytest.raises(ProtocolError, match="paused"):
        ls.deposit(0, 1.0)
    ls.set_mint_enabled("lido", True)
    ls.deposit(0, 5.0)
    with pytest.raises(ProtocolError, match="redeeming"):
        ls.request_redemption(0, 6.0, 0.0, owner=0)
    with pytest.raises(ProtocolError, match=">= 0"):
        ls.deposit(0, -1.0)
    with pytest.raises(ProtocolError, match=">= 0"):
        ls.deposit(0, float("nan"))
    with pytest.raises(ValueError, match="exit_capacity_per_day"):
        lst(capacity=0.0)


# --- FIFO queue with an exit capacity -------------------------------------------------------


def test_fifo_queue_with_capacity_three_requests_by_hand():
    # Capacity 2,400 ETH/day = 100 ETH/h, delay 24 h, rate 1.
    # A: 300 at t=0: exit 0 -> 3 h, payable 27 h.
    # B: 200 at t=1: queue clears at 3, exit 3 -> 5 h, payable 29 h.
    # C: 100 at t=10: queue already clear, exit 10 -> 11 h, payable 35 h.
    ls = lst(capacity=2400.0, delay=24.0)
    ls.deposit(0, 1000.0)
    a = ls.request_redemption(0, 300.0, 0.0, owner=1)[0]
    b = ls.request_redemption(0, 200.0, 1.0, owner=2)[0]
    c = ls.request_redemption(0, 100.0, 10.0, owner=3)[0]
    assert ls.tickets.payable_hours[[a, b, c]] == pytest.approx([27.0, 29.0, 35.0])
    assert ls.queue_owed()[0] == pytest.approx(600.0)
    assert len(ls.process(26.9)[0]) == 0
    ids, amounts = ls.process(27.0)
    assert list(ids) == [a] and amounts == pytest.approx([300.0])
    assert ls.paid_step[0] == pytest.approx(300.0)
    assert len(ls.process(28.0)[0]) == 0
    assert ls.paid_step[0] == 0.0  # reset every step
    assert list(ls.process(29.0)[0]) == [b]
    assert list(ls.process(35.0)[0]) == [c]
    assert ls.tickets.paid.all()
    assert ls.backing[0] == pytest.approx(400.0)
    assert ls.queue_owed()[0] == 0.0


def test_fifo_order_when_paid_in_one_batch():
    ls = lst(capacity=2400.0, delay=24.0)
    ls.deposit(0, 1000.0)
    ids = ls.request_redemption(0, [300.0, 200.0, 100.0], 0.0, owner=[1, 2, 3])
    # Exits at 3, 5, 6 h -> payable at 27, 29, 30 h.
    assert ls.tickets.payable_hours[ids] == pytest.approx([27.0, 29.0, 30.0])
    paid_ids, amounts = ls.process(100.0)
    assert list(paid_ids) == list(ids)
    assert amounts == pytest.approx([300.0, 200.0, 100.0])


def test_wait_quote_by_hand_matches_the_ticket():
    ls = lst(capacity=2400.0, delay=24.0)
    ls.deposit(0, 1000.0)
    ls.request_redemption(0, 300.0, 0.0, owner=1)  # queue clears at 3 h
    # At t=1, 200 ETH: 2 h of queue ahead + 200 / 100 = 2 h own exit + 24 h delay = 28 h.
    assert ls.expected_wait_hours(0, 200.0, 1.0) == pytest.approx(28.0)
    ticket = ls.request_redemption(0, 200.0, 1.0, owner=2)[0]
    assert ls.tickets.payable_hours[ticket] - 1.0 == pytest.approx(28.0)
    # After the queue clears only the own exit and the delay remain: 50 / 100 + 24 = 24.5 h.
    assert ls.expected_wait_hours(0, 50.0, 40.0) == pytest.approx(24.5)
    # Without an exit limit (a bridge) the wait is the delay.
    assert two().expected_wait_hours("wbtc", 1e6, 0.0) == pytest.approx(72.0)


@pytest.mark.parametrize(("validators", "per_day"), [
    # 1,053,742 // 65,536 = 16 exits per epoch (EIP-7922's example) * 32 ETH * 225 epochs.
    (1_053_742, 16 * 32 * 225),
    (100_000, 4 * 32 * 225),  # 100,000 // 65,536 = 1 < MIN_PER_EPOCH_CHURN_LIMIT = 4
])
def test_phase0_churn_limit(validators, per_day):
    assert churn_limit_per_day(validators) == per_day


@pytest.mark.parametrize(("staked", "per_day"), [
    (34e6, 256 * 225),  # 34e6 / 65,536 = 518.8 ETH, capped at 256 ETH per epoch
    (10e6, 152 * 225),  # 152.59 -> 152 whole ETH per epoch
    (5e6, 128 * 225),  # 76.3 < the 128 ETH floor
])
def test_electra_exit_churn(staked, per_day):
    assert electra_exit_churn_per_day(staked) == per_day


# --- losses ---------------------------------------------------------------------------------


def test_loss_lowers_the_rate_and_is_recorded():
    ls = lst()
    ls.deposit(0, 1000.0)
    assert ls.apply_loss(0, 0.1) == pytest.approx(100.0)
    assert ls.rate[0] == pytest.approx(0.9)
    assert ls.backing[0] == pytest.approx(900.0)
    assert ls.losses[0] == pytest.approx(100.0)
    assert ls.net_created()[ETH] == pytest.approx(-100.0)


def test_bridge_failure_loses_almost_all_backing():
    ls = two()
    ls.deposit("wbtc", 50.0)
    ls.apply_loss("wbtc", 0.99)
    # 50 BTC -> 0.5 BTC; 50 WBTC now redeem for 0.5.
    assert ls.backing[1] == pytest.approx(0.5)
    assert ls.redemption_value("wbtc", 50.0) == pytest.approx(0.5)


def test_queued_ticket_keeps_its_request_value_when_rewards_cover_the_loss():
    # 1,000 tokens at 1.0; 100 requested (owed 100). +1% rewards: rate 1.01, backing 1,010.
    # Loss 0.5%: rate 1.01 * 0.995 = 1.00495 > 1: the ticket gets its capped 100 (Lido: rewards
    # since the request are forfeited, losses come out of them first). Its share was
    # 100 * 1.00495 = 100.495; the 0.495 surplus goes to the 900 tokens left:
    # backing 1,004.95 - 100 = 904.95 = 900 * 1.0055 (1.00495 + 0.495 / 900).
    ls = lst(apr=0.01, capacity=np.inf, delay=0.0)
    ls.deposit(0, 1000.0)
    ls.request_redemption(0, 100.0, 0.0, owner=0)
    ls.accrue(8760.0)
    ls.apply_loss(0, 0.005)
    _, amounts = ls.process(1.0)
    assert amounts == pytest.approx([100.0])
    assert ls.backing[0] == pytest.approx(904.95)
    assert ls.rate[0] == pytest.approx(1.0055)


def test_queued_ticket_shares_a_loss_larger_than_its_rewards():
    # Same, with a 2% loss: rate 1.01 * 0.98 = 0.9898 < 1 -> paid 100 * 0.9898 = 98.98;
    # backing 1,010 * 0.98 - 98.98 = 890.82 = 900 * 0.9898: the 900 holders lose 2% too.
    ls = lst(apr=0.01, capacity=np.inf, delay=0.0)
    ls.deposit(0, 1000.0)
    ls.request_redemption(0, 100.0, 0.0, owner=0)
    ls.accrue(8760.0)
    ls.apply_loss(0, 0.02)
    _, amounts = ls.process(1.0)
    assert amounts == pytest.approx([98.98])
    assert ls.backing[0] == pytest.approx(890.82)
    assert ls.rate[0] == pytest.approx(0.9898)
    assert ls.queue_owed()[0] == 0.0


def test_leftover_of_the_last_ticket_is_retained_by_the_protocol():
    # The only holder redeems; rewards accrue while queued: the ticket is capped at 100 and
    # the 1 ETH of rewards has no holder left, so the protocol retains it.
    ls = lst(apr=0.01, capacity=np.inf, delay=0.0)
    ls.deposit(0, 100.0)
    ls.request_redemption(0, 100.0, 0.0, owner=0)
    ls.accrue(8760.0)
    _, amounts = ls.process(1.0)
    assert amounts == pytest.approx([100.0])
    assert ls.backing[0] == 0.0
    assert ls.retained[0] == pytest.approx(1.0)
    assert ls.held()[ETH] == pytest.approx(1.0)


# --- conservation (random operation sequences) ----------------------------------------------

op = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 1), st.floats(0.0, 0.5)),
    st.tuples(st.just("redeem"), st.integers(0, 1), st.floats(0.0, 1.0)),
    st.tuples(st.just("accrue"), st.integers(0, 1), st.floats(0.0, 720.0)),
    st.tuples(st.just("loss"), st.integers(0, 1), st.floats(0.0, 1.0)),
    st.tuples(st.just("advance"), st.integers(0, 1), st.floats(0.0, 200.0)),
    st.tuples(st.just("pause"), st.integers(0, 1), st.booleans()),
)


def check_books(ls, wallet, tokens, start):
    """Every conservation identity and sign check, per protocol."""
    state = [ls.supply, ls.queued_tokens, ls.backing, ls.retained, ls.rate, ls.rewards,
             ls.losses, ls.minted_total, ls.burnt_total, ls.paid_step, ls.tickets.amount_paid,
             ls.tickets.owed, ls.tickets.tokens, ls.queue_owed()]
    for values in state:
        assert np.all(np.isfinite(values)) and np.all(values >= 0.0)
    for p, (u, tok) in enumerate([(ETH, WSTETH), (BTC, WBTC)]):
        scale = start[u] + ls.rewards[p]
        # Underlying: wallets + held by the protocol - rewards + losses is constant.
        assert wallet[u] + ls.held()[u] == pytest.approx(start[u] + ls.net_created()[u],
                                                         rel=1e-9, abs=1e-9 * scale)
        # Tokens: what accounts hold is the net minted supply.
        assert tokens[tok] == pytest.approx(ls.minted()[tok], rel=1e-9, abs=1e-9 * scale)
        # Backing covers circulating and queued tokens at the rate.
        assert ls.backing[p] == pytest.approx(ls.rate[p] * (ls.supply[p] + ls.queued_tokens[p]),
                                              rel=1e-9, abs=1e-9 * scale)
        # The brief's identity: underlying + tokens at rate + queue + retained is constant
        # except rewards and losses, which are recorded.
        value = (wallet[u] + tokens[tok] * ls.rate[p] + ls.queued_tokens[p] * ls.rate[p]
                 + ls.retained[p])
        assert value == pytest.approx(start[u] + ls.rewards[p] - ls.losses[p], rel=1e-9,
                                      abs=1e-9 * scale)
    t = ls.tickets
    assert np.all(t.amount_paid <= t.owed * (1 + 1e-12))
    for p in range(2):
        mine = np.flatnonzero(t.protocol == p)
        paid = t.paid[mine]
        # FIFO: paid tickets are a prefix of each protocol's queue.
        assert np.all(paid[:paid.sum()])


@settings(deadline=None, max_examples=150)
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_conservation_on_random_operation_sequences(ops):
    ls = two()
    start = np.array([10_000.0, 0.0, 500.0, 0.0])
    wallet = start.copy()  # underlying held by the accounts
    tokens = np.zeros(4)  # tokens held by the accounts
    now = 0.0
    for kind, p, x in ops:
        u, tok = [(ETH, WSTETH), (BTC, WBTC)][p]
        if kind == "deposit" and ls.mint_enabled[p] and ls.rate[p] > 0:
            amount = wallet[u] * x
            tokens[tok] += ls.deposit(p, amount)
            wallet[u] -= amount
        elif kind == "redeem":
            amount = tokens[tok] * x
            quote = ls.expected_wait_hours(p, ls.redemption_value(p, amount), now)
            ticket = ls.request_redemption(p, amount, now, owner=0)[0]
            assert ls.tickets.payable_hours[ticket] - now == pytest.approx(quote, abs=1e-9)
            tokens[tok] -= amount
        elif kind == "accrue":
            ls.accrue(x)
        elif kind == "loss":
            ls.apply_loss(p, x)
        elif kind == "advance":
            now += x
            was_paid = ls.tickets.paid.copy()
            ids, amounts = ls.process(now)
            assert not was_paid[ids].any()  # each ticket is paid once
            assert np.all(ls.tickets.payable_hours[ids] <= now)
            np.add.at(wallet, ls.underlying[ls.tickets.protocol[ids]], amounts)
        elif kind == "pause":
            ls.set_mint_enabled(p, x)
        check_books(ls, wallet, tokens, start)
    # Drain: every ticket is paid eventually and the queue is empty.
    ids, amounts = ls.process(now + 1e6)
    np.add.at(wallet, ls.underlying[ls.tickets.protocol[ids]], amounts)
    assert ls.tickets.paid.all()
    assert ls.queue_owed() == pytest.approx([0.0, 0.0])
    check_books(ls, wallet, tokens, start)
