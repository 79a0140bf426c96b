"""Tests of sim/metrics/: contagion metrics on plain arrays."""
