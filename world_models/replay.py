"""Replay baselines: fine-tuning plus a memory of old tasks' points replayed with every update:
``coreset`` (``memory_size`` random points per task) and ``multitask`` (every point, the
joint-training bound).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hystax.core.errors import require
from hystax.world_models.continual_api import ContinualMethod
from hystax.world_models.dynamics import Normaliser, Transitions
from hystax.world_models.finetune import finetune_init
from hystax.world_models.single_net import (
    NetSpec,
    apply_grads,
    as_method,
    begin_task,
    checked_end,
    make_spec,
    task_loss,
)

__all__ = ["ReplayState", "make_coreset", "make_multitask"]


@struct.dataclass
class ReplayState:
    """Fine-tuning state plus a fixed-size memory: ``memory`` Transitions [num_tasks, M, dim],
    ``mask`` [num_tasks, M] bool (the stored points, a prefix of each row), ``key`` for replay
    sampling."""

    weights: dict
    opt_state: Any
    norms: Normaliser
    seen: jax.Array
    memory: Transitions
    mask: jax.Array
    key: jax.Array


def _replay_init(spec: NetSpec, size: int, key) -> ReplayState:
    k_net, k_mem = jax.random.split(key)
    base = finetune_init(spec, k_net)
    t = spec.num_tasks
    memory = Transitions(jnp.zeros((t, size, spec.obs_dim)), jnp.zeros((t, size, spec.act_dim)),
                         jnp.zeros((t, size, spec.obs_dim)))
    return ReplayState(base.weights, base.opt_state, base.norms, base.seen, memory,
                       jnp.zeros((t, size), bool), k_mem)


def _replay_batches(memory: Transitions, mask: jax.Array, key, size: int) -> Transitions:
    """``size`` points per task drawn with replacement from its stored ones: [num_tasks, size, dim]
    (rows of empty tasks hold zeros)."""
    count = mask.sum(axis=1)
    u = jax.random.uniform(key, (mask.shape[0], size))
    idx = jnp.minimum((u * jnp.maximum(count, 1)[:, None]).astype(jnp.int32), mask.shape[1] - 1)
    return jax.tree.map(lambda x: jnp.take_along_axis(x, idx[..., None], axis=1), memory)


def _replay_loss(spec: NetSpec, weights, norms: Normaliser, batch: Transitions,
                 replay: Transitions, old: jax.Array, task):
    """Mean over the current and the old tasks of each task's loss under its own normaliser
    (and head): every task weighs the same, whatever its data size."""
    current = task_loss(spec, weights, jax.tree.map(lambda x: x[task], norms), batch, task)
    per_task = jax.vmap(lambda j, norm, b: task_loss(spec, weights, norm, Transitions(*b), j))(
        jnp.arange(old.shape[0]), norms, replay)
    n_old = old.sum()
    old_sum = jnp.sum(jnp.where(old, per_task, 0.0))
    return (current + old_sum) / (1 + n_old), (current, old_sum / jnp.maximum(n_old, 1))


def _replay_update(spec: NetSpec, replay_batch: int | None, state: ReplayState,
                   batch: Transitions, task):
    key, k = jax.random.split(state.key)
    size = replay_batch or batch.obs.shape[0]
    replay = _replay_batches(state.memory, state.mask, k, size)
    old = state.mask.any(axis=1) & (jnp.arange(spec.num_tasks) != task)
    (loss, (current, replayed)), grads = jax.value_and_grad(_replay_loss, argnums=1, has_aux=True)(
        spec, state.weights, state.norms, batch, replay, old, task)
    weights, opt_state = apply_grads(spec, state.weights, state.opt_state, grads)
    metrics = {"loss": loss, "task_loss": current, "replay_loss": replayed}
    return state.replace(weights=weights, opt_state=opt_state, key=key), metrics


def _store(spec: NetSpec, warn_when_full: bool, state: ReplayState, task: int,
           data: Transitions) -> ReplayState:
    """Keep min(N, M) of the task's points (a random subset when N > M) in its memory row."""
    data = checked_end(spec, state, task, data)
    n, size = data.obs.shape[0], state.mask.shape[1]
    if n > size and warn_when_full:
        warnings.warn(f"{spec.name}: task {task} has {n} points; keeping a random {size} "
                      f"(raise max_points to keep them all)", stacklevel=3)
    key, k = jax.random.split(state.key)
    keep = min(n, size)
    idx = jax.random.permutation(k, n)[:keep] if n > size else jnp.arange(n)
    memory = jax.tree.map(
        lambda mem, x: mem.at[task].set(jnp.zeros_like(mem[task]).at[:keep].set(x[idx])),
        state.memory, data)
    mask = state.mask.at[task].set(jnp.arange(size) < keep)
    return state.replace(memory=memory, mask=mask, key=key)


def _make_replay(spec: NetSpec, size: int, replay_batch, warn_when_full: bool) -> ContinualMethod:
    require(isinstance(size, int) and size > 0,
            f"{spec.name}: the memory size must be a positive int, got {size!r}")
    require(replay_batch is None or (isinstance(replay_batch, int) and replay_batch > 0),
            f"{spec.name}: replay_batch must be None or a positive int, got {replay_batch!r}")
    return as_method(spec,
                     functools.partial(_replay_init, spec, size),
                     functools.partial(begin_task, spec),
                     functools.partial(_replay_update, spec, replay_batch),
                     functools.partial(_store, spec, warn_when_full))


def make_coreset(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                 gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                 multihead: bool = True, memory_size: int = 100, replay_batch: int | None = None,
                 **unknown) -> ContinualMethod:
    """Fine-tuning with coreset replay: ``end_task`` keeps ``memory_size`` random points of the
    task; each update adds a batch of ``replay_batch`` (default: the current batch size) points
    from every old task, each task's loss under its own normaliser, all tasks weighted equally.
    Memory grows linearly with the tasks held (fixed [num_tasks, memory_size] arrays)."""
    spec = make_spec("coreset", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
                     unknown)
    return _make_replay(spec, memory_size, replay_batch, warn_when_full=False)


def make_multitask(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                   gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                   multihead: bool = True, max_points: int = 20_000,
                   replay_batch: int | None = None, **unknown) -> ContinualMethod:
    """The joint-training upper bound: every old task's data (up to ``max_points`` per task, a
    random subset with a warning beyond) is replayed with the current task, all tasks weighted
    equally. Not a constant-memory method: [num_tasks, max_points] arrays."""
    spec = make_spec("multitask", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip,
                     multihead, unknown)
    return _make_replay(spec, max_points, replay_batch, warn_when_full=True)
