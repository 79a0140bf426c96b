"""Oracle update rules: deviation threshold, heartbeat, delay, pool spot."""

import numpy as np
import pytest

from sim.protocols.oracle import Oracles


def feed(deviation=0.01, heartbeat=4, delay=0):
    return Oracles(np.array([-1, -1]), np.array([heartbeat, 1]), np.array([deviation, 0.0]),
                   np.array([delay, 0]), np.array([100.0, 1.0]), np.zeros(0, dtype=np.int64))


def test_deviation_below_threshold_does_not_update():
    o = feed()
    hist = np.array([[100.0, 1.0], [100.5, 1.0]])
    o.update(1, hist, np.zeros(0))
    assert o.price[0] == 100.0  # 0.5% < 1%


def test_deviation_above_threshold_updates():
    o = feed()
    hist = np.array([[100.0, 1.0], [101.5, 1.0]])
    o.update(1, hist, np.zeros(0))
    assert o.price[0] == 101.5


def test_heartbeat_forces_an_update():
    o = feed(heartbeat=3)
    hist = np.array([[100.0, 1.0]] + [[100.4, 1.0]] * 4)
    for t in range(1, 5):
        o.update(t, hist[: t + 1], np.zeros(0))
        assert o.price[0] == (100.4 if t >= 3 else 100.0)


def test_delay_reads_an_old_price():
    o = feed(deviation=0.0, heartbeat=1, delay=2)
    hist = np.array([[100.0, 1.0], [90.0, 1.0], [80.0, 1.0], [70.0, 1.0]])
    o.update(3, hist, np.zeros(0))
    assert o.price[0] == 90.0


def test_pool_oracle_reads_spot_times_quote_price():
    o = Oracles(np.array([0, -1]), np.array([1, 1]), np.zeros(2), np.zeros(2, dtype=np.int64),
                np.array([3000.0, 0.99]), np.array([1]))
    o.update(1, np.array([[3000.0, 0.99], [3000.0, 0.99]]), np.array([2500.0]))
    assert o.price[0] == pytest.approx(2500.0 * 0.99)


def test_heartbeat_in_steps_rounds_up():
    assert Oracles.heartbeat_in_steps(1.0, 0.25) == 4
    assert Oracles.heartbeat_in_steps(1.0, 0.3) == 4
    assert Oracles.heartbeat_in_steps(0.1, 1.0) == 1
