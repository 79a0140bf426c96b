"""Agents decide.

Each scenario section of an agent kind is one population, one ``mesa.Agent``
(``sim.agents.base.Population``): built by ``from_scenario``, it acts on the step's context
(``step(ctx)``) by a rule vectorised over its table, and reports its balance sheet
(``holdings``); protocols enforce the rules of every operation it asks for.
"""
