"""The LRU, minGRU and S6 cells: each layer's parallel reset-aware scan against its own
recurrence written out step by step in numpy (float64), starts isolating what came before
them, and the facts of each initialisation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hystax.agents.memory.lru import LRULayer
from hystax.agents.memory.mingru import MinGRULayer
from hystax.agents.memory.s6 import S6Layer

T, B, H, N = 20, 3, 3, 4


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _complex(pair):
    return pair[..., 0] + 1j * pair[..., 1]


def _lru_reference(p, h0, x, starts):
    """h_t = λ h_{t-1} + γ (B x_t), zeroed first at starts; y_t = Re(C h_t) + D x_t."""
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    gamma, b, c = np.exp(p["gamma_log"]), _complex(p["b"]), _complex(p["c"])
    h, ys = h0, []
    for t in range(len(x)):
        h = np.where(starts[t][:, None], 0, lam * h) + gamma * (x[t] @ b.T)
        ys.append((h @ c.T).real + p["d"] * x[t])
    return np.stack(ys), h


def _mingru_reference(p, h0, x, starts):
    """z_t = σ(W_z x_t + b_z), h̃_t = W_h x_t + b_h, h_t = (1 - z_t) h_{t-1} + z_t h̃_t; y = h."""
    h, ys = h0, []
    for t in range(len(x)):
        z = _sigmoid(x[t] @ p["gate"]["kernel"] + p["gate"]["bias"])
        h_tilde = x[t] @ p["candidate"]["kernel"] + p["candidate"]["bias"]
        h = np.where(starts[t][:, None], 0, (1 - z) * h) + z * h_tilde
        ys.append(h)
    return np.stack(ys), h


def _s6_reference(p, h0, x, starts):
    """Δ_t = softplus(W_Δ x_t + bias), h_t[d, n] = exp(Δ_t[d] A[d, n]) h_{t-1}[d, n]
    + Δ_t[d] B_t[n] x_t[d], y_t[d] = Σ_n C_t[n] h_t[d, n] + D[d] x_t[d]."""
    a_mat = -np.exp(p["a_log"])
    h, ys = h0.reshape(B, H, N), []
    for t in range(len(x)):
        dt = np.logaddexp(0, x[t] @ p["dt_proj"]["kernel"] + p["dt_bias"])  # [B, H]
        b_t, c_t = x[t] @ p["b_proj"]["kernel"], x[t] @ p["c_proj"]["kernel"]  # [B, N]
        decay = np.exp(dt[:, :, None] * a_mat)
        h = (np.where(starts[t][:, None, None], 0, decay * h)
             + (dt * x[t])[:, :, None] * b_t[:, None, :])
        ys.append(np.einsum("bdn,bn->bd", h, c_t) + p["d"] * x[t])
    return np.stack(ys), h.reshape(B, H * N)


CELLS = {  # layer, carry (shape, dtype), reference
    "lru": (LRULayer(H, N), ((B, N), jnp.complex64), _lru_reference),
    "mingru": (MinGRULayer(H), ((B, H), jnp.float32), _mingru_reference),
    "s6": (S6Layer(H, N), ((B, H * N), jnp.float32), _s6_reference),
}


@functools.cache
def _problem(name, seed=0):
    """Three sequences: 0 starts at t = 4 and 11, 1 at t = 0 and at random, 2 never; a
    non-zero carry; the layer's parameters moved off their (structured) initial values."""
    layer, (shape, dtype), _ = CELLS[name]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, H)).astype(np.float32)
    starts = np.zeros((T, B), bool)
    starts[[4, 11], 0] = True
    starts[:, 1] = rng.random(T) < 0.2
    starts[0, 1] = True
    carry = rng.normal(size=shape) + (1j * rng.normal(size=shape) if dtype == jnp.complex64 else 0)
    params = jax.jit(layer.init)(jax.random.PRNGKey(seed), jnp.zeros(shape, dtype), x, starts)
    params = jax.tree.map(lambda w: np.asarray(w, np.float64) + 0.1 * rng.normal(size=w.shape),
                          params)  # float64 numpy arrays
    return layer, params, carry, x, starts


@pytest.mark.parametrize("name", CELLS)
def test_parallel_scan_equals_the_written_out_recurrence_in_float64(name):
    layer, params, carry, x, starts = _problem(name)
    reference = CELLS[name][2]
    want_y, want_carry = reference(params["params"], carry, x.astype(np.float64), starts)
    with jax.enable_x64(True):
        params64 = jax.tree.map(lambda w: jnp.asarray(w, jnp.float64), params)
        x64 = jnp.asarray(x, jnp.float64)
        new_carry, y = jax.jit(layer.apply)(params64, jnp.asarray(carry), x64, starts)
        assert y.dtype == jnp.float64
        np.testing.assert_allclose(y, want_y, rtol=0, atol=1e-10)
        np.testing.assert_allclose(new_carry, want_carry, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", CELLS)
def test_nothing_before_a_start_reaches_the_outputs_from_it_on(name):
    """Sequence 0 starts at t = 4 and 11: other inputs before 11 and another carry change
    nothing from 11 on, where they change every output before 11 and sequence 2's after it."""
    layer, params, carry, x, starts = _problem(name)
    dtype = CELLS[name][1][1]
    apply = jax.jit(layer.apply)
    _, y = apply(params, jnp.asarray(carry, dtype), x, starts)
    x_other = x.copy()
    x_other[:11] += np.random.default_rng(1).normal(size=x[:11].shape).astype(np.float32)
    _, y_other = apply(params, jnp.asarray(-carry, dtype), x_other, starts)
    np.testing.assert_allclose(y_other[11:, 0], y[11:, 0], rtol=0, atol=1e-6)
    assert np.abs(y_other[:11, 0] - y[:11, 0]).max(axis=-1).min() > 1e-4
    assert np.abs(y_other[11:, 2] - y[11:, 2]).max(axis=-1).min() > 1e-6


def _init(layer, carry_shape, dtype, seed=0):
    x = jnp.zeros((2, 1, layer.d_model))
    params = jax.jit(layer.init)(jax.random.PRNGKey(seed), jnp.zeros(carry_shape, dtype), x,
                                 jnp.zeros((2, 1), bool))
    return jax.tree.map(lambda w: np.asarray(w, np.float64), params["params"])


def test_lru_starts_on_the_ring_with_gamma_normalisation():
    r_min, r_max, max_phase = 0.5, 0.99, np.pi / 10  # not the defaults: the layer takes them
    layer = LRULayer(8, 512, r_min=r_min, r_max=r_max, max_phase=max_phase)
    p = _init(layer, (1, 512), jnp.complex64)
    modulus = np.exp(-np.exp(p["nu_log"]))
    phase = np.exp(p["theta_log"])
    assert np.all(modulus >= r_min * (1 - 1e-6)) and np.all(modulus <= r_max * (1 + 1e-6))
    assert modulus.min() < r_min + 0.01 and modulus.max() > r_max - 0.001  # fills the ring
    assert np.all(phase > 0) and np.all(phase <= max_phase * (1 + 1e-6))
    assert phase.max() > 0.9 * max_phase
    np.testing.assert_allclose(np.exp(p["gamma_log"]), np.sqrt(1 - modulus ** 2), rtol=1e-4)


def test_mingru_decay_lies_strictly_between_0_and_1():
    p = _init(MinGRULayer(16), (1, 16), jnp.float32)
    x = np.random.default_rng(0).normal(size=(1000, 16))
    decay = 1 - _sigmoid(x @ p["gate"]["kernel"] + p["gate"]["bias"])
    assert np.all((decay > 0) & (decay < 1))
    assert decay.std(axis=0).min() > 0.01  # set by the input


def test_s6_decay_is_in_0_1_and_selected_by_the_input():
    dt_min, dt_max = 0.01, 1.0
    p = _init(S6Layer(16, 8, dt_min, dt_max), (1, 16 * 8), jnp.float32)
    np.testing.assert_allclose(-np.exp(p["a_log"]), -np.tile(np.arange(1.0, 9), (16, 1)),
                               rtol=1e-6)  # S4D-real: A_n = -(n + 1)
    step0 = np.logaddexp(0, p["dt_bias"])  # Δ at a zero input
    assert np.all(step0 >= dt_min * (1 - 1e-5)) and np.all(step0 <= dt_max * (1 + 1e-5))

    def decay(x):
        dt = np.logaddexp(0, x @ p["dt_proj"]["kernel"] + p["dt_bias"])
        return np.exp(dt[..., None] * -np.exp(p["a_log"]))

    rng = np.random.default_rng(0)
    a1, a2 = decay(rng.normal(size=(64, 16))), decay(rng.normal(size=(64, 16)))
    assert np.all((a1 > 0) & (a1 < 1)) and np.all((a2 > 0) & (a2 < 1))
    assert np.abs(a1 - a2).max() > 0.05  # two inputs, two decays
