"""Dyna-DQN: real step → world-model update → planning updates on simulated transitions.

Each env step the agent acts ε-greedily, stores the real transition, lets the online world
model (:mod:`hystax.world_models.online`) learn from it, takes one DQN step on a real minibatch,
and — with a model — ``planning_steps`` more DQN steps on simulated transitions: start states
drawn from the real replay, uniform random actions, next state, reward and termination all
predicted by the model. The predicted terminal indicator, clipped to [0, 1], weighs the
bootstrap (a soft continuation, 1 - p): thresholding it at 0.5 made missed terminals look safe
and ruined planning on CartPole. ``model="none"`` is the model-free DQN baseline in the same
loop (double DQN, Polyak-averaged target network, Adam with global-norm clipping).

The first ``warmup_steps`` steps act at random with no updates; their transitions fit the
model's input and target scales and are then fed to the model in order. Each later step takes
``real_updates`` DQN steps on real replay (raise it for a model-free baseline with as many
updates as Dyna's 1 + ``planning_steps``); planning starts at env step ``planning_starts``.
Training runs as jitted chunks of ``chunk_steps`` env steps (seeds vmapped) under a tqdm bar.

>>> env, env_params = hystax.envs.make("CartPole-v1")
>>> result = train_dyna(env, env_params, DynaConfig(model="losse"), seeds=3)
>>> result.episode_returns, result.episode_ends   # per seed: [episodes] arrays

Under the one runner (``hystax.train("dyna", "Acrobot-v1", model="losse")``, ``hystax train
dyna``): the warm-up runs in ``init``; one update is ``steps_per_update`` env steps; the
model's retraining (``mlp-replay-reset``) is the runner's host hook between chunks; metrics,
checkpoints (replay and world model included) and resume are the runner's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces
from tqdm.auto import tqdm

from hystax.agents.actor import Actor
from hystax.agents.algorithm import Algorithm, make_train_from
from hystax.core.errors import require
from hystax.core.nn import MLP
from hystax.world_models.online import (
    ONLINE_MODELS,
    OnlineModelConfig,
    Replay,
    fit_scales,
    make_online_model,
)

__all__ = ["DYNA_MODELS", "Config", "DynaConfig", "DynaResult", "make_actor", "make_algorithm",
           "make_dyna", "make_train", "result_of", "train_dyna"]

DYNA_MODELS = ("none", *ONLINE_MODELS)


@dataclasses.dataclass(frozen=True)
class DynaConfig:
    """Dyna-DQN settings; ``model`` one of :data:`DYNA_MODELS` ("none": model-free DQN)."""

    model: str = "losse"
    total_steps: int = 20_000
    warmup_steps: int = 500
    planning_steps: int = 1
    planning_starts: int = 1000
    real_updates: int = 1
    batch_size: int = 64
    lr: float = 5e-4
    gamma: float = 0.99
    hidden: tuple[int, ...] = (64, 64)
    target_tau: float = 0.005
    double_q: bool = True
    max_grad_norm: float = 10.0
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 5_000
    chunk_steps: int = 1_000
    steps_per_update: int = 100  # the runner's update (hystax.train): this many env steps
    world_model: OnlineModelConfig = OnlineModelConfig()
    HPARAMS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        require(self.model in DYNA_MODELS,
                f"unknown Dyna model {self.model!r}; choose one of {', '.join(DYNA_MODELS)}")
        for name in ("total_steps", "warmup_steps", "batch_size", "chunk_steps",
                     "eps_decay_steps", "steps_per_update"):
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0,
                    f"Dyna {name} must be a positive integer, got {value!r}")
        for name in ("planning_steps", "planning_starts", "real_updates"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 0,
                    f"Dyna {name} must be an integer >= 0, got {value!r}")
        for name in ("lr", "target_tau", "max_grad_norm"):
            value = getattr(self, name)
            require(value > 0, f"Dyna {name} must be > 0, got {value!r}")
        require(0 <= self.eps_end <= 1 and 0 <= self.eps_start <= 1,
                f"Dyna eps_start and eps_end must be in [0, 1], got {self.eps_start}, "
                f"{self.eps_end}")
        require(self.warmup_steps < self.total_steps,
                f"Dyna warmup_steps ({self.warmup_steps}) must be below total_steps "
                f"({self.total_steps})")
        require(0.0 < self.gamma <= 1.0, f"Dyna gamma must be in (0, 1], got {self.gamma}")


@struct.dataclass
class DynaState:
    env_state: Any
    obs: jax.Array
    q_params: Any
    target_params: Any
    opt_state: Any
    model: Any
    replay: Replay
    step: jax.Array
    episode_return: jax.Array
    key: jax.Array
    step_returns: jax.Array  # [total_steps]: the return of an episode that ended at each step


class StepLog(NamedTuple):
    """Per env step: the return of an episode that ended here (NaN otherwise)."""

    episode_return: jax.Array


def _check_env(env, env_params):
    space = env.action_space(env_params)
    require(isinstance(space, spaces.Discrete),
            f"Dyna-DQN needs a discrete action space, got {type(space).__name__}")
    obs_shape = env.observation_space(env_params).shape
    require(len(obs_shape) == 1, f"Dyna-DQN needs flat observations, got shape {obs_shape}")
    return int(space.n), int(obs_shape[0])


def make_dyna(env, env_params, config: DynaConfig):
    """-> (init(key) -> DynaState, run_chunk(state, first_step, length) -> (state, StepLog
    [length]), retrain(state) -> state or None), pure; vmap them over seeds (``first_step``
    and the static ``length`` unbatched).

    ``init`` runs the random warm-up and prepares the model; ``retrain`` (models with a
    ``retrain`` hook) is due every ``world_model.reset_interval`` env steps between chunks.
    """
    num_actions, obs_dim = _check_env(env, env_params)
    input_dim, out_dim = obs_dim + num_actions, obs_dim + 2
    q_net = MLP(config.hidden, num_actions, activation="relu")
    optimiser = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr))
    model = None if config.model == "none" else make_online_model(config.model, input_dim,
                                                                  out_dim, config.world_model)
    capacity = config.total_steps  # every real transition

    def features(obs, action):
        return jnp.concatenate([obs, jax.nn.one_hot(action, num_actions)], axis=-1)

    def env_step(state: DynaState, action, key):
        """One real step with the pre-reset next obs; appends to the replay."""
        next_obs, env_state, reward, terminated, truncated, info = env.step(
            key, state.env_state, action, env_params)
        final = info["final_observation"]
        x = features(state.obs, action)
        y = jnp.concatenate([final - state.obs, reward[None], terminated[None].astype(jnp.float32)])
        replay = state.replay
        replay = Replay(replay.inputs.at[replay.size].set(x), replay.targets.at[replay.size].set(y),
                        replay.size + 1)
        done = terminated | truncated
        ret = state.episode_return + reward
        finished = jnp.where(done, ret, jnp.nan)
        state = state.replace(env_state=env_state, obs=next_obs, replay=replay,
                              step=state.step + 1, episode_return=jnp.where(done, 0.0, ret),
                              step_returns=state.step_returns.at[state.step].set(finished))
        return state, x, y, done, finished

    def q_update(state: DynaState, obs, action, reward, next_obs, terminal):
        def loss(params):
            q = q_net.apply(params, obs)
            q_taken = jnp.take_along_axis(q, action[:, None], axis=1)[:, 0]
            next_target = q_net.apply(state.target_params, next_obs)
            if config.double_q:  # the online net picks, the target net evaluates
                pick = jnp.argmax(q_net.apply(params, next_obs), -1)
                next_q = jnp.take_along_axis(next_target, pick[:, None], axis=1)[:, 0]
            else:
                next_q = next_target.max(-1)
            target = reward + config.gamma * (1.0 - terminal) * next_q
            return jnp.mean(optax.huber_loss(q_taken, jax.lax.stop_gradient(target)))

        grads = jax.grad(loss)(state.q_params)
        updates, opt_state = optimiser.update(grads, state.opt_state, state.q_params)
        q_params = optax.apply_updates(state.q_params, updates)
        target = optax.incremental_update(q_params, state.target_params, config.target_tau)
        return state.replace(q_params=q_params, target_params=target, opt_state=opt_state)

    def real_update(state: DynaState, key):
        rows = jax.random.randint(key, (config.batch_size,), 0, state.replay.size)
        x, y = state.replay.inputs[rows], state.replay.targets[rows]
        obs, action = x[:, :obs_dim], jnp.argmax(x[:, obs_dim:], -1)
        return q_update(state, obs, action, y[:, obs_dim], obs + y[:, :obs_dim], y[:, -1])

    def planning_update(state: DynaState, key):
        row_key, act_key = jax.random.split(key)
        rows = jax.random.randint(row_key, (config.batch_size,), 0, state.replay.size)
        obs = state.replay.inputs[rows, :obs_dim]
        action = jax.random.randint(act_key, (config.batch_size,), 0, num_actions)
        pred = model.predict(state.model, features(obs, action))
        terminal = jnp.clip(pred[:, -1], 0.0, 1.0)
        return q_update(state, obs, action, pred[:, obs_dim], obs + pred[:, :obs_dim], terminal)

    def epsilon(step):
        frac = jnp.clip(step / config.eps_decay_steps, 0.0, 1.0)
        return config.eps_start + frac * (config.eps_end - config.eps_start)

    def train_step(state: DynaState, step):
        """One env step; ``step`` (the same for every seed, so not batched under vmap) switches
        planning on with a real branch instead of vmap's select."""
        key, act_key, explore_key, step_key, model_key, real_key, plan_key = jax.random.split(
            state.key, 7)
        state = state.replace(key=key)
        greedy = jnp.argmax(q_net.apply(state.q_params, state.obs))
        explore = jax.random.uniform(explore_key) < epsilon(step)
        action = jnp.where(explore, jax.random.randint(act_key, (), 0, num_actions), greedy)
        state, x, y, _, finished = env_step(state, action, step_key)
        if model is not None:
            state = state.replace(model=model.observe(state.model, x, y, state.replay, model_key))
        state = jax.lax.fori_loop(
            0, config.real_updates,
            lambda i, s: real_update(s, jax.random.fold_in(real_key, i)), state)
        if model is not None and config.planning_steps:
            def plan(i, s):
                return planning_update(s, jax.random.fold_in(plan_key, i))

            state = jax.lax.cond(step >= config.planning_starts,
                                 lambda s: jax.lax.fori_loop(0, config.planning_steps, plan, s),
                                 lambda s: s, state)
        return state, StepLog(finished)

    def warmup_step(state: DynaState, _):
        key, act_key, step_key = jax.random.split(state.key, 3)
        action = jax.random.randint(act_key, (), 0, num_actions)
        state, _, _, _, finished = env_step(state.replace(key=key), action, step_key)
        return state, StepLog(finished)

    def init(key):
        env_key, q_key, model_key, key = jax.random.split(key, 4)
        obs, env_state = env.reset(env_key, env_params)
        q_params = q_net.init(q_key, jnp.zeros((1, obs_dim)))
        replay = Replay(jnp.zeros((capacity, input_dim)), jnp.zeros((capacity, out_dim)),
                        jnp.zeros((), jnp.int32))
        state = DynaState(env_state, obs, q_params, q_params, optimiser.init(q_params), None,
                          replay, jnp.zeros((), jnp.int32), jnp.zeros(()), key,
                          jnp.full(config.total_steps, jnp.nan))
        state, log = jax.lax.scan(warmup_step, state, None, config.warmup_steps)
        if model is not None:
            n = config.warmup_steps
            inputs, targets = state.replay.inputs[:n], state.replay.targets[:n]
            model_state = model.init(model_key, fit_scales(inputs, targets, obs_dim))

            def ingest(carry, _):
                m, i = carry
                view = state.replay._replace(size=i + 1)
                m = model.observe(m, inputs[i], targets[i], view, jax.random.fold_in(model_key, i))
                return (m, i + 1), None

            (model_state, _), _ = jax.lax.scan(ingest, (model_state, 0), None, n)
            state = state.replace(model=model_state)
        return state, log

    def run_chunk(state, first_step, length):
        """``length`` env steps from env step ``first_step`` (unbatched; ``length`` static)."""
        return jax.lax.scan(train_step, state, first_step + jnp.arange(length))

    def retrain(state):
        key, retrain_key = jax.random.split(state.key)
        return state.replace(model=model.retrain(state.model, state.replay, retrain_key), key=key)

    return init, run_chunk, (retrain if model is not None and model.retrain else None)


class DynaResult(NamedTuple):
    """Per seed: ``episode_returns`` and ``episode_ends`` (the env step each episode ended at,
    1-based) as lists of arrays; ``step_returns`` [seeds, total_steps] (NaN where no episode
    ended); ``world_model`` the final model states and ``state`` the final DynaState
    (seed-batched)."""

    episode_returns: list
    episode_ends: list
    step_returns: np.ndarray
    world_model: Any
    state: Any = None  # the final DynaState [seeds, ...] (train_dyna)


def train_dyna(env, env_params, config: DynaConfig, seeds: int = 3, seed: int = 0,
               progress: bool = True) -> DynaResult:
    """Train ``seeds`` Dyna-DQN agents (vmapped) for ``config.total_steps`` env steps each,
    seeds ``seed, seed + 1, ...`` keyed as the runner keys them (``PRNGKey(seed)``): the
    episodes equal ``hystax.train("dyna", ...)``'s, with no run folder."""
    require(isinstance(seeds, int) and seeds > 0, f"seeds must be a positive integer, got {seeds}")
    init, run_chunk, retrain = make_dyna(env, env_params, config)
    keys = jnp.stack([jax.random.PRNGKey(seed + s) for s in range(seeds)])  # as the runner's
    state, log = jax.jit(jax.vmap(init))(keys)
    logs = [np.asarray(log.episode_return)]
    chunk = jax.jit(jax.vmap(run_chunk, in_axes=(0, None, None)), static_argnums=2)
    retrain = retrain and jax.jit(jax.vmap(retrain))
    interval = config.world_model.reset_interval
    bounds = list(range(config.warmup_steps, config.total_steps, config.chunk_steps))
    for first in tqdm(bounds, desc=f"dyna {config.model}", disable=not progress):
        length = min(config.chunk_steps, config.total_steps - first)
        state, log = chunk(state, first, length)
        logs.append(np.asarray(log.episode_return))
        if retrain and (first + length) // interval > first // interval:
            state = retrain(state)
    return result_of(np.concatenate(logs, axis=1), state.model)._replace(state=state)


def result_of(step_returns, world_model=None) -> DynaResult:
    """A :class:`DynaResult` from ``step_returns`` [seeds, total_steps] (NaN where no episode
    ended; a runner state's ``step_returns``)."""
    step_returns = np.asarray(step_returns)
    ends = [np.nonzero(~np.isnan(row))[0] + 1 for row in step_returns]
    returns = [row[e - 1] for row, e in zip(step_returns, ends)]
    return DynaResult(returns, ends, step_returns, world_model)


Config = DynaConfig  # the runner's name for a family's config


def make_algorithm(config: DynaConfig, env, env_params) -> Algorithm:
    """Dyna-DQN for the runner: ``init`` runs the warm-up; update i plays env steps
    warmup + i K .. warmup + (i + 1) K - 1 (K = ``steps_per_update``) and reports env_steps,
    the mean return of the episodes that ended in them (NaN if none) and their count."""
    k = config.steps_per_update
    require((config.total_steps - config.warmup_steps) % k == 0,
            f"Dyna total_steps - warmup_steps ({config.total_steps - config.warmup_steps}) must "
            f"be a multiple of steps_per_update ({k})")
    init, run_chunk, retrain = make_dyna(env, env_params, config)

    def update(state, i):
        first = config.warmup_steps + i * k
        state, log = run_chunk(state, first, k)
        ended = ~jnp.isnan(log.episode_return)
        episodes = ended.sum()
        mean = jnp.where(episodes > 0, jnp.nansum(log.episode_return) / jnp.maximum(episodes, 1),
                         jnp.nan)
        return state, {"env_steps": first + k, "episode_return": mean, "episodes": episodes}

    batched = retrain and jax.jit(jax.vmap(retrain))
    interval = config.world_model.reset_interval

    def hook(state, before, after):  # retrain once the chunk crossed a reset boundary
        steps = [config.warmup_steps + u * k for u in (before, after)]
        return batched(state) if steps[1] // interval > steps[0] // interval else state

    return Algorithm(lambda key, hparams: init(key)[0], update,
                     (config.total_steps - config.warmup_steps) // k, k, indexed=True,
                     host_hook=hook if retrain else None,
                     chunk_updates=max(1, config.chunk_steps // k))


def make_train(config: DynaConfig, env, env_params):
    """``train(key) -> (final DynaState, metrics [updates])`` as one scan (not for models that
    retrain between chunks: use ``hystax.train``)."""
    return make_train_from(make_algorithm(config, env, env_params), config)


def make_actor(config: DynaConfig, env, env_params) -> Actor:
    """The Q-network's policy of a Dyna run (an :class:`~hystax.agents.actor.Actor`; no
    carry): greedy where ``deterministic``, else ε-greedy with the final ``eps_end``."""
    num_actions, _ = _check_env(env, env_params)
    q_net = MLP(config.hidden, num_actions, activation="relu")

    def act(params, obs, carry, start, key, deterministic=False):
        k_explore, k_action = jax.random.split(key)
        greedy = jnp.argmax(q_net.apply(params, obs), -1)
        batch = greedy.shape
        explore = jax.random.uniform(k_explore, batch) < config.eps_end
        random = jax.random.randint(k_action, batch, 0, num_actions)
        return jnp.where(jnp.logical_and(explore, ~jnp.asarray(deterministic)), random,
                         greedy), carry

    return Actor(env, lambda batch: None, act, lambda state: state.q_params)
