"""What the POPGym CartPole and Pendulum variants share: levels, gymnax physics, observe."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment

from hystax.envs.popgym import LEVELS, level_index

_OPEN_LOW = float(np.nextafter(np.float32(-1), np.float32(0)))  # as jax.random.normal uses


def uniform_and_normal(key: jax.Array, n_uniform: int, n_normal: int):
    """``n_uniform`` U(-1, 1) and ``n_normal`` N(0, 1) variates from one PRNG call.

    Every PRNG call in ``reset_env`` adds compile time to each jitted, auto-resetting
    ``step``; one call serves the start state and the first observation's noise. The
    normals are made as ``jax.random.normal`` makes them: sqrt(2) * erf_inv(U(-1, 1))."""
    u = jax.random.uniform(key, (n_uniform + n_normal,), minval=_OPEN_LOW, maxval=1.0)
    return u[:n_uniform], jnp.sqrt(2.0) * jax.lax.erf_inv(u[n_uniform:])


class ControlEnv(environment.Environment):
    """Base of the partially observed classic-control ports.

    A subclass sets ``PHYSICS`` (the gymnax env whose ``step_env`` it reuses), ``PARAMS`` (its
    ``EnvParams``), ``LENGTHS`` (episode length L per level) and ``SIGMAS`` (observation
    noise per level), and defines ``_obs(state, noise) -> obs``.
    """

    PHYSICS: ClassVar[type]
    PARAMS: ClassVar[type]
    LENGTHS: ClassVar[tuple[int, int, int]]
    SIGMAS: ClassVar[tuple[float, float, float]] = (0.0, 0.0, 0.0)

    def __init__(self, level: str = "easy"):
        super().__init__()
        index = level_index(level, type(self).__name__)
        self.level = LEVELS[index]
        self.max_episode_length = self.LENGTHS[index]
        self.noise_sigma = self.SIGMAS[index]
        self._physics = self.PHYSICS()

    @property
    def default_params(self):
        return self.PARAMS(max_steps_in_episode=self.max_episode_length)

    def observe(self, key: jax.Array, state: Any, action: Any, params: Any) -> jax.Array:
        """The observation of ``state``, with fresh noise from ``key`` if the variant is noisy."""
        noise = jax.random.normal(key, (2,)) if self.noise_sigma else jnp.zeros(2)
        return self._obs(state, noise)

    @property
    def name(self) -> str:
        return f"popgym/{type(self).__name__}{self.level.capitalize()}"


class NoisyObservation:
    """Mixin for the POPGym ``Noisy...`` variants (put it before the variant it makes noisy):
    the observation plus N(0, sigma² I) noise, clipped to the box [-OBS_HIGH, OBS_HIGH], with
    ``L = 200`` at every level.

    ====== =====
    level  sigma
    ====== =====
    easy   0.1
    medium 0.2
    hard   0.3
    ====== =====
    """

    LENGTHS = (200, 200, 200)
    SIGMAS = (0.1, 0.2, 0.3)
    OBS_HIGH: ClassVar[Any]

    def _obs(self, state, noise):
        high = self.OBS_HIGH
        return jnp.clip(super()._obs(state, noise) + self.noise_sigma * noise, -high, high)
