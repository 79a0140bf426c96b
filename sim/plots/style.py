"""The charts' look: one style sheet (``sim.mplstyle``), its palette, axis units, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

STYLE = Path(__file__).parents[1] / "sim.mplstyle"
# The style's colours as hex: a "C0" string on a line is resolved when the figure is drawn,
# after the style context has closed, so the charts name their colours from this list.
PALETTE: list[str] = matplotlib.rc_params_from_file(
    STYLE, use_default_template=False)["axes.prop_cycle"].by_key()["color"]


def unit_scale(values: np.ndarray) -> tuple[float, str]:
    """A divisor and its prefix that bring ``values``' largest magnitude under 1,000."""
    top = float(np.nanmax(np.abs(values), initial=0.0))
    for div, prefix in ((1e9, "bn "), (1e6, "M "), (1e3, "k ")):
        if top >= div:
            return div, prefix
    return 1.0, ""


def save_figure(fig: Figure, stem: Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format; return the paths."""
    paths = []
    try:
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths
