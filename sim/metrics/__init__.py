"""Metrics: pure functions of results and balance sheets, used by batches, charts and runs.

- ``risk``: per-run scalars (bad debt, liquidated value, drawdown, time to insolvency) and
  their tail measures across runs (VaR, ES, Liquidations at Risk, P(insolvency) with its
  Wilson interval), with the number of runs each needs.
- ``contagion``: Eisenberg-Noe clearing, DebtRank, Greenwood-Landier-Thesmar fire sales, on
  plain arrays (the model's ``systemic`` feeds them its balance sheets).
- ``network``: who holds whose tokens in a run, and each protocol's DebtRank at every step.
- ``losses``: each protocol's loss over a run.
"""

from sim.metrics.contagion import debtrank, eisenberg_noe, fire_sale_vulnerability
from sim.metrics.losses import protocol_losses
from sim.metrics.network import exposures, protocol_debt_rank
from sim.metrics.risk import (
    expected_shortfall,
    risk_measures,
    run_scalars,
    value_at_risk,
    wilson_interval,
)

__all__ = ["debtrank", "eisenberg_noe", "expected_shortfall", "exposures",
           "fire_sale_vulnerability", "protocol_debt_rank", "protocol_losses", "risk_measures",
           "run_scalars", "value_at_risk", "wilson_interval"]
