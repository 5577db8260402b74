"""POPGym's partially observed Pendulums in JAX, on gymnax's Pendulum physics.

gymnax's ``Pendulum.step_env`` integrates the same equations as gymnasium's ``PendulumEnv``
(g 10, m 1, l 1, dt 0.05, torque clipped to +-2, speed clipped to +-8, cost
``angle^2 + 0.1 thdot^2 + 0.001 u^2``), so it is reused for the dynamics; the tests check it
step for step against the numpy reference. Resets draw theta ~ U(-pi, pi), thdot ~ U(-1, 1)
as gymnasium does (own code: one PRNG call with the reset noise).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces
from gymnax.environments.classic_control import pendulum as gymnax_pendulum

from hystax.envs.popgym.control import ControlEnv, NoisyObservation, uniform_and_normal

EnvState = gymnax_pendulum.EnvState  # theta, theta_dot, last_u, time

MAX_COST = 16.2736044  # pi^2 + 0.1 * 8^2 + 0.001 * 2^2, the reference's reward floor


@struct.dataclass
class EnvParams(gymnax_pendulum.EnvParams):
    max_steps_in_episode: int = 200


class PositionOnlyPendulum(ControlEnv):
    """Pendulum observing only the angle (POPGym ``PositionOnlyPendulum``).

    - obs: ``[cos(theta), sin(theta)]`` in [-1, 1].
    - action: ``Box(-2, 2, (1,))`` torque (clipped to that range).
    - reward: gymnasium's ``-cost`` mapped affinely from [-16.27, 0] to [-1/L, 1/L].
    - episode end: never terminated; truncated after ``L`` steps.

    ====== ==============
    level  episode length
    ====== ==============
    easy   200
    medium 150
    hard   100
    ====== ==============
    """

    PHYSICS = gymnax_pendulum.Pendulum
    PARAMS = EnvParams
    LENGTHS = (200, 150, 100)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        u, noise = uniform_and_normal(key, 2, 2)
        state = EnvState(theta=jnp.pi * u[0], theta_dot=u[1], last_u=jnp.float32(0.0),
                         time=jnp.int32(0))  # theta ~ U(-pi, pi), thdot ~ U(-1, 1), as gymnasium
        return self._obs(state, noise), state

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        _, state, reward, _, _ = self._physics.step_env(key, state, action, params)
        half = MAX_COST / 2
        reward = (reward + half) / half / params.max_steps_in_episode
        obs = self.observe(key, state, action, params)
        return obs, state, reward.astype(jnp.float32), jnp.bool_(False), {}

    def _obs(self, state: EnvState, noise: jax.Array) -> jax.Array:
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta)]).astype(jnp.float32)

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-2.0, 2.0, (1,), jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)


class NoisyPositionOnlyPendulum(NoisyObservation, PositionOnlyPendulum):
    """PositionOnlyPendulum with Gaussian observation noise (POPGym
    ``NoisyPositionOnlyPendulum``).

    - obs: ``clip([cos(theta), sin(theta)] + N(0, sigma^2 I), -1, 1)``, fresh noise at reset
      and at every step. The clip matters: earlier JAX ports left it out, so observations
      left the declared [-1, 1] box.
    - action, reward, episode end: as ``PositionOnlyPendulum`` with ``L = 200`` at every level;
      sigma per level as :class:`NoisyObservation` (0.1, 0.2, 0.3).
    """

    OBS_HIGH = 1.0
