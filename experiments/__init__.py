"""Experiment scripts and benchmarks (``python -m hystax.experiments.bench_ppo``)."""
