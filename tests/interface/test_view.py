"""sim.view.Explorer: the buttons step the run, and the picture shows the run's own numbers.

Driven as a reader would, through the widgets (``Button.click()``, dropdown values), and
checked against an independent ``sim.run`` of the same scenario cut at the hour reached.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

import sim
import sim.view
from sim.metrics.losses import protocol_losses
from sim.view import Explorer
from tests.support import ROOT, shipped

EXPLOIT = shipped("contagion_exploit.toml")
K = 20  # hour 5: an hour after the exploit (hour 4) and loop_lender's cascade


@pytest.fixture(scope="module")
def full():
    return sim.run(EXPLOIT)  # 48 steps of 15 minutes, seed 11


@pytest.fixture
def view():
    explorer = Explorer(EXPLOIT)
    yield explorer
    explorer.close()


def panels(view):
    ax_net, ax_p, ax_l, _colorbar = view.figure.axes  # the colour bar's axes come last
    return ax_net, ax_p, ax_l


def lines(ax):
    return {line.get_label(): line.get_ydata() for line in ax.get_lines()}


def nodes(ax_net):
    return ax_net.collections[0]  # locked protocols, coloured by loss share (draw_network)


def numbers(status):
    """The figures of the status line, in order."""
    return [float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", status)]


def step_by_clicks(view, size, clicks):
    view.step_size.value = size
    for _ in range(clicks):
        view.step_button.click()


def test_prices_drawn_after_k_steps_are_the_runs_first_k_steps(view, full):
    step_by_clicks(view, 4, K // 4)  # step size 4 (one hour), five clicks
    assert view.simulation.t == K
    ref = full.isel(time=slice(0, K + 1))
    # The asset followed by default is the one whose oracle price fell most so far: by hand,
    # aUSDC (aave's receipt token, about -18% after the exploit; WETH moves ~1%).
    fall = 1.0 - ref.oracle_price.min("time") / ref.oracle_price.isel(time=0)
    assert str(fall.idxmax("asset").item()) == "aUSDC"
    _, ax_p, _ = panels(view)
    drawn = lines(ax_p)
    assert set(drawn) == {"external market", "oracle"}  # aUSDC trades on no pool
    for own in (view.simulation.dataset(), ref):
        np.testing.assert_array_equal(drawn["external market"],
                                      own.external_price.sel(asset="aUSDC").values)
        np.testing.assert_array_equal(drawn["oracle"], own.oracle_price.sel(asset="aUSDC").values)
    np.testing.assert_array_equal(ax_p.get_lines()[0].get_xdata(), np.arange(K + 1) * 0.25)
    assert ax_p.get_ylabel() == "aUSDC price (USD)"

    view.asset.value = "WETH"  # pinned: WETH and the pool that trades it
    drawn = lines(panels(view)[1])
    np.testing.assert_array_equal(drawn["pool (uni_weth_usdc)"],
                                  ref.amm_price.sel(protocol="uni_weth_usdc").values)
    np.testing.assert_array_equal(drawn["external market"],
                                  ref.external_price.sel(asset="WETH").values)


def test_node_colours_are_losses_so_far_over_tvl_at_the_start(view, full):
    start = nodes(panels(view)[0]).get_offsets().copy()
    view.step(K)
    ax_net, _, ax_l = panels(view)
    ref = full.isel(time=slice(0, K + 1))
    tvl0 = ref.tvl.isel(time=0).values
    locked = tvl0 > 0  # the oracle locks nothing: a grey square, not coloured
    # Loss by hand: bad debt booked + value stolen + debt insolvent at hour 5.
    by_hand = (ref.bad_debt.sum("time") + ref.exploit_loss.sum("time")
               + ref.insolvent_debt.isel(time=-1)).values
    np.testing.assert_allclose(by_hand, protocol_losses(ref).values)
    share = nodes(ax_net).get_array()
    np.testing.assert_allclose(share, by_hand[locked] / tvl0[locked], rtol=1e-12)
    names = list(ref.protocol.values[locked])
    assert share[names.index("aave")] > 0.15  # the exploit took 20% of aave's cash
    assert 0 < share[names.index("loop_lender")] < 0.05  # the contagion loss
    assert nodes(ax_net).get_clim() == (0.0, 0.25)  # the fixed default scale
    np.testing.assert_array_equal(nodes(ax_net).get_offsets(), start)  # the layout holds
    # Bars: the debt liquidated per step, all protocols stacked (M USD).
    bars = sum(p.get_height() for p in ax_l.patches)
    assert bars == pytest.approx(float(ref.liquidated_value.sum()) / 1e6, rel=1e-12)
    view.vmax.value = 0.05  # the dropdown redraws the whole figure on the new scale
    assert nodes(panels(view)[0]).get_clim() == (0.0, 0.05)


def test_status_line_gives_hour_liquidations_and_bad_debt_so_far(view, full):
    step_by_clicks(view, 16, 1)
    step_by_clicks(view, 1, 4)
    ref = full.isel(time=slice(0, K + 1))
    text = view.status_text()
    assert text.startswith("hour 5 of 12, step 20 of 48 |")
    hour, end, t, n, count, repaid, bad = numbers(text)
    assert (hour, end, t, n) == (5, 12, 20, 48)
    assert count == int(ref.liquidation_count.sum()) > 0
    assert repaid == round(float(ref.liquidated_value.sum()) / 1e6, 2)
    assert bad == round(float(ref.bad_debt.sum()) / 1e6, 2) > 0
    assert view.status.value == f"<b>{text}</b>"


def test_reset_returns_to_hour_0(view):
    view.step(K)
    view.reset_button.click()
    assert view.simulation.t == 0 and view.ds.sizes["time"] == 1
    assert view.status_text().startswith("hour 0 of 12, step 0 of 48 | liquidations so far: 0 ")
    ax_net, ax_p, ax_l = panels(view)
    assert all(len(y) == 1 for y in lines(ax_p).values())
    assert not nodes(ax_net).get_array().any()  # no loss anywhere yet
    assert not ax_l.patches  # no bars
    assert not view.step_button.disabled


def test_stepping_past_the_end_stops_at_the_end(view, full):
    view.step(40)
    view.step(40)
    assert view.simulation.t == 48 and view.simulation.done
    assert view.step_button.disabled and view.run_button.disabled
    assert not view.reset_button.disabled
    view.step_button.click()  # a click that reaches the handler anyway changes nothing
    assert view.simulation.t == 48
    assert "(end of run)" in view.status_text()
    np.testing.assert_array_equal(lines(panels(view)[1])["oracle"],
                                  full.oracle_price.sel(asset="aUSDC").values)


def test_run_to_end_redraws_at_most_max_frames_times(view, monkeypatch):
    assert sim.view.MAX_FRAMES == 24  # 48 steps at step size 1 would be strides of 2
    monkeypatch.setattr(sim.view, "MAX_FRAMES", 4)  # four frames are quicker to test
    frames = []
    refresh = view.refresh
    view.refresh = lambda: (frames.append(view.simulation.t), refresh())
    view.step(6)
    frames.clear()
    view.run_button.click()  # 42 steps left: 4 strides of ceil(42 / 4) = 11, the last cut
    assert frames == [17, 28, 39, 48]
    assert view.simulation.done
    assert not view.reset_button.disabled and view.run_button.disabled
    view.step_size.value = 16  # a step size above the stride wins
    view.reset()
    frames.clear()
    view.run_to_end()
    assert frames == [16, 32, 48]


def test_picture_is_the_png_of_the_figure(view):
    view.step(4)
    assert view.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert view.image.format == "png"
    assert view.widget.children[-1] is view.image


def test_vmax_must_be_a_share():
    with pytest.raises(ValueError, match=r"vmax is a share of TVL in \(0, 1\], got 2"):
        Explorer(EXPLOIT, steps=2, vmax=2)


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_without_ipywidgets_the_import_says_how_to_install():
    out = _python("import sys; sys.modules['ipywidgets'] = None\n"
                  "try:\n    import sim.view\n"
                  "except ImportError as exc:\n    print(exc)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ('sim.view needs ipywidgets, which is not installed: run '
                                  'pip install -e ".[jupyter]" in the sim source tree '
                                  '(or pip install "ipywidgets>=8")')


def test_import_sim_does_not_import_the_view():
    out = _python("import sys, sim; print('sim.view' in sys.modules, 'ipywidgets' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
