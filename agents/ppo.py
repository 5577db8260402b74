"""PPO with an MLP actor-critic (discrete and continuous actions), purejaxrl-style.

``make_train(config, env, env_params)`` gives a pure ``train(key, hparams=None)`` that runs
the whole training as one ``lax.scan``; ``jax.jit(jax.vmap(train))(keys)`` trains several
seeds at once, and ``jax.vmap(train, in_axes=(None, 0))(key, {"lr": lrs})`` a population
of learning rates.

Truncation is bootstrapped correctly: the critic is evaluated on
``info["final_observation"]`` (the pre-reset observation), and only ``terminated`` cuts the
bootstrap, while both ``terminated`` and ``truncated`` cut the GAE recursion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from gymnax.environments import spaces

from hystax.agents.algorithm import MAX_TIMESTEPS, Algorithm, check_field_types, make_train_from
from hystax.agents.memory import validate_memory
from hystax.agents.networks import ActorCritic
from hystax.core.nn import ACTIVATIONS
from hystax.envs import BatchEnv, EpisodeStatistics, FlattenObservation, PreviousActionReward
from hystax.core.errors import HystaxError, require


@dataclasses.dataclass(frozen=True)
class Config:
    """PPO settings. Fields in ``HPARAMS`` may be vmapped (populations)."""

    total_timesteps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    anneal_lr: bool = True
    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0
    prev_action_reward: bool = False  # append previous action, reward, is-first to obs
    prev_reward_scale: float = 1.0  # multiplies that previous reward (in the obs only)
    # Memory (recurrent PPO, agents/recurrent_ppo.py) when memory != "none":
    memory: str = "none"  # "none" (this file's MLP PPO), "s5", "s4d", "gru", "lstm", "mlp"
    memory_layers: int = 1
    d_model: int = 64
    state_size: int = 64
    ssm_blocks: int = 1
    conj_sym: bool = True
    discretization: str = "zoh"
    clip_eigs: bool = True  # S5: Re Λ <= -1e-4 (learnt Λ can drift unstable otherwise)
    s4d_init: str = "lin"
    layer_norm: bool = True  # pre-LayerNorm in each memory layer
    glu: str = "full"  # SSM output mixing: "full", "half" or "none" GLU after the GELU
    ffn: int = 0  # expansion of a residual feed-forward sub-layer in each layer (0: none)
    dt_min: float = 0.01  # S5/S4D step sizes Δ drawn log-uniformly from [dt_min, dt_max]
    dt_max: float = 1.0
    c_init: str = "complex_normal"  # S5's C: "complex_normal" or "trunc_normal"
    separate_memory: bool = True  # actor and critic each own an encoder and memory
    encoder_sizes: tuple[int, ...] = (64,)
    ssm_lr_scale: float = 30.0  # learning rate of S5/S4D's Λ, B, log Δ relative to lr

    HPARAMS: ClassVar[tuple[str, ...]] = (
        "lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm",
        "reward_scale", "ssm_lr_scale")

    def __post_init__(self):
        check_field_types(self)
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs",
                     "num_minibatches", "memory_layers", "d_model", "state_size", "ssm_blocks"):
            value = getattr(self, name)
            require(float(value).is_integer() and value > 0,
                    f"{name} must be a positive integer, got {value}")
            object.__setattr__(self, name, int(value))  # 1e6 from Python or JSON -> 1000000
        require(self.total_timesteps <= MAX_TIMESTEPS,
                f"total_timesteps must be at most 2**31 - 1 = {MAX_TIMESTEPS:,} (int32 step "
                f"counters), got {self.total_timesteps:g}")
        for name in ("hidden_sizes", "encoder_sizes"):
            value = getattr(self, name)
            sizes = (value,) if np.ndim(value) == 0 else value
            require((len(sizes) > 0 or name == "encoder_sizes")
                    and all(float(h).is_integer() and h > 0 for h in sizes),
                    f"{name} must be positive integers, got {value}")
            object.__setattr__(self, name, tuple(int(h) for h in sizes))
        if self.memory != "none":
            validate_memory(**memory_settings(self))
            require(self.num_envs % self.num_minibatches == 0,
                    f"recurrent PPO splits whole trajectories into minibatches: num_envs = "
                    f"{self.num_envs} is not divisible by num_minibatches = "
                    f"{self.num_minibatches}")
        batch = self.num_envs * self.num_steps
        require(batch % self.num_minibatches == 0,
                f"num_envs * num_steps = {batch} is not divisible by num_minibatches = "
                f"{self.num_minibatches}")
        require(self.total_timesteps >= batch,
                f"total_timesteps = {self.total_timesteps} is smaller than one update "
                f"(num_envs * num_steps = {batch})")
        require(self.activation in ACTIVATIONS,
                f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        for name in self.HPARAMS:
            require(np.isfinite(getattr(self, name)), f"{name} must be finite")
        require(np.isfinite(self.prev_reward_scale) and self.prev_reward_scale > 0,
                f"prev_reward_scale must be positive, got {self.prev_reward_scale}")
        for name in ("lr", "clip_eps", "max_grad_norm", "reward_scale"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            require(0 <= getattr(self, name) <= 1,
                    f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef", "ssm_lr_scale"):
            require(getattr(self, name) >= 0,
                    f"{name} must be non-negative, got {getattr(self, name)}")

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


def memory_settings(config: Config) -> dict:
    """The :class:`~hystax.agents.memory.SequenceModel` fields a PPO config describes."""
    return dict(model=config.memory, d_model=config.d_model, num_layers=config.memory_layers,
                state_size=config.state_size, blocks=config.ssm_blocks,
                conj_sym=config.conj_sym, discretization=config.discretization,
                clip_eigs=config.clip_eigs, s4d_init=config.s4d_init,
                layer_norm=config.layer_norm, glu=config.glu, ffn=config.ffn,
                dt_min=config.dt_min, dt_max=config.dt_max, c_init=config.c_init)


# Settings tuned per env (4 seeds reach CartPole-v1 500 and Pendulum-v1 about -180).
PRESETS = {
    "CartPole-v1": Config(total_timesteps=500_000),
    "Pendulum-v1": Config(total_timesteps=300_000, num_envs=16, num_steps=256,
                          num_minibatches=32, update_epochs=10, lr=1e-3, gamma=0.95,
                          ent_coef=0.0, reward_scale=0.1),
}

# Recurrent PPO on POPGym. CPU: 16 envs x 128 steps, one memory layer of width 64 (memory
# models start learning RepeatPrevious/RepeatFirst/CountRecall Easy within 2e5 steps).
# PAPER: Lu et al.'s configuration (15M steps, 64 x 1024, 30 epochs x 8 minibatches,
# encoder Dense 128 -> Dense 256, 4 S5 layers of 256, lr 5e-5) - GPU work.
POPGYM_CPU = Config(memory="s5", total_timesteps=1_000_000, num_envs=16, num_steps=128,
                    update_epochs=4, num_minibatches=4, d_model=64, state_size=64,
                    encoder_sizes=(64,), hidden_sizes=(64,), activation="leaky_relu",
                    lr=3e-4, anneal_lr=False, gae_lambda=1.0, ent_coef=0.0, vf_coef=1.0,
                    prev_action_reward=True)
POPGYM_PAPER = dataclasses.replace(
    POPGYM_CPU, total_timesteps=15_000_000, num_envs=64, num_steps=1024, update_epochs=30,
    num_minibatches=8, memory_layers=4, d_model=256, state_size=256, encoder_sizes=(128,),
    hidden_sizes=(128, 128), lr=5e-5)
POPGYM = {memory: dataclasses.replace(POPGYM_CPU, memory=memory)
          for memory in ("none", "s5", "s4d", "gru", "lstm", "mlp")}
# S4D's state_size is per channel (d_model x state_size/2 complex states per env: 2,048 at
# the default 64, against S5's 32): N = 8 keeps it within 2-3x of S5's cost and learns as well.
POPGYM["s4d"] = dataclasses.replace(POPGYM["s4d"], state_size=8)
"""The POPGym preset of each memory model ("none": feed-forward PPO on the same settings)."""
META = {
    "meta/BernoulliBandit": Config(memory="s5", total_timesteps=300_000, num_envs=16,
                                   num_steps=100, d_model=64, state_size=64,
                                   encoder_sizes=(64,), hidden_sizes=(64,), lr=1e-3),
    # POPGym's entropy 0 / GAE λ 1 collapse the policy here (return 135 -> 90); 0.01 / 0.95 learn
    "meta/CartPole": dataclasses.replace(POPGYM_CPU, total_timesteps=2_000_000,
                                         prev_action_reward=False, reward_scale=0.1,
                                         ent_coef=0.01, gae_lambda=0.95),
}
META["meta/CartPole-SameStart"] = META["meta/CartPole"]
"""Meta-RL families (their observations already hold the previous action and reward)."""
MEMORY_BEFORE = dict(layer_norm=False, ssm_lr_scale=1.0, dt_min=1e-3, dt_max=1e-1,
                     separate_memory=False, clip_eigs=False)
"""The memory defaults before S5 was made to learn (issue 13): the "-before" variants of
``hystax bench memory`` and of the POPGym ablation start from these."""
SAVED_DEFAULTS = dict(dt_min=1e-3, dt_max=1e-1, separate_memory=False, glu="full", ffn=0,
                      c_init="complex_normal", prev_reward_scale=1.0)
"""Fields added after runs were first saved, with the value such a run used: a ``config.json``
without them resumes as it ran, not with today's defaults."""
PRESET_NOTE = f"{', '.join([*PRESETS, *META])} and every popgym/... env"


def preset(env_name: str, overrides: Mapping[str, Any] | None = None) -> Config | None:
    """The tuned config a run on ``env_name`` starts from, or None where there is none.

    ``PRESETS[env_name]`` for the classic-control envs, ``META[env_name]`` for the meta-RL
    families, and for ``popgym/...`` envs ``POPGYM[memory]`` for the memory model named in
    ``overrides`` (S5 when none is): what ``hystax train ppo --memory gru --env
    popgym/RepeatFirstEasy`` trains with.
    """
    if env_name in PRESETS or env_name in META:
        return PRESETS.get(env_name) or META[env_name]
    if env_name.startswith("popgym/"):
        return POPGYM.get((overrides or {}).get("memory", "s5"), POPGYM_CPU)
    return None


class TrainState(flax.struct.PyTreeNode):
    """Everything one seed's training carries from update to update."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim]
    key: jax.Array
    update: jax.Array  # number of updates done
    hparams: dict[str, jax.Array]


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


def annealed_lr(config: Config, state):
    """``hparams["lr"]``, linearly annealed to 0 over the updates when ``config.anneal_lr``."""
    if not config.anneal_lr:
        return state.hparams["lr"]
    return state.hparams["lr"] * (1.0 - state.update.astype(jnp.float32) / config.num_updates)


def prepare_env(config: Config, env, env_params):
    """The batched training env and how to act in it.

    Flattens observations when needed, appends the previous action/reward when
    ``config.prev_action_reward``, records episode statistics and vmaps ``num_envs`` copies.
    Returns ``(batch_env, discrete, action_dim, to_env_action)``, where ``to_env_action``
    maps the policy's ``[num_envs, action_dim]`` samples to the env's actions (Box: reshaped
    and clipped to the bounds).
    """
    if len(env.observation_space(env_params).shape) != 1:
        env = FlattenObservation(env)
    if config.prev_action_reward:
        env = PreviousActionReward(env, env_params, reward_scale=config.prev_reward_scale)
    env = BatchEnv(EpisodeStatistics(env), config.num_envs)
    action_space = env.action_space(env_params)
    if isinstance(action_space, spaces.Discrete):
        return env, True, int(action_space.n), lambda action: action
    if not isinstance(action_space, spaces.Box):
        raise HystaxError("PPO supports Discrete and Box action spaces, not "
                          f"{type(action_space).__name__}")
    low = jnp.broadcast_to(jnp.asarray(action_space.low, jnp.float32), action_space.shape)
    high = jnp.broadcast_to(jnp.asarray(action_space.high, jnp.float32), action_space.shape)

    def to_env_action(action):
        return jnp.clip(action.reshape((-1, *action_space.shape)), low, high)

    return env, False, int(np.prod(action_space.shape)), to_env_action


def make_algorithm(config: Config, env, env_params) -> Algorithm:
    """PPO as ``init(key, hparams)`` / ``update(state)`` for one seed (recurrent PPO,
    :mod:`hystax.agents.recurrent_ppo`, when ``config.memory != "none"``)."""
    if config.memory != "none":
        from hystax.agents import recurrent_ppo
        return recurrent_ppo.make_algorithm(config, env, env_params)
    env, discrete, action_dim, to_env_action = prepare_env(config, env, env_params)
    network = ActorCritic(action_dim, discrete, config.hidden_sizes, config.activation)
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches

    def learning_rate(state):
        return annealed_lr(config, state)

    def init(key, hparams):
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        params = network.init(k_net, obs)
        opt_state = make_optimizer(hparams, hparams["lr"]).init(params)
        return TrainState(params, opt_state, env_state, obs, key,
                          jnp.zeros((), jnp.int32), hparams)

    def env_step(state: TrainState, _):
        key, k_act, k_env = jax.random.split(state.key, 3)
        policy_out, value = network.apply(state.params, state.obs)
        pi = policy_distribution(policy_out, discrete)
        action = pi.sample(seed=k_act)
        log_prob = pi.log_prob(action)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, state.env_state, to_env_action(action), env_params)
        done = jnp.logical_or(terminated, truncated)
        transition = Transition(
            state.obs, action, log_prob, value,
            reward.astype(jnp.float32) * state.hparams["reward_scale"],
            terminated.astype(jnp.float32), done.astype(jnp.float32),
            info["final_observation"],
            {k: info[k] for k in ("returned_episode", "returned_episode_returns",
                                  "returned_episode_lengths")})
        return state.replace(env_state=env_state, obs=obs, key=key), transition

    def loss_fn(params, batch: Transition, advantages, targets, *, hparams):
        policy_out, value = network.apply(params, batch.obs)
        return clipped_ppo_loss(policy_distribution(policy_out, discrete), value, batch,
                                advantages, targets, hparams)

    def update(state: TrainState):
        state, traj = jax.lax.scan(env_step, state, None, length=config.num_steps)
        hp = state.hparams
        _, final_values = network.apply(state.params, traj.final_obs)
        advantages, targets = gae_advantages(traj, final_values, hp["gamma"], hp["gae_lambda"])
        tx = make_optimizer(hp, learning_rate(state))
        flat = jax.tree.map(lambda x: x.reshape((batch_size, *x.shape[2:])),
                            (traj.replace(info={}), advantages, targets))

        def shuffled_minibatches(key):
            perm = jax.random.permutation(key, batch_size)
            return jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, minibatch_size, *x.shape[1:])),
                flat)

        (params, opt_state, key), stats = minibatch_epochs(
            state.params, state.opt_state, state.key, partial(loss_fn, hparams=hp), tx,
            config.update_epochs, shuffled_minibatches)
        state = state.replace(params=params, opt_state=opt_state, key=key,
                              update=state.update + 1)
        metrics = {"env_steps": state.update * batch_size, **episode_metrics(traj.info),
                   **jax.tree.map(jnp.mean, stats)}
        return state, metrics

    return Algorithm(init, update, config.num_updates, batch_size)


def make_train(config: Config, env, env_params):
    """``train(key, hparams=None) -> (final TrainState, metrics)``; metrics are ``[num_updates]``."""
    return make_train_from(make_algorithm(config, env, env_params), config)

