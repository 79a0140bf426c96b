"""Looking up what a scenario's names point at: an asset, a protocol of a kind, a pool, a market.

Each lookup returns what it found or raises the one-line ``ScenarioError`` of the field that
names it, listing the names that would do.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sim.errors import ScenarioError
from sim.scenario.protocols import Lending, Pool
from sim.scenario.schema import Scenario


class Lookup:
    """The names of one scenario, for the cross-reference checks (``references``)."""

    def __init__(self, s: Scenario):
        self.s = s

    def fail(self, field: str, message: str) -> NoReturn:
        """Raise the ``ScenarioError`` of ``field``."""
        raise ScenarioError(self.s.source, field, message)

    def need_asset(self, field: str, name: str) -> None:
        """``name`` is an asset of the scenario."""
        if name not in self.s.assets:
            self.fail(field, f"unknown asset '{name}' (assets: {', '.join(self.s.assets)})")

    def need_pool_of(self, field: str, name: str, base: str, verb: str = "trades") -> Any:
        """A pool whose base token is ``base`` (a venue sells it, an oracle prices it)."""
        pool = self.need_protocol(field, name, Pool, "pool")
        if pool.base != base:
            self.fail(field, f"pool '{name}' {verb} {pool.base}, not {base}")
        return pool

    def need_protocol(self, field: str, name: str, kind: type, label: str) -> Any:
        """The protocol ``name``, which must be a ``kind`` (called ``label`` in messages)."""
        proto = self.s.protocols.get(name)
        if not isinstance(proto, kind):
            names = [k for k, v in self.s.protocols.items() if isinstance(v, kind)]
            known = ", ".join(names) or "none"
            self.fail(field, f"'{name}' is not a {label} protocol ({label}: {known})")
        return proto

    def market_of(self, field: str, proto_name: str, asset: str) -> None:
        """``asset`` is a market of the lending protocol ``proto_name``."""
        proto = self.need_protocol(f"{field}.protocol", proto_name, Lending, "lending")
        if asset not in proto.markets:
            self.fail(field, f"'{asset}' is not a market of '{proto_name}' "
                      f"(markets: {', '.join(proto.markets)})")
