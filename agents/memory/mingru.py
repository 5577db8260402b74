"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?") on the reset-aware scan.

A GRU whose gate and candidate see only the input, so the recurrence is diagonal and
linear in the state::

    z_t = σ(W_z x_t + b_z),  h̃_t = W_h x_t + b_h                      [H]
    h_t = (1 - start_t)(1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t = a_t ⊙ h_{t-1} + b_t
    y_t = h_t

with the input-dependent decay ``a_t = 1 - z_t = σ(-(W_z x_t + b_z))`` in (0, 1) and input
``b_t = z_t ⊙ h̃_t``, run in float32 on
:func:`~hystax.agents.memory.scan.reset_aware_scan`. The paper's log-space variant (which
makes ``h̃`` positive through ``g``) is not needed: the scan works in linear space.

Shapes: ``x [T, B, H]`` (time-major), ``starts [T, B]``; carry ``float32 [B, H]``.
"""

from __future__ import annotations

import flax.linen as nn

from hystax.agents.memory.scan import reset_aware_scan


def mingru_gates(gate_logits, candidate):
    """``(a, b)`` of ``h_t = a_t h_{t-1} + b_t``: ``a = 1 - σ(k) = σ(-k)``, ``b = σ(k) h̃``."""
    return nn.sigmoid(-gate_logits), nn.sigmoid(gate_logits) * candidate


class MinGRULayer(nn.Module):
    """One minGRU layer, ``R^H -> R^H`` with ``H`` real states (see the module); its weights
    are the two Dense layers ``gate`` (``W_z``, ``b_z``) and ``candidate`` (``W_h``, ``b_h``)."""

    d_model: int

    @nn.compact
    def __call__(self, carry, x, starts):
        """``(carry [B, H], x [T, B, H], starts [T, B]) -> (carry, y [T, B, H])``."""
        a, b = mingru_gates(nn.Dense(self.d_model, name="gate")(x),
                            nn.Dense(self.d_model, name="candidate")(x))
        states, carry = reset_aware_scan(a, b, starts, carry)
        return carry, states
