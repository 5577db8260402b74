"""Tests for hystax.agents.mpc: CEM vs random shooting on a known optimum, warm starts, batching
over envs, config validation, termination, and oracle MPC on the pendulum and cart-pole suites."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.agents import mpc
from hystax.envs import continual_suites as continual

from hystax.core.errors import HystaxError

H, M = 10, 2


def _clock_predict(params, obs, action):
    """A 'world model' whose state is the time step: obs [1] -> obs + 1."""
    del params, action
    return obs + 1.0


def _quadratic_reward(target):
    """-||a_t - target[t]||^2 at step t = obs[0]: the optimum of the sum is the sequence ``target``."""

    def reward_fn(obs, action, next_obs):
        t = obs[..., 0].astype(jnp.int32)
        return -jnp.sum((action - target[t]) ** 2, axis=-1)

    return reward_fn


def _target(key=0, scale=0.8):
    return jax.random.uniform(jax.random.key(key), (H, M), minval=-scale, maxval=scale)


@functools.cache
def _compiled(method, config):
    return jax.jit(lambda target, o, k, m: mpc.PLANNERS[method](
        _clock_predict, None, _quadratic_reward(target), o, k, m, config))


def _plan(method, target, config, key=1, mean=None):
    mean = mpc.initial_mean(config, M) if mean is None else mean
    return _compiled(method, config)(target, jnp.zeros(1), jax.random.key(key), mean)


def test_cem_beats_random_shooting_with_the_same_budget():
    target = _target()
    config = mpc.MPCConfig(horizon=H, num_samples=200, num_elites=20, iterations=6, alpha=0.1)
    action, _, info = _plan("cem", target, config)
    _, _, rs_info = _plan("random", target, config)
    cem_err = float(jnp.sum((info.mean - target) ** 2))
    rs_err = float(jnp.sum((rs_info.best_actions - target) ** 2))
    # measured: CEM 0.076, random shooting 3.6 (the best of 1,200 uniform 20-dim sequences)
    assert cem_err < 0.15 and rs_err > 1.0 and cem_err < 0.05 * rs_err
    assert float(info.best_return) > float(rs_info.best_return)
    np.testing.assert_allclose(action, target[0], atol=0.15)
    # the elites improve from iteration to iteration and the distribution narrows
    assert bool(jnp.all(jnp.diff(info.elite_returns) > 0))
    assert float(info.std.max()) < 0.25
    assert info.elite_returns.shape == rs_info.elite_returns.shape == (6,)


def test_actions_are_clipped_to_per_dimension_bounds():
    target = jnp.broadcast_to(jnp.array([3.0, -3.0]), (H, M))  # optimum outside the box
    config = mpc.MPCConfig(horizon=H, num_samples=100, num_elites=10, iterations=8,
                           action_low=(-1.0, -0.5), action_high=(1.0, 0.5))
    for method in ("cem", "random"):
        action, mean, info = _plan(method, target, config)
        for x in (action, mean, info.mean, info.best_actions):
            assert bool(jnp.all(x[..., 0] >= -1.0) & jnp.all(x[..., 0] <= 1.0))
            assert bool(jnp.all(x[..., 1] >= -0.5) & jnp.all(x[..., 1] <= 0.5))
    action, _, _ = _plan("cem", target, config)
    assert float(action[0]) > 0.9 and float(action[1]) < -0.35  # pushed to the violated bounds


def test_warm_start_shifts_by_one_step():
    mean = jnp.arange(H * M, dtype=jnp.float32).reshape(H, M) / 100
    last = mpc.shift_mean(mean, mpc.MPCConfig(horizon=H))
    np.testing.assert_array_equal(last[:-1], mean[1:])
    np.testing.assert_array_equal(last[-1], mean[-1])
    zero = mpc.shift_mean(mean, mpc.MPCConfig(horizon=H, shift_fill="zero"))
    np.testing.assert_array_equal(zero[:-1], mean[1:])
    np.testing.assert_array_equal(zero[-1], [0.0, 0.0])
    # zero outside the bounds is clipped into them; leading batch axes shift too
    pos = mpc.shift_mean(mean[None].repeat(3, 0),
                         mpc.MPCConfig(horizon=H, shift_fill="zero", action_low=0.5, action_high=2.0))
    assert pos.shape == (3, H, M)
    np.testing.assert_array_equal(pos[:, -1], 0.5)
    # the planners return their final mean / best sequence shifted, and act with its first step
    config = mpc.MPCConfig(horizon=H, num_samples=50, num_elites=5, iterations=2)
    action, new_mean, info = _plan("cem", _target(), config)
    np.testing.assert_array_equal(new_mean, mpc.shift_mean(info.mean, config))
    np.testing.assert_array_equal(action, info.mean[0])
    action, new_mean, info = _plan("random", _target(), config)
    np.testing.assert_array_equal(new_mean, mpc.shift_mean(info.best_actions, config))
    np.testing.assert_array_equal(action, info.best_actions[0])


def test_warm_start_helps_a_tiny_budget():
    target = _target(3)
    config = mpc.MPCConfig(horizon=H, num_samples=30, num_elites=5, iterations=1)
    cold = _plan("cem", target, config, key=4)[2]
    warm = _plan("cem", target, config, key=4, mean=target + 0.01)[2]
    assert float(warm.best_return) > float(cold.best_return)


@pytest.mark.parametrize("method, params_axis", [
    ("cem", None), ("cem", 0), pytest.param("random", 0, marks=pytest.mark.slow)])
def test_plan_batch_equals_per_env_calls(method, params_axis):
    E = 4
    seq = continual.suite("pendulum-gravity")
    config = mpc.MPCConfig(horizon=8, num_samples=32, num_elites=4, iterations=2,
                           action_low=seq.action_low, action_high=seq.action_high)
    obs = continual.collect_random(seq, 0, jax.random.key(0), E).obs
    keys = jax.random.split(jax.random.key(1), E)
    means = jax.random.uniform(jax.random.key(2), (E, 8, 1), minval=-1.0, maxval=1.0)
    params = seq.params[0] if params_axis is None else jax.tree.map(lambda x: x[:E], seq.stacked_params())
    plan = mpc.PLANNERS[method]

    @jax.jit
    def batched_and_one_by_one(p, o, k, m):
        batched = mpc.plan_batch(seq.true_predict, p, seq.reward_fn, o, k, m, config, method=method,
                                 params_axis=params_axis)
        # the reference: a sequential loop of single-env planner calls (lax.map, not vmap)
        one_by_one = jax.lax.map(
            lambda x: plan(seq.true_predict, p if params_axis is None else x[0], seq.reward_fn,
                           x[1], x[2], x[3], config),
            (jnp.zeros(E) if params_axis is None else p, o, k, m))
        return batched, one_by_one

    (actions, new_means, info), (a, m, i) = batched_and_one_by_one(params, obs, keys, means)
    assert actions.shape == (E, 1) and new_means.shape == (E, 8, 1) and info.best_return.shape == (E,)
    np.testing.assert_allclose(actions, a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_means, m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.best_return, i.best_return, rtol=1e-5)
    np.testing.assert_allclose(info.mean, i.mean, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"horizon": 0}, "horizon must be positive"),
    ({"horizon": 2.5}, "horizon must be an int"),
    ({"num_samples": 10, "num_elites": 20}, r"num_elites \(20\) must be at most num_samples \(10\)"),
    ({"num_elites": 0}, "num_elites must be positive"),
    ({"iterations": -1}, "iterations must be positive"),
    ({"sigma0": 0.0}, "sigma0 must be a positive float"),
    ({"alpha": 1.0}, r"alpha must be in \[0, 1\)"),
    ({"action_low": 1.0, "action_high": 1.0}, "need action_low < action_high"),
    ({"action_low": (-1.0, -1.0), "action_high": (1.0, 1.0, 1.0)}, "action_low has 2 dims but action_high has 3"),
    ({"action_low": float("nan")}, "action_low must be finite"),
    ({"action_high": "big"}, "action_high must be a float"),
    ({"shift_fill": "first"}, "shift_fill must be 'last' or 'zero'"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(HystaxError, match=match):
        mpc.MPCConfig(**kwargs)


def test_plan_argument_errors():
    config = mpc.MPCConfig(horizon=H, action_low=(-1.0, -1.0), action_high=(1.0, 1.0))
    assert mpc.MPCConfig().action_low == (-1.0,) and mpc.MPCConfig(action_high=2).action_high == (2.0,)
    with pytest.raises(HystaxError, match="init_mean must be"):
        mpc.cem_plan(_clock_predict, None, _quadratic_reward(_target()), jnp.zeros(1), jax.random.key(0),
                     jnp.zeros((H + 1, M)), config)
    with pytest.raises(HystaxError, match="action_low has 2 dims but the action has 3"):
        mpc.initial_mean(config, 3)
    with pytest.raises(HystaxError, match="unknown planner 'cme'"):
        mpc.plan_batch(_clock_predict, None, None, jnp.zeros((2, 1)), jax.random.split(jax.random.key(0), 2),
                       jnp.zeros((2, H, M)), config, method="cme")
    seq = continual.suite("cartpole-length")
    with pytest.raises(HystaxError, match="pass to_env_action"):
        mpc.mpc_episode(seq.env, seq.params[0], seq.true_predict, seq.params[0], seq.reward_fn,
                        jax.random.key(0), 10, mpc.MPCConfig(horizon=5, num_samples=8, num_elites=2))


def test_sequence_returns_stop_at_predicted_termination():
    def predict(p, obs, action):
        return obs + action

    def reward_fn(obs, action, next_obs):
        return jnp.ones(obs.shape[:-1])

    def termination_fn(obs, action, next_obs):
        return next_obs[..., 0] > 2.5

    actions = jnp.ones((2, 6, 1)).at[1].set(0.0)  # climbs 1 per step / stays at 0
    r = mpc.sequence_returns(predict, None, reward_fn, jnp.zeros(1), actions, termination_fn)
    np.testing.assert_array_equal(r, [3.0, 6.0])  # steps to 1, 2, 3 (terminal, still counted)
    r = mpc.sequence_returns(predict, None, lambda o, a, n: jnp.log(n[..., 0] - 0.5), jnp.zeros(1), actions)
    assert float(r[1]) == -np.inf  # NaN returns rank last


def test_oracle_mpc_swings_up_the_pendulum():
    seq = continual.suite("pendulum-gravity")
    params = seq.params[0]  # g = 10
    config = mpc.MPCConfig(horizon=20, num_samples=100, num_elites=10, iterations=3,
                           action_low=seq.action_low, action_high=seq.action_high)

    def episode(key):
        return mpc.mpc_episode(seq.env, params, seq.true_predict, params, seq.reward_fn, key, 200, config)

    returns, rollout = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(42), 4))
    random = continual.collect_random(seq, 0, jax.random.key(0), 1000)  # 5 episodes of 200 steps
    random_return = float(random.reward.sum()) / 5
    # measured: oracle CEM -125..-385 per episode (start-dependent), random about -1200
    assert random_return < -900
    assert bool(jnp.all(returns > -450)), returns
    assert float(returns.mean()) > random_return + 700
    # swung up and balanced: the last 50 steps are spent upright (cost ~ theta^2 < 0.01)
    assert float(rollout.reward[:, -50:].mean(axis=1).min()) > -0.01
    assert rollout.obs.shape == (4, 200, 3) and int(rollout.done[:, -1].sum()) == 4  # time limit


def test_oracle_mpc_keeps_a_long_cart_pole_up():
    seq = continual.suite("cartpole-length")
    params = seq.params[4]  # length 1.2
    config = mpc.MPCConfig(horizon=12, num_samples=48, num_elites=6, iterations=2,
                           action_low=seq.action_low, action_high=seq.action_high)
    ret, rollout = mpc.mpc_episode(seq.env, params, seq.true_predict, params, seq.reward_fn,
                                   jax.random.key(0), 250, config, termination_fn=seq.termination_fn,
                                   quantize=seq.quantize, to_env_action=seq.env_action)
    random = continual.collect_random(seq, 4, jax.random.key(0), 250)
    assert int(random.terminated.sum()) >= 5  # random actions fall every ~20 steps
    assert int(rollout.terminated.sum()) == 0 and float(ret) == 250.0
    assert set(np.unique(np.asarray(rollout.action)).tolist()) <= {-1.0, 1.0}
