"""Aave v3 liquidation amounts for one position (one collateral, one debt reserve).

Follows aave-v3-origin ``LiquidationLogic.executeLiquidationCall`` and
``_calculateAvailableCollateralToLiquidate`` (see ``shared/reference/protocols.md``):

* the close factor is 50% of the debt; the whole debt may be taken when HF <= 0.95 or when
  the collateral or the debt of the position is worth less than 2,000 USD;
* collateral seized = debt repaid * P_debt / P_coll * (1 + bonus); if that exceeds the
  collateral, all collateral goes and the debt repaid shrinks to match;
* the protocol fee is a share of the bonus part of the seized collateral only;
* a partial liquidation must leave at least 1,000 USD of both collateral and debt (the
  contract reverts otherwise); a liquidator then asks for the largest amount that passes.
  The collateral left is counted after *all* the seized collateral, the protocol fee
  included: ``borrowerCollateralBalance - actualCollateralToLiquidate -
  liquidationProtocolFeeAmount`` in ``executeLiquidationCall`` (``actualCollateralToLiquidate``
  is already net of the fee), as in every release that has the rule (v3.3.0 to v3.7);
* a position left with no collateral has its remaining debt burnt into the reserve
  deficit (bad debt).
"""

from sim.engine._jit import kernel


@kernel
def max_debt_to_cover(debt, collateral, price_debt, price_coll, health, close_factor,
                      hf_threshold, small_threshold):
    """Largest debt (tokens) a liquidator may repay under the close-factor rule.

    Args:
        debt: float, debt tokens of the position.
        collateral: float, collateral tokens of the position.
        price_debt: float, oracle price of the debt asset.
        price_coll: float, oracle price of the collateral asset.
        health: float, health factor of the position (must be < 1 to liquidate).
        close_factor: float, share of the debt a liquidation may repay (0.5).
        hf_threshold: float, health factor at or below which the whole debt may go (0.95).
        small_threshold: float, collateral or debt value below which the whole debt may go
            (2,000 USD).

    Returns:
        float, debt tokens that may be covered (0 when not liquidatable, and when the
        collateral's price is 0: worthless collateral, such as an option token that expired
        out of the money, pays no liquidator and would divide by zero in the seizure; its
        debt stays insolvent, recorded as such).
    """
    if health >= 1.0 or debt <= 0.0 or collateral <= 0.0 or price_coll <= 0.0:
        return 0.0
    if (
        collateral * price_coll >= small_threshold
        and debt * price_debt >= small_threshold
        and health > hf_threshold
    ):
        return debt * close_factor
    return debt


@kernel
def liquidation_amounts(debt_to_cover, debt, collateral, price_debt, price_coll, bonus,
                        protocol_fee, min_leftover_base):
    """Apply Aave v3's collateral calculation and dust rule to a requested debt amount.

    Args:
        debt_to_cover: float, debt tokens the liquidator offers to repay.
        debt: float, debt tokens of the position.
        collateral: float, collateral tokens of the position.
        price_debt: float, oracle price of the debt asset.
        price_coll: float, oracle price of the collateral asset.
        bonus: float, liquidation bonus as a fraction (0.05 for Aave's 10500).
        protocol_fee: float, share of the bonus collateral kept by the protocol.
        min_leftover_base: float, minimum value left in a partial liquidation (1,000 USD).

    Returns:
        (debt_repaid, collateral_to_liquidator, collateral_to_protocol, deficit): floats in
        tokens. ``deficit`` is the debt burnt as bad debt when no collateral remains. All zero
        when no amount satisfies the dust rule.
    """
    mult = 1.0 + bonus
    x = debt_to_cover if debt_to_cover < debt else debt
    if x <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    seize = x * price_debt / price_coll * mult
    if seize >= collateral:
        seize = collateral
        x = collateral * price_coll / price_debt / mult
    elif x < debt:
        # Partial: Aave reverts unless >= min_leftover_base of both debt and collateral
        # remain; ask for the largest amount that passes instead.
        limit_debt = debt - min_leftover_base / price_debt
        limit_coll = (collateral * price_coll - min_leftover_base) / (price_debt * mult)
        limit = limit_debt if limit_debt < limit_coll else limit_coll
        if limit <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        if x > limit:
            x = limit
            seize = x * price_debt / price_coll * mult
    bonus_part = seize - seize / mult
    fee = bonus_part * protocol_fee
    deficit = 0.0
    if seize >= collateral and x < debt:
        deficit = debt - x
    return x, seize - fee, fee, deficit
