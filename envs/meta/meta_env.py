"""The meta-RL wrapper :class:`MetaEnv`: any env family as a meta-RL task (the package doc,
:mod:`hystax.envs.meta`, describes the observation, the trials and the task splits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from hystax.core.errors import HystaxError, is_int, require
from hystax.core.spaces import flat_bounds, shape_of

__all__ = ["DEFAULT_NUM_TASKS", "MAX_TASKS", "SPLITS", "MetaEnv", "MetaParams", "MetaState",
           "SampleParams", "check_num_tasks", "check_split", "draw_task", "orthogonal",
           "split_params", "task_range"]

SPLITS = ("train", "test")
MAX_TASKS = 2**24
DEFAULT_NUM_TASKS = 2**20
"""Tasks per split by default: many, so training sees a near-continuous task distribution."""

SampleParams = Callable[[jax.Array, jax.Array], Any]
"""``sample_params(key, split) -> inner EnvParams`` (a pytree of arrays), called under jit;
``split`` is a traced int32 scalar, 0 (train) or 1 (test): branch with ``jnp.where``."""

_HIGHEST = jax.lax.Precision.HIGHEST


def orthogonal(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """A uniformly random float32 ``[rows, cols]`` matrix with orthonormal columns.

    ``rows >= cols``: ``QᵀQ = I_cols``; ``rows < cols``: orthonormal rows, ``QQᵀ = I_rows``.
    Gram-Schmidt (twice per column, for float32 orthogonality) on a Gaussian matrix: the Q of
    its QR with a positive diagonal R, which is Haar distributed. Plain array ops, no LAPACK
    call, so it is cheap to vmap on any backend.
    """
    big, small = max(rows, cols), min(rows, cols)
    gaussian = jax.random.normal(key, (big, small), jnp.float32)

    def add_column(j, q):   # columns >= j of q are still zero
        v = gaussian[:, j]
        for _ in range(2):
            v = v - jnp.dot(q, jnp.dot(v, q, precision=_HIGHEST), precision=_HIGHEST)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    q = jax.lax.fori_loop(0, small, add_column, jnp.zeros((big, small), jnp.float32))
    return q if rows >= cols else q.T


@struct.dataclass
class MetaParams(environment.EnvParams):
    """Params of :class:`MetaEnv` (build them with ``env.params_for``).

    ``split``: 0 = train tasks, 1 = held-out test tasks. ``num_tasks``: tasks per split.
    ``max_steps_in_episode``: cap on a meta-episode's steps (default: ``num_trials`` times the
    inner trial cap, so it only fires for inner envs that never end a trial).
    """

    split: int = 0
    num_tasks: int = DEFAULT_NUM_TASKS
    max_steps_in_episode: int = 2**30


@struct.dataclass
class MetaState(environment.EnvState):
    """State of one meta-episode; ``trial`` counts completed trials (= current trial index)."""

    inner: Any                   # the inner env's state
    task_params: Any             # inner EnvParams of this meta-episode's task
    obs_proj: jax.Array | None   # float32 [obs_dim, n] (None: no projection)
    act_proj: jax.Array | None   # float32 [d, d] (None: no projection)
    start_inner: Any             # inner state at the meta-reset (same_start only, else None)
    start_obs: jax.Array | None  # inner obs at the meta-reset (same_start only, else None)
    task_index: jax.Array        # int32 []
    trial: jax.Array             # int32 []
    prev_action: jax.Array       # float32 [A]
    prev_reward: jax.Array       # float32 []
    time: jax.Array              # int32 [], meta-episode steps so far


class MetaEnv(environment.Environment):
    """Turn an env family into a meta-RL task: ``num_trials`` trials of one sampled task.

    Args:
      env: the inner gymnax env (Discrete or Box actions; observation of any shape, flattened).
      sample_params: ``sample_params(key, split) -> inner EnvParams``; called under jit. The
        inner observation/action spaces must not depend on the sampled params.
      num_trials: trials per meta-episode (positive int).
      project_obs: multiply the flattened inner obs by a random orthogonal ``[obs_dim, n]``.
      project_actions: Box actions only: the policy's action ``a`` (in the inner bounds) maps to
        ``center + half * clip(Q @ ((a - center) / half), -1, 1)`` with a random orthogonal
        ``Q [d, d]``; Discrete actions raise HystaxError.
      obs_dim: projected obs size (default: the inner obs size); needs ``project_obs``.
      split: ``"train"`` or ``"test"`` (held-out tasks, see the module docstring): the split
        of ``default_params``; ``params_for`` gives the other.
      num_tasks: tasks per split in ``default_params`` (positive int, at most 2**24).
      same_start: every trial starts from the inner state of the meta-reset (as in the
        popjaxrl meta-CartPole); otherwise each trial's start is drawn afresh.
      seed: seed of the task set (``fold_in(PRNGKey(seed), index)`` is task ``index``'s key).
      name: env name (default ``"meta/<inner name>"``).

    ``step`` returns ``terminated=True`` when the meta-episode's ``num_trials`` trials are
    done (nothing follows them, so a learner must not bootstrap past them: with CartPole's +1
    per step, a bootstrapped end makes every state worth the same and leaves PPO no signal) and
    ``truncated=True`` when it is cut at ``params.max_steps_in_episode`` steps first; ``info``
    adds ``trial_index`` (int32, the trial this step belonged to), ``trial_done`` (bool, this
    step ended a trial), ``inner_terminated``/``inner_truncated`` and ``task_index``. The
    reward is the inner env's reward (float32).
    """

    def __init__(self, env: Any, sample_params: SampleParams, *, num_trials: int,
                 project_obs: bool, project_actions: bool, obs_dim: int | None = None,
                 split: str = "train", num_tasks: int = DEFAULT_NUM_TASKS,
                 same_start: bool = False, seed: int = 0, name: str | None = None):
        super().__init__()
        require(is_int(num_trials) and num_trials >= 1,
                f"MetaEnv: num_trials must be a positive int, got {num_trials!r}")
        check_split(split)
        check_num_tasks(num_tasks)
        require(callable(sample_params),
                f"MetaEnv: sample_params must be callable, got {type(sample_params).__name__}")
        require(obs_dim is None or (is_int(obs_dim) and obs_dim >= 1),
                f"MetaEnv: obs_dim must be a positive int or None, got {obs_dim!r}")
        require(obs_dim is None or project_obs,
                "MetaEnv: obs_dim needs project_obs=True (without a projection the obs "
                "keeps the inner size)")
        self._env = env
        self._sample_params = sample_params
        self.num_trials = int(num_trials)
        self.split = split
        self.num_tasks = int(num_tasks)
        self.same_start = bool(same_start)
        self.seed = int(seed)
        self._name = name

        # Constants, computed once from one concrete sample of the inner params.
        example = sample_params(jax.random.PRNGKey(0), jnp.int32(0))
        inner_obs_space = env.observation_space(example)
        action_space = env.action_space(example)
        self._inner_obs_dim = int(np.prod(shape_of(inner_obs_space.shape)))
        if isinstance(action_space, spaces.Discrete):
            require(not project_actions,
                    f"MetaEnv: project_actions=True needs a Box action space, but "
                    f"{_name(env)} has Discrete({int(action_space.n)}) actions")
            self._num_actions = int(action_space.n)
            self._action_dim = self._num_actions
            self._act_low = self._act_high = None
        elif isinstance(action_space, spaces.Box):
            low, high = flat_bounds(action_space)
            require(np.all(np.isfinite(low)) and np.all(np.isfinite(high))
                    and np.all(high > low),
                    f"MetaEnv: Box actions need finite bounds with high > low, got "
                    f"low={low}, high={high}")
            self._num_actions = None
            self._action_dim = low.size
            self._action_shape = shape_of(action_space.shape)
            self._act_low, self._act_high = low.astype(np.float32), high.astype(np.float32)
        else:
            raise HystaxError(f"MetaEnv supports Discrete and Box actions, got "
                              f"{type(action_space).__name__}")
        self.project_obs = bool(project_obs)
        self.project_actions = bool(project_actions)
        self.obs_dim = int(obs_dim) if obs_dim is not None else self._inner_obs_dim
        self._inner_space = inner_obs_space
        self._action_space = action_space
        self._base_key = jax.random.PRNGKey(self.seed)
        inner_cap = getattr(example, "max_steps_in_episode", None)
        self._max_steps = (self.num_trials * int(inner_cap)
                           if is_int(inner_cap) and self.num_trials * int(inner_cap) < 2**30
                           else 2**30)

    # --- gymnax API ----------------------------------------------------------------------

    @property
    def default_params(self) -> MetaParams:
        return self.params_for(self.split)

    def params_for(self, split: str, *, num_tasks: int | None = None,
                   max_steps_in_episode: int | None = None) -> MetaParams:
        """:class:`MetaParams` for ``split`` ("train" or "test"); unset fields take this env's
        defaults. Bad values raise HystaxError."""
        return split_params(MetaParams, split,
                            self.num_tasks if num_tasks is None else num_tasks,
                            self._max_steps if max_steps_in_episode is None
                            else max_steps_in_episode, "MetaEnv: max_steps_in_episode")

    @property
    def name(self) -> str:
        return self._name or f"meta/{_name(self._env)}"

    @property
    def num_actions(self) -> int:
        return self._action_dim

    def task_range(self, params: MetaParams) -> tuple[jax.Array, jax.Array]:
        """``[first, last)`` task indices of ``params``' split (int32 scalars)."""
        return task_range(params)

    def action_space(self, params: Any = None):
        """The inner action space (Box actions are in the same bounds, before projection)."""
        return self._action_space

    def observation_space(self, params: Any = None) -> spaces.Box:
        """Box float32 ``[obs_dim + A + 3]`` (see the module docstring for the layout)."""
        if self.project_obs:
            obs_low = np.full(self.obs_dim, -np.inf)
            obs_high = np.full(self.obs_dim, np.inf)
        else:
            obs_low, obs_high = flat_bounds(self._inner_space)
        if self._num_actions is None:
            act_low, act_high = self._act_low, self._act_high
        else:
            act_low, act_high = np.zeros(self._action_dim), np.ones(self._action_dim)
        low = np.concatenate([obs_low, act_low, [-np.inf, 0.0, 0.0]]).astype(np.float32)
        high = np.concatenate([obs_high, act_high, [np.inf, 1.0, 1.0]]).astype(np.float32)
        return spaces.Box(low, high, low.shape, jnp.float32)

    def task(self, index: jax.Array | int, params: MetaParams | None = None
             ) -> tuple[Any, jax.Array | None, jax.Array | None]:
        """Task ``index`` -> ``(inner params, obs_proj [obs_dim, n] | None, act_proj [d, d] |
        None)``, deterministic in ``(seed, index)``; indices ``>= params.num_tasks`` are the
        held-out (test) tasks, whose params come from the test ranges."""
        params = self.default_params if params is None else params
        index = jnp.asarray(index, jnp.int32)
        split = (index >= jnp.asarray(params.num_tasks, jnp.int32)).astype(jnp.int32)
        return self._task(index, split)

    def _task(self, index: jax.Array, split: jax.Array):
        key = jax.random.fold_in(self._base_key, index)
        params_key, obs_key, act_key = jax.random.split(key, 3)
        params = _arrays(self._sample_params(params_key, split))
        obs_proj = (orthogonal(obs_key, self.obs_dim, self._inner_obs_dim)
                    if self.project_obs else None)
        act_proj = (orthogonal(act_key, self._action_dim, self._action_dim)
                    if self.project_actions else None)
        return params, obs_proj, act_proj

    def reset_env(self, key: jax.Array, params: MetaParams) -> tuple[jax.Array, MetaState]:
        """New meta-episode: draw a task of this split, reset the inner env with its params."""
        task_key, inner_key = jax.random.split(key)
        index = draw_task(task_key, params)
        split = jnp.asarray(params.split, jnp.int32)
        task_params, obs_proj, act_proj = self._task(index, split)
        inner_obs, inner = self._env.reset(inner_key, task_params)
        inner, inner_obs = _arrays(inner), jnp.asarray(inner_obs)
        state = MetaState(
            inner=inner, task_params=task_params, obs_proj=obs_proj, act_proj=act_proj,
            start_inner=inner if self.same_start else None,
            start_obs=inner_obs if self.same_start else None, task_index=index,
            trial=jnp.int32(0), prev_action=jnp.zeros((self._action_dim,), jnp.float32),
            prev_reward=jnp.float32(0.0), time=jnp.int32(0))
        obs = self._observe(inner_obs, obs_proj, state.prev_action, state.prev_reward,
                            trial_flag=0.0, first_flag=1.0)
        return obs, state

    def step_env(self, key: jax.Array, state: MetaState, action: Any, params: MetaParams):
        """One inner step; a trial's end resets the inner env with the same task."""
        features = self._action_features(action)
        inner_action = self._inner_action(action, state.act_proj)
        inner_obs, inner, reward, inner_term, inner_trunc, info = self._env.step(
            key, state.inner, inner_action, state.task_params)
        trial_done = jnp.logical_or(inner_term, inner_trunc)
        if self.same_start:
            inner = jax.tree.map(lambda s, x: jnp.where(trial_done, s, x),
                                 state.start_inner, inner)
            inner_obs = jnp.where(trial_done, state.start_obs, inner_obs)
        trial = state.trial + trial_done.astype(jnp.int32)
        trials_spent = trial >= self.num_trials
        meta_done = jnp.logical_or(trials_spent, state.time + 1 >= params.max_steps_in_episode)
        # At the meta-episode's end the obs is the last trial's terminal obs (gymnax puts it in
        # info["final_observation"] and then resets the whole meta-episode).
        inner_obs = jnp.where(meta_done, info["final_observation"], inner_obs)
        reward = jnp.asarray(reward, jnp.float32).reshape(())
        new_state = state.replace(
            inner=_arrays(inner), trial=trial, prev_action=features, prev_reward=reward,
            time=state.time + 1)
        trial_flag = jnp.logical_and(trial_done, jnp.logical_not(meta_done))
        obs = self._observe(inner_obs, state.obs_proj, features, reward,
                            trial_flag=trial_flag.astype(jnp.float32), first_flag=0.0)
        step_info = {
            "trial_index": state.trial,
            "trial_done": trial_done,
            "inner_terminated": jnp.asarray(inner_term, bool),
            "inner_truncated": jnp.asarray(inner_trunc, bool),
            "task_index": state.task_index,
        }
        return obs, new_state, reward, trials_spent, step_info

    def is_truncated(self, state: MetaState, params: MetaParams) -> jax.Array:
        """The step cap cut the meta-episode before its trials were done."""
        return jnp.logical_and(state.time >= params.max_steps_in_episode,
                               state.trial < self.num_trials)

    def is_terminated(self, state: MetaState, params: MetaParams) -> jax.Array:
        """The meta-episode's ``num_trials`` trials are done."""
        return state.trial >= self.num_trials

    # --- helpers ---------------------------------------------------------------------------

    def _observe(self, inner_obs, obs_proj, action_features, reward, trial_flag, first_flag):
        """float32 [obs_dim + A + 3]."""
        flat = jnp.reshape(inner_obs, (-1,)).astype(jnp.float32)
        if obs_proj is not None:
            flat = jnp.dot(obs_proj, flat, precision=_HIGHEST)
        return jnp.concatenate([
            flat, action_features,
            jnp.reshape(reward, (1,)).astype(jnp.float32),
            jnp.reshape(trial_flag, (1,)).astype(jnp.float32),
            jnp.reshape(first_flag, (1,)).astype(jnp.float32),
        ])

    def _action_features(self, action: Any) -> jax.Array:
        """float32 [A]: one-hot (Discrete) or the policy's clipped action (Box)."""
        if self._num_actions is not None:
            return jax.nn.one_hot(action, self._num_actions, dtype=jnp.float32)
        flat = jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))
        return jnp.clip(flat, self._act_low, self._act_high)

    def _inner_action(self, action: Any, act_proj: jax.Array | None) -> Any:
        """The inner env's action: rotated about the Box's center, clipped to its bounds."""
        if act_proj is None:
            return action
        center = (self._act_high + self._act_low) / 2
        half = (self._act_high - self._act_low) / 2
        unit = (jnp.reshape(jnp.asarray(action, jnp.float32), (-1,)) - center) / half
        inner = center + half * jnp.clip(jnp.dot(act_proj, unit, precision=_HIGHEST), -1, 1)
        return jnp.reshape(inner, self._action_shape)


def task_range(params: Any) -> tuple[jax.Array, jax.Array]:
    """``[first, last)`` task indices (int32 scalars) of the split ``params.split`` with
    ``params.num_tasks`` tasks per split: train ``[0, N)``, test ``[N, 2N)``."""
    first = jnp.asarray(params.split, jnp.int32) * jnp.asarray(params.num_tasks, jnp.int32)
    return first, first + jnp.asarray(params.num_tasks, jnp.int32)


def draw_task(key: jax.Array, params: Any) -> jax.Array:
    """A task index (int32 []) uniform on :func:`task_range` up to a modulo bias below
    ``num_tasks / 2**32 <= 2**-8``."""
    first, last = task_range(params)
    offset = jax.random.bits(key, (), jnp.uint32) % (last - first).astype(jnp.uint32)
    return first + offset.astype(jnp.int32)


def split_params(params_type: type, split: str, num_tasks: Any, max_steps: Any, what: str):
    """``params_type(split=..., num_tasks=..., max_steps_in_episode=...)`` after the checks
    (``what`` names the step cap in its error)."""
    check_split(split)
    check_num_tasks(num_tasks)
    require(is_int(max_steps) and max_steps >= 1,
            f"{what} must be a positive int, got {max_steps!r}")
    return params_type(split=SPLITS.index(split), num_tasks=int(num_tasks),
                       max_steps_in_episode=int(max_steps))


def check_split(split: Any) -> None:
    """HystaxError unless ``split`` is one of :data:`SPLITS`."""
    require(isinstance(split, str) and split in SPLITS,
            f"MetaEnv: unknown split {split!r} (valid: {', '.join(SPLITS)})")


def check_num_tasks(num_tasks: Any) -> None:
    """HystaxError unless ``num_tasks`` is an int in ``[1, MAX_TASKS]``."""
    require(is_int(num_tasks) and 1 <= num_tasks <= MAX_TASKS,
            f"MetaEnv: num_tasks must be an int in [1, 2**24], got {num_tasks!r}")


def _name(env: Any) -> str:
    name = getattr(env, "name", None)
    return name if isinstance(name, str) else type(env).__name__


def _arrays(tree: Any) -> Any:
    """Every leaf as a strongly typed array (python float -> float32, int -> int32), so the
    meta state has the same dtypes from ``reset`` and ``step``."""
    return jax.tree.map(_strong, tree)


def _strong(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return jnp.asarray(x, dtype=x.dtype)
