"""Continual task suites: one env, a sequence of params (one per task), same spaces, different dynamics.

A :class:`TaskSequence` holds everything a model-based continual learner needs besides data: the
env, one ``EnvParams`` per task, the spaces' sizes and bounds, and the *known* reward (and
termination) as pure jnp functions of (obs, action, next_obs) that a planner can evaluate on
*predicted* states.

>>> seq = suite("pendulum-gravity")                 # Pendulum-v1, g = 10, 12, 14, 16, 18
>>> data = collect_random(seq, task=0, key=key, steps=400)
>>> r = seq.reward_fn(data.obs, data.action, data.next_obs)     # == data.reward
>>> next_obs = seq.true_predict(seq.params[0], obs, action)     # oracle dynamics for planning
>>> mine = task_sequence("CartPole-v1", [{"masspole": 0.1}, {"masspole": 0.5}])

Actions. Every suite has a continuous action box ``[action_low, action_high]`` of size
``act_dim``; the planner and the models only see that. For a continuous (Box) env it is the env's
own action. For a ``Discrete(K)`` env (CartPole: K = 2) the box is ``[-1, 1]`` (``act_dim`` 1),
cut into K equal bins; :meth:`TaskSequence.quantize` maps a value to its bin's level
``-1 + 2 i / (K - 1)`` (CartPole: ``a >= 0`` -> +1 = push right, else -1 = push left) and
:meth:`TaskSequence.env_action` maps it to the env's int action i. Transitions store the
quantized float action, so a model never sees in-between values; a planner samples continuous
values and quantizes them (``mpc_episode(..., quantize=seq.quantize, to_env_action=seq.env_action)``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from hystax.core.errors import HystaxError, require, unknown_name
from hystax.core.transitions import Transitions
from hystax.envs.registry import make, override_params

__all__ = [
    "SUITES",
    "Rollout",
    "TaskSequence",
    "cartpole_reward",
    "cartpole_terminated",
    "collect_random",
    "pendulum_reward",
    "suite",
    "suite_names",
    "task_sequence",
]

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
"""``reward_fn(obs, action, next_obs) -> reward``: obs [..., n], action [..., m] -> [...]."""


class Rollout(NamedTuple):
    """Transitions from an env: obs [N, n], action [N, m] (float, the quantized box action),
    next_obs [N, n] (the true successor, also at episode ends: never the reset obs), reward [N],
    done [N] (the episode ended here: terminated or truncated), terminated [N] (a true terminal
    state, what a model's ``termination_fn`` predicts; False for time limits)."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    reward: jax.Array
    done: jax.Array
    terminated: jax.Array

    def transitions(self):
        """(obs, action, next_obs) as :class:`hystax.core.transitions.Transitions`."""

        return Transitions(self.obs, self.action, self.next_obs)


# --------------------------------------------------------------------------- known envs


def pendulum_reward(max_torque: float = 2.0) -> RewardFn:
    """gymnax Pendulum-v1's reward as a function of the obs *before* the step and the torque::

        -(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2),  u = clip(action, +-max_torque)

    with theta = atan2(sin, cos) from obs = [cos theta, sin theta, theta_dot]; ``next_obs`` is
    unused (gymnax scores the state the action is applied in).
    """

    def reward_fn(obs, action, next_obs=None):
        del next_obs
        theta = jnp.arctan2(obs[..., 1], obs[..., 0])  # already in [-pi, pi]
        u = jnp.clip(action[..., 0], -max_torque, max_torque)
        return -(theta ** 2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u ** 2)

    return reward_fn


def cartpole_terminated(theta_threshold: float, x_threshold: float) -> Callable[[jax.Array], jax.Array]:
    """``terminated(obs)``: the cart left [-x_threshold, x_threshold] or the pole tilted past
    ``theta_threshold`` (obs = [x, x_dot, theta, theta_dot], leading axes batched)."""

    def terminated(obs):
        x, theta = obs[..., 0], obs[..., 2]
        return (x < -x_threshold) | (x > x_threshold) | (theta < -theta_threshold) | (theta > theta_threshold)

    return terminated


def cartpole_reward(theta_threshold: float, x_threshold: float) -> RewardFn:
    """gymnax CartPole-v1's reward: 1 unless the obs *before* the step is already terminal.

    A planner also needs ``termination_fn`` (terminal ``next_obs``) to stop counting after a
    fall; with it, a predicted sequence earns the number of steps it stays up.
    """
    terminated = cartpole_terminated(theta_threshold, x_threshold)

    def reward_fn(obs, action, next_obs=None):
        del action, next_obs
        return 1.0 - terminated(obs).astype(jnp.result_type(float))

    return reward_fn


def _pendulum_known(params) -> dict[str, Any]:
    from gymnax.environments.classic_control.pendulum import EnvState

    def state_from_obs(obs, env_params):
        del env_params
        return EnvState(theta=jnp.arctan2(obs[1], obs[0]), theta_dot=obs[2],
                        last_u=jnp.zeros(()), time=0)

    return {"reward_fn": pendulum_reward(float(params.max_torque)), "termination_fn": None,
            "state_from_obs": state_from_obs}


def _cartpole_known(params) -> dict[str, Any]:
    from gymnax.environments.classic_control.cartpole import EnvState

    thr, x_thr = float(params.theta_threshold_radians), float(params.x_threshold)
    terminated = cartpole_terminated(thr, x_thr)

    def termination_fn(obs, action, next_obs):
        del obs, action
        return terminated(next_obs)

    def state_from_obs(obs, env_params):
        del env_params
        return EnvState(x=obs[0], x_dot=obs[1], theta=obs[2], theta_dot=obs[3], time=0)

    return {"reward_fn": cartpole_reward(thr, x_thr), "termination_fn": termination_fn,
            "state_from_obs": state_from_obs}


_KNOWN: dict[str, Callable[[Any], dict[str, Any]]] = {
    "Pendulum-v1": _pendulum_known,
    "CartPole-v1": _cartpole_known,
}
"""Envs whose reward, termination and obs -> state map hystax knows (used for defaults)."""

_DERIVED: dict[str, dict[str, Callable[[Any], dict[str, float]]]] = {
    "CartPole-v1": {
        "total_mass": lambda p: {"total_mass": p.masscart + p.masspole},
        "polemass_length": lambda p: {"polemass_length": p.masspole * p.length},
    },
}
"""Per env: params fields computed from others (recomputed after overrides, never overridden)."""


# --------------------------------------------------------------------------- the sequence


@dataclasses.dataclass(frozen=True, eq=False)
class TaskSequence:
    """A continual task suite: ``env`` with one ``EnvParams`` per task (see the module doc).

    Fields:
      name: the suite's name (``env_name`` for :func:`task_sequence` without ``name``).
      env_name: the registry name of the env.
      env: the gymnax-style env (shared by every task).
      params: one ``EnvParams`` per task.
      labels: one short label per task (``"g=12"``).
      obs_dim: size of the flat observation.
      act_dim: size of the continuous action box the planner and models use.
      action_low, action_high: the box's bounds, tuples of ``act_dim`` floats.
      num_discrete: K for a ``Discrete(K)`` env (the box is [-1, 1] cut into K bins), else None.
      reward_fn: ``reward_fn(obs, action, next_obs) -> reward``, pure jnp, batched over leading
        axes, or None where unknown (pass your own to :func:`task_sequence`).
      termination_fn: ``termination_fn(obs, action, next_obs) -> bool``, or None (never ends).
      state_from_obs: ``state_from_obs(obs [n], env_params) -> env state`` for the oracle
        :meth:`true_predict`, or None where the obs does not determine the state.
    """

    name: str
    env_name: str
    env: Any
    params: tuple
    labels: tuple[str, ...]
    obs_dim: int
    act_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    num_discrete: int | None = None
    reward_fn: RewardFn | None = None
    termination_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None
    state_from_obs: Callable[[jax.Array, Any], Any] | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def stacked_params(self):
        """All tasks' params stacked on a leading [num_tasks] axis (for ``jax.vmap`` over tasks)."""
        return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *self.params)

    def task_params(self, task):
        """Task ``task``'s ``EnvParams``; ``task`` an int in [0, num_tasks), or traced (then
        indexed out of :meth:`stacked_params`)."""
        if isinstance(task, jax.core.Tracer):
            return jax.tree.map(lambda x: x[task], self.stacked_params())
        require(isinstance(task, int) and not isinstance(task, bool) and 0 <= task < self.num_tasks,
                f"task must be an int in [0, {self.num_tasks}) for suite {self.name!r}, got {task!r}")
        return self.params[task]

    def quantize(self, action: jax.Array) -> jax.Array:
        """The box action a model sees: identity for a Box env; for Discrete(K) the level of
        ``action``'s bin (K equal bins of [-1, 1], levels -1 + 2i/(K-1)). Leading axes batched."""
        if self.num_discrete is None:
            return action
        index = self._bin(action)
        return (-1.0 + 2.0 * index / (self.num_discrete - 1)).astype(jnp.result_type(float))

    def env_action(self, action: jax.Array):
        """The action the env's ``step`` takes for box ``action`` [m]: itself (Box) or its bin's
        index as an int32 scalar (Discrete)."""
        if self.num_discrete is None:
            return action
        return self._bin(action)[..., 0]

    def _bin(self, action):
        k = self.num_discrete
        return jnp.clip(jnp.floor((action + 1.0) * 0.5 * k), 0, k - 1).astype(jnp.int32)

    def true_predict(self, env_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """The true next obs [n] for obs [n] and box action [m] under ``env_params``: the env's
        own step on the state rebuilt from ``obs`` (an oracle world model with the
        ``predict(params, obs, action)`` interface; ``params`` are the task's EnvParams)."""
        require(self.state_from_obs is not None,
                f"task suite {self.name!r}: env {self.env_name!r} has no obs -> state map, "
                "so there is no true_predict")
        state = self.state_from_obs(obs, env_params)
        next_obs, _, _, _, _ = self.env.step_env(jax.random.key(0), state,
                                                 self.env_action(self.quantize(action)), env_params)
        return next_obs


def _space_signature(space) -> tuple:
    """A comparable description of a gymnax space (kind, shape, dtype, bounds)."""
    if isinstance(space, spaces.Discrete):
        return ("Discrete", int(space.n))
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float64), shape)
        high = np.broadcast_to(np.asarray(space.high, np.float64), shape)
        return ("Box", shape, str(np.dtype(space.dtype)), tuple(low.ravel().tolist()),
                tuple(high.ravel().tolist()))
    return (type(space).__name__, repr(space))


def _label(override: dict[str, Any], index: int) -> str:
    if not override:
        return f"task{index}"
    return ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                    for k, v in override.items())


def task_sequence(env_name: str, overrides: list[dict[str, Any]], *, name: str | None = None,
                  labels: list[str] | None = None, reward_fn: RewardFn | None = None,
                  termination_fn=None, env_kwargs: dict[str, Any] | None = None) -> TaskSequence:
    """A :class:`TaskSequence` of ``env_name`` with one task per dict of ``EnvParams`` overrides.

    Every override must name real ``EnvParams`` fields (else HystaxError listing the valid ones);
    derived fields (CartPole's ``total_mass``, ``polemass_length``) are recomputed, never given.
    All tasks must share their observation and action spaces (kind, shape, bounds), else
    HystaxError. ``reward_fn`` / ``termination_fn`` default to hystax's known ones for
    Pendulum-v1 and CartPole-v1 and to None otherwise.

    >>> seq = task_sequence("Pendulum-v1", [{"g": 9.8}, {"g": 3.7}], labels=["earth", "mars"])
    """
    require(isinstance(overrides, (list, tuple)) and len(overrides) > 0,
            f"task_sequence: overrides must be a non-empty list of dicts (one per task), got {overrides!r}")
    env, default = make(env_name, env_kwargs=env_kwargs)
    derived = _DERIVED.get(env_name, {})
    params = []
    for i, override in enumerate(overrides):
        require(isinstance(override, dict),
                f"task_sequence: task {i}'s override must be a dict, got {type(override).__name__}")
        for field in override:
            require(field not in derived, f"task_sequence: task {i}: {field!r} of {env_name} is derived "
                    "from other fields and recomputed; override those instead")
        try:
            p = override_params(env_name, default, override)
        except HystaxError as error:
            raise HystaxError(f"task_sequence: task {i}: {error}") from None
        for compute in derived.values():
            p = p.replace(**compute(p))
        params.append(p)

    obs_spaces = [_space_signature(env.observation_space(p)) for p in params]
    act_spaces = [_space_signature(env.action_space(p)) for p in params]
    for kind, sigs in (("observation", obs_spaces), ("action", act_spaces)):
        for i, sig in enumerate(sigs):
            require(sig == sigs[0], f"task_sequence: task {i} of {env_name} has a different {kind} "
                    f"space than task 0 ({sig} vs {sigs[0]}); every task must share it")

    obs_space, act_space = env.observation_space(params[0]), env.action_space(params[0])
    require(isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1,
            f"task_sequence: {env_name} must have a flat Box observation space, got {obs_space}")
    if isinstance(act_space, spaces.Discrete):
        require(int(act_space.n) >= 2, f"task_sequence: {env_name} has a Discrete({act_space.n}) "
                "action space; need at least 2 actions")
        act_dim, low, high, num_discrete = 1, (-1.0,), (1.0,), int(act_space.n)
    elif isinstance(act_space, spaces.Box) and len(act_space.shape) == 1:
        act_dim, num_discrete = int(act_space.shape[0]), None
        low = tuple(float(x) for x in np.broadcast_to(np.asarray(act_space.low), (act_dim,)))
        high = tuple(float(x) for x in np.broadcast_to(np.asarray(act_space.high), (act_dim,)))
    else:
        raise HystaxError(f"task_sequence: {env_name} must have a Discrete or flat Box action "
                          f"space, got {act_space}")

    if labels is None:
        labels = [_label(o, i) for i, o in enumerate(overrides)]
    require(len(labels) == len(params), f"task_sequence: {len(labels)} labels for {len(params)} tasks")
    known = _KNOWN[env_name](params[0]) if env_name in _KNOWN else {}
    return TaskSequence(
        name=name or env_name, env_name=env_name, env=env, params=tuple(params),
        labels=tuple(str(x) for x in labels), obs_dim=int(obs_space.shape[0]), act_dim=act_dim,
        action_low=low, action_high=high, num_discrete=num_discrete,
        reward_fn=reward_fn if reward_fn is not None else known.get("reward_fn"),
        termination_fn=termination_fn if termination_fn is not None else known.get("termination_fn"),
        state_from_obs=known.get("state_from_obs"))


# --------------------------------------------------------------------------- suites

SUITES: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "pendulum-gravity": ("Pendulum-v1", "g", (10.0, 12.0, 14.0, 16.0, 18.0)),
    "pendulum-gravity-11": ("Pendulum-v1", "g", (10.0, 0.0, 2.0, 8.0, 12.0, 5.0, 4.0, 14.0, 9.0, 7.0, 30.0)),
    "cartpole-length": ("CartPole-v1", "length", (0.5, 0.8, 0.3, 1.0, 1.2)),
}
"""Suite name -> (env name, the EnvParams field that changes, its value per task) (HyperCRL's
pendulum gravities g = 10 + 2t and its harder 11-task list; CartPole pole lengths)."""


def suite_names() -> list[str]:
    return sorted(SUITES)


@functools.cache
def suite(name: str) -> TaskSequence:
    """The :class:`TaskSequence` called ``name`` (see :data:`SUITES`); the same object per name."""
    if not isinstance(name, str) or name not in SUITES:
        raise unknown_name("task suite", str(name), SUITES)
    env_name, field, values = SUITES[name]
    return task_sequence(env_name, [{field: v} for v in values], name=name)


def _as_sequence(seq) -> TaskSequence:
    if isinstance(seq, TaskSequence):
        return seq
    if isinstance(seq, str):
        return suite(seq)
    raise HystaxError(f"expected a TaskSequence or a suite name, got {type(seq).__name__}")


# --------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=64)
def _collector(seq: TaskSequence, steps: int):
    env = seq.env

    def run(env_params, key):  # (arrays built here: the cache may be filled under a trace)
        low, high = jnp.asarray(seq.action_low), jnp.asarray(seq.action_high)
        key, reset_key = jax.random.split(key)
        obs0, state0 = env.reset(reset_key, env_params)

        def body(carry, key):
            obs, state = carry
            act_key, step_key = jax.random.split(key)
            action = seq.quantize(jax.random.uniform(act_key, low.shape, minval=low, maxval=high))
            next_obs, next_state, reward, terminated, truncated, info = env.step(
                step_key, state, seq.env_action(action), env_params)
            true_next = info["final_observation"]
            out = Rollout(obs, action, true_next, reward.astype(jnp.result_type(float)),
                          terminated | truncated, jnp.asarray(terminated, bool))
            return (next_obs, next_state), out

        _, data = jax.lax.scan(body, (obs0, state0), jax.random.split(key, steps))
        return data

    return jax.jit(run)


def collect_random(seq: TaskSequence | str, task: int, key: jax.Array, steps: int) -> Rollout:
    """``steps`` transitions of task ``task`` under uniformly random box actions, with auto-reset.

    One jitted ``lax.scan`` (compiled once per suite and ``steps``; every task reuses it;
    ``task`` may be traced). The
    actions are uniform on the box and quantized (:meth:`TaskSequence.quantize`); ``next_obs`` is
    the true successor even where an episode ends (the next row then starts from a reset obs).
    """
    seq = _as_sequence(seq)
    require(isinstance(steps, int) and not isinstance(steps, bool) and steps > 0,
            f"collect_random: steps must be a positive int, got {steps!r}")
    return _collector(seq, steps)(seq.task_params(task), key)
