"""Model-predictive control over action sequences for any world model with
``predict(params, obs, action) -> next_obs``.

A planner scores action sequences [H, m] by rolling them out through ``predict`` (``lax.scan``
over the horizon, ``jax.vmap`` over candidates) and summing a known ``reward_fn(obs, action,
next_obs)`` on the *predicted* states (stopping where ``termination_fn`` says a predicted state
is terminal). ``predict`` is called on one obs [n] and one action [m] (batched by ``vmap``);
``params`` is any pytree (a learned model's weights, or a task's EnvParams for an oracle).

- :func:`cem_plan`: the cross-entropy method; a diagonal Gaussian over the [H, m] sequence,
  ``num_samples`` candidates clipped to the action bounds, refit to the top ``num_elites``
  (smoothed by ``alpha``), ``iterations`` rounds; warm start from the shifted previous mean.
- :func:`random_shooting_plan`: the best of ``num_samples * iterations`` uniform sequences (the
  same number of model rollouts as CEM).
- :func:`plan_batch`: either planner for E envs at once (obs [E, n], keys [E], means [E, H, m]).
- :func:`mpc_episode`: a closed-loop episode in a gymnax env with warm-started plans.

>>> config = MPCConfig(horizon=25, action_low=-2.0, action_high=2.0)
>>> mean = initial_mean(config, act_dim=1)
>>> action, mean, info = cem_plan(predict, params, reward_fn, obs, key, mean, config)
>>> ret, rollout = mpc_episode(env, env_params, predict, params, reward_fn, key, 200, config)

Oracle MPC (the true dynamics as the model) for a :class:`~hystax.envs.continual_suites.TaskSequence`::

    seq = suite("pendulum-gravity")
    cfg = MPCConfig(action_low=seq.action_low, action_high=seq.action_high)
    ret, _ = mpc_episode(seq.env, seq.params[0], seq.true_predict, seq.params[0], seq.reward_fn,
                         key, 200, cfg, termination_fn=seq.termination_fn,
                         quantize=seq.quantize, to_env_action=seq.env_action)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from hystax.core.errors import HystaxError, is_int, require, unknown_name
from hystax.envs.continual_suites import Rollout

__all__ = [
    "PLANNERS",
    "MPCConfig",
    "PlanInfo",
    "cem_plan",
    "initial_mean",
    "mpc_episode",
    "plan_batch",
    "random_shooting_plan",
    "sequence_returns",
    "shift_mean",
]

Predict = Callable[[Any, jax.Array, jax.Array], jax.Array]
RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]



def _bound(value, name: str) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise HystaxError(f"MPCConfig: {name} must be a float or a sequence of floats, got {value!r}") from None
    require(arr.ndim <= 1 and arr.size >= 1,
            f"MPCConfig: {name} must be a float or a flat sequence of floats, got shape {arr.shape}")
    require(bool(np.all(np.isfinite(arr))), f"MPCConfig: {name} must be finite, got {value!r}")
    return tuple(float(x) for x in arr.ravel())


@dataclasses.dataclass(frozen=True)
class MPCConfig:
    """Planner settings (validated on construction; HystaxError names a bad field).

    Fields:
      horizon: H, the planned sequence length.
      num_samples: candidate sequences per CEM iteration.
      num_elites: the best candidates that refit the Gaussian (<= num_samples).
      iterations: CEM rounds (random shooting draws ``num_samples * iterations`` sequences).
      sigma0: initial std in units of the half-width of the action bounds
        (std = sigma0 * (high - low) / 2 per dimension).
      alpha: smoothing, the weight kept on the old mean/std at each refit
        (new = alpha * old + (1 - alpha) * elite statistic); 0 = plain CEM.
      action_low, action_high: action bounds; a float, or one float per action dimension
        (stored as tuples). Candidates are clipped to them.
      shift_fill: how the warm start fills the last step after shifting the mean by one:
        "last" (repeat the last step) or "zero" (the zero action, clipped to the bounds).
    """

    horizon: int = 25
    num_samples: int = 500
    num_elites: int = 50
    iterations: int = 5
    sigma0: float = 1.0
    alpha: float = 0.1
    action_low: float | tuple[float, ...] = -1.0
    action_high: float | tuple[float, ...] = 1.0
    shift_fill: str = "last"

    def __post_init__(self):
        for name in ("horizon", "num_samples", "num_elites", "iterations"):
            value = getattr(self, name)
            require(is_int(value), f"MPCConfig: {name} must be an int, got {value!r}")
            require(value > 0, f"MPCConfig: {name} must be positive, got {value}")
        require(self.num_elites <= self.num_samples,
                f"MPCConfig: num_elites ({self.num_elites}) must be at most num_samples ({self.num_samples})")
        require(isinstance(self.sigma0, (int, float)) and np.isfinite(self.sigma0) and self.sigma0 > 0,
                f"MPCConfig: sigma0 must be a positive float, got {self.sigma0!r}")
        require(isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha < 1.0,
                f"MPCConfig: alpha must be in [0, 1) (the weight kept on the old mean), got {self.alpha!r}")
        low, high = _bound(self.action_low, "action_low"), _bound(self.action_high, "action_high")
        require(len(low) == len(high) or 1 in (len(low), len(high)),
                f"MPCConfig: action_low has {len(low)} dims but action_high has {len(high)}")
        lo, hi = np.broadcast_arrays(np.asarray(low), np.asarray(high))
        require(bool(np.all(lo < hi)), f"MPCConfig: need action_low < action_high in every "
                f"dimension, got {low} and {high}")
        require(self.shift_fill in ("last", "zero"),
                f"MPCConfig: shift_fill must be 'last' or 'zero', got {self.shift_fill!r}")
        object.__setattr__(self, "action_low", low)
        object.__setattr__(self, "action_high", high)
        object.__setattr__(self, "sigma0", float(self.sigma0))
        object.__setattr__(self, "alpha", float(self.alpha))

    def bounds(self, act_dim: int) -> tuple[jax.Array, jax.Array]:
        """(low [m], high [m]) for ``act_dim`` = m action dimensions."""
        for name, b in (("action_low", self.action_low), ("action_high", self.action_high)):
            require(len(b) in (1, act_dim), f"MPCConfig: {name} has {len(b)} dims but the action "
                    f"has {act_dim}")
        dtype = jnp.result_type(float)
        return (jnp.broadcast_to(jnp.asarray(self.action_low, dtype), (act_dim,)),
                jnp.broadcast_to(jnp.asarray(self.action_high, dtype), (act_dim,)))


class PlanInfo(NamedTuple):
    """What a planner found. mean, std: [H, m] the final sampling distribution (before the
    warm-start shift; std is the uniform's for random shooting); best_actions [H, m] and
    best_return []: the best candidate seen; elite_returns [iterations]: the mean predicted
    return of each iteration's elites."""

    mean: jax.Array
    std: jax.Array
    best_actions: jax.Array
    best_return: jax.Array
    elite_returns: jax.Array


def initial_mean(config: MPCConfig, act_dim: int) -> jax.Array:
    """The cold-start mean [H, m]: the centre of the action bounds at every step."""
    require(is_int(act_dim) and act_dim > 0,
            f"initial_mean: act_dim must be a positive int, got {act_dim!r}")
    low, high = config.bounds(act_dim)
    return jnp.broadcast_to((low + high) / 2, (config.horizon, act_dim))


def shift_mean(mean: jax.Array, config: MPCConfig) -> jax.Array:
    """The warm start for the next step: ``mean`` [..., H, m] shifted one step earlier, the last
    step filled per ``config.shift_fill`` ("last": repeated; "zero": zero clipped to bounds)."""
    if config.shift_fill == "last":
        fill = mean[..., -1:, :]
    else:
        low, high = config.bounds(mean.shape[-1])
        fill = jnp.broadcast_to(jnp.clip(0.0, low, high), mean[..., -1:, :].shape).astype(mean.dtype)
    return jnp.concatenate([mean[..., 1:, :], fill], axis=-2)


def sequence_returns(predict: Predict, params, reward_fn: RewardFn, obs: jax.Array,
                     actions: jax.Array, termination_fn=None) -> jax.Array:
    """Predicted returns [N] of action sequences ``actions`` [N, H, m] from ``obs`` [n].

    Rewards after a step that ``termination_fn(obs, action, next_obs)`` marks terminal are not
    counted (the terminal step's own reward is). Non-finite returns become -inf.
    """

    def one(seq):
        def step(carry, action):
            o, alive, total = carry
            nxt = predict(params, o, action)
            r = reward_fn(o, action, nxt)
            total = total + alive * r
            if termination_fn is not None:
                alive = alive * (1.0 - termination_fn(o, action, nxt).astype(alive.dtype))
            return (nxt, alive, total), None

        dtype = jnp.result_type(float)
        (_, _, total), _ = jax.lax.scan(step, (obs, jnp.ones((), dtype), jnp.zeros((), dtype)), seq)
        return total

    returns = jax.vmap(one)(actions)
    return jnp.where(jnp.isfinite(returns), returns, -jnp.inf)


def _check_mean(init_mean, config: MPCConfig, who: str) -> int:
    shape = jnp.shape(init_mean)
    require(len(shape) == 2 and shape[0] == config.horizon,
            f"{who}: init_mean must be [horizon={config.horizon}, act_dim], got shape {shape}")
    return shape[1]


def cem_plan(predict: Predict, params, reward_fn: RewardFn, obs: jax.Array, key: jax.Array,
             init_mean: jax.Array, config: MPCConfig, *, termination_fn=None
             ) -> tuple[jax.Array, jax.Array, PlanInfo]:
    """Plan by the cross-entropy method from ``obs`` [n].

    Each of ``config.iterations`` rounds samples ``num_samples`` sequences from
    N(mean, diag(std^2)) clipped to the bounds, scores them with :func:`sequence_returns`, and
    refits mean and std to the top ``num_elites`` (smoothed by ``alpha``). The std starts at
    ``sigma0 * (high - low) / 2``, the mean at ``init_mean`` [H, m].

    Returns:
      ``(action [m], next_mean [H, m], info)``: the first step of the final mean (clipped);
      the final mean shifted by one step (pass it as the next call's ``init_mean``); and
      :class:`PlanInfo`. Pure and jit-able (``predict``, ``reward_fn`` and ``config`` static).
    """
    act_dim = _check_mean(init_mean, config, "cem_plan")
    low, high = config.bounds(act_dim)
    mean0 = jnp.clip(jnp.asarray(init_mean, low.dtype), low, high)
    std0 = jnp.broadcast_to(config.sigma0 * (high - low) / 2, mean0.shape)
    k, alpha = config.num_elites, config.alpha

    def iteration(carry, key):
        mean, std, best_actions, best_return = carry
        noise = jax.random.normal(key, (config.num_samples, *mean.shape), mean.dtype)
        samples = jnp.clip(mean + std * noise, low, high)
        returns = sequence_returns(predict, params, reward_fn, obs, samples, termination_fn)
        top, idx = jax.lax.top_k(returns, k)
        elites = samples[idx]
        new_mean = alpha * mean + (1 - alpha) * elites.mean(axis=0)
        new_std = alpha * std + (1 - alpha) * elites.std(axis=0)
        better = top[0] > best_return
        best_actions = jnp.where(better, elites[0], best_actions)
        best_return = jnp.where(better, top[0], best_return)
        return (new_mean, new_std, best_actions, best_return), top.mean()

    init = (mean0, std0, mean0, jnp.asarray(-jnp.inf, mean0.dtype))
    (mean, std, best_actions, best_return), elite_returns = jax.lax.scan(
        iteration, init, jax.random.split(key, config.iterations))
    info = PlanInfo(mean, std, best_actions, best_return, elite_returns)
    return jnp.clip(mean[0], low, high), shift_mean(mean, config), info


def random_shooting_plan(predict: Predict, params, reward_fn: RewardFn, obs: jax.Array,
                         key: jax.Array, init_mean: jax.Array, config: MPCConfig, *,
                         termination_fn=None) -> tuple[jax.Array, jax.Array, PlanInfo]:
    """Plan by random shooting: the best of ``num_samples * iterations`` sequences drawn
    uniformly from the bounds (as many model rollouts as :func:`cem_plan`).

    ``init_mean`` only fixes the shape [H, m] (it is not a candidate). Returns
    ``(action [m], shifted best sequence [H, m], info)`` like :func:`cem_plan`.
    """
    act_dim = _check_mean(init_mean, config, "random_shooting_plan")
    low, high = config.bounds(act_dim)
    shape = (config.iterations, config.num_samples, config.horizon, act_dim)
    samples = jax.random.uniform(key, shape, low.dtype, minval=low, maxval=high)

    def score(batch):  # one iteration's worth at a time: the same peak memory as CEM
        return sequence_returns(predict, params, reward_fn, obs, batch, termination_fn)

    returns = jax.lax.map(score, samples)  # [iterations, num_samples]
    flat_returns, flat_samples = returns.reshape(-1), samples.reshape(-1, config.horizon, act_dim)
    best = jnp.argmax(flat_returns)
    best_actions = flat_samples[best]
    elite_returns = jax.lax.top_k(returns, config.num_elites)[0].mean(axis=-1)
    std = jnp.broadcast_to((high - low) / jnp.sqrt(12.0), best_actions.shape)
    info = PlanInfo(best_actions, std, best_actions, flat_returns[best], elite_returns)
    return best_actions[0], shift_mean(best_actions, config), info


PLANNERS: dict[str, Callable] = {"cem": cem_plan, "random": random_shooting_plan}
"""Planner name -> function with the :func:`cem_plan` signature."""


def _planner(method: str) -> Callable:
    if method not in PLANNERS:
        raise unknown_name("planner", str(method), PLANNERS)
    return PLANNERS[method]


def plan_batch(predict: Predict, params, reward_fn: RewardFn, obs: jax.Array, keys: jax.Array,
               init_means: jax.Array, config: MPCConfig, *, method: str = "cem",
               params_axis: int | None = None, termination_fn=None
               ) -> tuple[jax.Array, jax.Array, PlanInfo]:
    """Plan for E envs at once: obs [E, n], keys [E], init_means [E, H, m] -> actions [E, m],
    next means [E, H, m], :class:`PlanInfo` with a leading [E] axis.

    ``params`` is shared by all envs (``params_axis=None``) or has a leading [E] axis on every
    leaf (``params_axis=0``, e.g. one model per task). Equal to one planner call per env with
    the same key (it is ``jax.vmap`` of it).
    """
    plan = _planner(method)
    require(params_axis in (None, 0), f"plan_batch: params_axis must be None or 0, got {params_axis!r}")
    require(jnp.ndim(init_means) == 3, f"plan_batch: init_means must be [E, H, m], got shape "
            f"{jnp.shape(init_means)}")
    num_envs = jnp.shape(init_means)[0]
    require(jnp.shape(obs)[:1] == (num_envs,) and jnp.shape(keys)[:1] == (num_envs,),
            f"plan_batch: obs {jnp.shape(obs)}, keys {jnp.shape(keys)} and init_means "
            f"{jnp.shape(init_means)} must share the leading env axis")

    def one(p, o, k, m):
        return plan(predict, p, reward_fn, o, k, m, config, termination_fn=termination_fn)

    return jax.vmap(one, in_axes=(params_axis, 0, 0, 0))(params, obs, keys, init_means)


def _act_dim(env, env_params, to_env_action) -> int:
    space = env.action_space(env_params)
    if isinstance(space, spaces.Box):
        require(len(space.shape) == 1, f"mpc_episode: need a flat Box action space, got shape {space.shape}")
        return int(space.shape[0])
    require(to_env_action is not None,
            f"mpc_episode: the env's action space is {type(space).__name__}, so pass to_env_action "
            "(box action -> env action; e.g. TaskSequence.env_action) and quantize")
    return 1


@functools.lru_cache(maxsize=32)
def _episode_runner(env, predict, reward_fn, termination_fn, steps, config, method, quantize,
                    to_env_action, act_dim):
    plan = _planner(method)
    quantize = quantize or (lambda a: a)
    to_env_action = to_env_action or (lambda a: a)

    def plan_predict(p, o, a):
        return predict(p, o, quantize(a))

    def plan_reward(o, a, n):
        return reward_fn(o, quantize(a), n)

    plan_done = None if termination_fn is None else (lambda o, a, n: termination_fn(o, quantize(a), n))

    def run(params, env_params, key):  # (arrays built here: the cache may be filled under a trace)
        mean0 = initial_mean(config, act_dim)
        key, reset_key = jax.random.split(key)
        obs0, state0 = env.reset(reset_key, env_params)

        def body(carry, key):
            obs, state, mean = carry
            plan_key, step_key = jax.random.split(key)
            action, next_mean, _ = plan(plan_predict, params, plan_reward, obs, plan_key, mean,
                                        config, termination_fn=plan_done)
            action = quantize(action)
            next_obs, next_state, reward, terminated, truncated, info = env.step(
                step_key, state, to_env_action(action), env_params)
            done = terminated | truncated
            next_mean = jnp.where(done, mean0, next_mean)  # a new episode plans from scratch
            out = Rollout(obs, action, info["final_observation"],
                          reward.astype(jnp.result_type(float)), done, jnp.asarray(terminated, bool))
            return (next_obs, next_state, next_mean), out

        _, rollout = jax.lax.scan(body, (obs0, state0, mean0), jax.random.split(key, steps))
        # the return of the first episode only: an auto-reset env keeps paying after a fall
        alive = jnp.cumprod(1.0 - jnp.concatenate([jnp.zeros(1), rollout.done[:-1].astype(float)]))
        return jnp.sum(rollout.reward * alive), rollout

    return jax.jit(run)


def mpc_episode(env, env_params, predict: Predict, params, reward_fn: RewardFn, key: jax.Array,
                steps: int, config: MPCConfig, *, termination_fn=None, method: str = "cem",
                quantize: Callable | None = None, to_env_action: Callable | None = None
                ) -> tuple[jax.Array, Rollout]:
    """Run ``steps`` closed-loop MPC steps in ``env`` (gymnax API, auto-reset) from a reset.

    Each step plans with ``method`` ("cem" or "random") from the current obs through
    ``predict(params, ., .)`` and warm-starts the next plan from the shifted mean (a cold start
    after an episode ends). ``quantize`` (box action -> the box action the env and model really
    get; default identity) is applied inside planning too, and ``to_env_action`` maps it to
    the env's action (default identity; needed for Discrete envs: use a TaskSequence's
    ``quantize`` / ``env_action``).

    Returns:
      ``(total_reward, rollout)``: the sum of the env's rewards up to the end of the first
      episode (all ``steps`` when no episode ends before; after a fall an auto-reset env would
      go on paying, as gymnax CartPole does) and the
      :class:`~hystax.envs.continual_suites.Rollout` of the transitions (action = quantized box action).

    Compiled once per (env, predict, reward_fn, termination_fn, steps, config, method,
    quantize, to_env_action); pass the same function objects to reuse it.
    """
    require(is_int(steps) and steps > 0, f"mpc_episode: steps must be a positive int, got {steps!r}")
    require(callable(reward_fn), "mpc_episode: a reward_fn(obs, action, next_obs) is needed to "
            "plan (this suite has none: pass reward_fn= to task_sequence)")
    require(isinstance(config, MPCConfig), f"mpc_episode: config must be an MPCConfig, got {type(config).__name__}")
    _planner(method)
    act_dim = _act_dim(env, env_params, to_env_action)
    runner = _episode_runner(env, predict, reward_fn, termination_fn, int(steps), config, method,
                             quantize, to_env_action, act_dim)
    return runner(params, env_params, key)
