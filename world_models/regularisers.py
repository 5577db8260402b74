"""Regulariser baselines: fine-tuning plus a quadratic pull towards the last task's weights,
weighted by an importance per weight: online EWC (diagonal Fisher) and Synaptic Intelligence
(path integral).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hystax.core.errors import require
from hystax.world_models.continual_api import ContinualMethod, task_normaliser
from hystax.world_models.dynamics import Normaliser, Transitions, normalised_inputs
from hystax.world_models.finetune import finetune_init
from hystax.world_models.single_net import (
    NetSpec,
    apply_grads,
    as_method,
    begin_task,
    checked_end,
    make_spec,
    select_weights,
    task_loss,
    zeros_like,
)

__all__ = ["EWCState", "SIState", "make_ewc", "make_si"]


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


def _empirical_fisher_point(spec: NetSpec, weights, norm: Normaliser, task, o, a, nx):
    """Squared gradient of the training loss on one point (its real target)."""
    point = Transitions(o[None], a[None], nx[None])
    grads = jax.grad(task_loss, argnums=1)(spec, weights, norm, point, task)
    return jax.tree.map(jnp.square, grads)


def _model_fisher_point(spec: NetSpec, weights, norm: Normaliser, task, o, a, nx):
    """The Fisher of the Gaussian likelihood whose negative log is the training loss, on one
    point (no target needed): (1/n) Σ_k [(∂μ_k)² / σ_k² + ½ (∂s_k)²], with s = log σ² the
    net's log-variance for a Gaussian net and σ² = ½ otherwise (the loss (t − μ)² is the NLL
    of N(μ, ½) up to a constant). It equals the Gauss–Newton diagonal of the loss."""
    del nx
    x = normalised_inputs(norm, o[None], a[None])[0]

    def outputs(w):
        out = spec.net.apply({"params": select_weights(spec, w, task)}, x)
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


def _diagonal_fisher(spec: NetSpec, kind: str, weights: dict, norm: Normaliser, data: Transitions,
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

    total, _ = jax.lax.scan(body, zeros_like(weights), (tuple(chunks), valid))
    return jax.tree.map(lambda s: s / n, total)


def _ewc_init(spec: NetSpec, key) -> EWCState:
    base = finetune_init(spec, key)
    return EWCState(base.weights, base.opt_state, base.norms, base.seen,
                    zeros_like(base.weights), base.weights)


def _quadratic(importance, weights, anchor):
    leaves = jax.tree.map(lambda f, w, a: jnp.sum(f * (w - a) ** 2), importance, weights, anchor)
    return sum(jax.tree.leaves(leaves))


def _penalised_step(spec: NetSpec, state, batch, task, importance, anchor, scale):
    """One Adam step on task loss + scale · Σ importance (θ − anchor)². Returns (weights,
    opt_state, task gradient, metrics)."""
    norm = task_normaliser(state, task)
    loss, grads = jax.value_and_grad(task_loss, argnums=1)(spec, state.weights, norm, batch, task)
    penalty, pen_grads = jax.value_and_grad(
        lambda w: scale * _quadratic(importance, w, anchor))(state.weights)
    total_grads = jax.tree.map(jnp.add, grads, pen_grads)
    weights, opt_state = apply_grads(spec, state.weights, state.opt_state, total_grads)
    metrics = {"loss": loss + penalty, "task_loss": loss, "penalty": penalty}
    return weights, opt_state, grads, metrics


def _ewc_update(spec: NetSpec, lam: float, state: EWCState, batch: Transitions, task):
    weights, opt_state, _, metrics = _penalised_step(spec, state, batch, task, state.fisher,
                                                     state.anchor, lam / 2)
    return state.replace(weights=weights, opt_state=opt_state), metrics


def _ewc_end(spec: NetSpec, gamma: float, fisher_fn, state: EWCState, task: int,
             data: Transitions) -> EWCState:
    """Online EWC: F ← γ F + F_task (on ``data``, at the current weights); anchor ← weights."""
    data = checked_end(spec, state, task, data)
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
    spec = make_spec("ewc", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
                     unknown)
    require(lam >= 0 and 0 <= gamma <= 1, f"ewc: need lam >= 0 and 0 <= gamma <= 1, got {lam!r}, "
            f"{gamma!r}")
    require(isinstance(fisher_chunk, int) and fisher_chunk > 0,
            f"ewc: fisher_chunk must be a positive int, got {fisher_chunk!r}")
    require(fisher in _FISHERS, f"ewc: fisher must be one of {sorted(_FISHERS)}, got {fisher!r}")
    fisher_fn = jax.jit(functools.partial(_diagonal_fisher, spec, fisher, chunk=fisher_chunk))
    return as_method(spec,
                     functools.partial(_ewc_init, spec),
                     functools.partial(begin_task, spec),
                     functools.partial(_ewc_update, spec, float(lam)),
                     functools.partial(_ewc_end, spec, float(gamma), fisher_fn))





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


def _si_init(spec: NetSpec, key) -> SIState:
    base = finetune_init(spec, key)
    zeros = zeros_like(base.weights)
    return SIState(base.weights, base.opt_state, base.norms, base.seen, zeros, zeros, base.weights)


def _si_update(spec: NetSpec, c: float, state: SIState, batch: Transitions, task):
    """Penalised step; ω += −g · Δθ with g the gradient of the task loss alone."""
    weights, opt_state, grads, metrics = _penalised_step(spec, state, batch, task, state.big_omega,
                                                         state.anchor, c)
    omega = jax.tree.map(lambda o, g, new, old: o - g * (new - old), state.omega, grads, weights,
                         state.weights)
    return state.replace(weights=weights, opt_state=opt_state, omega=omega), metrics


def _si_end(spec: NetSpec, xi: float, state: SIState, task: int, data: Transitions) -> SIState:
    """Ω += max(ω, 0) / ((θ_end − θ_start)² + ξ); ω ← 0; anchor ← θ_end. (ω is clipped at zero
    so that the penalty stays a convex bowl; Zenke et al. leave it unclipped.)"""
    checked_end(spec, state, task, data)
    big_omega = jax.tree.map(lambda big, o, w, a: big + jnp.maximum(o, 0.0) / ((w - a) ** 2 + xi),
                             state.big_omega, state.omega, state.weights, state.anchor)
    return state.replace(big_omega=big_omega, omega=zeros_like(state.omega), anchor=state.weights)


def make_si(obs_dim: int, act_dim: int, num_tasks: int, *, hidden=(32, 32),
            gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
            multihead: bool = True, c: float = 0.1, xi: float = 1e-3,
            **unknown) -> ContinualMethod:
    """Synaptic Intelligence (Zenke et al. 2017): loss + c Σ Ω (θ − θ̃)², Ω accumulated from the
    path integral of each task's loss decrease, θ̃ the weights after the last task."""
    spec = make_spec("si", obs_dim, act_dim, num_tasks, hidden, gaussian, lr, clip, multihead,
                     unknown)
    require(c >= 0 and xi > 0, f"si: need c >= 0 and xi > 0, got {c!r}, {xi!r}")
    return as_method(spec,
                     functools.partial(_si_init, spec),
                     functools.partial(begin_task, spec),
                     functools.partial(_si_update, spec, float(c)),
                     functools.partial(_si_end, spec, float(xi)))
