"""Experiment scripts and benchmarks (``python -m hystax.experiments.bench.bench_ppo``)."""
