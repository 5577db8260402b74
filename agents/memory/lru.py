"""The Linear Recurrent Unit (LRU; Orvieto et al. 2023, "Resurrecting Recurrent Neural
Networks for Long Sequences") on the reset-aware scan.

A complex diagonal recurrence with ``P`` states, ``R^H -> R^H``, learnt directly (no
continuous-time system, no discretisation step)::

    λ = exp(-exp(ν) + i exp(θ))                          [P], so |λ| = exp(-exp(ν)) < 1
    h_t = (1 - start_t) λ ⊙ h_{t-1} + γ ⊙ (B x_t)         B [P, H] complex, γ [P] > 0
    y_t = Re(C h_t) + D ⊙ x_t                            C [H, P] complex, D [H]

Initialisation as the paper's: λ uniform on the ring ``r_min <= |λ| <= r_max`` (``|λ|²``
uniform in ``[r_min², r_max²]``), phase ``arg λ`` uniform in ``[0, max_phase]``; γ starts at
``sqrt(1 - |λ|²)`` (the γ-normalisation: white-noise input keeps its variance in the state)
and is learnt as ``γ = exp(γ_log)``; B's and C's real and imaginary parts are normal with
variances ``1/(2H)`` and ``1/P``; D standard normal.

Shapes: ``x [T, B, H]`` (time-major), ``starts [T, B]``; carry ``complex64 [B, P]``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.memory.scan import reset_aware_scan


def lru_lambda(nu_log, theta_log):
    """``λ = exp(-exp(ν) + i exp(θ))``, the LRU's diagonal recurrence."""
    return jnp.exp(-jnp.exp(nu_log) + 1j * jnp.exp(theta_log))


def lru_gamma_log(nu_log):
    """``log γ`` with ``γ = sqrt(1 - |λ|²) = sqrt(1 - exp(-2 exp(ν)))``: the normalisation."""
    return 0.5 * jnp.log(-jnp.expm1(-2 * jnp.exp(nu_log)))


def _nu_log_init(r_min: float, r_max: float):
    """``ν_log = log(-log|λ|)`` with ``|λ|²`` uniform in ``[r_min², r_max²]``."""
    def init(key, shape):
        modulus_sq = jax.random.uniform(key, shape, jnp.float32, r_min ** 2, r_max ** 2)
        return jnp.log(-0.5 * jnp.log(modulus_sq))
    return init


def _theta_log_init(max_phase: float):
    """``θ_log = log(arg λ)`` with ``arg λ`` uniform in ``(0, max_phase]``."""
    def init(key, shape):
        u = jax.random.uniform(key, shape, jnp.float32, 1e-6)  # log 0 would be -inf
        return jnp.log(max_phase * u)
    return init


def _complex_normal_param(module, name, shape, std):
    """A complex parameter, real and imaginary parts ``N(0, std²)``, stored as ``[..., 2]``."""
    pair = module.param(name, lambda key: std * jax.random.normal(key, (*shape, 2), jnp.float32))
    return pair[..., 0] + 1j * pair[..., 1]


class LRULayer(nn.Module):
    """One LRU layer: ``P = state_size`` complex states, ``R^H -> R^H`` (see the module).

    Parameters ``nu_log``, ``theta_log``, ``gamma_log`` and ``b`` are the recurrence's own
    (in ``SSM_PARAMS``: they learn at recurrent PPO's ``ssm_lr_scale``, as S5's Λ, log Δ and
    B do); ``c`` and ``d`` are ordinary weights.
    """

    d_model: int
    state_size: int = 64
    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 2 * np.pi

    @nn.compact
    def __call__(self, carry, x, starts):
        """``(carry [B, P], x [T, B, H], starts [T, B]) -> (carry, y [T, B, H])``."""
        p, h = self.state_size, self.d_model
        nu_log = self.param("nu_log", _nu_log_init(self.r_min, self.r_max), (p,))
        theta_log = self.param("theta_log", _theta_log_init(self.max_phase), (p,))
        gamma_log = self.param("gamma_log", lambda _: lru_gamma_log(nu_log))
        b = _complex_normal_param(self, "b", (p, h), (2 * h) ** -0.5)
        c = _complex_normal_param(self, "c", (h, p), p ** -0.5)
        d = self.param("d", nn.initializers.normal(1.0), (h,), jnp.float32)
        lam = lru_lambda(nu_log, theta_log)
        bx = jnp.einsum("tbh,ph->tbp", x, jnp.exp(gamma_log)[:, None] * b)
        states, carry = reset_aware_scan(lam, bx, starts, carry)
        y = jnp.einsum("tbp,hp->tbh", states, c).real + d * x
        return carry, y
