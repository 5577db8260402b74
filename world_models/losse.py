"""Locality-sensitive sparse encoding (Losse) and the Losse-FTL world model.

**Encoding.** A fixed random projection P [d_in, L·ρ] (truncated normal on [-2, 2], scaled
1/√d_in) maps the standardised input to L groups of ρ coordinates; ``h = sigmoid(x P) · n``,
clipped to just below n so that a saturated sigmoid never indexes past its group. Each group's
``h`` locates a cell of an (n+1)^ρ-vertex lattice: idx = floor(h), frac = h - idx; the cell's
2^ρ corners are active with multilinear weights Π(frac or 1 - frac), which sum to 1 per group
and move continuously with x. So D = L(n+1)^ρ features, of which k = L·2^ρ are active.

>>> enc = make_encoder(key, input_dim=3, num_groups=50, bins=5, group_dim=2)   # D 1800, k 200
>>> indices, values = encode(enc, x)              # [k] int32, [k] float32
>>> batch_indices, batch_values = encode(enc, xs)  # xs [B, 3] -> [B, k] each

**World model.** :class:`LosseModel` is an encoder plus a Follow-The-Leader linear model
(:mod:`hystax.world_models.ftl`) on the encoding of (obs, action), predicting Δobs and any extra
targets (reward, done); ``predict(params, obs, action) -> next_obs`` is the interface the MPC
planner and the continual world models share.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.core.errors import require
from hystax.world_models import ftl

__all__ = [
    "LosseEncoder",
    "LosseModel",
    "encode",
    "make_encoder",
    "make_model",
    "model_predict",
    "model_update",
    "predict",
]

_INDEX_LIMIT = 2**31 - 1  # int32 indices
_MAX_CORNERS = 2**16  # 2^ρ active corners per group


@struct.dataclass
class LosseEncoder:
    """A Losse encoding. ``projection`` [d_in, L·ρ]; inputs are standardised by ``loc`` and
    ``scale`` [d_in] before the projection. D = L(n+1)^ρ features, k = L·2^ρ active."""

    projection: jax.Array
    loc: jax.Array
    scale: jax.Array
    num_groups: int = struct.field(pytree_node=False)
    bins: int = struct.field(pytree_node=False)
    group_dim: int = struct.field(pytree_node=False)

    @property
    def input_dim(self) -> int:
        return self.projection.shape[0]

    @property
    def num_features(self) -> int:
        return self.num_groups * (self.bins + 1) ** self.group_dim

    @property
    def num_active(self) -> int:
        return self.num_groups * 2**self.group_dim


def check_sizes(num_groups: int, bins: int, group_dim: int) -> None:
    """Clear errors for sizes that do not fit the int32 feature index."""
    for name, value in (("num_groups", num_groups), ("bins", bins), ("group_dim", group_dim)):
        require(isinstance(value, (int, np.integer)) and value >= 1,
                f"Losse {name} must be a positive integer, got {value!r}")
    require(2**group_dim <= _MAX_CORNERS,
            f"Losse group_dim={group_dim} gives 2^{group_dim} active corners per group; at most "
            f"{_MAX_CORNERS} (group_dim <= 16) are supported")
    features = num_groups * (bins + 1) ** group_dim
    require(features <= _INDEX_LIMIT,
            f"Losse needs D = num_groups*(bins+1)^group_dim = {num_groups}*{bins + 1}^{group_dim}"
            f" = {features:.3g} features, more than the int32 feature index holds "
            f"({_INDEX_LIMIT}); lower bins, group_dim or num_groups")


def make_encoder(key: jax.Array, input_dim: int, num_groups: int = 50, bins: int = 5,
                 group_dim: int = 2, loc=0.0, scale=1.0) -> LosseEncoder:
    """A random Losse encoder for inputs [input_dim], standardised as ``(x - loc) / scale``."""
    require(isinstance(input_dim, (int, np.integer)) and input_dim >= 1,
            f"Losse input_dim must be a positive integer, got {input_dim!r}")
    check_sizes(num_groups, bins, group_dim)
    loc = jnp.broadcast_to(jnp.asarray(loc, jnp.float32), (input_dim,))
    scale = jnp.broadcast_to(jnp.asarray(scale, jnp.float32), (input_dim,))
    if not any(isinstance(a, jax.core.Tracer) for a in (loc, scale)):  # checked when concrete
        require(bool(jnp.all(jnp.isfinite(loc))) and bool(jnp.all(jnp.isfinite(scale)))
                and bool(jnp.all(scale > 0)), "Losse loc must be finite and scale finite and > 0")
    projection = jax.random.truncated_normal(key, -2.0, 2.0, (input_dim, num_groups * group_dim))
    return LosseEncoder(projection / math.sqrt(input_dim), loc, scale, int(num_groups), int(bins),
                        int(group_dim))


def _corners(group_dim: int) -> np.ndarray:
    """The 2^ρ corners of a unit cell as 0/1 offsets [2^ρ, ρ]."""
    return ((np.arange(2**group_dim)[:, None] >> np.arange(group_dim)) & 1).astype(np.int32)


def _encode_one(enc: LosseEncoder, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    n, rho = enc.bins, enc.group_dim
    finite = jnp.all(jnp.isfinite(x))
    z = jnp.where(finite, (x - enc.loc) / enc.scale, 0.0) @ enc.projection
    below_n = np.nextafter(np.float32(n), np.float32(0))  # floor(h) <= n - 1: no aliasing
    h = jnp.minimum(jax.nn.sigmoid(z) * n, below_n).reshape(enc.num_groups, rho)
    cell = jnp.floor(h)
    frac = h - cell
    corners = _corners(rho)                                       # [2^ρ, ρ]
    vertex = cell.astype(jnp.int32)[:, None, :] + corners[None]   # [L, 2^ρ, ρ]
    strides = (n + 1) ** np.arange(rho, dtype=np.int64)
    local = jnp.sum(vertex * strides.astype(np.int32), axis=-1)
    group_offset = (jnp.arange(enc.num_groups, dtype=jnp.int32) * (n + 1) ** rho)[:, None]
    weights = jnp.prod(jnp.where(corners[None] == 1, frac[:, None, :], 1.0 - frac[:, None, :]),
                       axis=-1)
    values = jnp.where(finite, weights, jnp.nan).reshape(-1)  # non-finite x: NaN values
    return (local + group_offset).reshape(-1), values


def encode(enc: LosseEncoder, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Encode x [..., d_in] -> (indices [..., k] int32, values [..., k]).

    Non-finite inputs give valid indices with NaN values, which :func:`ftl.update` rejects.
    """
    x = jnp.asarray(x, jnp.float32)
    require(x.ndim >= 1 and x.shape[-1] == enc.input_dim,
            f"Losse encoder expects inputs [..., {enc.input_dim}], got shape {tuple(x.shape)}")
    flat = x.reshape(-1, enc.input_dim)
    indices, values = jax.vmap(lambda row: _encode_one(enc, row))(flat)
    k = enc.num_active
    return indices.reshape(*x.shape[:-1], k), values.reshape(*x.shape[:-1], k)


class LosseModel(NamedTuple):
    """Losse-FTL world model parameters: the encoder of concat(obs, action) and the FTL state
    over targets [Δobs (obs_dim), extras...]. ``config`` is the FTL model's static config."""

    encoder: LosseEncoder
    state: ftl.FTLState


def make_model(key: jax.Array, obs_dim: int, act_dim: int, config: ftl.FTLConfig | None = None,
               *, extra_targets: int = 0, num_groups: int = 50, bins: int = 5,
               group_dim: int = 2, loc=0.0, scale=1.0) -> tuple[ftl.FTLConfig, LosseModel]:
    """A fresh Losse-FTL world model; returns (static FTL config, params).

    ``loc``/``scale`` [obs_dim + act_dim] standardise (obs, action) for the encoder; the model
    predicts ``obs_dim + extra_targets`` outputs (Δobs first).
    """
    encoder = make_encoder(key, obs_dim + act_dim, num_groups, bins, group_dim, loc, scale)
    out_dim = obs_dim + extra_targets
    if config is None:
        config = ftl.FTLConfig(encoder.num_features, out_dim)
    require(config.num_features == encoder.num_features and config.out_dim == out_dim,
            f"FTL config has D={config.num_features}, out_dim={config.out_dim}; the encoder needs "
            f"D={encoder.num_features}, out_dim={out_dim}")
    return config, LosseModel(encoder, ftl.init(config))


def model_predict(params: LosseModel, obs: jax.Array, action: jax.Array) -> jax.Array:
    """All targets [..., out_dim] (Δobs first) for obs [..., n] and action [..., m]."""
    indices, values = encode(params.encoder, jnp.concatenate([obs, action], axis=-1))
    return ftl.predict(params.state, indices, values)


def predict(params: LosseModel, obs: jax.Array, action: jax.Array) -> jax.Array:
    """Next observation [..., n]: obs + predicted Δobs (the MPC planner's interface)."""
    return obs + model_predict(params, obs, action)[..., : obs.shape[-1]]


def model_update(config: ftl.FTLConfig, params: LosseModel, obs: jax.Array, action: jax.Array,
                 next_obs: jax.Array, extras: jax.Array | None = None) -> LosseModel:
    """One FTL update per transition (batched: obs [B, n] ... are scanned in order).

    Targets are ``next_obs - obs`` followed by ``extras`` [..., e] (reward, done, ...).
    """
    target = next_obs - obs
    if extras is not None:
        target = jnp.concatenate([target, extras], axis=-1)
    indices, values = encode(params.encoder, jnp.concatenate([obs, action], axis=-1))
    if target.ndim == 1:
        return params._replace(state=ftl.update(config, params.state, indices, values, target))
    return params._replace(state=ftl.update_batch(config, params.state, indices, values, target))
