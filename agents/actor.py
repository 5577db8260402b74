"""How a trained agent acts: the :class:`Actor` each family builds, and one episode per env.

``family.make_actor(config, env, env_params)`` (PPO: :func:`hystax.agents.ppo.make_actor`,
Dyna: :func:`hystax.agents.dyna.make_actor`) gives the policy a run trained, apart from its
params, which the run's checkpoint holds (``actor.params_of(train_state)``). ``act`` is pure
and works on a batch of B envs; ``start`` marks the first step of an episode, where a memory
policy resets its carry inside the step, exactly as in training:

>>> actor = ppo.make_actor(config, env, env_params)
>>> carry = actor.init_carry(8)
>>> action, carry = actor.act(params, obs, carry, start, key)   # obs [8, obs_dim], start [8]

:func:`play_episodes` plays one episode in each of B envs with it (a ``lax.while_loop``, so
jit and vmap over seeds apply); :func:`play_steps` continues the same play (:func:`start_play`,
:func:`play_step`) as a scan of a fixed length that returns every step, for recording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from hystax.core.errors import HystaxError
from hystax.envs import BatchEnv

MAX_EPISODE_STEPS = 100_000  # play_episodes' default cap for envs without max_steps_in_episode


class Actor(NamedTuple):
    """A family's acting policy.

    env: the env as the agent saw it in training (its observation wrappers, e.g.
    ``PreviousActionReward``), one copy, not batched. init_carry: ``(batch) -> carry`` (None
    for a memoryless policy). act: ``(params, obs [B, ...], carry, start [B] bool, key,
    deterministic=False) -> (action [B, ...], carry)``, actions in the env's own space.
    params_of: one seed's train state -> the params ``act`` takes.
    """

    env: Any
    init_carry: Callable[[int], Any]
    act: Callable[..., tuple[jax.Array, Any]]
    params_of: Callable[[Any], Any]


class Episodes(NamedTuple):
    """Per env: the return and length of its first episode (``[B]``; an episode cut at
    ``max_steps`` counts with what it got by then)."""

    returns: jax.Array
    lengths: jax.Array


class Play(NamedTuple):
    """The state of B envs being played (``[B, ...]`` leaves): step ``t``, observations, env
    states, the policy's carry, ``start`` flags, whether each env's first episode is over
    (``done``), its return and length so far, and the key."""

    t: jax.Array
    obs: jax.Array
    env_state: Any
    carry: Any
    start: jax.Array
    done: jax.Array
    returns: jax.Array
    lengths: jax.Array
    key: jax.Array


def start_play(actor: Actor, env_params, key, num_envs: int) -> Play:
    """``num_envs`` envs freshly reset with ``key``, before their first step."""
    key, k_reset = jax.random.split(key)
    obs, env_state = BatchEnv(actor.env, num_envs).reset(k_reset, env_params)
    off = jnp.zeros((num_envs,), bool)
    return Play(jnp.int32(0), obs, env_state, actor.init_carry(num_envs), ~off, off,
                jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), jnp.int32), key)


def play_step(actor: Actor, params, env_params, deterministic, p: Play):
    """One step of every env: ``(next play, (env_state, obs, action, reward, ended))``, the
    record of the step taken from ``p``; an env past its first episode keeps playing but adds
    nothing to ``returns`` / ``lengths``."""
    key, k_act, k_env = jax.random.split(p.key, 3)
    action, carry = actor.act(params, p.obs, p.carry, p.start, k_act, deterministic)
    obs, env_state, reward, terminated, truncated, _ = BatchEnv(
        actor.env, p.done.shape[0]).step(k_env, p.env_state, action, env_params)
    ended = jnp.logical_or(terminated, truncated)
    playing = ~p.done
    record = (p.env_state, p.obs, action, reward, ended)
    return Play(p.t + 1, obs, env_state, carry, ended, p.done | ended,
                p.returns + jnp.where(playing, reward, 0.0).astype(jnp.float32),
                p.lengths + playing.astype(jnp.int32), key), record


def default_max_steps(env_params) -> int:
    """The env's ``max_steps_in_episode`` (episodes end by then), else ``MAX_EPISODE_STEPS``."""
    cap = getattr(env_params, "max_steps_in_episode", None)
    return int(min(cap, 2**31 - 1)) if cap is not None else MAX_EPISODE_STEPS


def play_episodes(actor: Actor, params, env_params, key, num_envs: int,
                  deterministic=False, max_steps: int | None = None) -> Episodes:
    """Play one episode in each of ``num_envs`` envs from fresh resets, stopping when all
    have ended (or after ``max_steps``, default :func:`default_max_steps`). Pure: jit it with
    ``num_envs``/``max_steps`` static, vmap it over seeds' ``params`` and keys."""
    max_steps = default_max_steps(env_params) if max_steps is None else max_steps

    def more(p: Play):
        return jnp.logical_and(~jnp.all(p.done), p.t < max_steps)

    last = jax.lax.while_loop(
        more, lambda p: play_step(actor, params, env_params, deterministic, p)[0],
        start_play(actor, env_params, key, num_envs))
    return Episodes(last.returns, last.lengths)


def play_steps(actor: Actor, params, env_params, play: Play, steps: int,
               deterministic=False, keep: int | None = None):
    """``steps`` more steps of ``play`` (from :func:`start_play`: the same keys give the same
    episodes as :func:`play_episodes`). Returns ``(play, record)``, ``record = (env_state,
    obs, action, reward, ended)`` with leaves ``[steps, keep, ...]``: the first ``keep``
    envs only (default all)."""
    def step(p, _):
        p, record = play_step(actor, params, env_params, deterministic, p)
        return p, jax.tree.map(lambda x: x[:keep], record)

    return jax.lax.scan(step, play, None, length=steps)


def space_signature(env, env_params) -> tuple:
    """What a policy's input and output depend on: ``(obs shape, action kind, action size)``."""
    obs_shape = tuple(env.observation_space(env_params).shape)
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return obs_shape, "Discrete", int(space.n)
    return obs_shape, type(space).__name__, tuple(getattr(space, "shape", ()))


def check_same_spaces(trained: tuple, env, env_params, label: str) -> None:
    """HystaxError unless ``env`` (as the actor wraps it) has the training env's spaces."""
    now = space_signature(env, env_params)
    if now != trained:
        parts = ([f"observation {now[0]} vs {trained[0]}"] if now[0] != trained[0] else []) + (
            [f"action {now[1]}({now[2]}) vs {trained[1]}({trained[2]})"]
            if now[1:] != trained[1:] else [])
        raise HystaxError(f"the spaces of {label} (as the agent sees it) differ from the training "
                          f"env's: {', '.join(parts)}; the trained policy cannot act there")
