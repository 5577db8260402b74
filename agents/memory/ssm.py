"""Diagonal state-space layers on the reset-aware scan: S5 (MIMO) and S4D (SISO).

Both discretise a continuous diagonal system ``x' = Λ x + B u`` with a learnable step Δ,
zero-order hold (ZOH) or bilinear, and run ``x_t = (1 - start_t) Λ̄ x_{t-1} + B̄ u_t`` with
:func:`~hystax.agents.memory.scan.reset_aware_scan`. Complex parameters are stored as
real/imaginary pairs; constants (the HiPPO eigendecomposition) are computed once per size.

Shapes: inputs ``x [T, B, H]`` (time-major), ``starts [T, B]``; S5's carry is
``complex64 [B, P/2]`` with conjugate symmetry (``[B, P]`` without), S4D's
``complex64 [B, H * N/2]``.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.memory.scan import reset_aware_scan

DISCRETIZATIONS = ("zoh", "bilinear")
S4D_INITS = ("lin", "inv")
C_INITS = ("complex_normal", "trunc_normal")
SSM_PARAMS = ("lambda_re", "log_neg_lambda_re", "lambda_im", "b", "log_step",  # S5, S4D
              "nu_log", "theta_log", "gamma_log",  # LRU (with its B, "b")
              "a_log", "dt_bias")  # S6
"""Parameter names of the SSM layers' own dynamics (Λ, B, log Δ; LRU's ν, θ, γ, B; S6's A and
Δ's bias); no other cell has a parameter of these names."""


@functools.cache
def hippo_n_eig(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``[size]`` and unitary eigenvectors ``[size, size]`` of HiPPO-N.

    HiPPO-LegS is ``A_nk = -sqrt(2n+1) sqrt(2k+1)`` (n > k), ``-(n+1)`` (n = k), 0 (n < k);
    adding ``p p^T`` with ``p_n = sqrt(n + 1/2)`` leaves its normal part ``S = -I/2 + skew``.
    The eigenvalues are ``-1/2 + i mu`` with ``mu`` from ``eigh(-i skew)``, sorted ascending.
    """
    n = np.arange(size)
    root = np.sqrt(2 * n + 1.0)
    hippo = -np.tril(np.outer(root, root), -1) - np.diag(n + 1.0)
    p = np.sqrt(n + 0.5)
    normal = hippo + np.outer(p, p)
    skew = normal + 0.5 * np.eye(size)
    mu, vectors = np.linalg.eigh(-1j * skew)
    return -0.5 + 1j * mu, vectors


def s5_init(state_size: int, blocks: int, conj_sym: bool):
    """``(Λ [P'], V [P, P'], V⁻¹ [P', P])`` for S5: ``blocks`` HiPPO-N blocks on a diagonal.

    With conjugate symmetry each block keeps the half of its eigenvalues with negative
    imaginary part, so ``P' = P / 2``.
    """
    block = state_size // blocks
    lam, vec = hippo_n_eig(block)
    if conj_sym:
        lam, vec = lam[: block // 2], vec[:, : block // 2]
    width = vec.shape[1]
    v = np.zeros((state_size, blocks * width), np.complex128)
    for j in range(blocks):
        v[j * block:(j + 1) * block, j * width:(j + 1) * width] = vec
    return np.tile(lam, blocks), v, v.conj().T


def discretize(lam, log_step, discretization: str):
    """``(Λ̄, γ)`` with ``B̄ = γ B``: ZOH ``Λ̄ = exp(ΛΔ), γ = (Λ̄ - 1)/Λ``; bilinear
    ``Λ̄ = (1 + ΔΛ/2)/(1 - ΔΛ/2), γ = Δ/(1 - ΔΛ/2)``."""
    step = jnp.exp(log_step)
    if discretization == "zoh":
        lam_bar = jnp.exp(lam * step)
        return lam_bar, (lam_bar - 1) / lam
    inv = 1 / (1 - step * lam / 2)
    return inv * (1 + step * lam / 2), inv * step


def _complex_param(module, name, init):
    """A complex parameter stored as a real ``[..., 2]`` array."""
    def real_init(key):
        value = init(key)
        return jnp.stack([value.real, value.imag], -1).astype(jnp.float32)
    pair = module.param(name, real_init)
    return pair[..., 0] + 1j * pair[..., 1]


def _unit_truncated_normal(key, shape):
    """A standard normal truncated to [-2, 2], rescaled to unit variance (its std is 0.8796)."""
    return jax.random.truncated_normal(key, -2.0, 2.0, shape) / 0.87962566


def _log_step_init(shape, dt_min, dt_max):
    def init(key):
        return jax.random.uniform(key, shape, jnp.float32, np.log(dt_min), np.log(dt_max))
    return init


class S5Layer(nn.Module):
    """One S5 layer: a MIMO diagonal SSM ``R^H -> R^H`` with ``P`` complex states.

    ``y_t = c Re(C̃ x_t) + D ⊙ u_t`` with ``c = 2`` under conjugate symmetry.
    Parameters named ``lambda_re``, ``lambda_im``, ``b``, ``log_step`` are the SSM's own
    (see ``recurrent PPO``'s ``ssm_lr_scale``).
    """

    d_model: int
    state_size: int = 64
    blocks: int = 1
    conj_sym: bool = True
    discretization: str = "zoh"
    clip_eigs: bool = True
    dt_min: float = 0.01
    dt_max: float = 1.0
    c_init: str = "complex_normal"

    @nn.compact
    def __call__(self, carry, x, starts):
        lam0, v, v_inv = s5_init(self.state_size, self.blocks, self.conj_sym)
        lam_re = self.param("lambda_re", lambda _: jnp.asarray(lam0.real, jnp.float32))
        lam_im = self.param("lambda_im", lambda _: jnp.asarray(lam0.imag, jnp.float32))
        if self.clip_eigs:
            lam_re = jnp.minimum(lam_re, -1e-4)
        lam = lam_re + 1j * lam_im

        def b_init(key):  # B̃ = V⁻¹ B with B lecun-normal in the real basis
            b = nn.initializers.lecun_normal()(key, (self.state_size, self.d_model))
            return jnp.asarray(v_inv) @ b.astype(jnp.complex64)

        def c_init(key):  # C̃ = C V, C's real and imaginary parts drawn independently
            k_re, k_im = jax.random.split(key)
            shape = (self.d_model, self.state_size)
            if self.c_init == "trunc_normal":  # as the S5 code: lecun-normal parts, var 1/P
                c = (_unit_truncated_normal(k_re, shape)
                     + 1j * _unit_truncated_normal(k_im, shape)) / np.sqrt(self.state_size)
            else:  # complex normal with E|c|^2 = 1/P
                c = np.sqrt(0.5 / self.state_size) * (jax.random.normal(k_re, shape)
                                                      + 1j * jax.random.normal(k_im, shape))
            return c @ jnp.asarray(v, jnp.complex64)

        b_tilde = _complex_param(self, "b", b_init)
        c_tilde = _complex_param(self, "c", c_init)
        d = self.param("d", nn.initializers.normal(1.0), (self.d_model,), jnp.float32)
        log_step = self.param("log_step", _log_step_init(lam0.shape, self.dt_min, self.dt_max))
        lam_bar, gamma = discretize(lam, log_step, self.discretization)
        bu = jnp.einsum("tbh,ph->tbp", x.astype(jnp.complex64), gamma[:, None] * b_tilde)
        states, carry = reset_aware_scan(lam_bar, bu, starts, carry)
        scale = 2.0 if self.conj_sym else 1.0
        y = scale * jnp.einsum("tbp,hp->tbh", states, c_tilde).real + d * x
        return carry, y


class S4DLayer(nn.Module):
    """One S4D layer: ``H`` independent SISO diagonal SSMs with ``N`` states each (``N/2``
    kept by conjugate symmetry), run in recurrent mode on the reset-aware scan.

    S4D-Lin ``λ_n = -1/2 + iπn``; S4D-Inv ``λ_n = -1/2 + i(N/π)(N/(2n+1) - 1)``. The real
    part is parametrised as ``-exp(·)``, so the layer stays stable.
    """

    d_model: int
    state_size: int = 64
    s4d_init: str = "lin"
    discretization: str = "zoh"
    dt_min: float = 0.01
    dt_max: float = 1.0

    @nn.compact
    def __call__(self, carry, x, starts):
        n_full, half = self.state_size, self.state_size // 2
        n = np.arange(half)
        imag = np.pi * n if self.s4d_init == "lin" else (n_full / np.pi) * (n_full / (2 * n + 1) - 1)
        shape = (self.d_model, half)
        log_neg_re = self.param("log_neg_lambda_re",
                                lambda _: jnp.full(shape, np.log(0.5), jnp.float32))
        lam_im = self.param("lambda_im",
                            lambda _: jnp.broadcast_to(jnp.asarray(imag, jnp.float32), shape))
        lam = -jnp.exp(log_neg_re) + 1j * lam_im
        b = _complex_param(self, "b", lambda _: jnp.ones(shape, jnp.complex64))

        def c_init(key):
            k_re, k_im = jax.random.split(key)
            return np.sqrt(0.5) * (jax.random.normal(k_re, shape) + 1j * jax.random.normal(k_im, shape))

        c = _complex_param(self, "c", c_init)
        d = self.param("d", nn.initializers.normal(1.0), (self.d_model,), jnp.float32)
        log_step = self.param("log_step",
                              _log_step_init((self.d_model,), self.dt_min, self.dt_max))
        lam_bar, gamma = discretize(lam, log_step[:, None], self.discretization)
        bu = (gamma * b) * x.astype(jnp.complex64)[..., None]  # [T, B, H, N/2]
        flat = bu.reshape((*bu.shape[:2], -1))
        states, carry = reset_aware_scan(lam_bar.reshape(-1), flat, starts, carry)
        states = states.reshape(bu.shape)
        y = 2.0 * jnp.einsum("tbhn,hn->tbh", states, c).real + d * x
        return carry, y
