"""The continual world-model methods, one table: name -> constructor.

HyperCRL's task-conditioned hypernetwork (:mod:`.hypernet`) and its baselines (Huang et al.
2021), all :class:`~hystax.world_models.continual_api.ContinualMethod`:

============  ===========================================================================
hnet          hypernetwork: per-task embedding -> the dynamics net's weights (+ output regulariser)
hnet-chunked  the same, emitting the weights chunk by chunk (smaller generator)
finetune      one network trained on each task in turn
multihead     shared trunk, one output layer per task (stacked [num_tasks, ...]), fine-tuned
coreset       multihead + replay of ``memory_size`` (100) random points per old task
multitask     multihead + replay of every old point (up to ``max_points`` per task): joint bound
ewc           multihead + online EWC: λ/2 Σ F (θ − θ*)², λ = 1e4, F the diagonal Fisher
si            multihead + Synaptic Intelligence: c Σ Ω (θ − θ̃)², c = 0.1, ξ = 1e-3
============  ===========================================================================

Like HyperCRL's baselines, coreset, multitask, EWC and SI share a trunk and keep one output head
per task by default: one head cannot fit two dynamics on the same inputs, so without the task
id even the joint bound only averages them. ``multihead=False`` gives the single-network
versions (``multihead=True`` turns fine-tuning into "multihead"). All state shapes are fixed
at ``init`` (memories are [num_tasks, M, ...] arrays with a mask), so ``update`` compiles once
for every task; the multitask memory is [num_tasks, max_points, ...], not constant in the data.

``end_task(state, task, data)`` consolidates: pass *all* of the task's data (the coreset and
multitask memories are filled from it, and the EWC Fisher is estimated on it).

A new method is one file with a constructor ``(obs_dim, act_dim, num_tasks, **options) ->
ContinualMethod``, one line in :data:`METHODS`, and its name in
:data:`hystax.world_models.METHOD_NAMES` (what ``hystax list`` shows without importing jax;
a test checks the two agree).

>>> method = make_method("ewc", obs_dim=3, act_dim=1, num_tasks=5)
>>> state = method.begin_task(method.init(key), 0, data)
>>> state, metrics = fit(method, state, data, task=0, steps=1000, batch_size=64, key=key)
>>> state = method.end_task(state, 0, data)
"""

from __future__ import annotations

from collections.abc import Callable

from hystax.core.errors import require, unknown_name
from hystax.world_models.continual_api import ContinualMethod
from hystax.world_models.finetune import make_finetune, make_multihead
from hystax.world_models.hypernet import hnet, hnet_chunked
from hystax.world_models.regularisers import make_ewc, make_si
from hystax.world_models.replay import make_coreset, make_multitask

__all__ = ["METHODS", "make_method"]

METHODS: dict[str, Callable[..., ContinualMethod]] = {
    "hnet": hnet,
    "hnet-chunked": hnet_chunked,
    "finetune": make_finetune,
    "multihead": make_multihead,
    "coreset": make_coreset,
    "multitask": make_multitask,
    "ewc": make_ewc,
    "si": make_si,
}
"""Method name -> constructor ``(obs_dim, act_dim, num_tasks, **options) -> ContinualMethod``."""


def make_method(name: str, obs_dim: int, act_dim: int, num_tasks: int,
                **options) -> ContinualMethod:
    """The method called ``name`` (see :data:`METHODS`) for these dimensions and capacity."""
    if name not in METHODS:
        raise unknown_name("continual method", name, METHODS)
    for what, value in (("obs_dim", obs_dim), ("act_dim", act_dim), ("num_tasks", num_tasks)):
        require(isinstance(value, int) and value > 0,
                f"{what} must be a positive int, got {value!r}")
    return METHODS[name](obs_dim, act_dim, num_tasks, **options)
