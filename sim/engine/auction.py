"""Maker Liquidations 2.0 Dutch auctions (Dog / Clipper / Abacus), in floats.

An auction starts at ``top = oracle price * buf`` and its price falls along an Abacus curve
(makerdao/dss ``abaci.sol``). Clipper's ``status`` declares it done, to be reset by ``redo``,
once more than ``tail`` seconds have passed or the price has fallen below ``cusp * top``.
Keepers buy with ``take`` (makerdao/dss ``clip.sol``); ``take_amount`` gives what one take
pays and receives. ETH-B (April 2021): cut 0.99 every 90 s, buf 1.3, cusp 0.4, tail 8,400 s
(``shared/reference/protocols.md``).

Time is in seconds and may be fractional here; the contracts use whole seconds.
"""

import math

from sim.engine._jit import kernel


@kernel
def stairstep_exponential_price(top, cut, step, elapsed):
    """Abacus StairstepExponentialDecrease: ``top * cut^floor(elapsed / step)``.

    ``abaci.sol``: ``rmul(top, rpow(cut, dur / step, RAY))`` with integer division, ``cut``
    the per-step multiplicative factor (0.99 for a 1% drop per step).

    Args:
        top: float, starting price (DAI per collateral).
        cut: float, factor applied each step (0 < cut <= 1).
        step: float, seconds between drops (> 0).
        elapsed: float, seconds since the auction (re)started (>= 0).

    Returns:
        float, current price.
    """
    return top * cut ** math.floor(elapsed / step)


@kernel
def exponential_price(top, cut, elapsed):
    """Abacus ExponentialDecrease: ``top * cut^elapsed``, ``cut`` the per-second factor.

    Args:
        top: float, starting price.
        cut: float, factor applied per second (0 < cut <= 1).
        elapsed: float, seconds since the auction (re)started (>= 0).

    Returns:
        float, current price.
    """
    return top * cut**elapsed


@kernel
def linear_price(top, tau, elapsed):
    """Abacus LinearDecrease: ``top * (tau - elapsed) / tau``, and 0 once ``elapsed >= tau``.

    ``abaci.sol``: ``if (now >= tic + tau) return 0; rmul(top, mul(end - now, RAY) / tau)``.

    Args:
        top: float, starting price.
        tau: float, seconds after which the price reaches zero (> 0).
        elapsed: float, seconds since the auction (re)started (>= 0).

    Returns:
        float, current price.
    """
    if elapsed >= tau:
        return 0.0
    return top * (tau - elapsed) / tau


@kernel
def needs_reset(price, top, elapsed, tail, cusp):
    """Clipper ``status``: ``done = (now - tic > tail || rdiv(price, top) < cusp)``.

    Args:
        price: float, current auction price.
        top: float, the auction's starting price.
        elapsed: float, seconds since the auction (re)started.
        tail: float, seconds before a reset is due.
        cusp: float, share of ``top`` below which a reset is due (0.4 for ETH-B).

    Returns:
        bool, True when the auction must be reset (``redo``) before anyone can take.
    """
    return elapsed > tail or price / top < cusp


@kernel
def take_amount(lot, tab, price, max_price, amount_wanted, chost):
    """Collateral bought and DAI paid by one keeper's ``take`` (Clipper.take's core).

    ``clip.sol`` ``take(id, amt, max, ...)``, in order:

    1. ``require(max >= price)``: the keeper's price limit; here a revert gives ``(0, 0)``.
    2. ``slice = min(lot, amt)``; ``owe = slice * price``.
    3. ``if (owe > tab)``: the whole tab is paid, ``owe = tab``, ``slice = owe / price``.
    4. ``else if (owe < tab && slice < lot)``: a partial take must not leave a tab below
       ``chost`` (``ilk.dust * chop``). If ``tab - owe < chost``:
       ``require(tab > chost)`` (else the take reverts, ``(0, 0)``: only a take of the whole
       lot or the whole tab can close such an auction), then ``owe = tab - chost`` and
       ``slice = owe / price``.
    5. Otherwise (``owe == tab``, or the whole lot is bought) the amounts stand.

    The caller checks ``needs_reset`` first (``take`` requires ``!done``) and then settles:
    ``tab -= owe``, ``lot -= slice``; ``lot == 0`` ends the auction (any tab left is bad
    debt), ``tab == 0`` ends it and returns the remaining lot to the vault owner.

    Args:
        lot: float, collateral left in the auction.
        tab: float, DAI still to raise.
        price: float, current auction price (DAI per collateral, > 0).
        max_price: float, the highest price the keeper accepts.
        amount_wanted: float, most collateral the keeper will buy (``amt``).
        chost: float, minimum tab a partial take must leave (DAI).

    Returns:
        (slice, owe): floats, collateral received and DAI paid; ``(0, 0)`` when the take
        would revert.
    """
    if price > max_price:
        return 0.0, 0.0
    slice_ = lot if lot < amount_wanted else amount_wanted
    owe = slice_ * price
    if owe > tab:
        owe = tab
        slice_ = owe / price
    elif owe < tab and slice_ < lot:
        if tab - owe < chost:
            if not tab > chost:
                return 0.0, 0.0
            owe = tab - chost
            slice_ = owe / price
    return slice_, owe
