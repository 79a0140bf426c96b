"""Protocols: the rules. Agents ask, protocols check their rules and move balances.

Each protocol keeps its state in numpy arrays indexed by asset (or pool) so the engine's
kernels can work on them directly.
"""
