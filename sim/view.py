"""An interactive view of one run: step a scenario, watch the dependency graph and prices.

``Explorer(scenario)`` in a notebook shows buttons (Step, Run to end, Reset), the step size,
the asset whose prices to follow, the colour scale, a status line (hour, liquidations and
bad debt so far) and one figure: on the left the protocol dependency graph
(``sim.plots.draw_network``: node area is TVL at the start, colour the loss so far as a
share of it), on the right the asset's external, oracle and pool prices so far with the
debt liquidated per step below.

The figure is a plain matplotlib ``Figure`` rendered to PNG bytes into an
``ipywidgets.Image`` after every update, so the view needs no ipympl and works the same in
JupyterLab, the classic notebook and headless (the buttons call ``step``, ``run_to_end``
and ``reset``, which code and tests call directly). The frame stays fixed so pictures
compare over time: the graph's layout is computed once, the time axis spans the whole run,
and the colour scale ends at ``vmax`` (loss / TVL at the start; 25% by default, so a
protocol that has lost a quarter of its value or more is full red, and the node's label
gives its exact share).

ipywidgets is an optional dependency: ``pip install -e ".[jupyter]"``.
"""

from __future__ import annotations

try:
    import ipywidgets as widgets
except ImportError:  # one message that says what to do, not a chain of tracebacks
    raise ImportError('sim.view needs ipywidgets, which is not installed: run '
                      'pip install -e ".[jupyter]" in the sim source tree '
                      '(or pip install "ipywidgets>=8")') from None

import io
import math
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.api import Simulation
from sim.plots import (
    PALETTE,
    STYLE,
    asset_venue,
    draw_network,
    draw_prices,
    network_layout,
    network_legend,
    stack_liquidations,
    venue_asset,
)
from sim.scenario import Scenario, load_scenario

AUTO = "auto"  # follow the asset whose oracle price has fallen most so far
VMAX_CHOICES = (0.05, 0.1, 0.25, 0.5, 1.0)  # colour scale ends (loss / TVL at the start)
STEP_HOURS = (1.0, 4.0, 24.0)  # step sizes offered besides one step
MAX_FRAMES = 24  # "Run to end" redraws at most this often (a frame costs ~0.3 s)
FIGSIZE = (13.0, 5.8)
DPI = 90  # of the PNG shown in the notebook


class Explorer:
    """Step a scenario in a notebook and watch its dependency graph and prices.

    Args:
        scenario: a validated ``Scenario`` or the path of a scenario file.
        seed: overrides ``simulation.seed``.
        steps: overrides ``simulation.steps``.
        vmax: loss / TVL at the start drawn at full colour (larger shares saturate).

    Attributes:
        simulation: the ``sim.Simulation`` being stepped (a new one after ``reset``).
        ds: its results so far (``simulation.dataset()`` at the last update).
        figure: the matplotlib figure, redrawn at every update.
        widget: the controls, status line and picture (what the notebook displays).

    Example:
        >>> view = Explorer("../scenarios/contagion_exploit.toml")   # doctest: +SKIP
        >>> view                      # the widget, in a notebook   # doctest: +SKIP
        >>> view.step(16).status_text()                              # doctest: +SKIP
    """

    def __init__(self, scenario: Scenario | str | Path, *, seed: int | None = None,
                 steps: int | None = None, vmax: float = 0.25):
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        if not (isinstance(vmax, int | float) and 0.0 < vmax <= 1.0):
            raise ValueError(f"Explorer: vmax is a share of TVL in (0, 1], got {vmax!r}")
        self.scenario, self._seed, self._steps = scenario, seed, steps
        self._busy = False  # in run_to_end: the buttons stay disabled
        self.simulation = Simulation(scenario, seed=seed, steps=steps)
        self.ds: xr.Dataset = self.simulation.dataset()
        self.pos = network_layout(self.ds)  # once: the graph does not move between updates
        n, dt = self.simulation.n_steps, self.simulation.dt_hours
        sizes = sorted({1, *(round(h / dt) for h in STEP_HOURS)} & set(range(1, n + 1))) or [1]
        self.step_size = widgets.Dropdown(
            options=[(f"{k} step{'s' if k > 1 else ''} ({k * dt:g} h)", k) for k in sizes],
            value=sizes[0], description="step size")
        self.asset = widgets.Dropdown(
            options=[("most fallen so far", AUTO), *((a, a) for a in self.ds.asset.values)],
            value=AUTO, description="prices of")
        self.vmax = widgets.Dropdown(
            options=[(f"{v:.0%}", v) for v in sorted({*VMAX_CHOICES, float(vmax)})],
            value=float(vmax), description="red at")
        self.step_button = widgets.Button(description="Step", icon="step-forward")
        self.run_button = widgets.Button(description="Run to end", icon="fast-forward")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.step_button.on_click(lambda _: self.step())
        self.run_button.on_click(lambda _: self.run_to_end())
        self.reset_button.on_click(lambda _: self.reset())
        self.asset.observe(lambda _: self.refresh(), names="value")
        self.vmax.observe(lambda _: self.refresh(), names="value")
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.widget = widgets.VBox([
            widgets.HBox([self.step_button, self.run_button, self.reset_button,
                          self.step_size]),
            widgets.HBox([self.asset, self.vmax]), self.status, self.image])
        with plt.style.context(STYLE):
            self.figure = Figure(figsize=FIGSIZE, layout="constrained")
        self.refresh()

    def step(self, n: int | None = None) -> Explorer:
        """Advance ``n`` steps (default: the chosen step size), stopping at the end."""
        self.simulation.step(self.step_size.value if n is None else n)
        self.refresh()
        return self

    def run_to_end(self) -> Explorer:
        """Step to the end of the run, redrawing after each step size's worth of steps.

        At most ``MAX_FRAMES`` redraws: a small step size on a long run takes larger strides.
        The kernel is busy until the end (the buttons are disabled meanwhile).
        """
        remaining = self.simulation.n_steps - self.simulation.t
        stride = max(self.step_size.value, math.ceil(remaining / MAX_FRAMES))
        self._busy = True
        try:
            while not self.simulation.done:
                self.step(stride)
        finally:
            self._busy = False
            self._enable()
        return self

    def reset(self) -> Explorer:
        """Start the run again from hour 0 (same scenario, seed and number of steps)."""
        self.simulation.close()
        self.simulation = Simulation(self.scenario, seed=self._seed, steps=self._steps)
        self.refresh()
        return self

    def refresh(self) -> None:
        """Read the results so far and redraw the status line and the picture."""
        self.ds = self.simulation.dataset()
        self._enable()
        self.status.value = f"<b>{self.status_text()}</b>"
        self._draw()
        self.image.value = self.png()

    def followed(self) -> tuple[str, str | None]:
        """The asset whose prices are drawn and the pool that trades it (if any)."""
        if self.asset.value == AUTO:
            return venue_asset(self.ds)
        return self.asset.value, asset_venue(self.ds, self.asset.value)

    def status_text(self) -> str:
        """Hour reached, liquidations and bad debt so far (all protocols), as one line."""
        ds, s = self.ds, self.simulation
        count = int(np.nansum(ds.liquidation_count.values))
        repaid = float(np.nansum(ds.liquidated_value.values))
        bad = float(np.nansum(ds.bad_debt.values))
        end = " (end of run)" if s.done else ""
        return (f"hour {s.hour:g} of {s.n_steps * s.dt_hours:g}, step {s.t} of {s.n_steps}"
                f"{end} | liquidations so far: {count:,} ({repaid / 1e6:,.2f} M USD of debt) "
                f"| bad debt so far: {bad / 1e6:,.2f} M USD")

    def png(self) -> bytes:
        """The current picture as PNG bytes."""
        buffer = io.BytesIO()
        # The style is in force while drawing (ticks are made then); constrained layout
        # already fills the frame, so no second, "tight" drawing pass.
        with plt.style.context(STYLE), plt.rc_context({"savefig.bbox": "standard"}):
            self.figure.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()

    def close(self) -> None:
        """Release the simulation's model (the widget stays on screen as it is)."""
        self.simulation.close()

    def _enable(self) -> None:
        # Step and Run to end make no sense at the end; nothing is clickable while running.
        self.step_button.disabled = self.run_button.disabled = (
            self._busy or self.simulation.done)
        self.reset_button.disabled = self._busy

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _draw(self) -> None:
        ds, fig = self.ds, self.figure
        t, dt = self.simulation.t, self.simulation.dt_hours
        end = self.simulation.n_steps * dt
        with plt.style.context(STYLE):
            fig.clear()
            grid = fig.add_gridspec(2, 2, width_ratios=[1.2, 1.0], height_ratios=[2.0, 1.0])
            ax_net = fig.add_subplot(grid[:, 0])
            ax_p = fig.add_subplot(grid[0, 1])
            ax_l = fig.add_subplot(grid[1, 1], sharex=ax_p)

            nodes = draw_network(ax_net, ds, step=t, pos=self.pos, vmax=self.vmax.value)
            fig.colorbar(nodes, ax=ax_net, shrink=0.55, extend="max",
                         format=matplotlib.ticker.PercentFormatter(1.0),
                         label="loss so far / TVL at the start")
            network_legend(ax_net, ds, fontsize=7.5)
            ax_net.set_title(f"{ds.attrs['scenario_name']} (seed {ds.attrs['seed']}): "
                             f"hour {t * dt:g}")

            asset, pool = self.followed()
            hours = ds.time.values
            draw_prices(ax_p, ds, asset, pool,  # with a dot at "now"
                        marker="o", markevery=[len(hours) - 1], markersize=3.5)
            how = "fell most so far" if self.asset.value == AUTO else "chosen"
            ax_p.set_title(f"{asset} prices ({how})")
            ax_p.legend(loc="lower left")
            ax_p.set_xlim(-dt, end + dt)  # the whole run: the picture fills in from the left
            ax_p.tick_params(labelbottom=False)

            names = [str(p) for p in ds.protocol.values]
            color = {n: PALETTE[(k + 1) % len(PALETTE)] for k, n in enumerate(names)}
            hit = [n for n in names if ds.liquidated_value.sel(protocol=n).fillna(0.0).any()]
            bottom = stack_liquidations(ax_l, ds, hit, color, dt)
            if bottom.any():
                ax_l.legend(loc="upper right")
            else:
                ax_l.text(0.5, 0.5, "no liquidations yet", transform=ax_l.transAxes,
                          ha="center", va="center", color="0.4")
            ax_l.set_ylabel("debt liquidated\n(M USD per step)")
            ax_l.set_xlabel("hour")


__all__ = ["Explorer"]
