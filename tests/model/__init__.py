"""Tests of sim/model/ and what it is built from: the model with each protocol kind, model-wide
invariants, exposure, systemic inputs, size; sim/market.py, sim/shocks.py, sim/network.py.
"""
