"""Tests of sim/agents/: each agent kind's decision rule, by hand."""
