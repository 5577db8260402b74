"""Dense recursive least squares (RLS) on sparse features: the O(D²)-per-update baseline that
Losse-FTL (:mod:`hystax.world_models.ftl`) is timed against (``hystax bench losse``) and
checked against (the ridge solution both reach).

Sherman–Morrison updates of a dense [D, D] inverse P (P₀ = I/ε): the product P φ uses φ's
sparsity, the rank-one update of P cannot. In jax, so that it is timed like FTL (jitted, one
``lax.scan`` over a chunk, P donated by the caller).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["rls_init", "rls_predict", "rls_update_batch"]


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def rls_init(num_features: int, out_dim: int, ridge: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """(P = (εI)⁻¹ [D, D], W [D, d]): the ridge solution of no data (jitted: P is built in one
    buffer)."""
    return (jnp.eye(num_features, dtype=jnp.float32) / ridge,
            jnp.zeros((num_features, out_dim), jnp.float32))


def rls_update_batch(carry, indices, values, targets):
    """Sherman–Morrison RLS over a chunk [B, k], [B, k], [B, d] in order (one ``lax.scan``):
    P ← P − Pφ(Pφ)ᵀ/(1 + φᵀPφ), W ← W + Pφ (y − Wᵀφ)ᵀ/(1 + φᵀPφ); φ is sparse (indices,
    values), P symmetric, so Pφ = P[S]ᵀv costs O(Dk) and the rank-one update of P O(D²)."""

    def step(carry, sample):
        P, W = carry
        S, v, y = sample
        ok = jnp.all(jnp.isfinite(v)) & jnp.all(jnp.isfinite(y))
        v = jnp.where(ok, v, 0.0)
        p_phi = v @ P[S]                                  # [D]
        denom = 1.0 + v @ p_phi[S]
        gain = p_phi / denom
        error = jnp.where(ok, y - v @ W[S], 0.0)          # [d]
        return (P - gain[:, None] * p_phi[None, :], W + gain[:, None] * error[None, :]), None

    carry, _ = jax.lax.scan(step, carry, (indices, values, targets))
    return carry


def rls_predict(carry, indices, values):
    """Predictions [..., d] of the sparse features (indices, values) [..., k]."""
    return jnp.einsum("...k,...kd->...d", values, carry[1][indices])
