"""What the single-network continual baselines share: one
:class:`~hystax.world_models.dynamics.DynamicsMLP` (optionally one output head per task)
trained on the normalised Δstate with Adam after clipping the gradient's global norm; the task's
own normaliser fitted at ``begin_task``, the optimiser reset there. The methods (:mod:`.finetune`,
:mod:`.replay`, :mod:`.regularisers`) build on these pieces.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from hystax.core.errors import require
from hystax.world_models.continual_api import (
    ContinualMethod,
    check_task,
    set_normaliser,
    task_normaliser,
)
from hystax.world_models.dynamics import (
    DynamicsMLP,
    DynamicsParams,
    Normaliser,
    Transitions,
    check_transitions,
    delta_loss,
    predict_next,
)

__all__ = ["NetSpec", "apply_grads", "as_method", "begin_task", "checked_end", "head_name",
           "init_weights", "make_spec", "select_weights", "task_loss", "zeros_like"]


class NetSpec(NamedTuple):
    """What every baseline's functions share (static under jit)."""

    name: str
    net: DynamicsMLP
    opt: optax.GradientTransformation
    obs_dim: int
    act_dim: int
    num_tasks: int
    multihead: bool


def head_name(net: DynamicsMLP) -> str:
    return f"Dense_{len(net.hidden)}"  # flax names the output layer after the hidden ones


def init_weights(spec: NetSpec, key: jax.Array) -> dict:
    """DynamicsMLP weights; with ``multihead`` the output layer's leaves get a leading
    [num_tasks] axis (one independently initialised head per task)."""
    x = jnp.zeros((1, spec.obs_dim + spec.act_dim))
    if not spec.multihead:
        return spec.net.init(key, x)["params"]
    every = jax.vmap(lambda k: spec.net.init(k, x)["params"])(jax.random.split(key, spec.num_tasks))
    head = head_name(spec.net)
    weights = {name: jax.tree.map(lambda a: a[0], layer) for name, layer in every.items()}
    weights[head] = every[head]  # [num_tasks, ...]
    return weights


def select_weights(spec: NetSpec, weights: dict, task) -> dict:
    """The plain DynamicsMLP weights for ``task`` (traced is fine): the task's head if multihead."""
    if not spec.multihead:
        return weights
    head = head_name(spec.net)
    return {**weights, head: jax.tree.map(lambda a: a[task], weights[head])}


def task_loss(spec: NetSpec, weights: dict, norm: Normaliser, batch: Transitions, task):
    return delta_loss(spec.net, select_weights(spec, weights, task), norm, batch)


def apply_grads(spec: NetSpec, weights, opt_state, grads):
    updates, opt_state = spec.opt.update(grads, opt_state, weights)
    return optax.apply_updates(weights, updates), opt_state


def zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def _params_for(spec: NetSpec, state, task) -> DynamicsParams:
    return DynamicsParams(select_weights(spec, state.weights, task), task_normaliser(state, task))


def _predict(spec: NetSpec, params: DynamicsParams, obs, action):
    return predict_next(spec.net, params, obs, action)


def begin_task(spec: NetSpec, state, task: int, data: Transitions):
    """Check ``task`` and ``data``, fit the task's normaliser, reset the optimiser."""
    check_task(spec, task)
    data = check_transitions(data, spec.obs_dim, spec.act_dim)
    state = set_normaliser(state, task, data)
    return state.replace(opt_state=spec.opt.init(state.weights))


def checked_end(spec: NetSpec, state, task: int, data: Transitions) -> Transitions:
    check_task(spec, task)
    data = check_transitions(data, spec.obs_dim, spec.act_dim)
    if not isinstance(state.seen, jax.core.Tracer):  # under jit the caller keeps the order
        require(bool(state.seen[task]), f"{spec.name}: end_task({task}) before begin_task({task})")
    return data


def make_spec(name, obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
          unknown) -> NetSpec:
    require(not unknown, f"{name}: unknown option(s) {', '.join(sorted(unknown))}")
    for what, value in (("obs_dim", obs_dim), ("act_dim", act_dim), ("num_tasks", num_tasks)):
        require(isinstance(value, int) and value > 0,
                f"{name}: {what} must be a positive int, got {value!r}")
    require(isinstance(hidden, Sequence) and len(hidden) > 0
            and all(isinstance(h, int) and h > 0 for h in hidden),
            f"{name}: hidden must be a non-empty sequence of positive ints, got {hidden!r}")
    require(lr > 0 and clip > 0, f"{name}: lr and clip must be positive, got {lr!r}, {clip!r}")
    net = DynamicsMLP(obs_dim=obs_dim, hidden=tuple(hidden), gaussian=bool(gaussian))
    opt = optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))
    return NetSpec(name, net, opt, obs_dim, act_dim, num_tasks, bool(multihead))


def as_method(spec: NetSpec, init, begin_task, update, end_task) -> ContinualMethod:
    return ContinualMethod(
        name=spec.name, obs_dim=spec.obs_dim, act_dim=spec.act_dim, num_tasks=spec.num_tasks,
        init=jax.jit(init), begin_task=begin_task, update=update, end_task=end_task,
        params_for=functools.partial(_params_for, spec),
        predict=functools.partial(_predict, spec))
