"""A k-armed Bernoulli bandit env (the inner env of ``meta/BernoulliBandit``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.core.errors import is_int, require

__all__ = ["BanditParams", "BanditState", "KArmedBandit"]


@struct.dataclass
class BanditState(environment.EnvState):
    time: jax.Array


@struct.dataclass
class BanditParams(environment.EnvParams):
    """``probs``: float32 [k] success probability of each arm; a trial is
    ``max_steps_in_episode`` pulls."""

    probs: jax.Array = struct.field(default_factory=lambda: jnp.full((5,), 0.5, jnp.float32))
    max_steps_in_episode: int = 1


class KArmedBandit(environment.Environment):
    """k-armed Bernoulli bandit: action ``a`` pays 1 with probability ``probs[a]``, else 0.

    The observation is the constant ``[1.0]``; an episode is ``max_steps_in_episode`` pulls.
    """

    def __init__(self, num_arms: int = 5):
        super().__init__()
        require(is_int(num_arms) and num_arms >= 2,
                f"KArmedBandit: num_arms must be an int >= 2, got {num_arms!r}")
        self.num_arms = int(num_arms)

    @property
    def default_params(self) -> BanditParams:
        return BanditParams(probs=jnp.full((self.num_arms,), 0.5, jnp.float32))

    def reset_env(self, key, params):
        return jnp.ones((1,), jnp.float32), BanditState(time=jnp.int32(0))

    def step_env(self, key, state, action, params):
        reward = jax.random.bernoulli(key, params.probs[action]).astype(jnp.float32)
        state = BanditState(time=state.time + 1)
        return jnp.ones((1,), jnp.float32), state, reward, jnp.array(False), {}

    def is_terminated(self, state, params):
        return jnp.array(False)

    @property
    def name(self) -> str:
        return f"KArmedBandit-{self.num_arms}"

    @property
    def num_actions(self) -> int:
        return self.num_arms

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_arms)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(1.0, 1.0, (1,), jnp.float32)
