"""sim.Simulation: a run taken a few steps at a time gives what ``sim.run`` records.

``run`` is ``Simulation`` stepped to the end, so the whole-run comparison checks the
refactor; the partial comparisons check that ``dataset()`` in the middle of a run holds the
first steps of the same run, and say where (and why) it may differ in shape.
"""

import mesa
import numpy as np
import pytest
import xarray as xr

import sim
from tests.support import shipped

EXPLOIT = shipped("contagion_exploit.toml")


@pytest.fixture(scope="module")
def full():
    return sim.run(EXPLOIT)  # 48 steps of 15 minutes; the exploit hits aave at hour 4


def test_stepped_to_the_end_it_is_the_run(full):
    with sim.Simulation(EXPLOIT) as s:
        ds = s.step(s.n_steps).dataset()
    xr.testing.assert_identical(ds, full)


# 0: nothing happened yet; 3: before the exploit; 16: the exploit's step (step 16 = hour 4,
# the cascade at loop_lender); 17: just after; 30: later, calm again.
@pytest.mark.parametrize("k", [0, 3, 16, 17, 30])
def test_the_first_k_steps_are_the_runs_first_k_steps(full, k):
    with sim.Simulation(EXPLOIT) as s:
        part = s.step(k).dataset()
        assert s.t == k and s.hour == k * 0.25 and not s.done
    ref = full.isel(time=slice(0, k + 1))
    assert part.attrs == ref.attrs
    assert list(part.data_vars) == list(ref.data_vars)  # debt_rank included
    # The round dim is cut to the longest cascade so far (the whole run's is 5 rounds, at
    # the exploit; before it 1), so a partial dataset may have fewer rounds. The rounds it
    # leaves out had no liquidation up to step k in the whole run either.
    used = int(ref.cascade_rounds.max()) or 1
    assert part.sizes["round"] == used
    assert (ref.round_liquidations.isel(round=slice(used, None)) == 0).all()
    # Everything else, debt_rank too (computed from each step's own values), is the same,
    # bit for bit: the market's price paths are drawn for all 48 steps up front.
    xr.testing.assert_identical(part, ref.isel(round=slice(0, used)))


def test_before_the_exploit_the_round_dim_is_shorter_than_the_runs(full):
    with sim.Simulation(EXPLOIT) as s:
        before = s.step(15).dataset()
        after = s.step(1).dataset()
    assert full.sizes["round"] == 5
    assert before.sizes["round"] == 1 and after.sizes["round"] == 5
    assert float(after.exploit_loss.sel(protocol="aave").sum()) > 0
    assert float(before.exploit_loss.sel(protocol="aave").sum()) == 0


def test_stepping_past_the_end_stops_at_the_end():
    with sim.Simulation(EXPLOIT, steps=6) as s:
        assert s.n_steps == 6 and s.step(4).t == 4
        assert s.step(10).t == 6 and s.done
        assert s.step().t == 6
        assert s.dataset().sizes["time"] == 7
        np.testing.assert_array_equal(s.dataset().time.values, np.arange(7) * 0.25)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_step_takes_a_whole_number_of_steps(bad):
    with sim.Simulation(EXPLOIT, steps=2) as s:
        with pytest.raises(ValueError, match="n must be a whole number >= 0"):
            s.step(bad)
        assert s.t == 0


def test_close_releases_the_model_and_a_closed_simulation_says_so():
    s = sim.Simulation(EXPLOIT, steps=2)
    model = s._model
    assert len(model.agents) > 0 and model in getattr(mesa.Agent, "_ids", {model: 0})
    s.close()
    s.close()  # twice is fine
    assert len(model.agents) == 0 and model not in getattr(mesa.Agent, "_ids", {})
    with pytest.raises(RuntimeError, match="Simulation is closed"):
        s.step()
    assert "closed" in repr(s)


def test_run_calls_progress_once_per_step():
    calls = []
    sim.run(EXPLOIT, steps=5, progress=calls.append)
    assert calls == [1] * 5
