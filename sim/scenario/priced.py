"""Which assets the model prices itself, each step, ignoring their external price path."""

from __future__ import annotations

from sim.scenario.protocols import CDP, AlgorithmicStablecoin, LiquidStaking
from sim.scenario.schema import Scenario


def model_priced(s: Scenario) -> dict[str, tuple[str, str]]:
    """Assets whose price the model sets every step, ignoring their external price path.

    Staked and wrapped tokens (their pool's spot, or the exchange rate, times the
    underlying's price), algorithmic stablecoins and their sisters and CDP stablecoins with
    a ``stable_pool`` (their pool's spot), lending receipt tokens (the underlying's price
    times the issuer's backing ratio) and option tokens (their volatility surface). A jump,
    depeg or bridge failure of such an asset's external price changes nothing.

    Returns:
        asset -> (how it is priced, what moves it instead), as phrases for a message.
    """
    out: dict[str, tuple[str, str]] = {}
    for name, proto in s.protocols.items():
        if isinstance(proto, LiquidStaking):
            if proto.pool is None:
                out[proto.token] = (f"{proto.underlying}'s price times {name}'s exchange rate",
                                    f"to move it, take {name}'s backing (an exploit shock)")
            else:
                out[proto.token] = (f"{proto.underlying}'s price times the spot of pool "
                                    f"'{proto.pool}'", f"to move it, sell it into "
                                    f"'{proto.pool}' (a sale shock) or take {name}'s backing "
                                    "(an exploit shock)")
        elif isinstance(proto, AlgorithmicStablecoin | CDP):
            pools = ({proto.stable: proto.stable_pool, proto.sister: proto.sister_pool}
                     if isinstance(proto, AlgorithmicStablecoin) else
                     {proto.stable: proto.stable_pool} if proto.stable_pool else {})
            for token, pool in pools.items():
                out[token] = (f"the spot of pool '{pool}', where {name} prices it",
                              f"to move it, sell it into '{pool}' (a sale shock) or pull "
                              "that pool's liquidity (a liquidity_withdrawal shock)")
    for asset, spec in s.assets.items():
        if spec.underlying is not None:
            out[asset] = (f"{spec.underlying}'s price times {spec.issuer}'s backing ratio",
                          f"move {spec.underlying}, or take {spec.issuer}'s cash (an exploit "
                          "shock)")
        elif spec.option is not None:
            out[asset] = (f"{spec.option.protocol}'s volatility surface",
                          f"move its underlying {spec.option.underlying}")
    return out
