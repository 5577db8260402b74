"""hystax: JAX RL and bandit agents for worlds whose present depends on their past.

The package root keeps imports light (the CLI's ``--help`` must be fast); the heavy
entry points are re-exported lazily:

>>> import hystax
>>> env, params = hystax.make("CartPole-v1")          # hystax.envs.make
>>> result = hystax.train("ppo", "CartPole-v1", seeds=2, total_timesteps=50_000)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "make": ("hystax.envs", "make"),
    "register": ("hystax.envs", "register"),
    "check_env": ("hystax.envs", "check_env"),
    "train": ("hystax.runner", "train"),
    "HystaxError": ("hystax.errors", "HystaxError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'hystax' has no attribute {name!r}")
