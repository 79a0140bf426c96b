"""Tests of sim/protocols/: each protocol's rules and balances, driven directly (no model)."""
