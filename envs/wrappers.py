"""Env wrappers with the gymnax 1.0 API (six-value ``step``, auto-reset inside ``step``).

Every wrapper delegates ``observation_space``/``action_space``/``default_params``/``name`` to the
env it wraps unless it changes them. Wrappers are hashable by identity, so gymnax's
``jit(static self)`` works on them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.wrappers.purerl import FlattenObservationWrapper, GymnaxWrapper, LogWrapper

from hystax.core.errors import HystaxError, require
from hystax.core.spaces import flat_bounds

__all__ = ["EpisodeStatistics", "FlattenObservation", "PreviousActionReward", "BatchEnv"]


class EpisodeStatistics(LogWrapper):
    """gymnax's ``LogWrapper``: episode return/length of the last finished episode in ``info``.

    ``info`` gains ``returned_episode_returns`` (float32 []), ``returned_episode_lengths``
    (int32 []), ``returned_episode`` (bool [], true on the step that ended an episode) and
    ``returned_episode_valid`` (bool [], true once any episode has ended).
    """


class FlattenObservation(FlattenObservationWrapper):
    """gymnax's ``FlattenObservationWrapper``: obs (and ``final_observation``) reshaped to 1-D."""


class PreviousActionReward(GymnaxWrapper):
    """Append the previous action, previous reward and an is-first flag to each observation.

    obs becomes float32 ``[obs_dim + action_dim + 2]``:
    ``concat(flatten(obs), action_features, [prev_reward], [is_first])``, where
    ``action_features`` is the one-hot previous action (Discrete, ``action_dim = n``) or the
    flattened previous action (Box). After ``reset`` and after an auto-reset inside ``step``
    the action features and reward are zero and ``is_first`` is 1. ``info["final_observation"]``
    carries the action and reward that led to it, with ``is_first`` 0.

    The state is the inner env's state (nothing extra is needed). Action/observation space
    types are read once, from ``params`` (default: the env's default params).
    ``reward_scale`` multiplies the reward *in the observation* (not the one returned), e.g. to
    bring POPGym's per-step rewards of about 1/episode length to unit scale.
    """

    def __init__(self, env: Any, params: Any = None, reward_scale: float = 1.0):
        super().__init__(env)
        require(np.isfinite(reward_scale) and reward_scale > 0,
                f"PreviousActionReward: reward_scale must be positive, got {reward_scale!r}")
        self._reward_scale = float(reward_scale)
        params = env.default_params if params is None else params
        action_space = env.action_space(params)
        obs_space = env.observation_space(params)
        if isinstance(action_space, spaces.Discrete):
            self._num_actions = int(action_space.n)
            self._action_dim = self._num_actions
        elif isinstance(action_space, spaces.Box):
            self._num_actions = None
            self._action_dim = int(np.prod(action_space.shape))
        else:
            raise HystaxError("PreviousActionReward supports Discrete and Box action spaces, "
                              f"got {type(action_space).__name__}")
        require(isinstance(obs_space, (spaces.Box, spaces.Discrete)),
                "PreviousActionReward supports Box and Discrete observation spaces, "
                f"got {type(obs_space).__name__}")

    def observation_space(self, params: Any) -> spaces.Box:
        """Box float32 ``[obs_dim + action_dim + 2]`` with the inner bounds concatenated."""
        obs_low, obs_high = flat_bounds(self._env.observation_space(params))
        action_space = self._env.action_space(params)
        if self._num_actions is None:
            act_low, act_high = flat_bounds(action_space)
        else:
            act_low, act_high = np.zeros(self._num_actions), np.ones(self._num_actions)
        low = np.concatenate([obs_low, act_low, [-np.inf, 0.0]]).astype(np.float32)
        high = np.concatenate([obs_high, act_high, [np.inf, 1.0]]).astype(np.float32)
        return spaces.Box(low, high, low.shape, jnp.float32)

    def _action_features(self, action: jax.Array) -> jax.Array:
        """float32 [action_dim]: one-hot (Discrete) or flattened (Box) action."""
        if self._num_actions is None:
            return jnp.reshape(action, (-1,)).astype(jnp.float32)
        return jax.nn.one_hot(action, self._num_actions, dtype=jnp.float32)

    def _augment(self, obs, action_features, reward, is_first) -> jax.Array:
        """float32 [obs_dim + action_dim + 2]."""
        return jnp.concatenate([
            jnp.reshape(obs, (-1,)).astype(jnp.float32),
            action_features,
            jnp.reshape(reward, (1,)).astype(jnp.float32) * self._reward_scale,
            jnp.reshape(is_first, (1,)).astype(jnp.float32),
        ])

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None):
        """-> (obs float32 [D], state); previous action/reward zero, is_first 1."""
        params = self._env.default_params if params is None else params
        obs, state = self._env.reset(key, params)
        return self._augment(obs, jnp.zeros((self._action_dim,), jnp.float32), 0.0, 1.0), state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        """-> (obs [D], state, reward, terminated, truncated, info) with augmented obs."""
        params = self._env.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params)
        done = jnp.logical_or(terminated, truncated)
        features = self._action_features(action)
        next_obs = self._augment(
            obs, jnp.where(done, 0.0, features), jnp.where(done, 0.0, reward), done)
        final_obs = self._augment(info["final_observation"], features, reward, 0.0)
        info = {**info, "final_observation": final_obs}
        return next_obs, state, reward, terminated, truncated, info


class BatchEnv(GymnaxWrapper):
    """``num_envs`` copies of ``env`` stepped together with ``jax.vmap``.

    ``reset(key, params) -> (obs [num_envs, ...], state)`` splits ``key`` into one key per env;
    ``step(key, state, actions [num_envs, ...], params)`` returns batched six values. Params are
    shared by all envs unless ``batched_params=True``, in which case every params leaf carries a
    leading ``num_envs`` axis (domain randomisation, task families). ``params=None`` always means
    the shared default params. ``observation_space``/``action_space`` describe ONE env.
    """

    def __init__(self, env: Any, num_envs: int, *, batched_params: bool = False):
        require(isinstance(num_envs, (int, np.integer)) and not isinstance(num_envs, bool)
                and num_envs >= 1, f"num_envs must be a positive int, got {num_envs!r}")
        super().__init__(env)
        self.num_envs = int(num_envs)
        self.batched_params = bool(batched_params)

    def _params_axis(self, params: Any) -> tuple[Any, int | None]:
        """(params, vmap axis of params); checks the leading axis of batched params."""
        if params is None:
            return self._env.default_params, None
        if not self.batched_params:
            return params, None
        for leaf in jax.tree.leaves(params):
            shape = jnp.shape(leaf)
            require(len(shape) >= 1 and shape[0] == self.num_envs,
                    f"BatchEnv(batched_params=True) needs params leaves with leading axis "
                    f"{self.num_envs}, got shape {tuple(shape)}")
        return params, 0

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None):
        """-> (obs [num_envs, ...], batched state)."""
        params, axis = self._params_axis(params)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.reset, in_axes=(0, axis))(keys, params)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        """-> (obs [num_envs, ...], state, reward [num_envs], terminated [num_envs],
        truncated [num_envs], info with [num_envs, ...] leaves)."""
        for leaf in jax.tree.leaves(action):
            shape = jnp.shape(leaf)
            require(len(shape) >= 1 and shape[0] == self.num_envs,
                    f"BatchEnv.step needs actions with leading axis {self.num_envs}, "
                    f"got shape {tuple(shape)}")
        params, axis = self._params_axis(params)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.step, in_axes=(0, 0, 0, axis))(keys, state, action, params)
