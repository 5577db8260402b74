"""Recurrent PPO: PPO whose policy carries a memory (S5, S4D, GRU, LSTM or MLP).

Used by :mod:`hystax.agents.ppo` when ``config.memory != "none"``
(``hystax train ppo --memory s5 --env popgym/RepeatPreviousEasy``).

* Acting: the memory steps one observation at a time; ``starts`` is the *previous* step's
  done (gymnax auto-resets inside ``step``, so the observation after a done is the next
  episode's first), so the state is zeroed inside the memory exactly there.
* Learning: the carry at the start of each rollout is stored; minibatches are whole
  trajectories (envs permuted and split), re-run from that carry with the same ``starts``.
* GAE is cut at every episode end and bootstrapped through truncations with
  ``V(final_observation)`` evaluated from the pre-reset memory state: each acting step
  also evaluates the previous step's final observation from the same carry (one batched
  call), so no extra sequential pass is needed.
* ``ssm_lr_scale`` scales the updates of S5/S4D's Λ, B and log Δ relative to ``lr``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from hystax.agents.algorithm import Algorithm
from hystax.agents.memory import SSM_PARAMS, SequenceModel
from hystax.agents.networks import RecurrentActorCritic


class RecurrentTrainState(flax.struct.PyTreeNode):
    """One seed's training state; env-batched leaves are ``[num_envs, ...]``."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim]
    start: jax.Array  # [num_envs] bool: obs is the first of an episode
    final_obs: jax.Array  # [num_envs, obs_dim]: last step's pre-reset observation
    carry: jax.Array  # [layers, num_envs, ...]: memory state before ``obs``
    key: jax.Array
    update: jax.Array
    hparams: dict[str, jax.Array]


class RecurrentTransition(flax.struct.PyTreeNode):
    """One acting step; leaves ``[num_envs, ...]`` (``[T, num_envs, ...]`` after the scan).

    ``previous_final_value`` is V(final observation of the *previous* step)."""

    obs: jax.Array
    start: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: jax.Array  # pre-reset next observation
    previous_final_value: jax.Array
    info: dict


def memory_model(config) -> SequenceModel:
    """The :class:`SequenceModel` described by a PPO ``config``."""
    from hystax.agents.ppo import memory_settings

    return SequenceModel(**memory_settings(config))


def scale_ssm_updates(updates, factor):
    """``updates`` with the SSM dynamics' leaves (Λ, B, log Δ of S5/S4D) times ``factor``."""
    def scale(path, leaf):
        names = [getattr(p, "key", None) for p in path]
        is_ssm = "core" in names and names[-1] in SSM_PARAMS
        return leaf * factor if is_ssm else leaf
    return jax.tree_util.tree_map_with_path(scale, updates)


def make_algorithm(config, env, env_params) -> Algorithm:
    """Recurrent PPO as ``init(key, hparams)`` / ``update(state)`` for one seed."""
    from hystax.agents.ppo import (
        annealed_lr,
        clipped_ppo_loss,
        episode_metrics,
        gae_advantages,
        make_optimizer,
        minibatch_epochs,
        policy_distribution,
        prepare_env,
    )

    env, discrete, action_dim, to_env_action = prepare_env(config, env, env_params)
    memory = memory_model(config)
    network = RecurrentActorCritic(action_dim, discrete, memory, config.encoder_sizes,
                                   config.hidden_sizes, config.activation, config.separate_memory)
    n_envs, n_mb = config.num_envs, config.num_minibatches
    envs_per_minibatch = n_envs // n_mb

    def init(key, hparams):
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        carry = network.initialize_carry(n_envs)
        start = jnp.ones((n_envs,), bool)
        params = network.init(k_net, carry, obs[None], start[None])
        opt_state = make_optimizer(hparams, hparams["lr"]).init(params)
        return RecurrentTrainState(params, opt_state, env_state, obs, start, obs, carry, key,
                                   jnp.zeros((), jnp.int32), hparams)

    def env_step(state: RecurrentTrainState, _):
        key, k_act, k_env = jax.random.split(state.key, 3)
        # act on obs and value the previous final obs from the same carry, in one call:
        # the batch is [envs acting | the same envs' previous final obs, no reset]
        carry2, (policy_out, value) = network.apply(
            state.params, jnp.concatenate([state.carry, state.carry], axis=1),
            jnp.concatenate([state.obs, state.final_obs])[None],
            jnp.concatenate([state.start, jnp.zeros_like(state.start)])[None])
        carry = carry2[:, :n_envs]
        # logits / means are [1, 2 envs, A]; a Gaussian's log std [A] is shared
        policy_out = jax.tree.map(lambda x: x[0, :n_envs] if x.ndim > 1 else x, policy_out)
        value, previous_final_value = value[0, :n_envs], value[0, n_envs:]
        pi = policy_distribution(policy_out, discrete)
        action = pi.sample(seed=k_act)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, state.env_state, to_env_action(action), env_params)
        done = jnp.logical_or(terminated, truncated)
        transition = RecurrentTransition(
            state.obs, state.start, action, pi.log_prob(action), value,
            reward.astype(jnp.float32) * state.hparams["reward_scale"],
            terminated.astype(jnp.float32), done.astype(jnp.float32), info["final_observation"],
            previous_final_value,
            {k: info[k] for k in ("returned_episode", "returned_episode_returns",
                                  "returned_episode_lengths")})
        state = state.replace(env_state=env_state, obs=obs, start=done,
                              final_obs=info["final_observation"], carry=carry, key=key)
        return state, transition

    def loss_fn(params, carry, batch: RecurrentTransition, advantages, targets, *, hparams):
        _, (policy_out, value) = network.apply(params, carry, batch.obs, batch.start)
        return clipped_ppo_loss(policy_distribution(policy_out, discrete), value, batch,
                                advantages, targets, hparams)

    def collect(state: RecurrentTrainState):
        """One rollout: ``(state, (rollout-start carry, traj, final_values))``, where
        ``final_values[t] = V(final_obs_t)`` from the pre-reset memory state."""
        rollout_carry = state.carry
        state, traj = jax.lax.scan(env_step, state, None, length=config.num_steps)
        _, (_, last_final_value) = network.apply(state.params, state.carry,
                                                 state.final_obs[None],
                                                 jnp.zeros_like(state.start)[None])
        final_values = jnp.concatenate([traj.previous_final_value[1:], last_final_value])
        return state, (rollout_carry, traj, final_values)

    def update(state: RecurrentTrainState):
        state, (rollout_carry, traj, final_values) = collect(state)
        hp = state.hparams
        advantages, targets = gae_advantages(traj, final_values, hp["gamma"], hp["gae_lambda"])
        tx = make_optimizer(hp, annealed_lr(config, state))
        data = (rollout_carry, traj.replace(info={}, final_obs=None, previous_final_value=None),
                advantages, targets)

        def trajectory_minibatches(key):  # envs permuted and split: [n_mb, ..., envs/n_mb, ...]
            groups = jax.random.permutation(key, n_envs).reshape(n_mb, envs_per_minibatch)
            return jax.tree.map(lambda x: jnp.moveaxis(x[:, groups], 1, 0), data)

        (params, opt_state, key), stats = minibatch_epochs(
            state.params, state.opt_state, state.key, partial(loss_fn, hparams=hp), tx,
            config.update_epochs, trajectory_minibatches,
            transform_updates=lambda u: scale_ssm_updates(u, hp["ssm_lr_scale"]))
        state = state.replace(params=params, opt_state=opt_state, key=key,
                              update=state.update + 1)
        metrics = {"env_steps": state.update * n_envs * config.num_steps,
                   **episode_metrics(traj.info), **jax.tree.map(jnp.mean, stats)}
        return state, metrics

    def evaluate(params, key, eval_env_params, num_steps: int, reset_on: str | None = None):
        """Run the policy (sampling) from fresh envs for ``num_steps`` steps under
        ``eval_env_params``; returns ``(rewards [T, num_envs], dones [T, num_envs], info)``
        with the env's own ``info`` entries (e.g. a meta-env's ``trial_index``).

        ``reset_on`` names a boolean ``info`` entry at which the memory is also reset (e.g.
        ``"trial_done"``: a meta-env policy that forgets between trials), or is
        ``"every_step"``: the memory is reset before every observation (the same weights read
        memorylessly); static under jit."""
        key, k_reset = jax.random.split(key)
        obs, env_state = env.reset(k_reset, eval_env_params)

        def step(carry_in, _):
            carry, obs, start, env_state, key = carry_in
            key, k_act, k_env = jax.random.split(key, 3)
            carry, (policy_out, _) = network.apply(params, carry, obs[None], start[None])
            policy_out = jax.tree.map(lambda x: x[0] if x.ndim > 1 else x, policy_out)
            action = policy_distribution(policy_out, discrete).sample(seed=k_act)
            obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, to_env_action(action), eval_env_params)
            done = jnp.logical_or(terminated, truncated)
            if reset_on == "every_step":
                start = jnp.ones_like(done)
            else:
                start = done if reset_on is None else jnp.logical_or(done, info[reset_on])
            return (carry, obs, start, env_state, key), (reward, done, info)

        init = (network.initialize_carry(n_envs), obs, jnp.ones((n_envs,), bool), env_state, key)
        _, (rewards, dones, info) = jax.lax.scan(step, init, None, length=num_steps)
        return rewards, dones, info

    return Algorithm(init, update, config.num_updates, n_envs * config.num_steps,
                     extras={"collect": collect, "network": network, "evaluate": evaluate})
