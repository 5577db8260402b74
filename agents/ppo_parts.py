"""What feed-forward (:mod:`hystax.agents.ff_ppo`) and recurrent
(:mod:`hystax.agents.recurrent_ppo`) PPO are both built from: the rollout record, the batched
env, the policy distribution, GAE, the clipped loss and the minibatch epochs.

Truncation is bootstrapped correctly: the critic is evaluated on
``info["final_observation"]`` (the pre-reset observation), and only ``terminated`` cuts the
bootstrap, while both ``terminated`` and ``truncated`` cut the GAE recursion.
"""

from __future__ import annotations

from functools import partial

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from gymnax.environments import spaces

from hystax.core.errors import HystaxError
from hystax.envs import BatchEnv, EpisodeStatistics, FlattenObservation, PreviousActionReward

EPISODE_INFO = ("returned_episode", "returned_episode_returns", "returned_episode_lengths")
"""The ``EpisodeStatistics`` info entries a rollout keeps (for :func:`episode_metrics`)."""


class Transition(flax.struct.PyTreeNode):
    """One rollout step for all envs; leaves are ``[num_envs, ...]`` (``[T, num_envs, ...]``
    after the rollout scan). ``final_obs`` is the pre-reset next observation."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: jax.Array
    info: dict


def make_optimizer(hparams, lr) -> optax.GradientTransformation:
    """Clip by global norm, then Adam with learning rate ``lr`` (may be traced)."""
    return optax.chain(optax.clip_by_global_norm(hparams["max_grad_norm"]),
                       optax.scale_by_adam(eps=1e-5), optax.scale(-lr))


def policy_distribution(policy_out, discrete: bool):
    """The policy as a distrax distribution: ``Categorical(logits)`` or a diagonal Gaussian.

    distrax (and the tfp it imports) is loaded on first use, so reading configs, e.g. for
    ``hystax train ppo --help``, stays fast.
    """
    import distrax

    if discrete:
        return distrax.Categorical(logits=policy_out)
    mean, log_std = policy_out
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std) * jnp.ones_like(mean))


def gae_advantages(t: Transition, final_values, gamma, gae_lambda):
    """GAE over a time-major rollout ``[T, num_envs]``.

    ``final_values[t] = V(final_obs[t])`` is the value of the true next state, so
    ``delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t)`` bootstraps through
    truncations; the recursion is cut by every episode end (``done``).
    """
    deltas = t.reward + gamma * (1.0 - t.terminated) * final_values - t.value

    def backward(adv_next, x):
        delta, done = x
        adv = delta + gamma * gae_lambda * (1.0 - done) * adv_next
        return adv, adv

    _, adv = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, t.done), reverse=True)
    return adv, adv + t.value


def clipped_ppo_loss(pi, value, batch, advantages, targets, hparams):
    """PPO's loss on a minibatch: clipped surrogate + ``vf_coef`` x clipped value loss
    - ``ent_coef`` x entropy, advantages normalised over the minibatch.

    ``pi``/``value`` are the current policy and values on ``batch`` (any leading shape);
    ``batch`` holds the rollout's ``action``, ``log_prob`` and ``value``.
    Returns ``(loss, stats)``.
    """
    log_prob = pi.log_prob(batch.action)
    value_clipped = batch.value + jnp.clip(value - batch.value, -hparams["clip_eps"],
                                           hparams["clip_eps"])
    value_loss = 0.5 * jnp.maximum(jnp.square(value - targets),
                                   jnp.square(value_clipped - targets)).mean()
    ratio = jnp.exp(log_prob - batch.log_prob)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -jnp.minimum(
        ratio * adv,
        jnp.clip(ratio, 1.0 - hparams["clip_eps"], 1.0 + hparams["clip_eps"]) * adv).mean()
    entropy = pi.entropy().mean()
    total = policy_loss + hparams["vf_coef"] * value_loss - hparams["ent_coef"] * entropy
    stats = {"value_loss": value_loss, "policy_loss": policy_loss, "entropy": entropy,
             "approx_kl": ((ratio - 1.0) - jnp.log(ratio)).mean(),
             "clip_fraction": (jnp.abs(ratio - 1.0) > hparams["clip_eps"]).mean()}
    return total, stats


def episode_metrics(info) -> dict[str, jax.Array]:
    """Mean return/length of the episodes that ended during one rollout (NaN if none)
    and their count, from ``EpisodeStatistics``' info ``[T, num_envs]``."""
    ended = info["returned_episode"]
    n_ended = ended.sum()

    def mean_over_ended(x):
        return jnp.where(n_ended > 0, (x * ended).sum() / jnp.maximum(n_ended, 1), jnp.nan)

    return {"episode_return": mean_over_ended(info["returned_episode_returns"]),
            "episode_length": mean_over_ended(info["returned_episode_lengths"]),
            "episodes": n_ended}


def minibatch_epochs(params, opt_state, key, loss_fn, tx, num_epochs: int, minibatches,
                     transform_updates=None):
    """``num_epochs`` passes of minibatch gradient steps, as one ``lax.scan`` over epochs.

    ``minibatches(key)`` returns a fresh split of the data for each epoch: a pytree whose
    leaves have a leading ``[num_minibatches]`` axis; ``loss_fn(params, *minibatch)`` returns
    ``(loss, stats)``; ``transform_updates`` (optional) edits the optimiser's updates before
    they are applied. Returns ``((params, opt_state, key), stats [epochs, minibatches])``.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def minibatch_step(carry, minibatch):
        params, opt_state = carry
        (_, stats), grads = grad_fn(params, *minibatch)
        updates, opt_state = tx.update(grads, opt_state, params)
        if transform_updates is not None:
            updates = transform_updates(updates)
        return (optax.apply_updates(params, updates), opt_state), stats

    def epoch(carry, _):
        params, opt_state, key = carry
        key, k_split = jax.random.split(key)
        (params, opt_state), stats = jax.lax.scan(minibatch_step, (params, opt_state),
                                                  minibatches(k_split))
        return (params, opt_state, key), stats

    return jax.lax.scan(epoch, (params, opt_state, key), None, length=num_epochs)


def annealed_lr(config, state):
    """``hparams["lr"]``, linearly annealed to 0 over the updates when ``config.anneal_lr``."""
    if not config.anneal_lr:
        return state.hparams["lr"]
    return state.hparams["lr"] * (1.0 - state.update.astype(jnp.float32) / config.num_updates)


def learn(config, state, traj, final_values, loss_fn, split, transform_updates=None):
    """The learning half of one PPO update: GAE on the rollout, then ``config.update_epochs``
    passes of minibatch steps (:func:`minibatch_epochs`) at the annealed learning rate.

    ``traj`` is the rollout ``[T, num_envs]`` and ``final_values`` ``V(final_obs)`` on it;
    ``split(key, advantages, targets)`` gives one epoch's minibatches, each the arguments of
    ``loss_fn(params, *minibatch, hparams=...)``. ``state`` has ``params``, ``opt_state``,
    ``key``, ``update`` and ``hparams``. Returns ``(state, metrics)``: the state one update
    on, and the env steps so far, the rollout's episodes and the mean loss statistics.
    """
    hp = state.hparams
    advantages, targets = gae_advantages(traj, final_values, hp["gamma"], hp["gae_lambda"])
    (params, opt_state, key), stats = minibatch_epochs(
        state.params, state.opt_state, state.key, partial(loss_fn, hparams=hp),
        make_optimizer(hp, annealed_lr(config, state)), config.update_epochs,
        lambda key: split(key, advantages, targets), transform_updates)
    state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
    metrics = {"env_steps": state.update * config.num_envs * config.num_steps,
               **episode_metrics(traj.info), **jax.tree.map(jnp.mean, stats)}
    return state, metrics


def agent_env(config, env, env_params):
    """One copy of the env as PPO's policy sees it: observations flattened when needed, and
    the previous action and reward appended when ``config.prev_action_reward``."""
    if len(env.observation_space(env_params).shape) != 1:
        env = FlattenObservation(env)
    if config.prev_action_reward:
        env = PreviousActionReward(env, env_params, reward_scale=config.prev_reward_scale)
    return env


def action_mapping(env, env_params):
    """``(discrete, action_dim, to_env_action)``: how the policy's ``[B, action_dim]`` samples
    become ``env``'s actions (Box: reshaped and clipped to the bounds)."""
    action_space = env.action_space(env_params)
    if isinstance(action_space, spaces.Discrete):
        return True, int(action_space.n), lambda action: action
    if not isinstance(action_space, spaces.Box):
        raise HystaxError("PPO supports Discrete and Box action spaces, not "
                          f"{type(action_space).__name__}")
    low = jnp.broadcast_to(jnp.asarray(action_space.low, jnp.float32), action_space.shape)
    high = jnp.broadcast_to(jnp.asarray(action_space.high, jnp.float32), action_space.shape)

    def to_env_action(action):
        return jnp.clip(action.reshape((-1, *action_space.shape)), low, high)

    return False, int(np.prod(action_space.shape)), to_env_action


def prepare_env(config, env, env_params):
    """The batched training env and how to act in it: :func:`agent_env` with episode
    statistics, ``num_envs`` copies vmapped. Returns ``(batch_env, discrete, action_dim,
    to_env_action)`` (:func:`action_mapping`)."""
    env = agent_env(config, env, env_params)
    return (BatchEnv(EpisodeStatistics(env), config.num_envs),
            *action_mapping(env, env_params))


def choose(pi, key, deterministic):
    """A sample of ``pi``, or its mode where ``deterministic`` (a bool, may be traced)."""
    return jnp.where(deterministic, pi.mode(), pi.sample(seed=key))
