"""Tests of the interfaces: sim/api.py (Simulation), sim/cli.py, sim/charts.py, sim/plots.py,
sim/view.py, sim/progress.py, and the notebooks.
"""
