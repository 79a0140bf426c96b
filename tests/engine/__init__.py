"""Tests of sim/engine/: the numba kernels, against hand values, published formulas and the
plain-Python twins of tests/reference.py.
"""
