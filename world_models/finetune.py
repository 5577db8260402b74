"""Fine-tuning baselines: one network trained on each task in turn (``finetune``), or a shared
trunk with one output head per task (``multihead``). Their state and update are the base the
replay and regulariser methods extend.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hystax.world_models.continual_api import ContinualMethod, stacked_normalisers, task_normaliser
from hystax.world_models.dynamics import Normaliser, Transitions
from hystax.world_models.single_net import (
    NetSpec,
    apply_grads,
    as_method,
    begin_task,
    checked_end,
    init_weights,
    make_spec,
    task_loss,
)

__all__ = ["FinetuneState", "finetune_init", "finetune_update", "make_finetune", "make_multihead"]


@struct.dataclass
class FinetuneState:
    """weights: DynamicsMLP params (heads [num_tasks, ...] if multihead); norms: [num_tasks]
    Normaliser; seen: [num_tasks] bool."""

    weights: dict
    opt_state: Any
    norms: Normaliser
    seen: jax.Array


def finetune_init(spec: NetSpec, key) -> FinetuneState:
    weights = init_weights(spec, key)
    return FinetuneState(weights, spec.opt.init(weights),
                         stacked_normalisers(spec.obs_dim, spec.act_dim, spec.num_tasks),
                         jnp.zeros(spec.num_tasks, bool))


def finetune_update(spec: NetSpec, state: FinetuneState, batch: Transitions, task):
    norm = task_normaliser(state, task)
    loss, grads = jax.value_and_grad(task_loss, argnums=1)(spec, state.weights, norm, batch, task)
    weights, opt_state = apply_grads(spec, state.weights, state.opt_state, grads)
    return state.replace(weights=weights, opt_state=opt_state), {"loss": loss, "task_loss": loss}


def _no_consolidation(spec: NetSpec, state, task: int, data: Transitions):
    checked_end(spec, state, task, data)
    return state


def _make_finetune(spec: NetSpec) -> ContinualMethod:
    return as_method(spec,
                     functools.partial(finetune_init, spec),
                     functools.partial(begin_task, spec),
                     functools.partial(finetune_update, spec),
                     functools.partial(_no_consolidation, spec))


def make_finetune(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                  gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                  multihead: bool = False, **unknown) -> ContinualMethod:
    """One network trained on each task in turn (only the normaliser depends on the task,
    unless ``multihead``)."""
    return _make_finetune(make_spec("finetune", obs_dim, act_dim, num_tasks, hidden, gaussian, lr,
                                    clip, multihead, unknown))


def make_multihead(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                   gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                   **unknown) -> ContinualMethod:
    """A shared trunk with one output layer per task, fine-tuned task after task. Old heads
    never move (their gradient is zero and the optimiser is reset per task); the trunk drifts."""
    return _make_finetune(make_spec("multihead", obs_dim, act_dim, num_tasks, hidden, gaussian, lr,
                                    clip, True, unknown))
