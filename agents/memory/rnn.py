"""Sequential baselines with the same layer interface as the SSMs: GRU, LSTM and a
memoryless MLP layer.

``layer(carry, x [T, B, H], starts [T, B]) -> (carry, y [T, B, H])``; the RNNs zero their
state where ``starts`` is set, then apply the cell (``lax.scan`` over time).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


def _scan_cell(cell, carry, x, starts):
    """``cell`` over time with the carry zeroed where ``starts``; ``(carry, y [T, B, H])``."""
    def step(cell, carry, inputs):
        x_t, start_t = inputs
        carry = jnp.where(start_t.reshape((-1,) + (1,) * (carry.ndim - 1)), 0.0, carry)
        return cell(carry, x_t)

    scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False})
    return scan(cell, carry, (x, starts))


class GRULayer(nn.Module):
    """A GRU cell (flax ``GRUCell``) over time; carry ``float32 [B, H]``."""

    d_model: int

    @nn.compact
    def __call__(self, carry, x, starts):
        return _scan_cell(nn.GRUCell(self.d_model), carry, x, starts)


class LSTMLayer(nn.Module):
    """An LSTM cell (flax ``OptimizedLSTMCell``) over time; carry ``float32 [B, 2, H]``
    (cell state, hidden state)."""

    d_model: int

    @nn.compact
    def __call__(self, carry, x, starts):
        return _scan_cell(_StackedLSTMCell(self.d_model), carry, x, starts)


class _StackedLSTMCell(nn.Module):
    """``OptimizedLSTMCell`` with its (c, h) carry stacked as one ``[B, 2, H]`` array."""

    d_model: int

    @nn.compact
    def __call__(self, carry, x):
        (c, h), y = nn.OptimizedLSTMCell(self.d_model)((carry[:, 0], carry[:, 1]), x)
        return jnp.stack([c, h], 1), y


class MLPLayer(nn.Module):
    """Memoryless: ``y_t = gelu(W x_t + b)``; the carry ``[B, 1]`` is passed through."""

    d_model: int

    @nn.compact
    def __call__(self, carry, x, starts):
        return carry, nn.gelu(nn.Dense(self.d_model)(x))
