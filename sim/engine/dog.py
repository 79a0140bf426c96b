"""Dog.bark (Maker Liquidations 2.0): unsafe vaults start auctions, within the Hole limits.

Source: makerdao/dss ``dog.sol`` (bark: partial liquidation bounded by ``Hole``/``hole``, dust
rule, ``tab = dart * rate * chop``). The auctions it starts are run by ``sim.engine.clipper``
(Dutch) or ``sim.engine.flipper`` (English).
"""

from sim.engine._jit import kernel


@kernel
def bark(vault_ilk, ink, art, ilk_art, rate, liquidation_ratio, chop, dust, hole, dirt,
         ilk_protocol, big_hole, big_dirt, ilk_price, out_vault, out_dink, out_dart, out_tab):
    """Dog.bark on every unsafe vault, in row order; returns the number of auctions started.

    dog.sol: unsafe when ``ink * price < art * rate * mat`` (``ink * spot < art * rate``,
    ``spot = price / mat``). Requires ``Hole > Dirt`` and ``hole > dirt`` (else the vault is
    skipped), ``room = min(Hole - Dirt, hole - dirt)``, ``dart = min(art, room / (rate *
    chop))``. If the vault would keep a debt below ``dust`` the whole vault goes (which may
    overshoot the room by up to ``dust * chop``, as dog.sol accepts); else a partial auction
    whose debt is below ``dust`` is refused. ``dink = ink * dart / art``, ``tab = dart * rate
    * chop``; ``Dirt`` and ``dirt`` grow by ``tab``.

    Args:
        vault_ilk: int32[n], ilk of each vault.
        ink, art: float64[n], collateral and normalised debt of each vault (in/out).
        ilk_art: float64[K], the ilk's total normalised debt ``Art`` (in/out).
        rate: float64[K], the ilk's debt accumulator.
        liquidation_ratio, chop, dust, hole: float64[K], ``mat``, ``1 + penalty``, minimum
            vault debt (stable) and the ilk's auction limit (stable).
        dirt: float64[K], stable in the ilk's active auctions (in/out).
        ilk_protocol: int64[K], CDP protocol of each ilk.
        big_hole, big_dirt: float64[P], the protocol's ``Hole`` and ``Dirt`` (in/out).
        ilk_price: float64[K], oracle price of each ilk's collateral (stable units).
        out_vault: int64[n], vault of each auction started (written).
        out_dink, out_dart, out_tab: float64[n], its lot, normalised debt and tab (written).

    Returns:
        int, number of auctions started (rows written to the ``out_*`` arrays).
    """
    n_out = 0
    for i in range(ink.shape[0]):
        k = vault_ilk[i]
        if art[i] <= 0.0 or not ink[i] * ilk_price[k] < art[i] * rate[k] * liquidation_ratio[k]:
            continue
        p = ilk_protocol[k]
        if not (big_hole[p] > big_dirt[p] and hole[k] > dirt[k]):
            continue  # Dog/liquidation-limit-hit
        room = min(big_hole[p] - big_dirt[p], hole[k] - dirt[k])
        dart = min(art[i], room / rate[k] / chop[k])
        if art[i] > dart:
            if (art[i] - dart) * rate[k] < dust[k]:
                dart = art[i]
            elif dart * rate[k] < dust[k]:
                continue  # Dog/dusty-auction-from-partial-liquidation
        dink = ink[i] * dart / art[i] if dart < art[i] else ink[i]
        if dink <= 0.0:
            continue  # Dog/null-auction
        tab = dart * rate[k] * chop[k]
        ink[i] -= dink
        art[i] -= dart
        ilk_art[k] -= dart
        dirt[k] += tab
        big_dirt[p] += tab
        out_vault[n_out] = i
        out_dink[n_out] = dink
        out_dart[n_out] = dart
        out_tab[n_out] = tab
        n_out += 1
    return n_out
