"""Numba kernels: bulk arithmetic over structure-of-arrays tables.

Kernels take numpy arrays and scalars, write into arrays they are given, and hold no
Python objects. They import only numpy and numba, so the layers above (protocols,
agents, model) can call them without cycles. Each kernel has a slow, obviously
correct twin in ``tests/reference.py`` that the tests compare it against.
"""
