"""A selective state-space layer (S6, the SSM inside Mamba; Gu & Dao 2023) on the
reset-aware scan.

``H`` channels with ``N`` real states each; Δ, B and C depend on the input (the
"selection")::

    Δ_t = softplus(W_Δ x_t + Δ_bias)                       [H]
    B_t = W_B x_t,  C_t = W_C x_t                          [N]
    A = -exp(A_log)                                        [H, N]
    h_t = (1 - start_t) exp(Δ_t A) ⊙ h_{t-1} + (Δ_t ⊙ x_t) B_tᵀ   [H, N]
    y_t = h_t C_t + D ⊙ x_t                                [H]

ZOH for A (``a_t = exp(Δ_t A)`` in (0, 1)) and Mamba's simplified Euler step for B
(``B̄_t = Δ_t B_t``). The state runs flattened to ``[H·N]`` on
:func:`~hystax.agents.memory.scan.reset_aware_scan`. Initialisation as Mamba's: S4D-real
``A_n = -(n + 1)`` for every channel, Δ_bias the inverse softplus of a Δ drawn log-uniformly
in ``[dt_min, dt_max]``, ``W_Δ`` uniform in ``±1/sqrt(H)``, D = 1. Mamba's surrounding block
(input expansion, causal convolution, SiLU gate) is not here: the SSM-cell mixing after it
(GELU, GLU) plays the gate's part.

Shapes: ``x [T, B, H]`` (time-major), ``starts [T, B]``; carry ``float32 [B, H·N]``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.memory.scan import reset_aware_scan


def _dt_bias_init(dt_min: float, dt_max: float):
    """``softplus⁻¹(Δ) = Δ + log(1 - exp(-Δ))`` with Δ log-uniform in ``[dt_min, dt_max]``."""
    def init(key, shape):
        dt = jnp.exp(jax.random.uniform(key, shape, jnp.float32, np.log(dt_min), np.log(dt_max)))
        return dt + jnp.log(-jnp.expm1(-dt))
    return init


def s6_dynamics(dt, a_log, b_t, x):
    """``(a, b)`` of ``h_t = a_t ⊙ h_{t-1} + b_t`` on ``[..., H, N]`` states, from
    ``Δ [..., H]``, ``A_log [H, N]``, ``B_t [..., N]`` and ``x [..., H]``."""
    a = jnp.exp(dt[..., None] * -jnp.exp(a_log))
    return a, (dt * x)[..., None] * b_t[..., None, :]


class S6Layer(nn.Module):
    """One selective SSM layer, ``R^H -> R^H`` with ``N = state_size`` states per channel.

    Parameters ``a_log`` and ``dt_bias`` are the SSM's own dynamics (in ``SSM_PARAMS``: they
    learn at recurrent PPO's ``ssm_lr_scale``, as S4D's Λ and log Δ do); the projections
    ``dt_proj``, ``b_proj``, ``c_proj`` and ``d`` are ordinary weights.
    """

    d_model: int
    state_size: int = 16
    dt_min: float = 0.01
    dt_max: float = 1.0

    @nn.compact
    def __call__(self, carry, x, starts):
        """``(carry [B, H·N], x [T, B, H], starts [T, B]) -> (carry, y [T, B, H])``."""
        h, n = self.d_model, self.state_size
        s4d_real = jnp.tile(jnp.arange(1, n + 1, dtype=jnp.float32), (h, 1))  # -A_n = n + 1
        a_log = self.param("a_log", lambda _: jnp.log(s4d_real))
        dt_bias = self.param("dt_bias", _dt_bias_init(self.dt_min, self.dt_max), (h,))
        d = self.param("d", nn.initializers.ones, (h,), jnp.float32)
        w_dt = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")  # U(±1/sqrt(H))
        dt = nn.softplus(nn.Dense(h, use_bias=False, kernel_init=w_dt, name="dt_proj")(x)
                         + dt_bias)
        b_t = nn.Dense(n, use_bias=False, name="b_proj")(x)
        c_t = nn.Dense(n, use_bias=False, name="c_proj")(x)
        a, bx = s6_dynamics(dt, a_log, b_t, x)  # [T, B, H, N]
        flat = (*bx.shape[:2], h * n)
        states, carry = reset_aware_scan(a.reshape(flat), bx.reshape(flat), starts, carry)
        y = jnp.einsum("tbhn,tbn->tbh", states.reshape(bx.shape), c_t) + d * x
        return carry, y
