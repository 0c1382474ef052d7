"""`make bench`: timings of the dagops engine next to the baselines it must beat, written to BENCHMARKS.md.

Start with `python -m benchmarks.run --help`; see BENCHMARKS.md for the latest results.
"""
