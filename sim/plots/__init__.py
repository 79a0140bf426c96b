"""Research charts from a results Dataset (matplotlib, one style sheet: ``sim.mplstyle``).

Each chart takes an ``xarray.Dataset`` and returns a ``matplotlib.figure.Figure``; saving is
the caller's choice (``save_figure`` writes several formats at once). The package leaves the
backend alone, so the charts show inline in Jupyter; the ``sim`` command selects Agg.

- ``style``: the style sheet, its palette, axis units, ``save_figure``.
- ``cascade``: an asset's prices, liquidations per step and bad debt (``cascade_figure``).
- ``contagion``: the dependency graph sized by TVL and coloured by loss (``contagion_figure``).
- ``exposure``: net delta, gamma and vega by agent kind (``exposure_figure``).
- ``waterfall``: what each protocol cleared and lost, in order (``waterfall_figure``).
- ``batches``: across a batch's runs: fan, bad debt, Sobol, heatmap and history charts.
"""

from sim.plots.batches import (
    FLOOR,
    bad_debt_figure,
    fan_figure,
    heatmap_figure,
    history_figure,
    sobol_figure,
)
from sim.plots.cascade import (
    asset_venue,
    cascade_figure,
    draw_prices,
    stack_liquidations,
    venue_asset,
)
from sim.plots.contagion import (
    EDGE_LABEL,
    EDGE_STYLE,
    LOSS_CMAP,
    LOSS_SCALE_FLOOR,
    NODE_AREA,
    contagion_figure,
    draw_network,
    network_layout,
    network_legend,
)
from sim.plots.exposure import NEGLIGIBLE, exposure_asset, exposure_figure
from sim.plots.style import PALETTE, STYLE, save_figure, unit_scale
from sim.plots.waterfall import WATERFALL_PARTS, waterfall_figure, waterfall_rows

__all__ = ["EDGE_LABEL", "EDGE_STYLE", "FLOOR", "LOSS_CMAP", "LOSS_SCALE_FLOOR", "NEGLIGIBLE",
           "NODE_AREA", "PALETTE", "STYLE", "WATERFALL_PARTS", "asset_venue", "bad_debt_figure",
           "cascade_figure", "contagion_figure", "draw_network", "draw_prices",
           "exposure_asset", "exposure_figure", "fan_figure", "heatmap_figure",
           "history_figure", "network_layout", "network_legend", "save_figure",
           "sobol_figure", "stack_liquidations", "unit_scale", "venue_asset",
           "waterfall_figure", "waterfall_rows"]
