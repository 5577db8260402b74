"""The continual world-model API: a method is a NamedTuple of pure functions over its state.

Tasks arrive one after another (same state and action spaces, different dynamics) and a method
trains on the current task's data only. Every method (the hypernetwork of
:mod:`hystax.world_models.hypernet`, the baselines of :mod:`.finetune`, :mod:`.replay` and
:mod:`.regularisers`; :mod:`.continual_methods` is their table)
provides::

    init(key) -> state                               # capacity = method's num_tasks
    begin_task(state, task, data) -> state           # host, before the task's first update
    update(state, batch, task) -> (state, metrics)   # one gradient step (jit-able, task traced)
    end_task(state, task, data) -> state             # host, after the task (consolidation)
    params_for(state, task) -> DynamicsParams        # what predict needs for task
    predict(params, obs, action) -> next_obs         # the planner's interface

Every method state has ``norms``: a :class:`~hystax.world_models.dynamics.Normaliser` with a
leading [num_tasks] axis (per-task input normalisation, fixed shapes under jit), and
``seen``: [num_tasks] bool, the tasks begun so far.

>>> method = make_method("hnet", obs_dim=3, act_dim=1, num_tasks=5)   # .continual_methods
>>> state = method.init(key)
>>> state = method.begin_task(state, 0, data)
>>> state, losses = fit(method, state, data, task=0, steps=1000, batch_size=64, key=key)
>>> next_obs = method.predict(method.params_for(state, 0), obs, action)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hystax.core.errors import require
from hystax.world_models.dynamics import Normaliser, Transitions, check_transitions, fit_normaliser

__all__ = [
    "ContinualMethod",
    "check_task",
    "fit",
    "fit_steps",
    "mse_on",
    "one_step_mse",
    "set_normaliser",
    "stacked_normalisers",
    "task_normaliser",
]


class ContinualMethod(NamedTuple):
    """A continual world-model learner (see the module doc). ``obs_dim``, ``act_dim`` and
    ``num_tasks`` (the capacity) are fixed at construction."""

    name: str
    obs_dim: int
    act_dim: int
    num_tasks: int
    init: Callable[[jax.Array], Any]
    begin_task: Callable[[Any, int, Transitions], Any]
    update: Callable[[Any, Transitions, Any], tuple[Any, dict]]
    end_task: Callable[[Any, int, Transitions], Any]
    params_for: Callable[[Any, Any], Any]
    predict: Callable[[Any, jax.Array, jax.Array], jax.Array]


def check_task(method: ContinualMethod, task) -> int:
    """``task`` as an int in [0, num_tasks), or HystaxError naming the capacity (a traced
    ``task`` passes unchecked: under jit the caller keeps it in range)."""
    if isinstance(task, jax.core.Tracer):
        return task
    require(isinstance(task, int) and not isinstance(task, bool),
            f"{method.name}: task id must be an int, got {task!r}")
    require(0 <= task < method.num_tasks, f"{method.name}: task id {task} is out of range: the "
            f"model holds {method.num_tasks} tasks (ids 0..{method.num_tasks - 1})")
    return task


def stacked_normalisers(obs_dim: int, act_dim: int, num_tasks: int) -> Normaliser:
    """Identity normalisers for every task: leaves [num_tasks, dim]."""
    one = Normaliser.identity(obs_dim, act_dim)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_tasks, *x.shape)), one)


def set_normaliser(state, task, data: Transitions, count=None):
    """``state`` with task ``task``'s normaliser fitted to ``data`` (its first ``count`` rows
    when given) and the task marked seen. ``task`` and ``count`` may be traced."""
    norm = fit_normaliser(data, count=count)
    norms = jax.tree.map(lambda all_, new: all_.at[task].set(new), state.norms, norm)
    return state.replace(norms=norms, seen=state.seen.at[task].set(True))


def task_normaliser(state, task) -> Normaliser:
    """Task ``task``'s normaliser (task may be traced)."""
    return jax.tree.map(lambda x: x[task], state.norms)


@functools.partial(jax.jit, static_argnames=("method", "steps", "batch_size"))
def fit_steps(method: ContinualMethod, state, data: Transitions, task, steps: int,
              batch_size: int, key: jax.Array, count):
    """:func:`fit` without the host checks (``task`` and ``count`` may be traced): ``steps``
    gradient steps on minibatches from the first ``count`` rows of ``data``."""
    def step(state, k):
        idx = jax.random.randint(k, (batch_size,), 0, count)
        batch = Transitions(data.obs[idx], data.action[idx], data.next_obs[idx])
        return method.update(state, batch, task)

    return jax.lax.scan(step, state, jax.random.split(key, steps))


def fit(method: ContinualMethod, state, data: Transitions, task: int, steps: int,
        batch_size: int, key: jax.Array, count: int | jax.Array | None = None):
    """``steps`` gradient steps on minibatches drawn with replacement from the first ``count``
    transitions of ``data`` (default all; a fixed-size buffer filled up to ``count`` compiles
    once). One jitted scan. Returns (state, metrics stacked over steps)."""
    check_task(method, task)
    data = check_transitions(data, method.obs_dim, method.act_dim)
    require(isinstance(steps, int) and steps > 0, f"fit: steps must be a positive int, got {steps!r}")
    require(isinstance(batch_size, int) and batch_size > 0,
            f"fit: batch_size must be a positive int, got {batch_size!r}")
    size = data.obs.shape[0]
    count = size if count is None else count
    if not isinstance(count, jax.core.Tracer):
        require(1 <= int(count) <= size, f"fit: count must be in [1, {size}] (the rows of data "
                f"filled so far), got {count!r}")
    return fit_steps(method, state, data, jnp.int32(task), steps, batch_size, key,
                     jnp.int32(count))


@functools.partial(jax.jit, static_argnames="method")
def mse_on(method: ContinualMethod, state, data: Transitions, task):
    """:func:`one_step_mse` without the host checks (``task`` may be traced)."""
    pred = method.predict(method.params_for(state, task), data.obs, data.action)
    return jnp.mean((pred - data.next_obs) ** 2)


def one_step_mse(method: ContinualMethod, state, data: Transitions, task: int) -> float:
    """Mean squared one-step prediction error of task ``task``'s model on ``data``."""
    check_task(method, task)
    data = check_transitions(data, method.obs_dim, method.act_dim)
    return float(mse_on(method, state, data, jnp.int32(task)))
