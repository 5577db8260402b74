"""Recurrent PPO: PPO whose policy carries a memory (S5, S4D, LRU, S6, GRU, minGRU, LSTM or
MLP).

Reached through :mod:`hystax.agents.ppo` when its config's ``memory.model`` is not "none"
(``hystax train ppo --memory s5 --env popgym/RepeatPreviousEasy``); the memory and the
actor-critic around it are described by ``config.memory``, a
:class:`~hystax.agents.memory.MemoryConfig`.

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

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from hystax.agents import ppo_parts
from hystax.agents.actor import Actor
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


class RecurrentTransition(ppo_parts.Transition):
    """A :class:`~hystax.agents.ppo_parts.Transition` with the memory's ``start`` flags and
    ``previous_final_value``, V(final observation of the *previous* step)."""

    start: jax.Array
    previous_final_value: jax.Array


def memory_model(config) -> SequenceModel:
    """The :class:`SequenceModel` of a PPO ``config``'s ``memory``."""
    return SequenceModel(config.memory)


def scale_ssm_updates(updates, factor):
    """``updates`` with the SSM dynamics' leaves (Λ, B, log Δ of S5/S4D) times ``factor``."""
    def scale(path, leaf):
        names = [getattr(p, "key", None) for p in path]
        is_ssm = "core" in names and names[-1] in SSM_PARAMS
        return leaf * factor if is_ssm else leaf
    return jax.tree_util.tree_map_with_path(scale, updates)


def make_network(config, action_dim: int, discrete: bool) -> RecurrentActorCritic:
    """The actor-critic around ``config.memory``."""
    return RecurrentActorCritic(action_dim, discrete, memory_model(config),
                                config.memory.encoder_sizes, config.hidden_sizes,
                                config.activation, config.memory.separate)


def make_algorithm(config, env, env_params) -> Algorithm:
    """Recurrent PPO (a ``ppo.Config`` with a memory model) as ``init(key, hparams)`` /
    ``update(state)`` for one seed."""
    env, discrete, action_dim, to_env_action = ppo_parts.prepare_env(config, env, env_params)
    network = make_network(config, action_dim, discrete)
    n_envs, n_mb = config.num_envs, config.num_minibatches
    envs_per_minibatch = n_envs // n_mb

    def init(key, hparams):
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        carry = network.initialize_carry(n_envs)
        start = jnp.ones((n_envs,), bool)
        params = network.init(k_net, carry, obs[None], start[None])
        opt_state = ppo_parts.make_optimizer(hparams, hparams["lr"]).init(params)
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
        pi = ppo_parts.policy_distribution(policy_out, discrete)
        action = pi.sample(seed=k_act)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, state.env_state, to_env_action(action), env_params)
        done = jnp.logical_or(terminated, truncated)
        transition = RecurrentTransition(
            obs=state.obs, action=action, log_prob=pi.log_prob(action), value=value,
            reward=reward.astype(jnp.float32) * state.hparams["reward_scale"],
            terminated=terminated.astype(jnp.float32), done=done.astype(jnp.float32),
            final_obs=info["final_observation"], start=state.start,
            previous_final_value=previous_final_value,
            info={k: info[k] for k in ppo_parts.EPISODE_INFO})
        state = state.replace(env_state=env_state, obs=obs, start=done,
                              final_obs=info["final_observation"], carry=carry, key=key)
        return state, transition

    def loss_fn(params, carry, batch: RecurrentTransition, advantages, targets, *, hparams):
        _, (policy_out, value) = network.apply(params, carry, batch.obs, batch.start)
        return ppo_parts.clipped_ppo_loss(ppo_parts.policy_distribution(policy_out, discrete),
                                          value, batch, advantages, targets, hparams)

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
        steps = traj.replace(info={}, final_obs=None, previous_final_value=None)

        def trajectory_minibatches(key, advantages, targets):  # [n_mb, ..., envs/n_mb, ...]
            groups = jax.random.permutation(key, n_envs).reshape(n_mb, envs_per_minibatch)
            return jax.tree.map(lambda x: jnp.moveaxis(x[:, groups], 1, 0),
                                (rollout_carry, steps, advantages, targets))

        return ppo_parts.learn(
            config, state, traj, final_values, loss_fn, trajectory_minibatches,
            transform_updates=lambda u: scale_ssm_updates(u, state.hparams["ssm_lr_scale"]))

    act = acting(network, discrete, to_env_action)

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
            action, carry = act(params, obs, carry, start, k_act)
            obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, action, eval_env_params)
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


def make_actor(config, env, env_params) -> Actor:
    """The memory policy of a recurrent PPO run (an :class:`~hystax.agents.actor.Actor`):
    the carry is the memory's state ``[layers, B, ...]``, zeroed inside the step where
    ``start`` is set, as in training. ``deterministic`` takes the argmax action (Box: the
    mean)."""
    env = ppo_parts.agent_env(config, env, env_params)
    discrete, action_dim, to_env_action = ppo_parts.action_mapping(env, env_params)
    network = make_network(config, action_dim, discrete)
    return Actor(env, network.initialize_carry, acting(network, discrete, to_env_action),
                 lambda state: state.params)


def acting(network: RecurrentActorCritic, discrete: bool, to_env_action):
    """``act(params, obs [B, ...], carry, start [B], key, deterministic=False) -> (env action
    [B, ...], carry)``: one step of ``network``, a sample of its policy or (deterministic)
    the mode."""
    def act(params, obs, carry, start, key, deterministic=False):
        carry, (policy_out, _) = network.apply(params, carry, obs[None], start[None])
        policy_out = jax.tree.map(lambda x: x[0] if x.ndim > 1 else x, policy_out)
        pi = ppo_parts.policy_distribution(policy_out, discrete)
        return to_env_action(ppo_parts.choose(pi, key, deterministic)), carry

    return act
