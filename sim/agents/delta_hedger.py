"""Delta hedgers: the market makers of an options vault, who keep its net delta flat.

The vault that writes (or buys) options carries their delta: minus the traders' option
delta, per asset. The hedgers keep a holding of each asset of their own (``own``, the base
part of their capital) and hedge the vault's delta around it: every ``every`` steps, when
the vault's option delta plus their inventory minus ``own`` is worth more than
``band_usd``, they trade it to zero on the asset's pool. A vault short gamma (it wrote
options) must sell the asset as its price falls and buy as it rises: its hedging adds to the
move; a vault long gamma hedges against it. The hedgers share each trade equally, in a
random order, as far as each one's inventory goes.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools


class DeltaHedger(ProtocolAgent):
    """A hedger; its balances are row ``row`` of ``model.delta_hedgers.balance``."""

    kind = "hedger"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class DeltaHedgerTable:
    """Balances (hedgers x assets) and the hedging rule.

    Args:
        balance: token balances per hedger and asset.
        own: each hedger's own holding per asset, around which it hedges.
        assets, pools: the hedged assets and the pool each is traded on (base = asset).
        band_usd: net delta value below which nothing is traded.
        every: steps between hedges.
    """

    def __init__(self, balance: np.ndarray, *, own: np.ndarray, assets: np.ndarray,
                 pools: np.ndarray, band_usd: float, every: int):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.own = np.asarray(own, dtype=np.float64)
        self.assets = np.asarray(assets, dtype=np.int64)
        self.pools = np.asarray(pools, dtype=np.int64)
        self.band_usd = float(band_usd)
        self.every = max(1, int(every))
        self.cost = 0.0  # of the last hedge (numeraire)
        self.protocol = 0  # the options protocol whose vault they hedge (index)

    def __len__(self) -> int:
        return len(self.balance)

    def act(self, t: int, option_delta: np.ndarray, amm: Pools, price: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
        """Hedge at step ``t`` if it is a hedging step; return base tokens sold per asset.

        Args:
            t: the step.
            option_delta: the vault's option delta per asset (tokens).
            amm: the pools.
            price: per-asset market prices (for the band).
            rng: the model's generator (acting order).

        Returns:
            float64[m], base tokens sold (> 0) or bought (< 0) per asset.
        """
        sold = np.zeros(len(price))
        self.cost = 0.0  # value given minus value received at ``price`` (fees and impact)
        if t % self.every:
            return sold
        for a, v in zip(self.assets, self.pools, strict=True):
            net = option_delta[a] + (self.balance[:, a] - self.own[:, a]).sum()
            if abs(net) * price[a] <= self.band_usd:
                continue
            quote = amm.quote[v]
            for k in rng.permutation(len(self)):
                want = net / len(self)
                if want > 0:  # long: sell base
                    amount = min(want, self.balance[k, a])
                    if amount > 0:
                        got = amm.sell_base(v, amount)
                        self.balance[k, quote] += got
                        self.balance[k, a] -= amount
                        sold[a] += amount
                        self.cost += amount * price[a] - got * price[quote]
                else:  # short: buy base with quote
                    cost = min(amm.input_for_output(v, sell_base=False, want=-want),
                               self.balance[k, quote])
                    if cost > 0:
                        got = amm.sell_quote(v, cost)
                        self.balance[k, quote] -= cost
                        self.balance[k, a] += got
                        sold[a] -= got
                        self.cost += cost * price[quote] - got * price[a]
        return sold
