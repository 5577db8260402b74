"""The reset-aware parallel scan behind every linear recurrence in hystax.

A diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t`` whose state is zeroed where an
episode starts (``start_t = 1``: "zero the state, then apply the input at t")::

    h_t = (1 - start_t) * a_t * h_{t-1} + b_t

is computed with ``jax.lax.associative_scan`` on triples ``(a, b, start)`` under

    (a_i, b_i, c_i) . (a_j, b_j, c_j) = (a_j a_i (1 - c_j) + a_j c_j,
                                         (a_j b_i + b_j)(1 - c_j) + b_j c_j,
                                         c_i OR c_j)

which is associative, so the whole sequence costs O(log T) depth. The carried state ``h0``
from a previous segment enters as one prepended element ``(1, h0, 0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hystax.core.errors import HystaxError


def reset_aware_combine(earlier, later):
    """The associative operator on ``(a, b, start)`` triples (``later`` applied after ``earlier``)."""
    a_i, b_i, c_i = earlier
    a_j, b_j, c_j = later
    keep = 1 - c_j  # 0 where the later element starts an episode: forget everything before
    a = a_j * a_i * keep + a_j * c_j
    b = (a_j * b_i + b_j) * keep + b_j * c_j
    return a, b, jnp.maximum(c_i, c_j)


def reset_aware_scan(a: jax.Array, b: jax.Array, starts: jax.Array, h0: jax.Array,
                     *, time_axis: int = 0) -> tuple[jax.Array, jax.Array]:
    """All states of ``h_t = (1 - starts_t) a_t h_{t-1} + b_t`` from ``h_{-1} = h0``.

    Args:
      a: decay, broadcastable to ``b`` (e.g. a constant ``[P]`` Λ̄).
      b: inputs ``[T, B..., P]`` (time at ``time_axis``; real or complex).
      starts: ``[T, B...]`` flags (bool or 0/1), 1 where step t starts a new episode.
      h0: carried state ``[B..., P]`` (``b``'s shape without the time axis).
      time_axis: 0 for time-major ``b``/``starts``/``a``, 1 for batch-major.

    Returns:
      ``(h [like b], h_last [like h0])``; ``h_last`` is the carry for the next segment.
    """
    a, b, starts, h0 = (jnp.asarray(x) for x in (a, b, starts, h0))
    if b.ndim < 2:
        raise HystaxError(f"reset_aware_scan: b must be [T, ..., P], got shape {b.shape}")
    if time_axis not in (0, 1) or time_axis >= b.ndim - 1:
        raise HystaxError(f"reset_aware_scan: time_axis must be 0 or 1 and not the state axis, "
                          f"got {time_axis} for b of shape {b.shape}")
    if starts.shape != b.shape[:-1]:
        raise HystaxError(f"reset_aware_scan: starts must have shape {b.shape[:-1]} "
                          f"(b's shape without the state axis), got {starts.shape}")
    if h0.shape != b.shape[:time_axis] + b.shape[time_axis + 1:]:
        raise HystaxError(f"reset_aware_scan: h0 must have shape "
                          f"{b.shape[:time_axis] + b.shape[time_axis + 1:]}, got {h0.shape}")
    try:
        jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise HystaxError(f"reset_aware_scan: a of shape {a.shape} does not broadcast to b's "
                          f"shape {b.shape}") from None
    if time_axis == 1:
        a = jnp.broadcast_to(a, b.shape)
        h, h_last = reset_aware_scan(jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1),
                                     jnp.swapaxes(starts, 0, 1), h0)
        return jnp.swapaxes(h, 0, 1), h_last
    a = jnp.broadcast_to(a, b.shape).astype(b.dtype)
    c = starts[..., None].astype(b.real.dtype)  # [T, B..., 1]: broadcasts over the state
    elements = (jnp.concatenate([jnp.ones_like(a[:1]), a]),
                jnp.concatenate([h0[None].astype(b.dtype), b]),
                jnp.concatenate([jnp.zeros_like(c[:1]), c]))
    _, h, _ = jax.lax.associative_scan(reset_aware_combine, elements)
    return h[1:], h[-1]


def reset_aware_loop(a, b, starts, h0):
    """Reference for :func:`reset_aware_scan` (time-major) with a sequential ``lax.scan``."""
    a = jnp.broadcast_to(a, b.shape)

    def step(h, x):
        a_t, b_t, start_t = x
        h = jnp.where(start_t[..., None], 0, a_t * h) + b_t
        return h, h

    h_last, h = jax.lax.scan(step, h0.astype(b.dtype), (a, b, starts.astype(bool)))
    return h, h_last
