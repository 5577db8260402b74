"""Losse encoding and the FTL linear model: encoding invariants, sparse updates vs the exact ridge
solution, layout invariance, forgetting, rejected samples and bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hystax.core.errors import HystaxError
from hystax.world_models import ftl, losse

L, N_BINS, RHO, D_IN = 12, 4, 2, 3


@pytest.fixture(scope="module")
def encoder():
    return losse.make_encoder(jax.random.PRNGKey(0), D_IN, num_groups=L, bins=N_BINS,
                              group_dim=RHO)


def _dense(enc, indices, values):
    """The dense feature vector [D] of one encoding."""
    return jnp.zeros(enc.num_features).at[indices].add(values)


def _stream(n, seed=1, d_out=2):
    x = jax.random.uniform(jax.random.PRNGKey(seed), (n, D_IN), minval=-2.0, maxval=2.0)
    y = jnp.stack([jnp.sin(2 * x.sum(-1)), jnp.cos(x[:, 0]) * x[:, 1]], -1)[:, :d_out]
    return x, y


def test_encoding_shapes_and_groups(encoder):
    x, _ = _stream(64)
    indices, values = losse.encode(encoder, x)
    k = L * 2**RHO
    chex.assert_shape([indices, values], (64, k))
    chex.assert_type(indices, jnp.int32)
    chex.assert_type(values, jnp.float32)
    assert encoder.num_features == L * (N_BINS + 1) ** RHO and encoder.num_active == k
    per_group = values.reshape(64, L, 2**RHO).sum(-1)
    np.testing.assert_allclose(per_group, 1.0, atol=1e-5)
    assert bool(jnp.all(values >= 0))
    group = indices.reshape(64, L, 2**RHO) // (N_BINS + 1) ** RHO
    np.testing.assert_array_equal(group, np.broadcast_to(np.arange(L)[None, :, None], group.shape))
    # the 2^ρ corners of a group are distinct features
    assert all(len(set(row.tolist())) == k for row in np.asarray(indices))


def test_saturated_sigmoid_does_not_alias(encoder):
    x = jnp.array([[1e6, -1e6, 1e6], [-1e6, 1e6, -1e6], [1e30, 1e30, 1e30]])
    indices, values = losse.encode(encoder, x)
    group = indices.reshape(3, L, 2**RHO) // (N_BINS + 1) ** RHO
    np.testing.assert_array_equal(group, np.broadcast_to(np.arange(L)[None, :, None], group.shape))
    assert bool(jnp.all(indices < encoder.num_features))
    np.testing.assert_allclose(values.reshape(3, L, -1).sum(-1), 1.0, atol=1e-5)


def test_encoding_is_continuous(encoder):
    """The dense features move by O(δ) when x moves by δ, cell boundaries included."""
    line = jnp.linspace(-3.0, 3.0, 4001)[:, None] * jnp.array([1.0, -0.5, 0.3])
    indices, values = losse.encode(encoder, line)
    dense = jax.vmap(lambda i, v: _dense(encoder, i, v))(indices, values)
    step = float(jnp.linalg.norm(line[1] - line[0]))
    jumps = jnp.abs(jnp.diff(dense, axis=0)).sum(-1)
    # every group's weights are Lipschitz in x: the L1 change is bounded by a constant times δ
    lipschitz = 2 * L * RHO * N_BINS * float(jnp.abs(encoder.projection).max()) * np.sqrt(D_IN)
    assert float(jumps.max()) <= lipschitz * step
    # and the line crosses many cells, so this is not vacuous
    assert len(np.unique(np.asarray(indices[:, 0]))) > 2


def _fit(config, x, y, encoder, refine=0):
    indices, values = losse.encode(encoder, x)
    return ftl.update_batch(config, ftl.init(config), indices, values, y, refine_iterations=refine)


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_refined_weights_match_exact_ridge(encoder, layout):
    """update_batch + refinement reaches the exact ridge solution after every batch."""
    config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2, layout=layout)
    x, y = _stream(150)
    indices, values = losse.encode(encoder, x)
    state = ftl.init(config)
    for start in range(0, 150, 30):
        rows = slice(start, start + 30)
        state = ftl.update_batch(config, state, indices[rows], values[rows], y[rows],
                                 refine_iterations=300)
        exact = ftl.ridge_solution(config, state)
        assert _rel(state.weights, exact) <= 1e-3, start
        assert int(state.count) == start + 30


def test_one_step_updates_track_ridge_predictions(encoder):
    """The paper's update alone (no refinement): predictions on the stream near the exact
    ridge's; the weights of features that left the active set lag behind."""
    config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2, layout="dense")
    x, y = _stream(400)
    state = _fit(config, x, y, encoder)
    exact = ftl.ridge_solution(config, state)
    indices, values = losse.encode(encoder, x)
    ours = ftl.predict(state, indices, values)
    reference = np.einsum("bk,bkd->bd", np.asarray(values), exact[np.asarray(indices)])
    assert _rel(ours, reference) <= 1e-2  # measured 6e-3
    assert _rel(state.weights, exact) <= 5e-2


def test_layouts_agree_and_residual_is_exact(encoder):
    x, y = _stream(150)
    states = {layout: _fit(ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2, layout=layout),
                           x, y, encoder) for layout in ("dense", "sparse")}
    sparse_config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2, layout="sparse")
    assert int(states["sparse"].overflow) == 0
    np.testing.assert_allclose(ftl.dense_matrix(sparse_config, states["sparse"]),
                               states["dense"].store.matrix, atol=1e-4)
    grid, _ = _stream(100, seed=7)
    indices, values = losse.encode(encoder, grid)
    dense_pred = np.asarray(ftl.predict(states["dense"], indices, values))
    assert _rel(ftl.predict(states["sparse"], indices, values), dense_pred) <= 1e-3
    A = np.asarray(ftl.dense_matrix(sparse_config, states["sparse"]))
    residual = A @ np.asarray(states["sparse"].weights)
    np.testing.assert_allclose(states["sparse"].store.residual, residual, atol=2e-3)


def test_sparse_rows_report_overflow(encoder):
    """Too few slots per row: pairs are dropped and reported, nothing blows up."""
    config = ftl.FTLConfig(encoder.num_features, 2, layout="sparse", row_capacity=64)
    x, y = _stream(200)
    state = _fit(config, x, y, encoder)
    assert bool(jnp.all(jnp.isfinite(state.weights)))
    with pytest.warns(ftl.FTLWarning, match="row_capacity"):
        assert ftl.check(state)["overflow"] > 0


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_forgetting_matches_weighted_ridge(encoder, layout):
    gamma = 0.6  # small enough that the lazy scale is folded back (0.6^80 < 1e-15)
    config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2, forget=gamma, layout=layout)
    x, y = _stream(80)
    state = _fit(config, x, y, encoder, refine=300)
    indices, values = losse.encode(encoder, x)
    phi = np.asarray(jax.vmap(lambda i, v: _dense(encoder, i, v))(indices, values), np.float64)
    weight = gamma ** np.arange(79, -1, -1)
    A = phi.T @ (weight[:, None] * phi)
    b = phi.T @ (weight[:, None] * np.asarray(y, np.float64))
    N = weight.sum()
    exact = np.linalg.solve(A / N + 1e-2 * np.eye(A.shape[0]), b / N)
    assert abs(float(state.count) - N) <= 1e-4 * N
    assert _rel(state.weights, exact) <= 1e-3


def test_forgetting_follows_a_changed_target(encoder):
    x, y = _stream(400)
    flipped = jnp.concatenate([y[:200], -y[200:]])
    indices, values = losse.encode(encoder, x)
    errors = {}
    for gamma in (1.0, 0.97):
        config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-3, forget=gamma)
        state = ftl.update_batch(config, ftl.init(config), indices, values, flipped)
        pred = ftl.predict(state, indices[-50:], values[-50:])
        errors[gamma] = float(jnp.mean((pred - flipped[-50:]) ** 2))
    assert errors[0.97] < 0.5 * errors[1.0]


def test_non_finite_samples_are_rejected(encoder):
    """A NaN input and an infinite target inserted into a stream: the same statistics as the
    clean stream, two rejections reported, finite weights."""
    config = ftl.FTLConfig(encoder.num_features, 2, ridge=1e-2)
    x, y = _stream(60)
    clean = _fit(config, x, y, encoder)
    dirty_x = jnp.concatenate([x[:20], jnp.full((1, D_IN), jnp.nan), x[20:40], x[:1], x[40:]])
    dirty_y = jnp.concatenate([y[:20], y[:1], y[20:40], jnp.full((1, 2), jnp.inf), y[40:]])
    dirty = _fit(config, dirty_x, dirty_y, encoder)
    assert int(dirty.rejected) == 2 and int(clean.rejected) == 0
    assert float(dirty.count) == float(clean.count) == 60
    np.testing.assert_allclose(dirty.moments, clean.moments, atol=1e-6)
    np.testing.assert_allclose(dirty.store.matrix, clean.store.matrix, atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(dirty.weights)))


def test_bad_input_gives_clear_errors(encoder):
    with pytest.raises(HystaxError, match="int32"):
        losse.make_encoder(jax.random.PRNGKey(0), 3, num_groups=50, bins=10**5, group_dim=2)
    with pytest.raises(HystaxError, match="group_dim"):
        losse.make_encoder(jax.random.PRNGKey(0), 3, group_dim=17)
    with pytest.raises(HystaxError, match="inputs"):
        losse.encode(encoder, jnp.zeros((4, D_IN + 1)))
    config = ftl.FTLConfig(encoder.num_features, 2)
    indices, values = losse.encode(encoder, jnp.zeros((3, D_IN)))
    with pytest.raises(HystaxError, match="targets"):
        ftl.update_batch(config, ftl.init(config), indices, values, jnp.zeros((3, 5)))
    with pytest.raises(HystaxError, match="lie in"):
        ftl.update(config, ftl.init(config), indices[0] + config.num_features, values[0],
                   jnp.zeros(2))
    with pytest.raises(HystaxError, match="distinct"):
        ftl.update(config, ftl.init(config), indices[0].at[1].set(indices[0, 0]), values[0],
                   jnp.zeros(2))
    with pytest.raises(HystaxError, match="row_capacity >= k"):
        small = ftl.FTLConfig(encoder.num_features, 2, layout="sparse", row_capacity=4)
        ftl.update(small, ftl.init(small), indices[0], values[0], jnp.zeros(2))
    with pytest.raises(HystaxError, match="one shape"):
        ftl.update(config, ftl.init(config), indices[0], values[0, :3], jnp.zeros(2))
    for bad in (dict(ridge=0.0), dict(forget=1.5), dict(layout="csr"), dict(row_capacity=0)):
        with pytest.raises(HystaxError):
            ftl.FTLConfig(encoder.num_features, 2, **bad)


def test_world_model_predicts_next_obs_and_works_under_jit():
    config, params = losse.make_model(jax.random.PRNGKey(3), obs_dim=2, act_dim=1,
                                      extra_targets=1, num_groups=8, bins=4)
    obs = jax.random.normal(jax.random.PRNGKey(4), (200, 2))
    action = jax.random.uniform(jax.random.PRNGKey(5), (200, 1), minval=-1, maxval=1)
    next_obs = obs + 0.1 * action  # a linear system: Δobs = 0.1 a
    reward = -jnp.sum(obs**2, -1, keepdims=True)
    params = jax.jit(losse.model_update, static_argnums=0)(config, params, obs, action, next_obs,
                                                            reward)
    pred = jax.jit(losse.predict)(params, obs, action)
    chex.assert_shape(pred, (200, 2))
    assert float(jnp.mean((pred - next_obs) ** 2)) < 1e-3
    chex.assert_shape(losse.model_predict(params, obs[0], action[0]), (3,))


def test_losse_model_plugs_into_the_mpc_planner():
    """The MPC planner plans through a Losse model: on a learnt 1-D integrator it pushes the
    state towards the goal."""
    from hystax.agents import mpc

    config, params = losse.make_model(jax.random.PRNGKey(6), obs_dim=1, act_dim=1, num_groups=8,
                                      bins=6)
    obs = jax.random.uniform(jax.random.PRNGKey(7), (400, 1), minval=-2, maxval=2)
    action = jax.random.uniform(jax.random.PRNGKey(8), (400, 1), minval=-1, maxval=1)
    params = losse.model_update(config, params, obs, action, obs + 0.2 * action)
    plan_config = mpc.MPCConfig(horizon=5, num_samples=64, num_elites=8, iterations=2)

    def reward(o, a, next_o):  # the goal is obs = 1
        return -jnp.sum((next_o - 1.0) ** 2)

    first, *_ = mpc.cem_plan(losse.predict, params, reward, jnp.array([-1.0]),
                             jax.random.PRNGKey(9), mpc.initial_mean(plan_config, 1), plan_config)
    chex.assert_shape(first, (1,))
    assert float(first[0]) > 0.5
