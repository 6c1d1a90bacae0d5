"""Benchmarks, never part of the test suite: `python -m bench` runs every bench/*.py with a main()."""

__all__: list[str] = []
