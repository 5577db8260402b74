"""Continual model-based RL: a world model learns a task sequence while an MPC planner acts.

Per task t (HyperCRL's loop, Huang et al. 2021): ``warmup_steps`` random-action steps, the
method's ``begin_task`` (normaliser, snapshots), a first fit, then ``mpc_steps`` closed-loop CEM
steps (:func:`hystax.agents.mpc.mpc_episode`, the known reward on predicted states) with the
model refitted every ``retrain_every`` env steps on the current task's data only (``train_steps``
gradient steps; the task's normaliser is refitted on all its data first); then ``end_task``, a
saved copy of the method state, and the evaluation of that copy on every task seen so far:

- ``reward_matrix[t, j]``: mean return of ``eval_episodes`` MPC episodes on task t planned with
  the model saved after task j (NaN for t > j; the same starts for every j);
- ``error_matrix[t, j]``: one-step MSE of that model on held-out random-action data of task t.

Forgetting (:func:`forgetting_ratios`) compares the last column with the diagonal, on returns
normalised by the random policy's: ``(R[t, T-1] - R_rand[t]) / (R[t, t] - R_rand[t])`` (1 = no
forgetting; Pendulum's returns are negative, so plain ratios would mislead).

It is an agent family of the one runner (``hystax.train("mbrl", "pendulum-gravity",
method="hnet")``, ``hystax train mbrl --suite pendulum-gravity --method hnet``): one update is
one MPC episode (its refit included); the task boundary (``end_task``, saving, evaluation, the
next task's warm-up and ``begin_task``) is the runner's host hook, run after every task's last
episode. The whole :class:`MBRLState` (the per-task saved models, the current task's data, the
matrices) is in every checkpoint, so a resumed run ends bit for bit where an uninterrupted one
does. :func:`continual_mbrl` runs the same pieces for one seed without a run folder:

>>> method = make_method("hnet", suite.obs_dim, suite.act_dim, suite.num_tasks)
>>> result = continual_mbrl(method, suite, jax.random.PRNGKey(0), ContinualConfig())
>>> result.reward_matrix, forgetting_ratios(result)
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.algorithm import Algorithm, make_train_from
from hystax.agents.mpc import MPCConfig, mpc_episode
from hystax.core.errors import HystaxError, require
from hystax.envs.continual_suites import TaskSequence, collect_random
from hystax.world_models.continual_api import ContinualMethod, fit_steps, mse_on, set_normaliser
from hystax.world_models.continual_methods import make_method
from hystax.world_models.dynamics import Transitions

__all__ = ["Config", "ContinualConfig", "ContinualResult", "MBRLState", "continual_mbrl",
           "forgetting_ratios", "forward_transfer", "make_algorithm", "make_env", "make_train",
           "method_of", "report_lines", "results"]

DEFAULT_ENV = "pendulum-gravity"  # `hystax train mbrl` without --suite


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
    """Budget of :func:`continual_mbrl` (per task). HyperCRL's Pendulum setting is 400 random
    steps, 10,000 MPC steps, 1,000 gradient steps every 400 env steps (batch 20); the defaults
    here are a CPU-sized fraction of it."""

    warmup_steps: int = 400
    mpc_steps: int = 1200
    episode_steps: int = 200
    retrain_every: int = 400
    train_steps: int = 500
    batch_size: int = 64
    eval_episodes: int = 2
    test_steps: int = 1000
    reset_each_task: bool = False
    mpc: MPCConfig = dataclasses.field(default_factory=lambda: MPCConfig(
        horizon=20, num_samples=200, num_elites=20, iterations=3))

    def __post_init__(self):
        for name in ("warmup_steps", "mpc_steps", "episode_steps", "retrain_every",
                     "train_steps", "batch_size", "eval_episodes", "test_steps"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                    f"ContinualConfig: {name} must be a positive int, got {value!r}")
        require(self.mpc_steps % self.episode_steps == 0,
                f"ContinualConfig: mpc_steps ({self.mpc_steps}) must be a multiple of "
                f"episode_steps ({self.episode_steps})")
        require(self.retrain_every % self.episode_steps == 0,
                f"ContinualConfig: retrain_every ({self.retrain_every}) must be a multiple of "
                f"episode_steps ({self.episode_steps})")
        require(isinstance(self.mpc, MPCConfig), "ContinualConfig: mpc must be an MPCConfig")

    @property
    def episodes_per_task(self) -> int:
        return self.mpc_steps // self.episode_steps


@dataclasses.dataclass(frozen=True)
class Config(ContinualConfig):
    """The runner's settings (``hystax train mbrl``): :class:`ContinualConfig` plus the method
    (``hystax list`` names them) and, for the hypernetworks, their regulariser weight."""

    method: str = "hnet"
    beta: float = 0.05  # hnet / hnet-chunked only
    HPARAMS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        super().__post_init__()
        require(isinstance(self.beta, (int, float)) and not isinstance(self.beta, bool)
                and self.beta >= 0, f"mbrl beta must be a number >= 0, got {self.beta!r}")
        require(self.method.startswith("hnet") or self.beta == 0.05,
                f"beta is the hypernetworks' setting; method {self.method!r} has none")


class ContinualResult(NamedTuple):
    """reward_matrix [T, T], error_matrix [T, T] (row: task evaluated, column: model saved after
    task j; NaN for t > j), train_returns [T, episodes_per_task] (MPC episode returns while
    learning each task), random_returns [T] (mean random-policy return per episode),
    states (the method state saved after each task)."""

    reward_matrix: np.ndarray
    error_matrix: np.ndarray
    train_returns: np.ndarray
    random_returns: np.ndarray
    states: list


@struct.dataclass
class MBRLState:
    """One seed's run: the method's state, its copies saved after each task (leaves
    [T, ...]), the current task's data (buffer [warmup + mpc steps, ...], ``count`` rows
    filled), the last fit's loss, train_returns [T, E], rewards / errors [T, T] (NaN until
    evaluated), random_returns [T] and keys [3, 2] (init, tasks, evaluation)."""

    model: Any
    saved: Any
    buffer: Transitions
    count: jax.Array
    model_loss: jax.Array
    train_returns: jax.Array
    rewards: jax.Array
    errors: jax.Array
    random_returns: jax.Array
    keys: jax.Array


class _Pieces(NamedTuple):
    init: Any  # (key) -> MBRLState, task 0 begun
    update: Any  # (state, i) -> (state, metrics): MPC episode i
    finish: Any  # (state, j) -> state: end_task j, save, evaluate column j
    start: Any  # (state, t) -> state: task t's warm-up, begin_task and first fit
    episodes: int  # per task


def _checked(method: ContinualMethod, suite: TaskSequence, config: ContinualConfig):
    require(suite.reward_fn is not None, f"suite {suite.name!r} has no reward_fn: MPC needs the "
            "known reward (pass reward_fn= to task_sequence)")
    require(isinstance(method, ContinualMethod), f"method must be a ContinualMethod, got "
            f"{type(method).__name__}")
    require(method.obs_dim == suite.obs_dim and method.act_dim == suite.act_dim,
            f"method {method.name!r} is built for obs/action dims {method.obs_dim}/"
            f"{method.act_dim}, suite {suite.name!r} has {suite.obs_dim}/{suite.act_dim}")
    require(method.num_tasks >= suite.num_tasks, f"method {method.name!r} holds "
            f"{method.num_tasks} tasks, suite {suite.name!r} has {suite.num_tasks}")
    # plan over the suite's own action box (the MPCConfig default is [-1, 1])
    return dataclasses.replace(config, mpc=dataclasses.replace(
        config.mpc, action_low=suite.action_low, action_high=suite.action_high))


def _pieces(method: ContinualMethod, suite: TaskSequence, config: ContinualConfig) -> _Pieces:
    """The pure per-seed functions of the loop (the module doc); ``task`` arguments may be
    traced, so each compiles once."""
    config = _checked(method, suite, config)
    n, e_per, steps = suite.num_tasks, config.episodes_per_task, config.episode_steps
    size = config.warmup_steps + config.mpc_steps  # a fixed-size buffer: the fits compile once

    def task_keys(state, task):  # (warm-up, first fit, episodes), as per task
        return jax.random.split(jax.random.split(state.keys[1], n)[task], 3)

    def episode(model, task, key):
        return mpc_episode(suite.env, suite.task_params(task), method.predict,
                           method.params_for(model, task), suite.reward_fn, key, steps,
                           config.mpc, termination_fn=suite.termination_fn,
                           quantize=suite.quantize, to_env_action=suite.env_action)

    def fit(model, task, key, count, buffer):
        model, losses = fit_steps(method, model, buffer, task, config.train_steps,
                                  config.batch_size, key, count)
        return model, losses["loss"][-1]

    def test_data(keys, task):  # the same held-out data (and eval starts) for every column
        k_test, k_eps = jax.random.split(jax.random.split(keys[2], n)[task])
        return collect_random(suite, task, k_test, config.test_steps), k_eps

    def start(state, task):
        if config.reset_each_task:
            fresh = method.init(jax.random.fold_in(state.keys[0], task))
            model = jax.tree.map(lambda a, b: jnp.where(task > 0, a, b), fresh, state.model)
        else:
            model = state.model
        k_warm, k_fit, _ = task_keys(state, task)
        warm = collect_random(suite, task, k_warm, config.warmup_steps).transitions()
        buffer = Transitions(*(jnp.zeros((size, *x.shape[1:]), x.dtype).at[:x.shape[0]].set(x)
                               for x in warm))
        model = method.begin_task(model, task, warm)
        model, loss = fit(model, task, k_fit, config.warmup_steps, buffer)
        return state.replace(model=model, buffer=buffer, count=jnp.int32(config.warmup_steps),
                             model_loss=loss)

    def init(key):
        keys = jnp.stack(jax.random.split(key, 3))
        model = method.init(keys[0])

        def random_return(task):
            test = test_data(keys, task)[0]
            episodes = jnp.maximum(test.done.sum(), config.test_steps / steps)
            return test.reward.sum() / episodes  # CartPole: mean steps to a fall

        buffer = Transitions(*(jnp.zeros((size, d)) for d in
                               (suite.obs_dim, suite.act_dim, suite.obs_dim)))
        nan = jnp.full((n, n), jnp.nan)
        state = MBRLState(model, jax.tree.map(lambda x: jnp.zeros((n, *x.shape), x.dtype), model),
                          buffer, jnp.int32(0), jnp.float32(0), jnp.full((n, e_per), jnp.nan),
                          nan, nan, jax.lax.map(random_return, jnp.arange(n)), keys)
        return start(state, 0)

    def update(state, i):
        task, e = i // e_per, i % e_per
        k_episode, k_fit = jax.random.split(jax.random.split(task_keys(state, task)[2], e_per)[e])
        ret, rollout = episode(state.model, task, k_episode)
        buffer = Transitions(*(jax.lax.dynamic_update_slice_in_dim(b, x, state.count, 0)
                               for b, x in zip(state.buffer, rollout.transitions())))
        count = state.count + steps

        def refit(model):  # the task's normaliser on all its data first
            return fit(set_normaliser(model, task, buffer, count=count), task, k_fit, count,
                       buffer)

        model, loss = jax.lax.cond(((e + 1) * steps) % config.retrain_every == 0, refit,
                                   lambda m: (m, state.model_loss), state.model)
        state = state.replace(model=model, buffer=buffer, count=count, model_loss=loss,
                              train_returns=state.train_returns.at[task, e].set(ret))
        return state, {"env_steps": task * size + config.warmup_steps + (e + 1) * steps,
                       "episode_return": ret, "episodes": jnp.int32(1), "task": task,
                       "model_loss": loss}

    def finish(state, j):
        model = method.end_task(state.model, j, state.buffer)  # the buffer holds all the task

        def evaluate(t):
            test, k_eps = test_data(state.keys, t)
            returns = jax.vmap(lambda k: episode(model, t, k)[0])(
                jax.random.split(k_eps, config.eval_episodes))
            return jnp.mean(returns), mse_on(method, model, test.transitions(), t)

        rewards, errors = jax.lax.map(lambda t: jax.lax.cond(
            t <= j, evaluate, lambda t: (jnp.float32(jnp.nan), jnp.float32(jnp.nan)), t),
            jnp.arange(n))
        return state.replace(
            model=model, saved=jax.tree.map(lambda s, m: s.at[j].set(m), state.saved, model),
            rewards=state.rewards.at[:, j].set(rewards), errors=state.errors.at[:, j].set(errors))

    return _Pieces(init, update, finish, start, e_per)


def method_of(config: Config, suite: TaskSequence) -> ContinualMethod:
    """The continual world-model method a run of ``config`` on ``suite`` trains."""
    options = {"beta": config.beta} if config.method.startswith("hnet") else {}
    return make_method(config.method, suite.obs_dim, suite.act_dim, suite.num_tasks, **options)


def make_env(env, overrides=None) -> tuple[TaskSequence, None]:
    """The runner's env for this family: a task suite (a name from ``hystax list`` or a
    :class:`TaskSequence`); suites fix every task's params, so there are no overrides."""
    from hystax.envs.continual_suites import suite

    require(not overrides, "a task suite fixes every task's params: --env-param / env_params "
            "do not apply to mbrl")
    if isinstance(env, TaskSequence):
        return env, None
    if not isinstance(env, str):
        raise HystaxError(f"mbrl trains on a task suite (a name or a TaskSequence), got "
                          f"{type(env).__name__}")
    return suite(env), None


def make_algorithm(config: Config, suite: TaskSequence, env_params=None) -> Algorithm:
    """Continual MBRL for the runner: update i is MPC episode i % E of task i // E; the host
    hook ends each task, saves and evaluates its model, and begins the next."""
    pieces = _pieces(method_of(config, suite), suite, config)
    finish = jax.jit(jax.vmap(pieces.finish, in_axes=(0, None)))
    start = jax.jit(jax.vmap(pieces.start, in_axes=(0, None)))

    def hook(state, before, after):
        if after % pieces.episodes:
            return state
        task = after // pieces.episodes - 1
        state = finish(state, task)
        return start(state, task + 1) if task + 1 < suite.num_tasks else state

    return Algorithm(lambda key, hparams: pieces.init(key), pieces.update,
                     suite.num_tasks * pieces.episodes, config.episode_steps, indexed=True,
                     host_hook=hook, chunk_updates=pieces.episodes, hook_every=pieces.episodes)


def make_train(config: Config, suite: TaskSequence, env_params=None):
    """Refused by :func:`make_train_from`: the task boundaries are host work (use
    ``hystax.train("mbrl", ...)`` or :func:`continual_mbrl`)."""
    return make_train_from(make_algorithm(config, suite, env_params), config)


def results(state: MBRLState) -> list[ContinualResult]:
    """One :class:`ContinualResult` per seed of a final (or loaded) state ``[seeds, ...]``."""
    state = jax.device_get(state)
    out = []
    for s in range(state.rewards.shape[0]):
        one = jax.tree.map(lambda x: x[s], state)
        tasks = one.rewards.shape[0]
        out.append(ContinualResult(
            np.asarray(one.rewards, np.float64), np.asarray(one.errors, np.float64),
            np.asarray(one.train_returns, np.float64), np.asarray(one.random_returns, np.float64),
            [jax.tree.map(lambda x: x[j], one.saved) for j in range(tasks)]))
    return out


def report_lines(state: MBRLState) -> list[str]:
    """What ``hystax train mbrl`` prints at the end: per task, the MPC return with the model
    saved right after it and with the final model, and the forgetting ratios (means over
    seeds)."""
    runs = results(state)
    own = np.mean([np.diag(r.reward_matrix) for r in runs], axis=0)
    final = np.mean([r.reward_matrix[:, -1] for r in runs], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the last task has no ratio
        ratio = np.nanmean([forgetting_ratios(r) for r in runs], axis=0)
    seeds = f"mean over {len(runs)} seed{'s' * (len(runs) > 1)}"
    return [f"MPC return per task right after learning it ({seeds}): "
            + ", ".join(f"{x:.1f}" for x in own),
            "... and with the final model: " + ", ".join(f"{x:.1f}" for x in final),
            "forgetting ratio per task (1 = nothing forgotten; - where undefined): "
            + ", ".join("-" if np.isnan(x) else f"{x:.2f}" for x in ratio)]


def _save_checkpoint(checkpoint_dir: Path, task: int, state) -> None:
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(Path(checkpoint_dir).absolute(),
                               options=ocp.CheckpointManagerOptions(create=True)) as manager:
        manager.save(task, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def continual_mbrl(method: ContinualMethod, suite: TaskSequence, key: jax.Array,
                   config: ContinualConfig | None = None, progress: Any = True,
                   checkpoint_dir: str | Path | None = None) -> ContinualResult:
    """Learn ``suite``'s tasks in order with ``method`` and an MPC agent (see the module doc),
    for one seed, with no run folder: the runner's pieces in a plain host loop.

    progress: ``True`` for a tqdm bar over the MPC episodes, ``False``/``None`` for none, or a
    tqdm-like bar of the caller's (updated once per task). With ``config.reset_each_task``
    the method starts from scratch at every task (the single-task reference of forward
    transfer). ``checkpoint_dir``: an orbax checkpoint of the method state after each task.
    """
    pieces = _pieces(method, suite, config or ContinualConfig())
    own_bar = progress is True
    if own_bar:
        from tqdm.auto import tqdm

        progress = tqdm(total=suite.num_tasks * pieces.episodes, unit="episode",
                        desc=f"continual {suite.name} {method.name}")
    elif progress is False:
        progress = None
    run_task = jax.jit(lambda s, first: jax.lax.scan(
        lambda s, i: pieces.update(s, first + i), s, jnp.arange(pieces.episodes)))
    finish, start = jax.jit(pieces.finish), jax.jit(pieces.start)
    state = jax.jit(pieces.init)(key)
    for task in range(suite.num_tasks):
        state, metrics = run_task(state, task * pieces.episodes)
        state = finish(state, task)
        if progress is not None:
            progress.update(pieces.episodes)
            progress.set_postfix_str(f"task {task} return {float(metrics['episode_return'][-1]):.1f}")
        if checkpoint_dir is not None:
            _save_checkpoint(Path(checkpoint_dir), task, state.model)
        if task + 1 < suite.num_tasks:
            state = start(state, task + 1)
    if own_bar:
        progress.close()
    return results(jax.tree.map(lambda x: x[None], state))[0]


def forgetting_ratios(result: ContinualResult, min_gain: float = 0.1) -> np.ndarray:
    """Per task: (R[t, last] - R_rand[t]) / (R[t, t] - R_rand[t]) (1 = nothing forgotten). NaN
    for the last task (no later model) and where the agent did not learn the task
    (R[t, t] - R_rand[t] < ``min_gain`` |R_rand[t]|: no ratio of two noise-level gains). [T]"""
    r, base = result.reward_matrix, result.random_returns
    gain = np.diag(r) - base
    ratio = np.where(gain >= min_gain * np.abs(base),
                     (r[:, -1] - base) / np.where(gain > 0, gain, 1.0), np.nan)
    ratio[-1] = np.nan
    return ratio


def forward_transfer(result: ContinualResult, single: ContinualResult) -> np.ndarray:
    """Per task: (R[t, t] - R_rand[t]) / (R_single[t, t] - R_rand[t]), against a run that learnt
    every task from scratch (``ContinualConfig(reset_each_task=True)``). [T]"""
    base = result.random_returns
    ref = np.diag(single.reward_matrix) - base
    return (np.diag(result.reward_matrix) - base) / np.where(np.abs(ref) > 1e-9, ref, np.nan)
