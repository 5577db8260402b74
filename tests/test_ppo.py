"""PPO-MLP: GAE against a reference loop, the agent API (jit/vmap over seeds and hparams),
config validation, and learning on CartPole-v1 and Pendulum-v1."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hystax import envs
from hystax.agents import ppo
from hystax.agents.ppo_parts import Transition, gae_advantages
from hystax.core.errors import HystaxError

TINY = dict(total_timesteps=4 * 16 * 3, num_envs=4, num_steps=16, num_minibatches=2,
            update_epochs=2, hidden_sizes=(16,))


def reference_gae(reward, value, final_value, terminated, truncated, gamma, lam):
    """Plain loop: bootstrap through truncation, cut the recursion at any episode end."""
    T, N = reward.shape
    adv = np.zeros((T, N))
    for n in range(N):
        next_adv = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if terminated[t, n] else gamma * final_value[t, n]
            delta = reward[t, n] + bootstrap - value[t, n]
            ended = terminated[t, n] or truncated[t, n]
            next_adv = delta + (0.0 if ended else gamma * lam * next_adv)
            adv[t, n] = next_adv
    return adv


def test_gae_matches_reference_loop_with_truncation():
    rng = np.random.default_rng(0)
    T, N = 50, 3
    reward, value, final_value = (rng.normal(size=(T, N)) for _ in range(3))
    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    traj = Transition(obs=None, action=None, log_prob=None, value=jnp.asarray(value),
                      reward=jnp.asarray(reward), terminated=jnp.asarray(terminated, jnp.float32),
                      done=jnp.asarray(terminated | truncated, jnp.float32), final_obs=None,
                      info={})
    adv, targets = jax.jit(gae_advantages)(traj, jnp.asarray(final_value), 0.97, 0.9)
    expected = reference_gae(reward, value, final_value, terminated, truncated, 0.97, 0.9)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, expected + value, rtol=1e-5, atol=1e-5)
    # truncation really bootstraps: at a truncated step delta = r + gamma V(final) - V
    t, n = np.argwhere(truncated)[0]
    assert adv[t, n] == pytest.approx(reward[t, n] + 0.97 * final_value[t, n] - value[t, n], abs=1e-5)


@pytest.mark.parametrize("env_name", ["CartPole-v1", "Pendulum-v1"])
def test_train_shapes_and_finite_metrics(env_name):
    env, params = envs.make(env_name)
    config = ppo.Config(**TINY)
    state, metrics = jax.jit(ppo.make_train(config, env, params))(jax.random.PRNGKey(0))
    chex.assert_shape(list(metrics.values()), (config.num_updates,))
    chex.assert_tree_all_finite({k: v for k, v in metrics.items() if k.endswith("loss")})
    np.testing.assert_array_equal(metrics["env_steps"], 64 * np.arange(1, 4))
    assert int(state.update) == config.num_updates
    chex.assert_type(metrics["episodes"], jnp.int32)


def test_vmap_over_seeds_equals_single_runs():
    env, params = envs.make("CartPole-v1")
    train = ppo.make_train(ppo.Config(**TINY), env, params)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    _, batched = jax.jit(jax.vmap(train))(keys)
    _, single = jax.jit(train)(keys[2])
    np.testing.assert_allclose(batched["value_loss"][2], single["value_loss"], rtol=1e-4)
    assert not np.allclose(batched["value_loss"][0], batched["value_loss"][1])


def test_population_of_learning_rates_in_one_call():
    env, params = envs.make("CartPole-v1")
    train = ppo.make_train(ppo.Config(**TINY), env, params)
    lrs = jnp.array([0.0, 1e-3, 1e-2])
    init_params = jax.jit(train)(jax.random.PRNGKey(0), {"lr": 0.0})[0].params
    states, metrics = jax.jit(jax.vmap(train, in_axes=(None, 0)))(jax.random.PRNGKey(0), {"lr": lrs})
    chex.assert_shape(metrics["value_loss"], (3, 3))
    moved = [float(jnp.abs(states.params["params"]["MLP_0"]["Dense_0"]["kernel"][i]
                           - init_params["params"]["MLP_0"]["Dense_0"]["kernel"]).max())
             for i in range(3)]
    assert moved[0] == 0.0 and 0.0 < moved[1] < moved[2]
    np.testing.assert_allclose(states.hparams["lr"], lrs)


def test_bad_config_and_hparams_raise_clear_errors():
    with pytest.raises(HystaxError, match="not divisible by num_minibatches"):
        ppo.Config(num_envs=4, num_steps=10, num_minibatches=3)
    with pytest.raises(HystaxError, match="total_timesteps must be a positive integer"):
        ppo.Config(total_timesteps=-1)
    with pytest.raises(HystaxError, match="smaller than one update"):
        ppo.Config(total_timesteps=10)
    env, params = envs.make("CartPole-v1")
    train = ppo.make_train(ppo.Config(**TINY), env, params)
    with pytest.raises(HystaxError, match="'learning_rate' is not a numeric hyperparameter"):
        train(jax.random.PRNGKey(0), {"learning_rate": 1.0})


def _final_returns(env_name):
    env, params = envs.make(env_name)
    config = ppo.PRESETS[env_name]
    train = jax.jit(jax.vmap(ppo.make_train(config, env, params)))
    _, metrics = train(jax.random.split(jax.random.PRNGKey(0), 4))
    returns = np.asarray(metrics["episode_return"])
    return np.nanmean(returns[:, -10:], axis=1)  # per seed, episodes of the last 10 updates


@pytest.mark.slow  # the default run's test_cli demo test checks the same threshold via the CLI
def test_cartpole_learns_to_475():
    per_seed = _final_returns("CartPole-v1")
    assert per_seed.mean() >= 475, per_seed


def test_pendulum_learns_to_minus_250():
    per_seed = _final_returns("Pendulum-v1")
    assert per_seed.mean() >= -250, per_seed
