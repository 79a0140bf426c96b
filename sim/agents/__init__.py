"""Agents decide.

Each kind is a ``mesa.Agent`` subclass that owns rows of a table; the every-step rule of a
kind is vectorised over its table (``act``), and protocols enforce the rules of every
operation it asks for.
"""
