"""Memory models: the reset-aware scan against a sequential loop, every model's parallel
application against stepping, initialisation facts, and clear errors on bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hystax.agents.memory import (
    MODELS,
    MemoryConfig,
    SequenceModel,
    reset_aware_loop,
    reset_aware_scan,
)
from hystax.agents.memory.ssm import S5Layer, discretize, hippo_n_eig, s5_init

from hystax.core.errors import HystaxError

scan = jax.jit(reset_aware_scan, static_argnames="time_axis")
loop = jax.jit(reset_aware_loop)


def _problem(seed, t, b, p, reset_prob):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.3, 1.0, (p,)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (p,)))
    bu = rng.normal(size=(t, b, p)) + 1j * rng.normal(size=(t, b, p))
    starts = rng.random((t, b)) < reset_prob
    h0 = rng.normal(size=(b, p)) + 1j * rng.normal(size=(b, p))
    return a, bu, starts, h0


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("case", ["random", "start_at_0", "all", "none"])
def test_scan_matches_sequential_loop_in_float64(x64, case):
    a, bu, starts, h0 = _problem(0, 64, 3, 5, 0.1)
    if case == "start_at_0":
        starts[0] = True
    elif case == "all":
        starts[:] = True
    elif case == "none":
        starts[:] = False
    h, h_last = scan(a, bu, starts, h0)
    ref, ref_last = loop(a, bu, starts, h0)
    assert h.dtype == jnp.complex128
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h_last, ref_last, rtol=0, atol=1e-10)
    if case == "all":  # every step forgets: h_t = b_t
        np.testing.assert_allclose(h, bu, atol=1e-12)


def test_scan_batch_major_and_time_varying_decay(x64):
    a, bu, starts, h0 = _problem(1, 40, 2, 3, 0.1)
    a_t = np.random.default_rng(2).uniform(0.1, 1.0, bu.shape)  # per-step decay
    ref, ref_last = loop(a_t, bu, starts, h0)
    h, h_last = scan(a_t.swapaxes(0, 1), bu.swapaxes(0, 1), starts.T, h0,
                                 time_axis=1)
    np.testing.assert_allclose(h.swapaxes(0, 1), ref, atol=1e-10)
    np.testing.assert_allclose(h_last, ref_last, atol=1e-10)


def test_scan_carry_splits_a_sequence(x64):
    """Scanning two halves with the carried state equals one scan of the whole."""
    a, bu, starts, h0 = _problem(3, 50, 2, 4, 0.1)
    h, _ = scan(a, bu, starts, h0)
    h1, mid = scan(a, bu[:23], starts[:23], h0)
    h2, _ = scan(a, bu[23:], starts[23:], mid)
    np.testing.assert_allclose(np.concatenate([h1, h2]), h, atol=1e-10)


def test_scan_gradients_are_finite_and_match_loop(x64):
    a, bu, starts, h0 = _problem(4, 32, 2, 3, 0.1)
    real_a, h0 = np.abs(a), h0.real

    def loss(fn, a, bu):
        h, last = fn(a, bu, starts, h0)
        return jnp.sum(jnp.abs(h) ** 2) + jnp.sum(jnp.abs(last))

    g = jax.grad(lambda a, b: loss(scan, a, b), argnums=(0, 1))(real_a, bu.real)
    g_ref = jax.grad(lambda a, b: loss(loop, a, b), argnums=(0, 1))(real_a, bu.real)
    for x, y in zip(g, g_ref):
        assert np.all(np.isfinite(x))
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)


@settings(max_examples=12, deadline=None)
@given(t=st.integers(1, 33), b=st.integers(1, 2), p=st.integers(1, 3),
       reset_prob=st.sampled_from([0.0, 0.1, 0.5, 1.0]), seed=st.integers(0, 10_000))
def test_scan_matches_loop_hypothesis(t, b, p, reset_prob, seed):
    with jax.enable_x64(True):
        a, bu, starts, h0 = _problem(seed, t, b, p, reset_prob)
        h, last = scan(a, bu, starts, h0)
        ref, ref_last = loop(a, bu, starts, h0)
        np.testing.assert_allclose(h, ref, atol=1e-10)
        np.testing.assert_allclose(last, ref_last, atol=1e-10)


def test_scan_rejects_bad_shapes():
    a, bu, starts, h0 = _problem(0, 8, 2, 3, 0.1)
    with pytest.raises(HystaxError, match="starts must have shape"):
        reset_aware_scan(a, bu, starts[:, :1], h0)
    with pytest.raises(HystaxError, match="h0 must have shape"):
        reset_aware_scan(a, bu, starts, h0[:, :2])
    with pytest.raises(HystaxError, match="does not broadcast"):
        reset_aware_scan(a[:2], bu, starts, h0)
    h, _ = reset_aware_scan(a, bu, starts, h0.tolist())  # array-likes are accepted
    assert h.shape == bu.shape


def _hippo_n_from_definition(n: int) -> np.ndarray:
    """HiPPO-LegS written out entry by entry, plus p p^T with p_i = sqrt(i + 1/2)."""
    s = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            if i > k:
                legs = -np.sqrt(2 * i + 1) * np.sqrt(2 * k + 1)
            elif i == k:
                legs = -(i + 1.0)
            else:
                legs = 0.0
            s[i, k] = legs + np.sqrt(i + 0.5) * np.sqrt(k + 0.5)
    return s


@pytest.mark.parametrize("size", [2, 7, 8, 64])
def test_hippo_n_eigendecomposition_diagonalises_the_defined_matrix(size):
    """``S V = V diag(Λ)`` for HiPPO-N built from its definition (a sign flipped anywhere in
    the construction breaks it), with Re Λ = -1/2, conjugate pairs and a unitary V."""
    lam, vec = hippo_n_eig(size)
    s = _hippo_n_from_definition(size)
    np.testing.assert_allclose(s @ vec, vec @ np.diag(lam), atol=1e-8 * size)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-12)
    np.testing.assert_allclose(np.sort(lam.imag), np.sort(-lam.imag), atol=1e-9)  # conj pairs
    np.testing.assert_allclose(vec.conj().T @ vec, np.eye(size), atol=1e-9)


def test_s5_init_keeps_one_of_each_conjugate_pair_per_block():
    lam_half, v, v_inv = s5_init(16, 2, conj_sym=True)
    assert lam_half.shape == (8,) and v.shape == (16, 8) and v_inv.shape == (8, 16)
    assert np.all(lam_half.imag < 0)  # one of each conjugate pair
    # the block-diagonal V maps each block's kept eigenvectors: S_blocks V = V diag(Λ)
    s = np.kron(np.eye(2), _hippo_n_from_definition(8))
    np.testing.assert_allclose(s @ v, v @ np.diag(lam_half), atol=1e-8)
    np.testing.assert_allclose(v_inv @ v, np.eye(8), atol=1e-9)


def test_bilinear_matches_zoh_for_small_steps(x64):
    lam = jnp.asarray([-0.5 + 2j, -0.5 - 1j])
    log_step = jnp.log(jnp.asarray([1e-3, 1e-3]))
    zoh = discretize(lam, log_step, "zoh")
    bil = discretize(lam, log_step, "bilinear")
    for x, y in zip(zoh, bil):  # the two agree to second order in the step
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-7)
    assert not np.allclose(zoh[1], bil[1], rtol=0, atol=1e-11)


def _inputs(t=12, b=3, h=8, seed=0):
    x = jax.random.normal(jax.random.PRNGKey(seed), (t, b, h))
    starts = jax.random.uniform(jax.random.PRNGKey(seed + 1), (t, b)) < 0.2
    return x, starts


MODEL_CASES = [*((name, {}) for name in MODELS),  # every cell of the table, then variants
               ("s5", {"blocks": 2, "discretization": "bilinear", "clip_eigs": True,
                       "conj_sym": False}),
               ("s5", {"glu": "half", "ffn": 2, "c_init": "trunc_normal", "layer_norm": False,
                       "dt_min": 1e-3, "dt_max": 1e-1}),
               ("s4d", {"s4d_init": "inv", "discretization": "bilinear", "glu": "none"})]


@pytest.mark.parametrize("name,kwargs", MODEL_CASES)
def test_sequence_model_parallel_equals_stepping(name, kwargs):
    model = SequenceModel(MemoryConfig(name, d_model=8, layers=2, state_size=8, **kwargs))
    x, starts = _inputs()
    carry = model.initialize_carry(3)
    params = model.init(jax.random.PRNGKey(2), carry, (x, starts))
    carry = jax.tree.map(lambda c: c + 0.1, carry)  # a non-zero carried state
    apply = jax.jit(model.apply)
    new_carry, y = apply(params, carry, (x, starts))
    chex.assert_shape(y, x.shape)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_carry, carry)
    step = jax.jit(lambda p, c, x, s: model.apply(p, c, x, s, method="step"))
    c, ys = carry, []
    for t in range(x.shape[0]):
        c, y_t = step(params, c, x[t], starts[t])
        ys.append(y_t)
    np.testing.assert_allclose(jnp.stack(ys), y, atol=2e-5)
    np.testing.assert_allclose(c, new_carry, atol=2e-5)
    if name != "mlp":  # a start at t forgets the carry: outputs from t on ignore it
        forced = starts.at[4].set(True)
        _, y_a = apply(params, carry, (x, forced))
        _, y_b = apply(params, model.initialize_carry(3), (x, forced))
        np.testing.assert_allclose(y_a[4:], y_b[4:], atol=1e-5)
        assert not np.allclose(y_a[:4], y_b[:4], atol=1e-5)


@pytest.mark.parametrize("name", ["s5", *(pytest.param(name, marks=pytest.mark.slow)
                                         for name in ("s4d", "lru", "s6", "mingru"))])
def test_sequence_model_under_x64_keeps_its_dtypes(x64, name):
    """With ``jax_enable_x64`` on, float64 inputs still give float32 outputs and a carry of
    the documented dtype, sequence and step alike (the layer scan needs equal carry types)."""
    model = SequenceModel(MemoryConfig(name, d_model=8, layers=2, state_size=8))
    x, starts = _inputs()
    x = x.astype(jnp.float64)
    carry = model.initialize_carry(3)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), carry, (x, starts))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    new_carry, y = jax.jit(model.apply)(params, carry, (x, starts))
    assert y.dtype == jnp.float32 and new_carry.dtype == carry.dtype
    step = jax.jit(lambda p, c, x, s: model.apply(p, c, x, s, method="step"))
    step_carry, y_t = step(params, carry, x[0], starts[0])
    assert y_t.dtype == jnp.float32 and step_carry.dtype == carry.dtype
    np.testing.assert_allclose(y_t, y[0], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_init_vmaps_over_seeds(name):
    """jit(vmap(init)) over several seeds (a peer library hangs here with a GRU)."""
    model = SequenceModel(MemoryConfig(name, d_model=4, state_size=4))
    x, starts = _inputs(t=5, b=2, h=4)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = jax.jit(jax.vmap(lambda k: model.init(k, model.initialize_carry(2), (x, starts))))(keys)
    leaves = jax.tree.leaves(params)
    assert all(leaf.shape[0] == 3 for leaf in leaves)
    assert any(not np.allclose(leaf[0], leaf[1]) for leaf in leaves)


def test_layers_are_scanned_not_unrolled():
    """Parameters carry a leading layer axis; depth does not add parameter names."""
    x, starts = _inputs(t=4, b=2, h=8)
    shapes = {}
    for depth in (1, 3):
        model = SequenceModel(MemoryConfig("s5", d_model=8, layers=depth, state_size=8))
        params = jax.eval_shape(model.init, jax.random.PRNGKey(0), model.initialize_carry(2),
                                (x, starts))
        flat = jax.tree_util.tree_flatten_with_path(params)[0]
        shapes[depth] = {jax.tree_util.keystr(k): v.shape for k, v in flat}
    assert shapes[1].keys() == shapes[3].keys()
    assert all(shapes[3][k] == (3, *s[1:]) for k, s in shapes[1].items())


def test_s5_step_sizes_start_in_the_configured_range():
    x, starts = _inputs(t=4, b=2, h=8)
    for dt_min, dt_max in ((1e-3, 1e-1), (0.01, 1.0)):
        model = SequenceModel(MemoryConfig("s5", d_model=8, state_size=64, dt_min=dt_min,
                                           dt_max=dt_max))
        params = model.init(jax.random.PRNGKey(0), model.initialize_carry(2), (x, starts))
        step = np.exp(np.asarray(params["params"]["layers"]["core"]["log_step"]))
        assert np.all(step >= dt_min * (1 - 1e-6)) and np.all(step <= dt_max * (1 + 1e-6))
        assert step.max() / step.min() > (dt_max / dt_min) ** 0.5  # spread, log-uniformly


def test_bad_memory_inputs_raise_clear_errors():
    with pytest.raises(HystaxError, match="unknown memory model 's7'"):
        SequenceModel(MemoryConfig("s7"))
    for bad, match in (({"glu": "quarter"}, "unknown glu"), ({"ffn": -1}, "ffn must be"),
                       ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min <= dt_max"),
                       ({"c_init": "zeros"}, "unknown c_init")):
        with pytest.raises(HystaxError, match=match):
            SequenceModel(MemoryConfig("s5", **bad))
    with pytest.raises(HystaxError, match="blocks"):
        SequenceModel(MemoryConfig("s5", state_size=10, blocks=4))
    model = SequenceModel(MemoryConfig("s5", d_model=8, state_size=8))
    x, starts = _inputs(t=6, b=3, h=8)
    carry = model.initialize_carry(3)
    params = model.init(jax.random.PRNGKey(0), carry, (x, starts))
    with pytest.raises(HystaxError, match="starts must have shape"):
        model.apply(params, carry, (x, starts[:, :2]))
    with pytest.raises(HystaxError, match=r"inputs must be time-major \[T, B, 8\]"):
        model.apply(params, carry, (x[..., :5], starts))
    gru = SequenceModel(MemoryConfig("gru", d_model=8))
    with pytest.raises(HystaxError, match="carry from another model"):
        model.apply(params, gru.initialize_carry(3), (x, starts))
    with pytest.raises(HystaxError, match="carry"):
        model.apply(params, model.initialize_carry(2), (x, starts))  # batch mismatch


@pytest.mark.parametrize("clip", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_s5_stays_stable_when_training_pushes_re_lambda_positive(clip):
    """A 1M-step PPO run drove some Re Λ to +0.76; by default the layer clamps Re Λ <= -1e-4,
    so |Λ̄| < 1 and the state stays bounded over a long sequence (unclamped, it overflows)."""
    layer = S5Layer(d_model=4, state_size=8, clip_eigs=clip)
    x = jnp.ones((200, 1, 4))
    starts = jnp.zeros((200, 1), bool)
    carry = jnp.zeros((1, 4), jnp.complex64)
    params = jax.jit(layer.init)(jax.random.PRNGKey(0), carry, x, starts)
    rng = np.random.default_rng(0)
    lam_re = rng.uniform(-0.5, 0.8, params["params"]["lambda_re"].shape).astype(np.float32)
    lam_re[0] = 0.76
    params = {"params": {**params["params"], "lambda_re": jnp.asarray(lam_re),
                         "log_step": jnp.zeros(4)}}  # Δ = 1
    _, y = jax.jit(layer.apply)(params, carry, x, starts)
    bounded = bool(np.all(np.isfinite(y))) and float(np.abs(y).max()) < 1e5
    assert bounded == clip
