"""Continual model-based RL: a world model learns a task sequence while an MPC planner acts.

Per task t (HyperCRL's loop, Huang et al. 2021): ``warmup_steps`` random-action steps, the
method's ``begin_task`` (normaliser, snapshots), a first fit, then ``mpc_steps`` closed-loop CEM
steps (:func:`hystax.agents.mpc.mpc_episode`, the known reward on predicted states) with the
model refitted every ``retrain_every`` env steps on the current task's data only (``train_steps``
gradient steps; the task's normaliser is refitted on all its data first); then ``end_task`` and a
saved copy of the state (an orbax checkpoint per task when ``checkpoint_dir`` is given).

After the sequence every saved model j is evaluated on every task t <= j it has seen:

- ``reward_matrix[t, j]``: mean return of ``eval_episodes`` MPC episodes on task t planned with
  the model saved after task j (NaN for t > j);
- ``error_matrix[t, j]``: one-step MSE of that model on held-out random-action data of task t.

Forgetting (:func:`forgetting_ratios`) compares the last column with the diagonal, on returns
normalised by the random policy's: ``(R[t, T-1] - R_rand[t]) / (R[t, t] - R_rand[t])`` (1 = no
forgetting; Pendulum's returns are negative, so plain ratios would mislead).

>>> method = make_method("hnet", suite.obs_dim, suite.act_dim, suite.num_tasks)
>>> result = continual_mbrl(method, suite, jax.random.PRNGKey(0), ContinualConfig())
>>> result.reward_matrix, forgetting_ratios(result)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hystax.agents.mpc import MPCConfig, mpc_episode
from hystax.envs.continual import TaskSequence, collect_random
from hystax.world_models.continual import ContinualMethod, fit, one_step_mse, set_normaliser
from hystax.world_models.dynamics import Transitions

from hystax.errors import require

__all__ = ["ContinualConfig", "ContinualResult", "continual_mbrl", "forgetting_ratios",
           "forward_transfer"]


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


def _run_episode(method: ContinualMethod, suite: TaskSequence, state, task: int, key,
                 config: ContinualConfig):
    return mpc_episode(suite.env, suite.params[task], method.predict,
                       method.params_for(state, jnp.int32(task)), suite.reward_fn, key,
                       config.episode_steps, config.mpc, termination_fn=suite.termination_fn,
                       quantize=suite.quantize, to_env_action=suite.env_action)


def _learn_task(method, suite, state, task, key, config, progress):
    k_warm, k_fit, k_run = jax.random.split(key, 3)
    warm = collect_random(suite, task, k_warm, config.warmup_steps).transitions()
    size = config.warmup_steps + config.mpc_steps  # a fixed-size buffer: fit compiles once
    buffer = Transitions(*(jnp.zeros((size, *x.shape[1:]), x.dtype).at[:x.shape[0]].set(x)
                           for x in warm))
    count = config.warmup_steps
    state = method.begin_task(state, task, warm)
    state, _ = fit(method, state, buffer, task, config.train_steps, config.batch_size, k_fit,
                   count=count)
    returns = []
    for episode, k in enumerate(jax.random.split(k_run, config.episodes_per_task)):
        k_episode, k_fit = jax.random.split(k)
        ret, rollout = _run_episode(method, suite, state, task, k_episode, config)
        returns.append(float(ret))
        buffer = Transitions(*(b.at[count:count + x.shape[0]].set(x)
                               for b, x in zip(buffer, rollout.transitions())))
        count += config.episode_steps
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"task {task} return {float(ret):.1f}")
        if ((episode + 1) * config.episode_steps) % config.retrain_every == 0:
            state = set_normaliser(state, task, Transitions(*(x[:count] for x in buffer)))
            state, _ = fit(method, state, buffer, task, config.train_steps, config.batch_size,
                           k_fit, count=count)
    state = method.end_task(state, task, buffer)
    return state, returns


def _save_checkpoint(checkpoint_dir: Path, task: int, state) -> None:
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(Path(checkpoint_dir).absolute(),
                               options=ocp.CheckpointManagerOptions(create=True)) as manager:
        manager.save(task, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def continual_mbrl(method: ContinualMethod, suite: TaskSequence, key: jax.Array,
                   config: ContinualConfig | None = None, progress: Any = True,
                   checkpoint_dir: str | Path | None = None) -> ContinualResult:
    """Learn ``suite``'s tasks in order with ``method`` and an MPC agent (see the module doc).

    The planner uses ``config.mpc`` over the suite's action box. progress: ``True`` for a tqdm
    bar over the MPC episodes, ``False``/``None`` for none, or a tqdm-like bar of the caller's
    to update once per episode. With
    ``config.reset_each_task`` the method starts from scratch at every task (the single-task
    reference of forward transfer).
    """
    config = config or ContinualConfig()
    # plan over the suite's own action box (the MPCConfig default is [-1, 1])
    config = dataclasses.replace(config, mpc=dataclasses.replace(
        config.mpc, action_low=suite.action_low, action_high=suite.action_high))
    require(suite.reward_fn is not None, f"suite {suite.name!r} has no reward_fn: MPC needs the "
            "known reward (pass reward_fn= to task_sequence)")
    require(isinstance(method, ContinualMethod), f"method must be a ContinualMethod, got "
            f"{type(method).__name__}")
    require(method.obs_dim == suite.obs_dim and method.act_dim == suite.act_dim,
            f"method {method.name!r} is built for obs/action dims {method.obs_dim}/"
            f"{method.act_dim}, suite {suite.name!r} has {suite.obs_dim}/{suite.act_dim}")
    require(method.num_tasks >= suite.num_tasks, f"method {method.name!r} holds "
            f"{method.num_tasks} tasks, suite {suite.name!r} has {suite.num_tasks}")
    own_bar = progress is True
    if own_bar:
        from tqdm.auto import tqdm

        progress = tqdm(total=suite.num_tasks * config.episodes_per_task, unit="episode",
                        desc=f"continual {suite.name} {method.name}")
    elif progress is False:
        progress = None
    k_init, k_tasks, k_eval = jax.random.split(key, 3)
    state = method.init(k_init)
    saved, train_returns = [], []
    for task, k in enumerate(jax.random.split(k_tasks, suite.num_tasks)):
        if config.reset_each_task and task > 0:
            state = method.init(jax.random.fold_in(k_init, task))
        state, returns = _learn_task(method, suite, state, task, k, config, progress)
        saved.append(state)
        train_returns.append(returns)
        if checkpoint_dir is not None:
            _save_checkpoint(Path(checkpoint_dir), task, state)
    if own_bar:
        progress.close()
    return _evaluate(method, suite, saved, k_eval, config, np.asarray(train_returns))


def _evaluate(method, suite, saved, key, config, train_returns) -> ContinualResult:
    n = suite.num_tasks
    rewards, errors = np.full((n, n), np.nan), np.full((n, n), np.nan)
    random_returns = np.zeros(n)
    for t, k in enumerate(jax.random.split(key, n)):
        k_test, k_eps = jax.random.split(k)
        test = collect_random(suite, t, k_test, config.test_steps)
        episodes = max(int(test.done.sum()), config.test_steps / config.episode_steps)
        random_returns[t] = float(test.reward.sum()) / episodes  # CartPole: mean steps to a fall
        for j in range(t, n):
            errors[t, j] = one_step_mse(method, saved[j], test.transitions(), t)
            returns = [float(_run_episode(method, suite, saved[j], t, e, config)[0])
                       for e in jax.random.split(k_eps, config.eval_episodes)]  # same starts for all j
            rewards[t, j] = float(np.mean(returns))
    return ContinualResult(rewards, errors, train_returns, random_returns, saved)


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
