"""Bandit meta-families as gymnax 1.0 envs: every episode plays a new bandit problem drawn
from a family, for ``horizon`` rounds.

>>> env = BanditFamily(sample_dlb_problem, num_arms=6, horizon=1000, observe_time=True)
>>> obs, state = env.reset(key, env.default_params)      # a train-split problem
>>> test_params = env.params_for("test")                 # held-out problems, no recompile

A problem is any pytree with the round protocol (:mod:`hystax.envs.bandit_rounds`: DLB, LSD,
your own); ``sample_problem(key)`` draws one under jit. Problems are numbered like
:class:`~hystax.envs.meta.MetaEnv`'s tasks: problem ``index`` is
``sample_problem(fold_in(PRNGKey(seed), index))``; the train split draws ``index`` from
``[0, num_tasks)``, the test split from ``[num_tasks, 2 num_tasks)``. Both splits come from
the same distribution, so the test split is the *in-distribution* held-out set; the
families' out-of-distribution sets are other problems (:mod:`.bandit_samplers`).

Observation (float32 1-D), :func:`bandit_observation`::

    previous arm one-hot [K] | previous reward [1] | t / horizon [1] (observe_time only)

zeros for the arm and the reward in round 0. A step plays ``problem.play(world, arm, noise)``
with one round of ``problem.draw_noise``; the reward is the realised one, ``info`` holds the
expected reward (``mean``) and the steady-state value (``steady``) that regrets are measured
on. The episode is truncated (never terminated) after ``horizon`` rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.core.errors import is_int, require
from hystax.envs.meta.meta_env import (
    DEFAULT_NUM_TASKS,
    check_num_tasks,
    check_split,
    draw_task,
    split_params,
)

__all__ = ["BanditFamily", "FamilyParams", "FamilyState", "bandit_observation"]


def bandit_observation(prev_arm: jax.Array, prev_reward: jax.Array, t: jax.Array,
                       horizon: int, num_arms: int, observe_time: bool,
                       observe_arm: bool = True) -> jax.Array:
    """float32 ``[K + 1 (+ 1)]``: one-hot of ``prev_arm`` (-1: zeros; left out without
    ``observe_arm``), ``prev_reward``, and ``t / horizon`` with ``observe_time``. The env
    and the in-context bandit policy (:mod:`hystax.agents.bandits.incontext`) both use it."""
    parts = [jax.nn.one_hot(prev_arm, num_arms, dtype=jnp.float32)] if observe_arm else []
    parts.append(jnp.reshape(prev_reward, (1,)).astype(jnp.float32))
    if observe_time:
        parts.append(jnp.reshape(jnp.asarray(t, jnp.float32) / horizon, (1,)))
    return jnp.concatenate(parts)


@struct.dataclass
class FamilyParams(environment.EnvParams):
    """``split``: 0 = train problems, 1 = held-out problems; ``num_tasks`` per split;
    ``max_steps_in_episode``: the horizon T."""

    split: int = 0
    num_tasks: int = DEFAULT_NUM_TASKS
    max_steps_in_episode: int = 1000


@struct.dataclass
class FamilyState(environment.EnvState):
    """One episode: its problem (a pytree), the problem's state (DLB: x [n]; LSD: z [K]), the
    previous arm (-1 before round 0) and reward, and the problem's index."""

    problem: Any
    world: Any
    prev_arm: jax.Array      # int32 []
    prev_reward: jax.Array   # float32 []
    task_index: jax.Array    # int32 []


class BanditFamily(environment.Environment):
    """A family of bandit problems as one env (see the module doc).

    Args:
      sample_problem: ``key -> problem`` (round protocol), pure and jit-able; every problem
        has ``num_arms`` arms.
      num_arms: K, the actions (Discrete(K)).
      horizon: rounds per episode (the default ``max_steps_in_episode``).
      observe_time: append ``t / horizon`` to the observation.
      observe_arm: put the previous arm's one-hot in the observation.
      reward_bounds: the observation space's bounds on the reward.
      split, num_tasks, seed, name: as :class:`~hystax.envs.meta.MetaEnv`'s.
    """

    def __init__(self, sample_problem: Callable[[jax.Array], Any], *, num_arms: int,
                 horizon: int, observe_time: bool, observe_arm: bool = True,
                 reward_bounds: tuple[float, float] = (-jnp.inf, jnp.inf),
                 split: str = "train", num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0,
                 name: str = "meta/bandit"):
        super().__init__()
        require(callable(sample_problem), f"{name}: sample_problem must be callable")
        require(is_int(num_arms) and num_arms >= 1,
                f"{name}: num_arms must be a positive int, got {num_arms!r}")
        require(is_int(horizon) and horizon >= 1,
                f"{name}: horizon must be a positive int, got {horizon!r}")
        check_split(split)
        check_num_tasks(num_tasks)
        require(is_int(seed), f"{name}: seed must be an int, got {seed!r}")
        self.sample_problem = sample_problem
        self._num_arms, self.horizon = int(num_arms), int(horizon)
        self.observe_time, self.observe_arm = bool(observe_time), bool(observe_arm)
        self.reward_bounds = tuple(float(b) for b in reward_bounds)
        self.split, self.num_tasks, self.seed = split, int(num_tasks), int(seed)
        self._name = name

    # --- gymnax API ----------------------------------------------------------------------

    @property
    def default_params(self) -> FamilyParams:
        return self.params_for(self.split)

    def params_for(self, split: str, *, num_tasks: int | None = None,
                   horizon: int | None = None) -> FamilyParams:
        """:class:`FamilyParams` of ``split`` ("train" or "test"); ``horizon`` cuts episodes
        elsewhere than the family's T, while the observation's t / T keeps the family's."""
        return split_params(FamilyParams, split,
                            self.num_tasks if num_tasks is None else num_tasks,
                            self.horizon if horizon is None else horizon,
                            f"{self._name}: horizon")

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._num_arms

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_arms)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """Box float32 ``[K + 1 (+ 1)]`` (see :func:`bandit_observation`)."""
        arms = self._num_arms * self.observe_arm
        low = [0.0] * arms + [self.reward_bounds[0]] + [0.0] * self.observe_time
        high = [1.0] * arms + [self.reward_bounds[1]] + [1.0] * self.observe_time
        return spaces.Box(jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32),
                          (len(low),), jnp.float32)

    def problem(self, index: jax.Array | int) -> Any:
        """Problem ``index`` (deterministic in ``(seed, index)``; indices ``>= num_tasks`` are
        the held-out ones of ``default_params``)."""
        return self.sample_problem(jax.random.fold_in(jax.random.PRNGKey(self.seed), index))

    def observe(self, prev_arm, prev_reward, t) -> jax.Array:
        """:func:`bandit_observation` with this family's settings."""
        return bandit_observation(prev_arm, prev_reward, t, self.horizon, self._num_arms,
                                  self.observe_time, self.observe_arm)

    def reset_env(self, key: jax.Array, params: FamilyParams) -> tuple[jax.Array, FamilyState]:
        index = draw_task(key, params)
        problem = self.problem(index)
        state = FamilyState(time=jnp.int32(0), problem=problem, world=problem.initial_state(),
                            prev_arm=jnp.int32(-1), prev_reward=jnp.float32(0.0),
                            task_index=index)
        return self.observe(state.prev_arm, state.prev_reward, 0), state

    def step_env(self, key: jax.Array, state: FamilyState, action: Any, params: FamilyParams):
        arm = jnp.asarray(action, jnp.int32)
        noise = jax.tree.map(lambda x: x[0], state.problem.draw_noise(key, 1))
        mean, reward, steady, world = state.problem.play(state.world, arm, noise)
        reward = jnp.asarray(reward, jnp.float32)
        world = jax.tree.map(lambda new, old: new.astype(old.dtype), world, state.world)
        new = state.replace(time=state.time + 1, world=world, prev_arm=arm, prev_reward=reward)
        info = {"mean": jnp.asarray(mean, jnp.float32),
                "steady": jnp.asarray(steady, jnp.float32), "task_index": state.task_index}
        return self.observe(arm, reward, new.time), new, reward, jnp.array(False), info

    def is_terminated(self, state: FamilyState, params: FamilyParams) -> jax.Array:
        return jnp.array(False)

    def is_truncated(self, state: FamilyState, params: FamilyParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode
