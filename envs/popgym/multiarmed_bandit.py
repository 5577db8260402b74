"""POPGym MultiarmedBandit in JAX: Bernoulli arms redrawn every episode."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.envs.popgym import LEVELS, level_index


@struct.dataclass
class EnvState(environment.EnvState):
    probs: jax.Array  # (num_arms,) float32 payout probabilities, uniform on [0, 1)
    time: jax.Array   # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 200


class MultiarmedBandit(environment.Environment[EnvState, EnvParams]):
    """Episodic multi-armed bandit (POPGym ``MultiarmedBandit``).

    Each reset draws every arm's payout probability uniformly on [0, 1).

    - obs: one-hot of "the pulled arm paid out" (2 floats); ``[1, 0]`` after reset.
    - action: ``Discrete(num_arms)``, the arm to pull.
    - reward: ``+1/L`` on a payout, ``-1/L`` otherwise (``L`` = episode length).
    - episode end: never terminated; truncated after exactly ``L`` pulls.

    ====== ==== ==============
    level  arms episode length
    ====== ==== ==============
    easy   10   200
    medium 20   400
    hard   30   600
    ====== ==== ==============
    """

    LEVELS_TABLE = ((10, 200), (20, 400), (30, 600))

    def __init__(self, level: str = "easy"):
        super().__init__()
        index = level_index(level, "MultiarmedBandit")
        self.level = LEVELS[index]
        self.num_arms, self.max_episode_length = self.LEVELS_TABLE[index]

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.max_episode_length)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        probs = jax.random.uniform(key, (self.num_arms,), jnp.float32)
        return self._obs(jnp.bool_(False)), EnvState(probs=probs, time=jnp.int32(0))

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        paid = jax.random.uniform(key) < state.probs[jnp.asarray(action, jnp.int32)]
        scale = 1.0 / params.max_steps_in_episode
        reward = jnp.where(paid, scale, -scale).astype(jnp.float32)
        state = state.replace(time=state.time + 1)
        return self._obs(paid), state, reward, jnp.bool_(False), {}

    def _obs(self, paid: jax.Array) -> jax.Array:
        return jax.nn.one_hot(paid.astype(jnp.int32), 2, dtype=jnp.float32)

    @property
    def name(self) -> str:
        return f"popgym/MultiarmedBandit{self.level.capitalize()}"

    @property
    def num_actions(self) -> int:
        return self.num_arms

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_arms)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)
