"""Continual-learning baselines for world models (the comparisons of HyperCRL, Huang et al. 2021):
fine-tuning, a multi-head network, coreset replay, the multitask (joint-training) bound, EWC and
Synaptic Intelligence, all as :class:`~hystax.world_models.continual.ContinualMethod`.

Every method trains a :class:`~hystax.world_models.dynamics.DynamicsMLP` on the normalised Δstate
with Adam (lr 1e-3) after clipping the gradient's global norm (5). The optimiser state is reset
at ``begin_task``. Task ``t``'s inputs and targets use its own normaliser (fitted at
``begin_task``), so the task id changes predictions even for the single-network methods.

============  ===========================================================================
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

>>> method = make_method("ewc", obs_dim=3, act_dim=1, num_tasks=5)
>>> state = method.begin_task(method.init(key), 0, data)
>>> state, metrics = fit(method, state, data, task=0, steps=1000, batch_size=64, key=key)
>>> state = method.end_task(state, 0, data)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from hystax.world_models.continual import (
    ContinualMethod,
    check_task,
    register_method,
    set_normaliser,
    stacked_normalisers,
    task_normaliser,
)
from hystax.world_models.dynamics import (
    DynamicsMLP,
    DynamicsParams,
    Normaliser,
    Transitions,
    check_transitions,
    delta_loss,
    normalised_inputs,
    predict_next,
)

from hystax.errors import require

__all__ = [
    "EWCState",
    "FinetuneState",
    "ReplayState",
    "SIState",
    "make_coreset",
    "make_ewc",
    "make_finetune",
    "make_multihead",
    "make_multitask",
    "make_si",
]


# --------------------------------------------------------------------------- shared pieces


class _Spec(NamedTuple):
    """What every baseline's functions share (static under jit)."""

    name: str
    net: DynamicsMLP
    opt: optax.GradientTransformation
    obs_dim: int
    act_dim: int
    num_tasks: int
    multihead: bool


def _head_name(net: DynamicsMLP) -> str:
    return f"Dense_{len(net.hidden)}"  # flax names the output layer after the hidden ones


def _init_weights(spec: _Spec, key: jax.Array) -> dict:
    """DynamicsMLP weights; with ``multihead`` the output layer's leaves get a leading
    [num_tasks] axis (one independently initialised head per task)."""
    x = jnp.zeros((1, spec.obs_dim + spec.act_dim))
    if not spec.multihead:
        return spec.net.init(key, x)["params"]
    every = jax.vmap(lambda k: spec.net.init(k, x)["params"])(jax.random.split(key, spec.num_tasks))
    head = _head_name(spec.net)
    weights = {name: jax.tree.map(lambda a: a[0], layer) for name, layer in every.items()}
    weights[head] = every[head]  # [num_tasks, ...]
    return weights


def _select(spec: _Spec, weights: dict, task) -> dict:
    """The plain DynamicsMLP weights for ``task`` (traced is fine): the task's head if multihead."""
    if not spec.multihead:
        return weights
    head = _head_name(spec.net)
    return {**weights, head: jax.tree.map(lambda a: a[task], weights[head])}


def _task_loss(spec: _Spec, weights: dict, norm: Normaliser, batch: Transitions, task):
    return delta_loss(spec.net, _select(spec, weights, task), norm, batch)


def _apply_grads(spec: _Spec, weights, opt_state, grads):
    updates, opt_state = spec.opt.update(grads, opt_state, weights)
    return optax.apply_updates(weights, updates), opt_state


def _zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def _params_for(spec: _Spec, state, task) -> DynamicsParams:
    return DynamicsParams(_select(spec, state.weights, task), task_normaliser(state, task))


def _predict(spec: _Spec, params: DynamicsParams, obs, action):
    return predict_next(spec.net, params, obs, action)


def _begin(spec: _Spec, state, task: int, data: Transitions):
    """Check ``task`` and ``data``, fit the task's normaliser, reset the optimiser."""
    check_task(spec, task)
    data = check_transitions(data, spec.obs_dim, spec.act_dim)
    state = set_normaliser(state, task, data)
    return state.replace(opt_state=spec.opt.init(state.weights))


def _checked_end(spec: _Spec, state, task: int, data: Transitions) -> Transitions:
    check_task(spec, task)
    data = check_transitions(data, spec.obs_dim, spec.act_dim)
    if not isinstance(state.seen, jax.core.Tracer):  # under jit the caller keeps the order
        require(bool(state.seen[task]), f"{spec.name}: end_task({task}) before begin_task({task})")
    return data


def _spec(name, obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
          unknown) -> _Spec:
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
    return _Spec(name, net, opt, obs_dim, act_dim, num_tasks, bool(multihead))


def _method(spec: _Spec, init, begin_task, update, end_task) -> ContinualMethod:
    return ContinualMethod(
        name=spec.name, obs_dim=spec.obs_dim, act_dim=spec.act_dim, num_tasks=spec.num_tasks,
        init=jax.jit(init), begin_task=begin_task, update=update, end_task=end_task,
        params_for=functools.partial(_params_for, spec),
        predict=functools.partial(_predict, spec))


# --------------------------------------------------------------------------- fine-tuning


@struct.dataclass
class FinetuneState:
    """weights: DynamicsMLP params (heads [num_tasks, ...] if multihead); norms: [num_tasks]
    Normaliser; seen: [num_tasks] bool."""

    weights: dict
    opt_state: Any
    norms: Normaliser
    seen: jax.Array


def _finetune_init(spec: _Spec, key) -> FinetuneState:
    weights = _init_weights(spec, key)
    return FinetuneState(weights, spec.opt.init(weights),
                         stacked_normalisers(spec.obs_dim, spec.act_dim, spec.num_tasks),
                         jnp.zeros(spec.num_tasks, bool))


def _finetune_update(spec: _Spec, state: FinetuneState, batch: Transitions, task):
    norm = task_normaliser(state, task)
    loss, grads = jax.value_and_grad(_task_loss, argnums=1)(spec, state.weights, norm, batch, task)
    weights, opt_state = _apply_grads(spec, state.weights, state.opt_state, grads)
    return state.replace(weights=weights, opt_state=opt_state), {"loss": loss, "task_loss": loss}


def _no_consolidation(spec: _Spec, state, task: int, data: Transitions):
    _checked_end(spec, state, task, data)
    return state


def _make_finetune(spec: _Spec) -> ContinualMethod:
    return _method(spec, functools.partial(_finetune_init, spec), functools.partial(_begin, spec),
                   functools.partial(_finetune_update, spec),
                   functools.partial(_no_consolidation, spec))


def make_finetune(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                  gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                  multihead: bool = False, **unknown) -> ContinualMethod:
    """One network trained on each task in turn (only the normaliser depends on the task,
    unless ``multihead``)."""
    return _make_finetune(_spec("finetune", obs_dim, act_dim, num_tasks, hidden, gaussian, lr,
                                clip, multihead, unknown))


def make_multihead(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                   gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                   **unknown) -> ContinualMethod:
    """A shared trunk with one output layer per task, fine-tuned task after task. Old heads
    never move (their gradient is zero and the optimiser is reset per task); the trunk drifts."""
    return _make_finetune(_spec("multihead", obs_dim, act_dim, num_tasks, hidden, gaussian, lr,
                                clip, True, unknown))


# --------------------------------------------------------------------------- replay


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


def _replay_init(spec: _Spec, size: int, key) -> ReplayState:
    k_net, k_mem = jax.random.split(key)
    base = _finetune_init(spec, k_net)
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


def _replay_loss(spec: _Spec, weights, norms: Normaliser, batch: Transitions,
                 replay: Transitions, old: jax.Array, task):
    """Mean over the current and the old tasks of each task's loss under its own normaliser
    (and head): every task weighs the same, whatever its data size."""
    current = _task_loss(spec, weights, jax.tree.map(lambda x: x[task], norms), batch, task)
    per_task = jax.vmap(lambda j, norm, b: _task_loss(spec, weights, norm, Transitions(*b), j))(
        jnp.arange(old.shape[0]), norms, replay)
    n_old = old.sum()
    old_sum = jnp.sum(jnp.where(old, per_task, 0.0))
    return (current + old_sum) / (1 + n_old), (current, old_sum / jnp.maximum(n_old, 1))


def _replay_update(spec: _Spec, replay_batch: int | None, state: ReplayState,
                   batch: Transitions, task):
    key, k = jax.random.split(state.key)
    size = replay_batch or batch.obs.shape[0]
    replay = _replay_batches(state.memory, state.mask, k, size)
    old = state.mask.any(axis=1) & (jnp.arange(spec.num_tasks) != task)
    (loss, (current, replayed)), grads = jax.value_and_grad(_replay_loss, argnums=1, has_aux=True)(
        spec, state.weights, state.norms, batch, replay, old, task)
    weights, opt_state = _apply_grads(spec, state.weights, state.opt_state, grads)
    metrics = {"loss": loss, "task_loss": current, "replay_loss": replayed}
    return state.replace(weights=weights, opt_state=opt_state, key=key), metrics


def _store(spec: _Spec, warn_when_full: bool, state: ReplayState, task: int,
           data: Transitions) -> ReplayState:
    """Keep min(N, M) of the task's points (a random subset when N > M) in its memory row."""
    data = _checked_end(spec, state, task, data)
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


def _make_replay(spec: _Spec, size: int, replay_batch, warn_when_full: bool) -> ContinualMethod:
    require(isinstance(size, int) and size > 0,
            f"{spec.name}: the memory size must be a positive int, got {size!r}")
    require(replay_batch is None or (isinstance(replay_batch, int) and replay_batch > 0),
            f"{spec.name}: replay_batch must be None or a positive int, got {replay_batch!r}")
    return _method(spec, functools.partial(_replay_init, spec, size), functools.partial(_begin, spec),
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
    spec = _spec("coreset", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
                 unknown)
    return _make_replay(spec, memory_size, replay_batch, warn_when_full=False)


def make_multitask(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
                   gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
                   multihead: bool = True, max_points: int = 20_000,
                   replay_batch: int | None = None, **unknown) -> ContinualMethod:
    """The joint-training upper bound: every old task's data (up to ``max_points`` per task, a
    random subset with a warning beyond) is replayed with the current task, all tasks weighted
    equally. Not a constant-memory method: [num_tasks, max_points] arrays."""
    spec = _spec("multitask", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
                 unknown)
    return _make_replay(spec, max_points, replay_batch, warn_when_full=True)


# --------------------------------------------------------------------------- EWC


@struct.dataclass
class EWCState:
    """Fine-tuning state plus ``fisher`` (the accumulated diagonal Fisher, like weights) and
    ``anchor`` (the weights at the end of the last consolidated task)."""

    weights: dict
    opt_state: Any
    norms: Normaliser
    seen: jax.Array
    fisher: dict
    anchor: dict


def _empirical_fisher_point(spec: _Spec, weights, norm: Normaliser, task, o, a, nx):
    """Squared gradient of the training loss on one point (its real target)."""
    point = Transitions(o[None], a[None], nx[None])
    grads = jax.grad(_task_loss, argnums=1)(spec, weights, norm, point, task)
    return jax.tree.map(jnp.square, grads)


def _model_fisher_point(spec: _Spec, weights, norm: Normaliser, task, o, a, nx):
    """The Fisher of the Gaussian likelihood whose negative log is the training loss, on one
    point (no target needed): (1/n) Σ_k [(∂μ_k)² / σ_k² + ½ (∂s_k)²], with s = log σ² the
    net's log-variance for a Gaussian net and σ² = ½ otherwise (the loss (t − μ)² is the NLL
    of N(μ, ½) up to a constant). It equals the Gauss–Newton diagonal of the loss."""
    del nx
    x = normalised_inputs(norm, o[None], a[None])[0]

    def outputs(w):
        out = spec.net.apply({"params": _select(spec, w, task)}, x)
        return jnp.concatenate(out) if isinstance(out, tuple) else out

    jac = jax.jacrev(outputs)(weights)  # leaves [n_out, *leaf]
    n = spec.obs_dim
    if spec.net.gaussian:
        logvar = jax.lax.stop_gradient(outputs(weights))[n:]
        coef = jnp.concatenate([jnp.exp(-logvar), jnp.full((n,), 0.5)]) / n
    else:
        coef = jnp.full((n,), 2.0 / n)
    return jax.tree.map(lambda j: jnp.einsum("k,k...->...", coef, j**2), jac)


_FISHERS = {"model": _model_fisher_point, "empirical": _empirical_fisher_point}


def _diagonal_fisher(spec: _Spec, kind: str, weights: dict, norm: Normaliser, data: Transitions,
                     task, chunk: int = 64) -> dict:
    """The diagonal Fisher averaged over the N points of ``data`` (a pytree like ``weights``,
    zero for other tasks' heads), ``chunk`` points at a time; ``kind`` picks the per-point
    estimate (see :data:`_FISHERS`)."""
    n = data.obs.shape[0]
    chunk = min(chunk, n)
    pad = (-n) % chunk
    chunks = jax.tree.map(lambda x: jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, chunk, x.shape[1]),
                          data)
    valid = (jnp.arange(n + pad) < n).reshape(-1, chunk).astype(data.obs.dtype)
    point = functools.partial(_FISHERS[kind], spec, weights, norm, task)

    def body(total, xs):
        part, v = xs
        squares = jax.vmap(point)(*part)
        return jax.tree.map(lambda s, g: s + jnp.einsum("c,c...->...", v, g), total, squares), None

    total, _ = jax.lax.scan(body, _zeros_like(weights), (tuple(chunks), valid))
    return jax.tree.map(lambda s: s / n, total)


def _ewc_init(spec: _Spec, key) -> EWCState:
    base = _finetune_init(spec, key)
    return EWCState(base.weights, base.opt_state, base.norms, base.seen,
                    _zeros_like(base.weights), base.weights)


def _quadratic(importance, weights, anchor):
    leaves = jax.tree.map(lambda f, w, a: jnp.sum(f * (w - a) ** 2), importance, weights, anchor)
    return sum(jax.tree.leaves(leaves))


def _penalised_step(spec: _Spec, state, batch, task, importance, anchor, scale):
    """One Adam step on task loss + scale · Σ importance (θ − anchor)². Returns (weights,
    opt_state, task gradient, metrics)."""
    norm = task_normaliser(state, task)
    loss, grads = jax.value_and_grad(_task_loss, argnums=1)(spec, state.weights, norm, batch, task)
    penalty, pen_grads = jax.value_and_grad(
        lambda w: scale * _quadratic(importance, w, anchor))(state.weights)
    total_grads = jax.tree.map(jnp.add, grads, pen_grads)
    weights, opt_state = _apply_grads(spec, state.weights, state.opt_state, total_grads)
    metrics = {"loss": loss + penalty, "task_loss": loss, "penalty": penalty}
    return weights, opt_state, grads, metrics


def _ewc_update(spec: _Spec, lam: float, state: EWCState, batch: Transitions, task):
    weights, opt_state, _, metrics = _penalised_step(spec, state, batch, task, state.fisher,
                                                     state.anchor, lam / 2)
    return state.replace(weights=weights, opt_state=opt_state), metrics


def _ewc_end(spec: _Spec, gamma: float, fisher_fn, state: EWCState, task: int,
             data: Transitions) -> EWCState:
    """Online EWC: F ← γ F + F_task (on ``data``, at the current weights); anchor ← weights."""
    data = _checked_end(spec, state, task, data)
    f_task = fisher_fn(state.weights, task_normaliser(state, task), data, jnp.int32(task))
    fisher = jax.tree.map(lambda f, new: gamma * f + new, state.fisher, f_task)
    return state.replace(fisher=fisher, anchor=state.weights)


def make_ewc(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
             gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
             multihead: bool = True, lam: float = 1e4, gamma: float = 1.0,
             fisher: str = "model", fisher_chunk: int = 64, **unknown) -> ContinualMethod:
    """Online elastic weight consolidation: loss + λ/2 Σ F (θ − θ*)², θ* the weights after the
    last task, F ← γ F + F_task with F_task the diagonal Fisher averaged over the task's data.
    ``fisher="model"`` (default) is the Fisher of the Gaussian likelihood whose NLL is the loss
    (label-free; it stays informative when the fit is exact), ``"empirical"`` the squared
    per-sample gradients of the loss on the real targets (it vanishes as the residuals do)."""
    spec = _spec("ewc", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead, unknown)
    require(lam >= 0 and 0 <= gamma <= 1, f"ewc: need lam >= 0 and 0 <= gamma <= 1, got {lam!r}, "
            f"{gamma!r}")
    require(isinstance(fisher_chunk, int) and fisher_chunk > 0,
            f"ewc: fisher_chunk must be a positive int, got {fisher_chunk!r}")
    require(fisher in _FISHERS, f"ewc: fisher must be one of {sorted(_FISHERS)}, got {fisher!r}")
    fisher_fn = jax.jit(functools.partial(_diagonal_fisher, spec, fisher, chunk=fisher_chunk))
    return _method(spec, functools.partial(_ewc_init, spec), functools.partial(_begin, spec),
                   functools.partial(_ewc_update, spec, float(lam)),
                   functools.partial(_ewc_end, spec, float(gamma), fisher_fn))


# --------------------------------------------------------------------------- SI


@struct.dataclass
class SIState:
    """Fine-tuning state plus the running path integral ``omega`` (this task), the accumulated
    importance ``big_omega`` and ``anchor`` (the weights at the end of the last task, or at init),
    all pytrees like weights."""

    weights: dict
    opt_state: Any
    norms: Normaliser
    seen: jax.Array
    omega: dict
    big_omega: dict
    anchor: dict


def _si_init(spec: _Spec, key) -> SIState:
    base = _finetune_init(spec, key)
    zeros = _zeros_like(base.weights)
    return SIState(base.weights, base.opt_state, base.norms, base.seen, zeros, zeros, base.weights)


def _si_update(spec: _Spec, c: float, state: SIState, batch: Transitions, task):
    """Penalised step; ω += −g · Δθ with g the gradient of the task loss alone."""
    weights, opt_state, grads, metrics = _penalised_step(spec, state, batch, task, state.big_omega,
                                                         state.anchor, c)
    omega = jax.tree.map(lambda o, g, new, old: o - g * (new - old), state.omega, grads, weights,
                         state.weights)
    return state.replace(weights=weights, opt_state=opt_state, omega=omega), metrics


def _si_end(spec: _Spec, xi: float, state: SIState, task: int, data: Transitions) -> SIState:
    """Ω += max(ω, 0) / ((θ_end − θ_start)² + ξ); ω ← 0; anchor ← θ_end. (ω is clipped at zero
    so that the penalty stays a convex bowl; Zenke et al. leave it unclipped.)"""
    _checked_end(spec, state, task, data)
    big_omega = jax.tree.map(lambda big, o, w, a: big + jnp.maximum(o, 0.0) / ((w - a) ** 2 + xi),
                             state.big_omega, state.omega, state.weights, state.anchor)
    return state.replace(big_omega=big_omega, omega=_zeros_like(state.omega), anchor=state.weights)


def make_si(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
            gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
            multihead: bool = True, c: float = 0.1, xi: float = 1e-3,
            **unknown) -> ContinualMethod:
    """Synaptic Intelligence (Zenke et al. 2017): loss + c Σ Ω (θ − θ̃)², Ω accumulated from the
    path integral of each task's loss decrease, θ̃ the weights after the last task."""
    spec = _spec("si", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead, unknown)
    require(c >= 0 and xi > 0, f"si: need c >= 0 and xi > 0, got {c!r}, {xi!r}")
    return _method(spec, functools.partial(_si_init, spec), functools.partial(_begin, spec),
                   functools.partial(_si_update, spec, float(c)),
                   functools.partial(_si_end, spec, float(xi)))


register_method("finetune", make_finetune)
register_method("multihead", make_multihead)
register_method("coreset", make_coreset)
register_method("multitask", make_multitask)
register_method("ewc", make_ewc)
register_method("si", make_si)
