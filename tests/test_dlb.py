"""Tests for hystax.envs.dlb: constants of the presets, vertex enumeration, dynamics, env, bad input."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.envs import check_env, dlb, make

from hystax.core.errors import HystaxError

SPEC_ARMS = [(1, .5, 0), (.5, 1, 0), (1, 0, .5), (0, 1, .5), (.5, 0, 1), (0, .5, 1)]


def _J(problem, arm):
    idx = [tuple(a) for a in problem.arms.tolist()].index(tuple(float(x) for x in arm))
    return problem.J[idx]


def test_budget_vertices_are_the_six_allocations():
    v = dlb.budget_vertices(0.0, np.ones(3), 1.5)
    assert v.shape == (6, 3)
    assert {tuple(r) for r in v.tolist()} == {tuple(float(x) for x in a) for a in SPEC_ARMS}
    # a box with a non-binding budget has only corners; an infeasible budget raises
    assert dlb.budget_vertices([0, 0], [1, 1], 1.0).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(HystaxError, match="no u in the box"):
        dlb.budget_vertices(0.0, np.ones(2), 3.0)


@pytest.mark.parametrize("name", ["synthetic-0.001", "synthetic-0.01", "synthetic-0.1"])
def test_synthetic_constants_match_spec(name):
    p = dlb.preset(name)
    np.testing.assert_allclose(p.h, [0.5625, 0.5, 0.1111], atol=5e-5)
    expected = [0.81250, 0.78125, 0.61806, 0.55556, 0.39236, 0.36111]
    np.testing.assert_allclose([_J(p, a) for a in SPEC_ARMS], expected, atol=5e-6)
    np.testing.assert_allclose(p.u_star, [1, .5, 0])
    assert p.J_star == pytest.approx(0.8125)
    assert p.rho == pytest.approx(0.2) and p.phi == pytest.approx(1.0)
    sigma = float(name.split("-")[1])
    assert p.sigma == sigma and p.reward_std == pytest.approx(sigma * np.sqrt(3))
    # the myopic ranking (by <theta, u>) prefers two arms over u*
    myopic = p.arms @ p.theta
    assert myopic[p.best_arm] < myopic.max()


def test_real_constants_match_spec():
    p = dlb.preset("real")
    np.testing.assert_allclose(p.h, [0.2515, -0.0363, 0.1061], atol=5e-5)
    np.testing.assert_allclose(p.u_star, [1, 0, .5])
    assert p.J_star == pytest.approx(0.30459, abs=5e-6)
    assert _J(p, (.5, 1, 0)) == pytest.approx(0.0895, abs=5e-5)
    assert float(p.h @ dlb.EXPERT_ALLOCATION) == pytest.approx(0.0889, abs=5e-5)
    assert p.rho == pytest.approx(0.6669, abs=5e-5) and p.phi == pytest.approx(2.78, abs=5e-3)


def test_spectral_constants_of_a_non_normal_matrix():
    A = np.array([[0.5, 1.0], [0.0, 0.5]])  # non-normal: Phi > 1
    rho, phi = dlb.spectral_constants(A, horizon=50)
    assert rho == pytest.approx(0.5)
    norms = [np.linalg.norm(np.linalg.matrix_power(A / 0.5, k), 2) for k in range(50)]
    assert phi == pytest.approx(max(norms))


def _numpy_rollout(p, arms_idx, eta, eps):
    x, ys, xs = np.zeros(p.n), [], []
    for t, a in enumerate(arms_idx):
        u = p.arms[a]
        ys.append(p.omega @ x + p.theta @ u + eps[t])
        x = p.A @ x + p.B @ u + eta[t]
        xs.append(x)
    return np.array(ys), np.array(xs)


def test_step_matches_numpy_recursion_for_100_steps():
    p = dlb.preset("real")
    rng = np.random.default_rng(0)
    arms_idx = rng.integers(0, p.num_arms, 100)
    eta, eps = rng.normal(0, p.sigma, (100, p.n)), rng.normal(0, p.reward_std, 100)
    with jax.enable_x64(True):
        def body(x, inputs):
            a, e, r = inputs
            y, x = dlb.step(p, x, jnp.asarray(p.arms)[a], e, r)
            return x, (y, x)
        _, (ys, xs) = jax.jit(lambda: jax.lax.scan(body, jnp.zeros(p.n), (arms_idx, eta, eps)))()
        chex.assert_type([ys, xs], jnp.float64)
    ys_np, xs_np = _numpy_rollout(p, arms_idx, eta, eps)
    np.testing.assert_allclose(ys, ys_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xs, xs_np, rtol=0, atol=1e-12)


def test_sample_noise_has_the_stated_stds():
    p = dlb.preset("synthetic-0.1")
    with jax.enable_x64(True):
        eta, eps = jax.vmap(lambda k: dlb.sample_noise(p, k))(jax.random.split(jax.random.PRNGKey(0), 20000))
        eta, eps = np.asarray(eta), np.asarray(eps)
    chex.assert_shape([eta, eps], [(20000, 3), (20000,)])
    assert np.std(eta) == pytest.approx(0.1, rel=0.03)
    assert np.std(eps) == pytest.approx(0.1 * np.sqrt(3), rel=0.03)


def test_gymnax_env_registered_and_checked():
    dlb.register_all()
    dlb.register_all()  # idempotent
    env, params = make("dlb/real", max_steps_in_episode=5)
    check_env(env, params)
    key = jax.random.PRNGKey(1)
    _, state = env.reset(key, params)
    total = 0.0
    for t in range(5):
        _obs, state, reward, _terminated, truncated, _ = env.step(jax.random.fold_in(key, t), state, 1, params)
        total += float(reward)
        assert bool(truncated) == (t == 4)
    assert env.action_space(params).n == 6
    assert -5 < total < 5


def test_env_reward_follows_the_dynamics():
    p = dlb.preset("synthetic-0.001")
    env = dlb.DLBEnv(p, 10)
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    key = jax.random.PRNGKey(3)
    _, state1, r0, *_ = env.step(key, state, 0, params)
    k_step, _ = jax.random.split(key)
    eta, eps = dlb.sample_noise(p, k_step)
    y, x1 = dlb.step(p, jnp.zeros(3), jnp.asarray(p.arms[0]), eta, eps)
    np.testing.assert_allclose(r0, y, atol=1e-6)
    np.testing.assert_allclose(state1.x, x1, atol=1e-6)


ARMS = dlb.BUDGET_ARMS


@pytest.mark.parametrize("kwargs, match", [
    ({"A": np.diag([1.0, 0.2, 0.1])}, "not stable"),
    ({"A": np.array([[0.0, 2.0], [-2.0, 0.0]]), "B": np.eye(2, 3), "omega": np.ones(2)}, "not stable"),
    ({"A": np.ones((3, 2))}, "square"),
    ({"B": np.ones((2, 3))}, "B must be"),
    ({"omega": np.ones(2)}, "omega"),
    ({"theta": np.ones(4)}, "theta"),
    ({"arms": np.zeros((0, 3))}, "empty"),
    ({"arms": np.ones((4, 2))}, "arms must be"),
    ({"sigma": -0.1}, "noise"),
])
def test_make_problem_rejects_bad_input(kwargs, match):
    base = {"A": np.diag([0.2, 0, 0.1]), "B": np.eye(3), "omega": np.ones(3), "theta": np.ones(3),
                "sigma": 0.01, "arms": ARMS}
    with pytest.raises(HystaxError, match=match):
        dlb.make_problem(**{**base, **kwargs})


def test_unknown_preset_suggests():
    with pytest.raises(HystaxError, match="unknown DLB preset 'reall'.*'real'"):
        dlb.preset("reall")
