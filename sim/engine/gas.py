"""Block space: the EIP-1559 base fee from one block to the next.

EIP-1559 (Buterin et al., 2019; in force since the London fork, August 2021): each block
has a gas target of half its gas limit (elasticity 2), and the base fee of the next block
is

    base_fee' = base_fee * (1 + (gas_used - target) / target / 8),

so a full block raises it by 12.5% and an empty one lowers it by 12.5%. The protocol
computes in integer wei, rounding each change down and raising by at least 1 wei; here the
fee is a float (gwei), which differs from it by under 1 wei a block.
"""

from sim.engine._jit import helper

ELASTICITY = 2.0  # gas limit / gas target
BASE_FEE_CHANGE_DENOMINATOR = 8.0  # the most a block moves the base fee: 1/8


@helper
def next_base_fee(base_fee, gas_used, gas_limit):
    """The base fee of the block after one that used ``gas_used`` of ``gas_limit``."""
    target = gas_limit / ELASTICITY
    return base_fee * (1.0 + (gas_used - target) / target / BASE_FEE_CHANGE_DENOMINATOR)
