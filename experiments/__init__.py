"""Experiments and benchmarks, the top layer below the ``hystax`` command.

- one module per experiment, each an :class:`~hystax.experiments.experiment.Experiment`
  (validate -> run -> summarise -> write), listed in :mod:`hystax.experiments.experiment_registry`;
- :mod:`hystax.experiments.reference`: plain reference learners the JAX ones are checked and
  timed against;
- :mod:`hystax.experiments.bench`: benchmarks over shared tools
  (``python -m hystax.experiments.bench.bench_ppo`` or ``hystax bench ppo``).
"""
