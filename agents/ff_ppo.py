"""Feed-forward PPO: an MLP actor-critic (discrete and continuous actions), purejaxrl-style.

Reached through :mod:`hystax.agents.ppo` (its ``Config`` with ``memory="none"``, the
default). One update is a rollout of ``num_steps`` in ``num_envs`` envs (a ``lax.scan``),
GAE, then ``update_epochs`` passes over ``num_minibatches`` shuffled minibatches of single
steps.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from hystax.agents import ppo_parts
from hystax.agents.actor import Actor
from hystax.agents.algorithm import Algorithm
from hystax.agents.networks import ActorCritic


class TrainState(flax.struct.PyTreeNode):
    """Everything one seed's training carries from update to update."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim]
    key: jax.Array
    update: jax.Array  # number of updates done
    hparams: dict[str, jax.Array]


def make_algorithm(config, env, env_params) -> Algorithm:
    """Feed-forward PPO (a ``ppo.Config``) as ``init(key, hparams)`` / ``update(state)`` for
    one seed."""
    env, discrete, action_dim, to_env_action = ppo_parts.prepare_env(config, env, env_params)
    network = ActorCritic(action_dim, discrete, config.hidden_sizes, config.activation)
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches

    def init(key, hparams):
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        params = network.init(k_net, obs)
        opt_state = ppo_parts.make_optimizer(hparams, hparams["lr"]).init(params)
        return TrainState(params, opt_state, env_state, obs, key,
                          jnp.zeros((), jnp.int32), hparams)

    def env_step(state: TrainState, _):
        key, k_act, k_env = jax.random.split(state.key, 3)
        policy_out, value = network.apply(state.params, state.obs)
        pi = ppo_parts.policy_distribution(policy_out, discrete)
        action = pi.sample(seed=k_act)
        log_prob = pi.log_prob(action)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, state.env_state, to_env_action(action), env_params)
        done = jnp.logical_or(terminated, truncated)
        transition = ppo_parts.Transition(
            state.obs, action, log_prob, value,
            reward.astype(jnp.float32) * state.hparams["reward_scale"],
            terminated.astype(jnp.float32), done.astype(jnp.float32),
            info["final_observation"],
            {k: info[k] for k in ppo_parts.EPISODE_INFO})
        return state.replace(env_state=env_state, obs=obs, key=key), transition

    def loss_fn(params, batch: ppo_parts.Transition, advantages, targets, *, hparams):
        policy_out, value = network.apply(params, batch.obs)
        return ppo_parts.clipped_ppo_loss(ppo_parts.policy_distribution(policy_out, discrete),
                                          value, batch, advantages, targets, hparams)

    def update(state: TrainState):
        state, traj = jax.lax.scan(env_step, state, None, length=config.num_steps)
        _, final_values = network.apply(state.params, traj.final_obs)
        steps = traj.replace(info={})

        def shuffled_minibatches(key, advantages, targets):  # [n_mb, steps / n_mb, ...]
            flat = jax.tree.map(lambda x: x.reshape((batch_size, *x.shape[2:])),
                                (steps, advantages, targets))
            perm = jax.random.permutation(key, batch_size)
            return jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, minibatch_size, *x.shape[1:])),
                flat)

        return ppo_parts.learn(config, state, traj, final_values, loss_fn, shuffled_minibatches)

    return Algorithm(init, update, config.num_updates, batch_size)


def make_actor(config, env, env_params) -> Actor:
    """The MLP policy of a feed-forward PPO run (an :class:`~hystax.agents.actor.Actor`;
    no carry). ``deterministic`` takes the argmax action (Box: the mean)."""
    env = ppo_parts.agent_env(config, env, env_params)
    discrete, action_dim, to_env_action = ppo_parts.action_mapping(env, env_params)
    network = ActorCritic(action_dim, discrete, config.hidden_sizes, config.activation)

    def act(params, obs, carry, start, key, deterministic=False):
        policy_out, _ = network.apply(params, obs)
        pi = ppo_parts.policy_distribution(policy_out, discrete)
        return to_env_action(ppo_parts.choose(pi, key, deterministic)), carry

    return Actor(env, lambda batch: None, act, lambda state: state.params)
