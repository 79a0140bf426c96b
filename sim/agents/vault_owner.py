"""Vault owners: lock collateral in a CDP, mint its stablecoin, and defend the vault or not.

Each owner has one vault and spare collateral tokens in a wallet. When the vault's
collateralisation at oracle prices (``ink * price / debt``) falls below ``margin_call_ratio``
times the ilk's liquidation ratio, an owner with spare tokens adds them, up to what brings it
back to ``target_ratio`` times the liquidation ratio; an owner without spare tokens waits to
be barked (most vaults on Black Thursday were not defended). Collateral an auction returns
(the lot left once the tab is paid) goes back to the wallet.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import (
    Holdings,
    Member,
    Population,
    StepContext,
    amounts,
    draw_assets,
    scatter,
)
from sim.protocols.cdp import CDPs
from sim.protocols.errors import ProtocolError
from sim.scenario import draw


class VaultOwner(Member):
    """An owner: one vault, row ``index`` of its population's vaults."""


class VaultOwners(Population):
    """The owners of one ``[agents.vault_owners.X]`` section (a ``VaultOwnerTable``)."""

    kind = "vault_owner"
    Member = VaultOwner

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> VaultOwners:
        """Open one vault per owner at ``collateralisation``; the minted stable is spent."""
        source = world.scenario.source
        p0 = world.prices[0]
        n = cfg.count
        cdps = world.cdps
        asset = draw_assets(world, cfg.collateral, n, rng)
        ilk = np.array([world.ilk_of[cfg.protocol, a] for a in asset], dtype=np.int64)
        value = draw(cfg.position_value, rng, n)
        ratio = draw(cfg.collateralisation, rng, n)
        if np.any(value <= 0):
            world.fail(f"{name}.position_value", "must be > 0 in every draw")
        mat = cdps.liquidation_ratio[ilk]
        if np.any(ratio < mat):
            world.fail(f"{name}.collateralisation", "must be >= the ilk's liquidation_ratio "
                       f"in every draw (got {ratio.min():g} < {mat[np.argmin(ratio)]:g})")
        ink = value / p0[asset]
        debt = value / ratio  # stable units, par = 1 numeraire
        try:
            owner = len(cdps.vaults) + np.arange(n)
            rows, minted = cdps.open_vaults(owner, ilk, ink, debt, p0)
        except ProtocolError as e:
            world.fail(name, f"cannot open the vaults: {e}")
        stable = cdps.stable_asset[world.cdp_names.index(cfg.protocol)]
        world.external[stable] += minted.sum()  # minted stable was spent (on the collateral)
        wallet = amounts(source, f"{name}.wallet_share", cfg.wallet_share, rng, n) * ink
        table = VaultOwnerTable(rows, wallet, margin_call_ratio=cfg.margin_call_ratio,
                                target_ratio=cfg.target_ratio)
        venues = tuple(dict.fromkeys(world.pool_names[v] for v in cdps.ilk_venue[ilk]
                                     if v >= 0))
        return cls(model, table, name=name, protocols=(cfg.protocol, *venues), size=n)

    def step(self, ctx: StepContext) -> None:
        """Collect returned collateral; top up vaults under the margin call."""
        ctx.volume[self.kind] += self.table.act(ctx.world.cdps, ctx.world.oracles.price)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Spare collateral (tokens); locked and returned collateral minus debt (claims)."""
        t, c = self.table, ctx.world.cdps
        m = len(ctx.external_price)
        idx, group, g = self.positions(members)
        rows = t.rows[idx]
        ilk = c.vaults.ilk[rows]
        asset = c.ilk_asset[ilk]
        out = Holdings.zeros(g, m)
        out.tokens[:] = scatter(group, asset, t.wallet[idx], g, m)
        out.claims[:] = (scatter(group, asset, c.vaults.ink[rows] + c.vaults.gem[rows], g, m)
                         - scatter(group, c.stable_asset[c.ilk_protocol[ilk]],
                                   c.debt_of(rows), g, m))
        return out


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
