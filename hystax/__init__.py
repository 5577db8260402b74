"""hystax: JAX RL and bandit agents for worlds whose present depends on their past.

The package root keeps imports light (the CLI's ``--help`` must be fast); the heavy
entry points are re-exported lazily:

>>> import hystax
>>> env, params = hystax.make("CartPole-v1")          # hystax.envs.make
>>> result = hystax.train("ppo", "CartPole-v1", seeds=2, total_timesteps=50_000)
>>> hystax.load(result.run_dir).evaluate(episodes=20).returns  # hystax.trained.load
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import warnings

__version__ = "0.1.0"


def _avoid_xla_cpu_lapack_deadlock() -> None:
    """jaxlib 0.10's XLA:CPU can deadlock when two batched LAPACK calls run at once (e.g. the
    QRs of vmapped orthogonal initialisers: both pool threads wait on each other). Turning
    off its concurrency-optimised scheduler avoids it. XLA reads ``XLA_FLAGS`` when the first
    backend is created, so this works as long as no computation ran before ``import hystax``.
    Other jaxlib versions are left alone (XLA rejects flags it does not know)."""
    try:
        if not importlib.metadata.version("jaxlib").startswith("0.10."):
            return
    except importlib.metadata.PackageNotFoundError:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" in flags:
        return
    os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_enable_concurrency_optimized_scheduler=false".strip()
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            warnings.warn(
                "hystax was imported after jax started its backend, so the XLA:CPU deadlock "
                "workaround cannot apply: import hystax first, or set XLA_FLAGS="
                "--xla_cpu_enable_concurrency_optimized_scheduler=false", stacklevel=3)


_avoid_xla_cpu_lapack_deadlock()

_LAZY = {
    "make": ("hystax.envs", "make"),
    "register": ("hystax.envs", "register"),
    "check_env": ("hystax.envs", "check_env"),
    "train": ("hystax.runner", "train"),
    "load": ("hystax.trained", "load"),
    "sweep": ("hystax.hparam_sweep", "sweep"),
    "HystaxError": ("hystax.core.errors", "HystaxError"),
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'hystax' has no attribute {name!r}")
