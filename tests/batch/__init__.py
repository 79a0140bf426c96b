"""Tests of sim/batch/ (design, runner, summary, sensitivity) and sim/store.py."""
