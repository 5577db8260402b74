"""Every experiment and benchmark the ``hystax`` command runs: two explicit tables.

``COMMANDS`` lists the experiment commands (``hystax bandit``, ...) with their help lines;
``EXPERIMENTS`` maps the words after ``hystax`` (``"bandit dlb"``, ``"continual"``) to the module
whose ``EXPERIMENT`` (an :class:`~hystax.experiments.experiment.Experiment`) runs it;
``BENCHMARKS`` maps ``hystax bench NAME`` to the module whose ``main(quick, out, progress)``
runs it. Modules are imported only when their command runs, so ``hystax --help`` stays fast.

Adding an experiment: a module with an ``EXPERIMENT``, and one line here.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple


class Entry(NamedTuple):
    """A registered command: the module that runs it and a one-line summary."""

    module: str
    summary: str


COMMANDS: dict[str, str] = {
    "bandit": "bandit experiments (hystax bandit dlb --preset real --seeds 10; "
              "hystax bandit lsd --preset laforgue-main --seeds 20)",
    "continual": "continual world models on a task suite (hystax continual --suite "
                 "pendulum-gravity --method hnet)",
    "losse": "Losse-FTL online world models (hystax losse regression; "
             "hystax losse dyna --env CartPole-v1)",
    "icrl": "in-context RL experiments (hystax icrl popgym --set breadth; "
            "hystax icrl meta --env meta/CartPole; hystax icrl bandits)",
}
"""``hystax COMMAND``: its help line; the experiments under it are the ``EXPERIMENTS`` keys
that start with it."""

EXPERIMENTS: dict[str, Entry] = {
    "bandit dlb": Entry("hystax.experiments.bandit_dlb", "dynamical linear bandits: regret curves"),
    "bandit lsd": Entry("hystax.experiments.bandit_lsd", "LSD bandits: planners and learners"),
    "continual": Entry("hystax.experiments.continual",
                       "continual world models: forgetting offline, MBRL online"),
    "losse regression": Entry("hystax.experiments.losse_regression",
                              "single-pass 1-D regression under covariate shift"),
    "losse dyna": Entry("hystax.experiments.losse_dyna", "Dyna-DQN with online world models"),
    "icrl popgym": Entry("hystax.experiments.popgym_mmer", "memory models on POPGym (MMER)"),
    "icrl meta": Entry("hystax.experiments.meta_rl", "in-context adaptation on meta-RL tasks"),
    "icrl bandits": Entry("hystax.experiments.incontext_bandits",
                          "in-context bandit agents against the planners (meta/DLB, meta/LSD)"),
}

BENCHMARKS: dict[str, Entry] = {
    "ppo": Entry("hystax.experiments.bench.bench_ppo", "PPO throughput, runner overhead"),
    "memory": Entry("hystax.experiments.bench.bench_memory",
                    "memory layers, recurrent-PPO throughput"),
    "bandits": Entry("hystax.experiments.bench.bench_bandits", "DynLin-UCB: jax vs numpy"),
    "lsd": Entry("hystax.experiments.bench.bench_lsd", "LSD planners and learners"),
    "continual": Entry("hystax.experiments.bench.bench_continual",
                       "CEM plans/s, model updates, memory vs tasks"),
    "losse": Entry("hystax.experiments.bench.bench_losse", "Losse-FTL update time vs D"),
    "gpu": Entry("hystax.experiments.bench.gpu_suite",
                 "the GPU suite: paper-config PPO, layers, PPO vs env ceiling, bandits, Losse"),
}


def names(command: str) -> list[str]:
    """The experiments under ``hystax COMMAND`` (``["dlb", "lsd"]`` for ``bandit``); ``[]`` for
    a command that is one experiment (``continual``)."""
    return [key.partition(" ")[2] for key in EXPERIMENTS
            if key.partition(" ")[0] == command and " " in key]


def experiment(key: str):
    """The :class:`~hystax.experiments.experiment.Experiment` registered as ``key``."""
    return importlib.import_module(EXPERIMENTS[key].module).EXPERIMENT


def benchmark(name: str):
    """The module of benchmark ``name`` (its ``main(quick, out, progress)`` runs it)."""
    return importlib.import_module(BENCHMARKS[name].module)
