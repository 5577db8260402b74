"""Meta-RL with random projections: any env family as a meta-RL task (gymnax 1.0 API).

One episode of :class:`MetaEnv` is a *meta-episode*: a task is drawn (inner env params plus
random orthogonal projections of observations and, for Box actions, of actions) and the inner
env is played for ``num_trials`` trials of that task. A trial's end does not end the episode,
so a recurrent policy keeps its hidden state across trials and can adapt in context.

>>> env = MetaEnv(CartPole(), sample_params, num_trials=4, project_obs=True,
...               project_actions=False, split="test")
>>> obs, state = env.reset(key, env.default_params)

Observation (float32 1-D), in this order::

    projected inner obs [obs_dim] | previous action [A] | previous reward [1]
    | trial-done flag [1] | first-step flag [1]

``A`` is ``n`` (one-hot) for Discrete(n) actions and ``d`` (the policy's own action, in the
projected space, clipped to the bounds) for Box actions. The previous action/reward are zero
only on the meta-episode's first step; at a trial boundary they carry the last step of the
previous trial. The trial-done flag is 1 on the first step of every trial after the first;
the first-step flag is 1 on the first step of the meta-episode.

Tasks, and held-out tasks: a task is an integer ``index``; its params and projections come from
``fold_in(PRNGKey(seed), index)``. The train split draws ``index`` from ``[0, num_tasks)``, the
test split from ``[num_tasks, 2 * num_tasks)``, so the two task sets are disjoint and
reproducible. ``sample_params(key, split)`` also sees the split, and the built-in families use
it for out-of-distribution physics: train params lie in the middle 60% of each range, test
params in the two outer 20% tails. The split and the task count live in :class:`MetaParams`
(``split`` 0 = train, 1 = test), so one compiled ``step`` serves both splits:

>>> test_params = env.params_for("test")          # held-out tasks, same env, no recompile

Registered families (see :func:`register_all`): ``meta/CartPole``,
``meta/CartPole-SameStart``, ``meta/Pendulum``, ``meta/BernoulliBandit``. :func:`trial_returns` turns a reward stream into per-trial returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from gymnax.environments.classic_control.cartpole import CartPole
from gymnax.environments.classic_control.cartpole import EnvParams as CartPoleParams
from gymnax.environments.classic_control.pendulum import EnvParams as PendulumParams
from gymnax.environments.classic_control.pendulum import Pendulum

from hystax.core.spaces import flat_bounds, shape_of
from hystax.core.errors import HystaxError, require

__all__ = [
    "BanditParams",
    "KArmedBandit",
    "MetaEnv",
    "MetaParams",
    "MetaState",
    "bandit_family",
    "cartpole_family",
    "cartpole_same_start_family",
    "orthogonal",
    "pendulum_family",
    "register_all",
    "trial_returns",
]

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
        require(_is_int(num_trials) and num_trials >= 1,
                f"MetaEnv: num_trials must be a positive int, got {num_trials!r}")
        _check_split(split)
        _check_num_tasks(num_tasks)
        require(callable(sample_params),
                f"MetaEnv: sample_params must be callable, got {type(sample_params).__name__}")
        require(obs_dim is None or (_is_int(obs_dim) and obs_dim >= 1),
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
                           if _is_int(inner_cap) and self.num_trials * int(inner_cap) < 2**30
                           else 2**30)

    # --- gymnax API ----------------------------------------------------------------------

    @property
    def default_params(self) -> MetaParams:
        return self.params_for(self.split)

    def params_for(self, split: str, *, num_tasks: int | None = None,
                   max_steps_in_episode: int | None = None) -> MetaParams:
        """:class:`MetaParams` for ``split`` ("train" or "test"); unset fields take this env's
        defaults. Bad values raise HystaxError."""
        _check_split(split)
        num_tasks = self.num_tasks if num_tasks is None else num_tasks
        _check_num_tasks(num_tasks)
        cap = self._max_steps if max_steps_in_episode is None else max_steps_in_episode
        require(_is_int(cap) and cap >= 1,
                f"MetaEnv: max_steps_in_episode must be a positive int, got {cap!r}")
        return MetaParams(split=SPLITS.index(split), num_tasks=int(num_tasks),
                          max_steps_in_episode=int(cap))

    @property
    def name(self) -> str:
        return self._name or f"meta/{_name(self._env)}"

    @property
    def num_actions(self) -> int:
        return self._action_dim

    def task_range(self, params: MetaParams) -> tuple[jax.Array, jax.Array]:
        """``[first, last)`` task indices of ``params``' split (int32 scalars)."""
        first = jnp.asarray(params.split, jnp.int32) * jnp.asarray(params.num_tasks, jnp.int32)
        return first, first + jnp.asarray(params.num_tasks, jnp.int32)

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
        first, last = self.task_range(params)
        # uniform on [first, last) up to a modulo bias below num_tasks / 2**32 <= 2**-8
        offset = jax.random.bits(task_key, (), jnp.uint32) % (last - first).astype(jnp.uint32)
        index = first + offset.astype(jnp.int32)
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


# --- per-trial returns -------------------------------------------------------------------------


def trial_returns(rewards: Any, trial_index: Any, trial_done: Any, num_trials: int,
                  done: Any = None) -> np.ndarray:
    """Per-trial returns of the completed meta-episodes in a reward stream.

    Args:
      rewards: float ``[T]`` or ``[T, B]`` (time first; ``B`` independent envs).
      trial_index: int ``[T]``/``[T, B]``, ``info["trial_index"]``.
      trial_done: bool ``[T]``/``[T, B]``, ``info["trial_done"]``.
      num_trials: trials per meta-episode.
      done: optional bool ``[T]``/``[T, B]`` meta-episode ends (``terminated | truncated``);
        needed only when a step cap can cut a meta-episode short.

    Returns:
      float64 ``[E, num_trials]``: one row per meta-episode that completed all its trials,
      in order of env column, then time. Meta-episodes cut at the stream's ends are dropped.
    """
    require(_is_int(num_trials) and num_trials >= 1,
            f"trial_returns: num_trials must be a positive int, got {num_trials!r}")
    rewards = np.asarray(rewards, np.float64)
    require(rewards.ndim in (1, 2),
            f"trial_returns: rewards must be [T] or [T, B], got shape {rewards.shape}")
    arrays = [np.asarray(trial_index), np.asarray(trial_done, bool)]
    if done is not None:
        arrays.append(np.asarray(done, bool))
    for array in arrays:
        require(array.shape == rewards.shape,
                f"trial_returns: shapes differ: {array.shape} vs rewards {rewards.shape}")
    if rewards.ndim == 1:
        return _trial_returns_1d(rewards, *arrays, num_trials=num_trials)
    rows = [_trial_returns_1d(*(a[:, b] for a in (rewards, *arrays)), num_trials=num_trials)
            for b in range(rewards.shape[1])]
    return np.concatenate(rows, axis=0)


def _trial_returns_1d(rewards, trial_index, trial_done, done=None, *, num_trials):
    """float64 [E, num_trials] for one env's stream [T]."""
    if rewards.size == 0:
        return np.zeros((0, num_trials))
    end = np.logical_and(trial_done, trial_index == num_trials - 1)
    if done is not None:
        end = np.asarray(done, bool)
    start = np.ones_like(end)
    start[1:] = end[:-1] | (trial_index[1:] < trial_index[:-1])
    episode = np.cumsum(start) - 1
    out = np.zeros((episode[-1] + 1, num_trials))
    np.add.at(out, (episode, np.clip(trial_index, 0, num_trials - 1)), rewards)
    last = np.r_[start[1:], True]                  # last step of each episode
    complete = np.zeros(len(out), bool)
    complete[episode[last]] = end[last] & (trial_index[last] == num_trials - 1) \
        & trial_done[last]
    complete[0] &= trial_index[0] == 0             # stream began mid-episode
    return out[complete]


# --- a k-armed Bernoulli bandit ------------------------------------------------------------------


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
        require(_is_int(num_arms) and num_arms >= 2,
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


# --- families ------------------------------------------------------------------------------------

TAIL = 0.2
"""Fraction of each parameter range held out at each end for the test split."""


def split_uniform(key: jax.Array, low: Any, high: Any, split: jax.Array) -> jax.Array:
    """float32 uniform on the middle ``1 - 2 TAIL`` of ``[low, high]`` (``split`` 0, train) or
    on its two outer ``TAIL`` fractions (``split`` 1, test); the two sets are disjoint.
    ``low``/``high``: floats or arrays [P] (one draw per entry, one random call in all)."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    width = TAIL * (high - low)
    u = jax.random.uniform(key, low.shape, jnp.float32)
    train = low + width + u * (high - low - 2 * width)
    tails = low + 2 * width * u
    test = jnp.where(tails < low + width, tails, tails + high - low - 2 * width)
    return jnp.where(split == 1, test, train)


CARTPOLE_RANGES = {"length": (0.25, 1.0), "masspole": (0.05, 0.5), "masscart": (0.5, 2.0),
                   "force_mag": (5.0, 15.0)}
PENDULUM_RANGES = {"m": (0.5, 1.5), "l": (0.5, 1.5), "g": (8.0, 12.0)}
BANDIT_GOOD_RANGE = (0.5, 1.0)
BANDIT_BAD_RANGE = (0.0, 0.4)


def _sample_ranges(key: jax.Array, ranges: dict[str, tuple[float, float]], split) -> dict:
    """{name: float32 scalar} drawn by :func:`split_uniform` from each range."""
    low, high = zip(*ranges.values())
    values = split_uniform(key, low, high, split)
    return {name: values[i] for i, name in enumerate(ranges)}


def _sample_cartpole(trial_steps: int) -> SampleParams:
    base = CartPoleParams(max_steps_in_episode=trial_steps)

    def sample(key, split):
        v = _sample_ranges(key, CARTPOLE_RANGES, split)
        return base.replace(**v, total_mass=v["masscart"] + v["masspole"],
                            polemass_length=v["masspole"] * v["length"])
    return sample


def _sample_pendulum(trial_steps: int) -> SampleParams:
    base = PendulumParams(max_steps_in_episode=trial_steps)

    def sample(key, split):
        return base.replace(**_sample_ranges(key, PENDULUM_RANGES, split))
    return sample


def _sample_bandit(num_arms: int, pulls_per_trial: int) -> SampleParams:
    def sample(key, split):
        arm_key, good_key = jax.random.split(key)
        u = jax.random.uniform(arm_key, (num_arms + 1,), jnp.float32)
        good_arm = jnp.minimum(jnp.floor(u[0] * num_arms), num_arms - 1).astype(jnp.int32)
        bad = BANDIT_BAD_RANGE[0] + u[1:] * (BANDIT_BAD_RANGE[1] - BANDIT_BAD_RANGE[0])
        good = split_uniform(good_key, *BANDIT_GOOD_RANGE, split)
        probs = jnp.where(jnp.arange(num_arms) == good_arm, good, bad)
        return BanditParams(probs=probs, max_steps_in_episode=pulls_per_trial)
    return sample


def cartpole_family(*, split: str = "train", num_trials: int = 4, trial_steps: int = 200,
                    obs_dim: int | None = None, same_start: bool = False,
                    num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0,
                    name: str = "meta/CartPole") -> MetaEnv:
    """``meta/CartPole``: gymnax CartPole-v1 with random pole length, pole/cart mass and force
    (``CARTPOLE_RANGES``; test split from the held-out tails) and a random orthogonal
    projection of the 4-d observation; ``num_trials`` trials of at most ``trial_steps``."""
    require(_is_int(trial_steps) and trial_steps >= 1,
            f"meta/CartPole: trial_steps must be a positive int, got {trial_steps!r}")
    return MetaEnv(CartPole(), _sample_cartpole(int(trial_steps)), num_trials=num_trials,
                   project_obs=True, project_actions=False, obs_dim=obs_dim, split=split,
                   num_tasks=num_tasks, same_start=same_start, seed=seed, name=name)


def cartpole_same_start_family(*, split: str = "train", num_trials: int = 16,
                               trial_steps: int = 200, obs_dim: int | None = None,
                               num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0) -> MetaEnv:
    """``meta/CartPole-SameStart``: ``meta/CartPole`` with 16 trials that all start from the
    meta-reset's state (popjaxrl's meta-CartPole setting), so what one trial teaches about
    the task replays in the next."""
    return cartpole_family(split=split, num_trials=num_trials, trial_steps=trial_steps,
                           obs_dim=obs_dim, same_start=True, num_tasks=num_tasks, seed=seed,
                           name="meta/CartPole-SameStart")


def pendulum_family(*, split: str = "train", num_trials: int = 4, trial_steps: int = 200,
                    obs_dim: int | None = None, same_start: bool = False,
                    num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0) -> MetaEnv:
    """``meta/Pendulum``: gymnax Pendulum-v1 with random mass, length and gravity
    (``PENDULUM_RANGES``) and random orthogonal projections of observations and actions."""
    require(_is_int(trial_steps) and trial_steps >= 1,
            f"meta/Pendulum: trial_steps must be a positive int, got {trial_steps!r}")
    return MetaEnv(Pendulum(), _sample_pendulum(int(trial_steps)), num_trials=num_trials,
                   project_obs=True, project_actions=True, obs_dim=obs_dim, split=split,
                   num_tasks=num_tasks, same_start=same_start, seed=seed, name="meta/Pendulum")


def bandit_family(*, split: str = "train", num_arms: int = 5, num_trials: int = 20,
                  pulls_per_trial: int = 1, num_tasks: int = DEFAULT_NUM_TASKS,
                  seed: int = 0) -> MetaEnv:
    """``meta/BernoulliBandit``: a ``num_arms``-armed Bernoulli bandit with one good arm
    (probability from ``BANDIT_GOOD_RANGE``, test split from its tails) and bad arms from
    ``BANDIT_BAD_RANGE``; a trial is ``pulls_per_trial`` pulls (default one, as in RL²)."""
    require(_is_int(pulls_per_trial) and pulls_per_trial >= 1,
            f"meta/BernoulliBandit: pulls_per_trial must be a positive int, "
            f"got {pulls_per_trial!r}")
    bandit = KArmedBandit(num_arms)
    return MetaEnv(bandit, _sample_bandit(bandit.num_arms, int(pulls_per_trial)),
                   num_trials=num_trials, project_obs=False, project_actions=False,
                   split=split, num_tasks=num_tasks, seed=seed, name="meta/BernoulliBandit")


FAMILIES: dict[str, Callable[..., MetaEnv]] = {
    "meta/CartPole": cartpole_family,
    "meta/CartPole-SameStart": cartpole_same_start_family,
    "meta/Pendulum": pendulum_family,
    "meta/BernoulliBandit": bandit_family,
}


def register_all() -> None:
    """Register the :data:`FAMILIES` (``meta/CartPole``, ``meta/CartPole-SameStart``,
    ``meta/Pendulum``, ``meta/BernoulliBandit``); idempotent."""
    from hystax.envs.registry import is_registered, register
    for name, factory in FAMILIES.items():
        if not is_registered(name):
            register(name, factory)


# --- small helpers -------------------------------------------------------------------------------


def _check_split(split: Any) -> None:
    require(isinstance(split, str) and split in SPLITS,
            f"MetaEnv: unknown split {split!r} (valid: {', '.join(SPLITS)})")


def _check_num_tasks(num_tasks: Any) -> None:
    require(_is_int(num_tasks) and 1 <= num_tasks <= MAX_TASKS,
            f"MetaEnv: num_tasks must be an int in [1, 2**24], got {num_tasks!r}")


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)



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
