"""Benchmarks: thin scripts over the shared tools of :mod:`.bench_tools` (``hystax bench NAME``)."""
