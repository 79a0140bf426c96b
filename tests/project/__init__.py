"""Cross-cutting tests: layering, the architecture map, benchmarks, hostile inputs, output
safety, warnings, regressions.
"""
