"""hystax environments: a registry over gymnax's, wrappers, and ``check_env`` for custom envs.

>>> from hystax.envs import make, check_env, BatchEnv
>>> env, params = make("CartPole-v1", max_steps_in_episode=200)
>>> check_env(env, params)
>>> batch = BatchEnv(env, num_envs=8)
"""

from hystax.envs import dlb as _dlb
from hystax.envs import lsd as _lsd
from hystax.envs import meta as _meta
from hystax.envs import popgym as _popgym
from hystax.envs.check import check_env
from hystax.envs.registry import is_registered, make, names, register
from hystax.envs.wrappers import (
    BatchEnv,
    EpisodeStatistics,
    FlattenObservation,
    PreviousActionReward,
)

__all__ = [
    "make",
    "register",
    "names",
    "is_registered",
    "check_env",
    "EpisodeStatistics",
    "FlattenObservation",
    "PreviousActionReward",
    "BatchEnv",
]

_popgym.register_all()
_meta.register_all()
_dlb.register_all()
_lsd.register_all()
