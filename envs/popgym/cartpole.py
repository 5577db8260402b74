"""POPGym's partially observed CartPoles in JAX, on gymnax's CartPole physics.

gymnax's ``CartPole.step_env`` integrates the same equations as gymnasium's ``CartPoleEnv``
(explicit Euler, tau 0.02, force 10, the same masses and lengths and the same failure
thresholds |x| > 2.4, |theta| > 12 degrees), so it is reused for the dynamics; the tests
check this step for step against the numpy reference. gymnax computes in float32 where
gymnasium uses float64, so trajectories agree to float32 rounding. Resets draw the start
state U(-0.05, 0.05)^4 as gymnasium does (own code: one PRNG call with the reset noise).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole as gymnax_cartpole

from hystax.envs.popgym.control import ControlEnv, NoisyObservation, uniform_and_normal

EnvState = gymnax_cartpole.EnvState  # x, x_dot, theta, theta_dot, time

X_HIGH = 2.4 * 2                           # the reference's observation bound on x
THETA_HIGH = 12 * 2 * math.pi / 360 * 2    # ... and on theta
@struct.dataclass
class EnvParams(gymnax_cartpole.EnvParams):
    max_steps_in_episode: int = 200


class _CartPole(ControlEnv):
    """Shared CartPole core: physics, reward, episode ends; subclasses choose the obs.

    - action: ``Discrete(2)``, push left (0) or right (1).
    - reward: ``1/L`` every step, the failing step included (gymnasium pays 1 there and
      POPGym maps 1 to ``1/L``); ``-1`` only for stepping a state that had already failed,
      which auto-reset never does. Episode returns thus lie in [0, 1] (1 for balancing
      ``L`` steps). popgym's reward transform maps a zero reward to ``-1``, seemingly as a
      failure penalty, but gymnasium never pays zero on the failing step; the port follows
      what the reference actually returns.
    - episode end: terminated when |x| > 2.4 or |theta| > 12 degrees; truncated after ``L``
      steps (both may hold on the same step, as in the reference).
    """

    PHYSICS = gymnax_cartpole.CartPole
    PARAMS = EnvParams
    LENGTHS = (200, 400, 600)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        u, noise = uniform_and_normal(key, 4, 2)
        s = 0.05 * u  # U(-0.05, 0.05) each, as gymnasium
        state = EnvState(x=s[0], x_dot=s[1], theta=s[2], theta_dot=s[3], time=jnp.int32(0))
        return self._obs(state, noise), state

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        _, state, reward, terminated, _ = self._physics.step_env(key, state, action, params)
        reward = jnp.where(reward > 0, 1.0 / params.max_steps_in_episode, -1.0)
        obs = self.observe(key, state, action, params)
        return obs, state, reward.astype(jnp.float32), terminated, {}

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)


class PositionOnlyCartPole(_CartPole):
    """CartPole observing only cart position and pole angle (POPGym ``PositionOnlyCartPole``).

    - obs: ``[x, theta]``, bounds ``+-[4.8, 0.419]`` as the reference declares them.
    - action, reward, episode end: see the module's ``_CartPole``; ``L`` = 200/400/600 for
      easy/medium/hard.
    """

    def _obs(self, state, noise):
        return jnp.stack([state.x, state.theta]).astype(jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        high = jnp.array([X_HIGH, THETA_HIGH], jnp.float32)
        return spaces.Box(-high, high, (2,), jnp.float32)


class VelocityOnlyCartPole(_CartPole):
    """CartPole observing only cart and pole velocities (POPGym ``VelocityOnlyCartPole``).

    - obs: ``[x_dot, theta_dot]``, unbounded.
    - action, reward, episode end: see ``_CartPole``; ``L`` = 200/400/600.

    Reference bug: popgym's ``reset`` returns the positions ``[x, theta]`` instead of the
    velocities. All four state components start i.i.d. uniform on [-0.05, 0.05], so the
    first observation has the same law either way; this port returns the velocities at reset
    too, consistent with every later step.
    """

    def _obs(self, state, noise):
        return jnp.stack([state.x_dot, state.theta_dot]).astype(jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


class NoisyPositionOnlyCartPole(NoisyObservation, PositionOnlyCartPole):
    """PositionOnlyCartPole with Gaussian observation noise (POPGym ``NoisyPositionOnlyCartPole``).

    - obs: ``clip([x, theta] + N(0, sigma^2 I), -[4.8, 0.419], [4.8, 0.419])``, fresh noise
      at reset and at every step; sigma per level as :class:`NoisyObservation` (0.1, 0.2, 0.3).
    - action, reward, episode end: as ``PositionOnlyCartPole`` with ``L = 200`` at every level.
    """

    OBS_HIGH = np.array([X_HIGH, THETA_HIGH], np.float32)
