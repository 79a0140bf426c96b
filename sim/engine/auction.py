"""Abacus price curves, when they reach a price, and Clipper's take rule (Maker Liq. 2.0).

Floats throughout. An auction starts at ``top = oracle price * buf`` and its price falls along
an Abacus curve (makerdao/dss ``abaci.sol``). Clipper's ``status`` declares it done, to be
reset by ``redo``, once more than ``tail`` seconds have passed or the price has fallen below
``cusp * top``. Keepers buy with ``take`` (makerdao/dss ``clip.sol``); ``take_amount`` gives
what one take pays and receives. ETH-B (April 2021): cut 0.99 every 90 s, buf 1.3, cusp 0.4,
tail 8,400 s (``shared/reference/protocols.md``).

Time is in seconds and may be fractional here; the contracts use whole seconds.

The curve kinds (``STAIRSTEP_EXPONENTIAL``, ``EXPONENTIAL``, ``LINEAR``) are what a CDP ilk's
``curve`` selects; ``curve_price`` dispatches on them, and ``first_time_at_or_below`` and
``reset_elapsed`` invert the curves for the Dutch-auction kernel (``sim.engine.clipper``),
which jumps from one event (a take, a reset) to the next instead of stepping through time.
"""

import math

import numpy as np

from sim.engine._jit import kernel

# Abacus kinds (a CDP ilk's ``curve``).
STAIRSTEP_EXPONENTIAL = 0
EXPONENTIAL = 1
LINEAR = 2


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


@kernel
def curve_price(curve, top, cut, step, tau, elapsed):
    """Price of an Abacus curve ``elapsed`` seconds after (re)start (the curves above).

    Args:
        curve: int, ``STAIRSTEP_EXPONENTIAL``, ``EXPONENTIAL`` or ``LINEAR``.
        top: float, starting price.
        cut: float, factor per step (stairstep) or per second (exponential).
        step: float, seconds per stair (stairstep only).
        tau: float, seconds to zero (linear only).
        elapsed: float, seconds since the auction (re)started.

    Returns:
        float, current price.
    """
    if curve == STAIRSTEP_EXPONENTIAL:
        return stairstep_exponential_price(top, cut, step, elapsed)
    if curve == EXPONENTIAL:
        return exponential_price(top, cut, elapsed)
    return linear_price(top, tau, elapsed)


@kernel
def first_time_at_or_below(curve, top, cut, step, tau, x):
    """First ``elapsed`` (seconds) at which the curve's price is ``<= x``; ``inf`` if never.

    Closed forms (abaci.sol curves):

    * stairstep ``top cut^floor(t / step) <= x``: ``k = ceil(ln(x / top) / ln(cut))`` stairs,
      ``t = k step``;
    * exponential ``top cut^t <= x``: ``t = ln(x / top) / ln(cut)``;
    * linear ``top (tau - t) / tau <= x``: ``t = tau (1 - x / top)`` (and 0 at ``tau``).

    Each is then nudged by whole stairs or ulps until ``curve_price`` itself agrees, so the
    returned time is one at which the kernel's price really is ``<= x``.

    Args:
        curve: int, curve kind.
        top, cut, step, tau: floats, the curve's parameters (see ``curve_price``).
        x: float, target price.

    Returns:
        float, elapsed seconds (>= 0) or ``inf``.
    """
    if x >= top:
        return 0.0
    if x < 0.0:
        return np.inf
    if curve == STAIRSTEP_EXPONENTIAL:
        if cut >= 1.0 or (x == 0.0 and cut > 0.0):
            return np.inf
        if cut <= 0.0:
            return step
        k = math.ceil(math.log(x / top) / math.log(cut))
        if k < 0:
            k = 0
        while k > 0 and top * cut ** (k - 1) <= x:
            k -= 1
        while top * cut**k > x:
            k += 1
        t = k * step
        while stairstep_exponential_price(top, cut, step, t) > x:  # k * step / step < k
            t = np.nextafter(t, np.inf)
        return t
    if curve == EXPONENTIAL:
        if cut >= 1.0 or (x == 0.0 and cut > 0.0):
            return np.inf
        if cut <= 0.0:
            return np.nextafter(0.0, 1.0)
        t = math.log(x / top) / math.log(cut)
        if t < 0.0:
            t = 0.0
        while exponential_price(top, cut, t) > x:
            t = np.nextafter(t, np.inf)
        return t
    t = tau * (1.0 - x / top)
    if t > tau:
        t = tau
    while linear_price(top, tau, t) > x:
        t = np.nextafter(t, np.inf)
    return t


@kernel
def reset_elapsed(curve, top, cut, step, tau, tail, cusp):
    """Elapsed seconds at which Clipper's ``status`` turns done and ``redo`` is due.

    ``done = elapsed > tail || price / top < cusp`` (clip.sol). The tail boundary is ``tail``
    itself (the auction is live at ``tail`` and done just after; the contract's whole seconds
    make that ``tail + 1``). For a stairstep curve the price jumps below ``cusp * top`` at the
    first stair ``k`` with ``cut^k < cusp``; for continuous curves the boundary is where
    ``price == cusp * top`` (live there, done just after).

    Args:
        curve: int, curve kind.
        top, cut, step, tau: floats, the curve's parameters.
        tail: float, seconds before a reset is due.
        cusp: float, share of ``top`` below which a reset is due.

    Returns:
        float, elapsed seconds.
    """
    t_cusp = np.inf
    if cusp > 0.0 and top > 0.0:
        if curve == STAIRSTEP_EXPONENTIAL:
            if cut < 1.0:
                if cut <= 0.0:
                    k = 1
                else:
                    k = math.floor(math.log(cusp) / math.log(cut))
                    if k < 0:
                        k = 0
                    while k > 0 and top * cut ** (k - 1) / top < cusp:
                        k -= 1
                    while not top * cut**k / top < cusp:
                        k += 1
                t_cusp = k * step
        else:
            t_cusp = first_time_at_or_below(curve, top, cut, step, tau, cusp * top)
    return t_cusp if t_cusp < tail else tail
