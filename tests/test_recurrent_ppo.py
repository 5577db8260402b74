"""Recurrent PPO: memory models learn a memory task the MLP cannot; rollouts re-run from the
stored carry reproduce the acting values; truncation bootstraps from the pre-reset state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.agents import ppo, recurrent_ppo
from hystax.agents.api import default_hparams

import hystax
from hystax.errors import HystaxError

# A small memory probe: bsuite MemoryChain (the context bit is shown only at t = 0, the
# reward at t = 5 is +1 for recalling it, -1 otherwise).
MEMORY_CHAIN = dict(total_timesteps=30_720, num_envs=16, num_steps=64, num_minibatches=4,
                    update_epochs=4, d_model=32, state_size=32, encoder_sizes=(32,),
                    hidden_sizes=(32,), lr=1e-3, anneal_lr=False, prev_action_reward=True)


def _final_return(memory: str, seed: int = 0) -> float:
    env, params = hystax.make("MemoryChain-bsuite")
    train = jax.jit(ppo.make_train(ppo.Config(memory=memory, **MEMORY_CHAIN), env, params))
    _, metrics = train(jax.random.PRNGKey(seed))
    returns = np.asarray(metrics["episode_return"])
    return float(np.nanmean(returns[-5:]))


@pytest.fixture(scope="module")
def mlp_return():
    return _final_return("mlp")


@pytest.mark.parametrize("memory", ["s5", "gru"])
def test_memory_model_learns_memory_chain_above_mlp(memory, mlp_return):
    value = _final_return(memory)
    assert value > 0.8, f"{memory} reached {value:.3f}"
    assert mlp_return < 0.3, f"the memoryless MLP reached {mlp_return:.3f}"  # guessing: 0


def _algorithm(memory, env_name="CartPole-v1", **overrides):
    env, params = hystax.make(env_name, max_steps_in_episode=7) if env_name == "CartPole-v1" \
        else hystax.make(env_name)
    config = ppo.Config(memory=memory, total_timesteps=80, num_envs=2, num_steps=20,
                        num_minibatches=2, update_epochs=1, d_model=8, state_size=8,
                        encoder_sizes=(8,), hidden_sizes=(8,), **overrides)
    return ppo.make_algorithm(config, env, params), config


@pytest.mark.parametrize("memory", ["s5", "lstm"])
def test_replay_from_rollout_carry_and_truncation_bootstrap(memory):
    algo, config = _algorithm(memory)
    collect, network = algo.extras["collect"], algo.extras["network"]
    state = algo.init(jax.random.PRNGKey(0), default_hparams(config))
    state, _ = jax.jit(algo.update)(state)  # the next rollout starts mid-episode
    state, (carry0, traj, final_values) = jax.jit(collect)(state)
    truncated = np.asarray(traj.done) * (1 - np.asarray(traj.terminated))
    assert truncated.sum() >= 2 and np.asarray(traj.start).any()
    apply = jax.jit(network.apply)
    # whole-trajectory re-run from the stored carry reproduces the acting values
    _, (_, values) = apply(state.params, carry0, traj.obs, traj.start)
    np.testing.assert_allclose(values, traj.value, atol=1e-5)
    # V(final_obs_t) from the memory state after obs_0..t, with no reset
    carry_t = carry0
    for t in range(traj.obs.shape[0]):
        carry_t, _ = apply(state.params, carry_t, traj.obs[t][None], traj.start[t][None])
        _, (_, v) = apply(state.params, carry_t, traj.final_obs[t][None],
                          jnp.zeros((1, 2), bool))
        np.testing.assert_allclose(final_values[t], v[0], atol=1e-5)


def test_continuous_actions_and_ssm_learning_rate_scale():
    algo, config = _algorithm("s5", "Pendulum-v1", ssm_lr_scale=0.0, lr=1e-2)
    state = algo.init(jax.random.PRNGKey(1), default_hparams(config))
    new_state, metrics = jax.jit(algo.update)(state)
    assert np.isfinite(metrics["value_loss"])
    moved = jax.tree_util.tree_map_with_path(
        lambda path, a, b: (jax.tree_util.keystr(path), bool(np.any(a != b))),
        state.params, new_state.params)
    flat = dict(jax.tree.leaves(moved, is_leaf=lambda x: isinstance(x, tuple)))
    ssm = {k: v for k, v in flat.items() if "core" in k and any(
        k.endswith(f"['{name}']") for name in ("lambda_re", "lambda_im", "b", "log_step"))}
    assert len(ssm) == 4 and not any(ssm.values()), ssm
    assert any(v for k, v in flat.items() if k not in ssm)


def test_recurrent_runner_with_vmapped_seeds(tmp_path):
    result = hystax.train("ppo", "MemoryChain-bsuite", seeds=2, out_dir=tmp_path, progress=False,
                          memory="gru", total_timesteps=2048, num_envs=8, num_steps=32,
                          num_minibatches=2, d_model=8, encoder_sizes=(8,), hidden_sizes=(8,))
    returns = result.metrics["episode_return"]
    assert returns.shape == (2, 8)
    assert not np.allclose(returns[0], returns[1], equal_nan=True)


@pytest.mark.parametrize("overrides,match", [
    ({"memory": "s6"}, "unknown memory model 's6'"),
    ({"memory": "gru", "num_envs": 6, "num_minibatches": 4}, "whole trajectories"),
    ({"memory": "s5", "state_size": 7}, "even block size"),
    ({"memory": "s4d", "discretization": "euler"}, "unknown discretization"),
])
def test_bad_recurrent_configs(overrides, match):
    with pytest.raises(HystaxError, match=match):
        ppo.Config(**overrides)


def test_memory_model_reads_config():
    assert ppo.Config(memory="s5", d_model=64.0, memory_layers=np.int64(2)).d_model == 64
    model = recurrent_ppo.memory_model(ppo.Config(memory="s4d", memory_layers=3, d_model=16))
    assert (model.model, model.num_layers, model.d_model) == ("s4d", 3, 16)
    assert model.initialize_carry(5).shape == (3, 5, 16 * 32)
