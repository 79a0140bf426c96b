"""Numba kernels: bulk arithmetic over structure-of-arrays tables.

Kernels take numpy arrays, scalars and named tables of arrays (``tables``), write into
arrays they are given, and hold no Python objects. They import only numpy, numba and the
standard library (``math``, ``collections``), so the layers above (protocols, agents, model)
can call them without cycles. Each kernel has a slow, obviously
correct twin in ``tests/reference.py`` that the tests compare it against.
"""
