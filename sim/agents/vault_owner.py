"""Vault owners: lock collateral in a CDP, mint its stablecoin, and defend the vault or not.

Each owner has one vault and spare collateral tokens in a wallet. When the vault's
collateralisation at oracle prices (``ink * price / debt``) falls below ``margin_call_ratio``
times the ilk's liquidation ratio, an owner with spare tokens adds them, up to what brings it
back to ``target_ratio`` times the liquidation ratio; an owner without spare tokens waits to
be barked (most vaults on Black Thursday were not defended). Collateral an auction returns
(the lot left once the tab is paid) goes back to the wallet.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.cdp import CDPs


class VaultOwner(ProtocolAgent):
    """An owner; its vault is row ``row`` of ``model.cdps.vaults``."""

    kind = "vault_owner"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class VaultOwnerTable:
    """The vaults of one population and the owners' spare collateral (tokens per vault).

    Args:
        rows: the population's vault rows in the ``CDPs`` book.
        wallet: spare collateral tokens per vault (the vault's own collateral asset).
        margin_call_ratio, target_ratio: multiples of the ilk's liquidation ratio.
    """

    def __init__(self, rows: slice, wallet: np.ndarray, *, margin_call_ratio: float,
                 target_ratio: float):
        self.rows = np.arange(rows.start, rows.stop, dtype=np.int64)
        self.wallet = np.asarray(wallet, dtype=np.float64).copy()
        self.margin_call_ratio = float(margin_call_ratio)
        self.target_ratio = float(target_ratio)

    def act(self, cdps: CDPs, price: np.ndarray) -> float:
        """Collect returned collateral, then top up vaults under the margin call.

        Returns:
            collateral value added (numeraire, at ``price``).
        """
        rows = self.rows
        self.wallet += cdps.collect(rows)
        ilk = cdps.vaults.ilk[rows]
        asset_price = price[cdps.ilk_asset[ilk]]
        mat = cdps.liquidation_ratio[ilk]
        debt = cdps.debt_of(rows)
        ratio = cdps.collateralisation(rows, price)
        call = (ratio < self.margin_call_ratio * mat) & (debt > 0) & (self.wallet > 0)
        if not call.any():
            return 0.0
        need = debt[call] * self.target_ratio * mat[call] / asset_price[call] \
            - cdps.vaults.ink[rows[call]]
        add = np.clip(need, 0.0, self.wallet[call])
        cdps.add_collateral(rows[call], add)
        self.wallet[call] -= add
        return float(add @ asset_price[call])

    def held(self, cdps: CDPs, n_assets: int) -> np.ndarray:
        """Spare collateral tokens per asset."""
        asset = cdps.ilk_asset[cdps.vaults.ilk[self.rows]]
        return np.bincount(asset, weights=self.wallet, minlength=n_assets)
