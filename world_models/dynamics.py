"""Dynamics networks and what every learned world model shares: transitions, normalisation,
Δstate prediction and its losses.

A model predicts the *normalised* state change from the normalised (state, action); the next
state is ``obs + delta_mean + delta_std * output``. With ``gaussian=True`` the network emits a
mean and a log-variance (soft-clamped to [min_logvar, max_logvar]) and trains on the Gaussian
negative log-likelihood.

>>> net = DynamicsMLP(obs_dim=3, hidden=(32, 32))
>>> weights = net.init(key, jnp.zeros((1, 4)))["params"]
>>> params = DynamicsParams(weights, fit_normaliser(data))
>>> next_obs = predict_next(net, params, obs, action)        # [..., n]
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from hystax.core.errors import require
from hystax.core.nn import activation, hidden_layers
from hystax.core.transitions import Transitions

__all__ = [
    "DynamicsMLP",
    "DynamicsParams",
    "Normaliser",
    "Transitions",
    "check_transitions",
    "delta_loss",
    "fit_normaliser",
    "normalised_inputs",
    "predict_next",
]


def check_transitions(data: Transitions, obs_dim: int | None = None,
                      act_dim: int | None = None) -> Transitions:
    """``data`` as float arrays, or HystaxError naming what is wrong (ranks, sizes, dims, NaN)."""
    require(isinstance(data, tuple) and len(data) == 3,
            f"transitions must be (obs, action, next_obs), got {type(data).__name__}")
    obs, action, next_obs = (jnp.asarray(x, jnp.result_type(float)) for x in data)
    require(obs.ndim == 2 and action.ndim == 2 and next_obs.ndim == 2,
            f"transitions must be [N, n], [N, m], [N, n] arrays, got shapes {obs.shape}, "
            f"{action.shape}, {next_obs.shape}")
    require(obs.shape == next_obs.shape and obs.shape[0] == action.shape[0] and obs.shape[0] > 0,
            f"transitions disagree: obs {obs.shape}, action {action.shape}, next_obs {next_obs.shape}")
    require(obs_dim is None or obs.shape[1] == obs_dim,
            f"state dimension {obs.shape[1]} differs from the model's {obs_dim}")
    require(act_dim is None or action.shape[1] == act_dim,
            f"action dimension {action.shape[1]} differs from the model's {act_dim}")
    if not any(isinstance(x, jax.core.Tracer) for x in (obs, action, next_obs)):  # host data
        require(bool(jnp.all(jnp.isfinite(obs)) & jnp.all(jnp.isfinite(action))
                     & jnp.all(jnp.isfinite(next_obs))), "transitions contain NaN or inf")
    return Transitions(obs, action, next_obs)


@struct.dataclass
class Normaliser:
    """Per-dimension mean / std of the inputs (obs [n], action [m]) and of the targets (Δ [n])."""

    obs_mean: jax.Array
    obs_std: jax.Array
    act_mean: jax.Array
    act_std: jax.Array
    delta_mean: jax.Array
    delta_std: jax.Array

    @classmethod
    def identity(cls, obs_dim: int, act_dim: int) -> Normaliser:
        zeros, ones = jnp.zeros, jnp.ones
        return cls(zeros(obs_dim), ones(obs_dim), zeros(act_dim), ones(act_dim), zeros(obs_dim),
                   ones(obs_dim))


def fit_normaliser(data: Transitions, min_std: float = 1e-6, count=None) -> Normaliser:
    """Mean and std (floored at ``min_std``) of obs, action and Δ = next_obs - obs over ``data``
    (over its first ``count`` rows when given; ``count`` may be traced)."""
    delta = data.next_obs - data.obs
    if count is None:
        def stats(x):
            return x.mean(axis=0), jnp.maximum(x.std(axis=0), min_std)
    else:
        weight = (jnp.arange(data.obs.shape[0]) < count)[:, None] / count

        def stats(x):
            mean = jnp.sum(weight * x, axis=0)
            return mean, jnp.maximum(jnp.sqrt(jnp.sum(weight * (x - mean) ** 2, axis=0)), min_std)

    (om, os), (am, as_), (dm, ds) = stats(data.obs), stats(data.action), stats(delta)
    return Normaliser(om, os, am, as_, dm, ds)


@struct.dataclass
class DynamicsParams:
    """What :func:`predict_next` needs: the network's weights and the task's normaliser."""

    weights: dict
    norm: Normaliser


class DynamicsMLP(nn.Module):
    """MLP from normalised [state, action] to the normalised Δstate ([..., n]), or to
    (mean, log-variance) when ``gaussian``."""

    obs_dim: int
    hidden: Sequence[int] = (32, 32)
    gaussian: bool = False
    activation: str = "silu"
    min_logvar: float = -10.0
    max_logvar: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array):
        x = hidden_layers(x, self.hidden, activation(self.activation))
        out = nn.Dense(self.obs_dim * (2 if self.gaussian else 1))(x)
        if not self.gaussian:
            return out
        mean, logvar = jnp.split(out, 2, axis=-1)
        logvar = self.max_logvar - nn.softplus(self.max_logvar - logvar)  # soft clamp from above
        logvar = self.min_logvar + nn.softplus(logvar - self.min_logvar)  # and from below
        return mean, logvar


def normalised_inputs(norm: Normaliser, obs, action):
    """The network's input: [normalised obs, normalised action] ([..., n + m])."""
    return jnp.concatenate([(obs - norm.obs_mean) / norm.obs_std,
                            (action - norm.act_mean) / norm.act_std], axis=-1)


def predict_next(net: nn.Module, params: DynamicsParams, obs: jax.Array,
                 action: jax.Array) -> jax.Array:
    """The predicted next state (the mean for a Gaussian model): obs [..., n], action [..., m]."""
    out = net.apply({"params": params.weights}, normalised_inputs(params.norm, obs, action))
    mean = out[0] if isinstance(out, tuple) else out
    return obs + params.norm.delta_mean + params.norm.delta_std * mean


def delta_loss(net: nn.Module, weights, norm: Normaliser, batch: Transitions) -> jax.Array:
    """Mean loss on the normalised Δ: squared error, or the Gaussian NLL for a Gaussian net."""
    target = (batch.next_obs - batch.obs - norm.delta_mean) / norm.delta_std
    out = net.apply({"params": weights}, normalised_inputs(norm, batch.obs, batch.action))
    if isinstance(out, tuple):
        mean, logvar = out
        return jnp.mean(0.5 * ((target - mean) ** 2 * jnp.exp(-logvar) + logvar))
    return jnp.mean((target - out) ** 2)
