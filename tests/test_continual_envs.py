"""Tests for hystax.envs.continual_suites: suites, task_sequence validation, known rewards vs gymnax,
action quantization, oracle dynamics and random data collection."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control.cartpole import EnvState as CartPoleState
from gymnax.environments.classic_control.pendulum import EnvState as PendulumState
from hystax.envs import continual_suites as continual

from hystax.core.errors import HystaxError


@pytest.mark.parametrize("name", sorted(continual.SUITES))
def test_suite_params_and_dynamics_differ_across_tasks(name):
    seq = continual.suite(name)
    env_name, field, values = continual.SUITES[name]
    assert seq.env_name == env_name and seq.num_tasks == len(values) == len(seq.labels)
    assert [float(getattr(p, field)) for p in seq.params] == list(values)
    assert len(set(seq.labels)) == len(values)
    # the same obs and action lead to a different next obs under every task
    obs = jnp.array([np.cos(1.0), np.sin(1.0), 0.5]) if seq.obs_dim == 3 else jnp.array([0.1, 0.2, 0.1, -0.3])
    action = jnp.array([0.7])
    nexts = np.stack([np.asarray(seq.true_predict(p, obs, action)) for p in seq.params])
    for i, j in itertools.combinations(range(len(values)), 2):
        assert np.abs(nexts[i] - nexts[j]).max() > 1e-4, (seq.labels[i], seq.labels[j])


def test_suite_facts():
    pend = continual.suite("pendulum-gravity")
    assert (pend.obs_dim, pend.act_dim, pend.action_low, pend.action_high) == (3, 1, (-2.0,), (2.0,))
    assert pend.num_discrete is None and pend.termination_fn is None
    assert [float(p.g) for p in continual.suite("pendulum-gravity-11").params] == [10, 0, 2, 8, 12, 5, 4, 14, 9, 7, 30]
    cart = continual.suite("cartpole-length")
    assert (cart.obs_dim, cart.act_dim, cart.num_discrete) == (4, 1, 2)
    assert continual.suite("cartpole-length") is cart  # cached: jitted collectors are reused
    for p in cart.params:  # derived fields follow the overridden length
        assert float(p.polemass_length) == pytest.approx(float(p.masspole * p.length))
        assert float(p.total_mass) == pytest.approx(float(p.masscart + p.masspole))


def test_unknown_suite_suggests_names():
    with pytest.raises(HystaxError, match="did you mean 'pendulum-gravity'"):
        continual.suite("pendulum-gravty")


def test_task_sequence_recomputes_cartpole_derived_fields():
    seq = continual.task_sequence("CartPole-v1", [{"masspole": 0.1}, {"masspole": 0.5, "length": 0.8},
                                                  {"masscart": 2.0}])
    assert [float(p.total_mass) for p in seq.params] == pytest.approx([1.1, 1.5, 2.1])
    assert [float(p.polemass_length) for p in seq.params] == pytest.approx([0.05, 0.4, 0.05])
    assert seq.labels == ("masspole=0.1", "masspole=0.5,length=0.8", "masscart=2")


def test_task_sequence_errors():
    with pytest.raises(HystaxError, match=r"task 1: unknown parameter 'gravity'.*valid: dt, g, l, m"):
        continual.task_sequence("Pendulum-v1", [{"g": 10.0}, {"gravity": 3.0}])
    with pytest.raises(HystaxError, match="different action space"):
        continual.task_sequence("Pendulum-v1", [{"g": 10.0}, {"max_torque": 3.0}])
    with pytest.raises(HystaxError, match="different observation space"):
        continual.task_sequence("Pendulum-v1", [{"max_speed": 8.0}, {"max_speed": 9.0}])
    with pytest.raises(HystaxError, match="'total_mass' of CartPole-v1 is derived"):
        continual.task_sequence("CartPole-v1", [{"total_mass": 2.0}])
    with pytest.raises(HystaxError, match="non-empty list"):
        continual.task_sequence("Pendulum-v1", [])
    with pytest.raises(HystaxError, match="must be a dict"):
        continual.task_sequence("Pendulum-v1", [("g", 1.0)])
    with pytest.raises(HystaxError, match="2 labels for 1 tasks"):
        continual.task_sequence("Pendulum-v1", [{}], labels=["a", "b"])
    with pytest.raises(HystaxError, match="unknown env"):
        continual.task_sequence("Pendulum-v9", [{}])


def test_pendulum_reward_fn_equals_gymnax_step_reward():
    seq = continual.suite("pendulum-gravity")
    env, params = seq.env, seq.params[2]
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    n = 512
    theta = jax.random.uniform(k1, (n,), minval=-10.0, maxval=10.0)  # beyond [-pi, pi] too
    theta_dot = jax.random.uniform(k2, (n,), minval=-8.0, maxval=8.0)
    action = jax.random.uniform(k3, (n, 1), minval=-3.0, maxval=3.0)  # beyond the torque limit too

    def gymnax_step(th, thd, a):
        state = PendulumState(theta=th, theta_dot=thd, last_u=jnp.zeros(()), time=0)
        next_obs, _, reward, _, _ = env.step_env(jax.random.key(0), state, a, params)
        return env.get_obs(state), next_obs, reward

    obs, next_obs, reward = jax.vmap(gymnax_step)(theta, theta_dot, action)
    mine = seq.reward_fn(obs, action, next_obs)
    assert mine.shape == (n,)
    np.testing.assert_allclose(mine, reward, rtol=1e-5, atol=1e-4)
    # the reward is the pre-step obs's: next_obs does not enter, and leading axes batch
    np.testing.assert_array_equal(seq.reward_fn(obs, action, jnp.zeros_like(next_obs)), mine)
    np.testing.assert_allclose(seq.reward_fn(obs.reshape(8, 64, 3), action.reshape(8, 64, 1), None),
                               mine.reshape(8, 64), rtol=1e-6)
    # and the oracle model reproduces gymnax's next obs
    oracle = jax.vmap(seq.true_predict, (None, 0, 0))(params, obs, action)
    np.testing.assert_allclose(oracle, next_obs, atol=1e-4)


def test_cartpole_reward_and_termination_equal_gymnax():
    seq = continual.suite("cartpole-length")
    env, params = seq.env, seq.params[1]
    n = 512
    keys = jax.random.split(jax.random.key(1), 2)
    raw = jax.random.uniform(keys[0], (n, 4), minval=-1.0, maxval=1.0) * jnp.array([3.0, 2.0, 0.3, 2.0])
    box_action = jax.random.uniform(keys[1], (n, 1), minval=-1.0, maxval=1.0)

    def gymnax_step(s, a):
        state = CartPoleState(x=s[0], x_dot=s[1], theta=s[2], theta_dot=s[3], time=0)
        next_obs, _, reward, done, _ = env.step_env(jax.random.key(0), state, seq.env_action(a), params)
        return next_obs, reward, done

    next_obs, reward, done = jax.vmap(gymnax_step)(raw, box_action)
    assert 0 < int((reward == 0).sum()) < n  # the sample has terminal pre-step states too
    np.testing.assert_array_equal(seq.reward_fn(raw, box_action, next_obs), reward)
    np.testing.assert_array_equal(seq.termination_fn(raw, box_action, next_obs), done)
    np.testing.assert_allclose(jax.vmap(seq.true_predict, (None, 0, 0))(params, raw, box_action),
                               next_obs, atol=1e-6)


def test_discrete_action_quantization():
    cart = continual.suite("cartpole-length")
    a = jnp.array([[-1.0], [-0.3], [0.0], [0.2], [1.0], [5.0]])
    np.testing.assert_array_equal(cart.quantize(a)[:, 0], [-1, -1, 1, 1, 1, 1])
    np.testing.assert_array_equal(cart.env_action(a), [0, 0, 1, 1, 1, 1])
    acro = continual.task_sequence("Acrobot-v1", [{}, {"link_mass_1": 2.0}])
    assert (acro.num_discrete, acro.act_dim, acro.reward_fn, acro.state_from_obs) == (3, 1, None, None)
    a = jnp.array([[-1.0], [-0.5], [-0.2], [0.2], [0.5], [1.0]])  # bins split at -1/3 and 1/3
    levels = acro.quantize(a)
    np.testing.assert_allclose(levels[:, 0], [-1, -1, 0, 0, 1, 1])
    np.testing.assert_array_equal(acro.env_action(a), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(acro.env_action(levels), acro.env_action(a))  # idempotent
    with pytest.raises(HystaxError, match="no obs -> state map"):
        acro.true_predict(acro.params[0], jnp.zeros(6), jnp.zeros(1))


def test_collect_random_pendulum():
    seq = continual.suite("pendulum-gravity")
    data = continual.collect_random(seq, 3, jax.random.key(0), 450)
    assert data.obs.shape == (450, 3) and data.action.shape == (450, 1) and data.reward.shape == (450,)
    assert float(jnp.abs(data.action).max()) <= 2.0 and float(data.action.std()) > 0.9  # uniform on [-2, 2]
    # time limit 200: two truncations, never a true terminal; the next row starts from a reset
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(data.done)), [199, 399])
    assert not bool(data.terminated.any())
    assert float(jnp.abs(data.obs[200] - data.next_obs[199]).max()) > 1e-3
    np.testing.assert_allclose(data.obs[1:200], data.next_obs[:199])
    # next_obs is the true successor everywhere (also at episode ends), rewards are the known ones
    oracle = jax.vmap(seq.true_predict, (None, 0, 0))(seq.params[3], data.obs, data.action)
    np.testing.assert_allclose(oracle, data.next_obs, atol=1e-4)
    np.testing.assert_allclose(seq.reward_fn(data.obs, data.action, data.next_obs), data.reward,
                               rtol=1e-5, atol=1e-4)
    t = data.transitions()
    assert t.obs is data.obs and t.next_obs is data.next_obs
    # a different task with the same key: same actions, different dynamics
    other = continual.collect_random("pendulum-gravity", 0, jax.random.key(0), 450)
    np.testing.assert_array_equal(other.action, data.action)
    assert float(jnp.abs(other.next_obs - data.next_obs).max()) > 1e-2


def test_collect_random_cartpole_and_errors():
    seq = continual.suite("cartpole-length")
    data = continual.collect_random(seq, 0, jax.random.key(0), 300)
    assert set(np.unique(np.asarray(data.action)).tolist()) == {-1.0, 1.0}
    assert int(data.terminated.sum()) >= 5 and bool((data.done == data.terminated).all())
    np.testing.assert_array_equal(seq.termination_fn(data.obs, data.action, data.next_obs), data.terminated)
    with pytest.raises(HystaxError, match=r"task must be an int in \[0, 5\)"):
        continual.collect_random(seq, 5, jax.random.key(0), 10)
    with pytest.raises(HystaxError, match="steps must be a positive int"):
        continual.collect_random(seq, 0, jax.random.key(0), 0)
