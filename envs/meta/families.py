"""The registered meta-RL families: task samplers with held-out test tails, and
:data:`FAMILIES`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments.classic_control.cartpole import CartPole
from gymnax.environments.classic_control.cartpole import EnvParams as CartPoleParams
from gymnax.environments.classic_control.pendulum import EnvParams as PendulumParams
from gymnax.environments.classic_control.pendulum import Pendulum

from hystax.core.errors import is_int, require
from hystax.envs.meta.bandit_family import BanditFamily
from hystax.envs.meta.bandit_samplers import (
    LSD_CAP,
    LSD_KINDS,
    check_kinds,
    sample_dlb_problem,
    sample_lsd_problem,
)
from hystax.envs.meta.k_armed_bandit import BanditParams, KArmedBandit
from hystax.envs.meta.meta_env import DEFAULT_NUM_TASKS, MetaEnv, SampleParams

__all__ = ["BANDIT_BAD_RANGE", "BANDIT_GOOD_RANGE", "CARTPOLE_RANGES", "FAMILIES",
           "PENDULUM_RANGES", "TAIL", "bandit_family", "cartpole_family",
           "cartpole_same_start_family", "dlb_family", "lsd_family", "pendulum_family",
           "register_all", "split_uniform"]

TAIL = 0.2
"""Fraction of each parameter range held out at each end for the test split."""


def split_uniform(key: jax.Array, low: Any, high: Any, split: jax.Array) -> jax.Array:
    """float32 uniform on the middle ``1 - 2 TAIL`` of ``[low, high]`` (``split`` 0, train) or
    on its two outer ``TAIL`` fractions (``split`` 1, test); the two sets are disjoint.
    ``low``/``high``: floats or arrays [P] (one draw per entry, one random call in all)."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    width = TAIL * (high - low)
    u = jax.random.uniform(key, low.shape, jnp.float32)
    train = low + width + u * (high - low - 2 * width)
    tails = low + 2 * width * u
    test = jnp.where(tails < low + width, tails, tails + high - low - 2 * width)
    return jnp.where(split == 1, test, train)


CARTPOLE_RANGES = {"length": (0.25, 1.0), "masspole": (0.05, 0.5), "masscart": (0.5, 2.0),
                   "force_mag": (5.0, 15.0)}
PENDULUM_RANGES = {"m": (0.5, 1.5), "l": (0.5, 1.5), "g": (8.0, 12.0)}
BANDIT_GOOD_RANGE = (0.5, 1.0)
BANDIT_BAD_RANGE = (0.0, 0.4)


def _sample_ranges(key: jax.Array, ranges: dict[str, tuple[float, float]], split) -> dict:
    """{name: float32 scalar} drawn by :func:`split_uniform` from each range."""
    low, high = zip(*ranges.values())
    values = split_uniform(key, low, high, split)
    return {name: values[i] for i, name in enumerate(ranges)}


def _sample_cartpole(trial_steps: int) -> SampleParams:
    base = CartPoleParams(max_steps_in_episode=trial_steps)

    def sample(key, split):
        v = _sample_ranges(key, CARTPOLE_RANGES, split)
        return base.replace(**v, total_mass=v["masscart"] + v["masspole"],
                            polemass_length=v["masspole"] * v["length"])
    return sample


def _sample_pendulum(trial_steps: int) -> SampleParams:
    base = PendulumParams(max_steps_in_episode=trial_steps)

    def sample(key, split):
        return base.replace(**_sample_ranges(key, PENDULUM_RANGES, split))
    return sample


def _sample_bandit(num_arms: int, pulls_per_trial: int) -> SampleParams:
    def sample(key, split):
        arm_key, good_key = jax.random.split(key)
        u = jax.random.uniform(arm_key, (num_arms + 1,), jnp.float32)
        good_arm = jnp.minimum(jnp.floor(u[0] * num_arms), num_arms - 1).astype(jnp.int32)
        bad = BANDIT_BAD_RANGE[0] + u[1:] * (BANDIT_BAD_RANGE[1] - BANDIT_BAD_RANGE[0])
        good = split_uniform(good_key, *BANDIT_GOOD_RANGE, split)
        probs = jnp.where(jnp.arange(num_arms) == good_arm, good, bad)
        return BanditParams(probs=probs, max_steps_in_episode=pulls_per_trial)
    return sample


def cartpole_family(*, split: str = "train", num_trials: int = 4, trial_steps: int = 200,
                    obs_dim: int | None = None, same_start: bool = False,
                    num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0,
                    name: str = "meta/CartPole") -> MetaEnv:
    """``meta/CartPole``: gymnax CartPole-v1 with random pole length, pole/cart mass and force
    (``CARTPOLE_RANGES``; test split from the held-out tails) and a random orthogonal
    projection of the 4-d observation; ``num_trials`` trials of at most ``trial_steps``."""
    require(is_int(trial_steps) and trial_steps >= 1,
            f"meta/CartPole: trial_steps must be a positive int, got {trial_steps!r}")
    return MetaEnv(CartPole(), _sample_cartpole(int(trial_steps)), num_trials=num_trials,
                   project_obs=True, project_actions=False, obs_dim=obs_dim, split=split,
                   num_tasks=num_tasks, same_start=same_start, seed=seed, name=name)


def cartpole_same_start_family(*, split: str = "train", num_trials: int = 16,
                               trial_steps: int = 200, obs_dim: int | None = None,
                               num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0) -> MetaEnv:
    """``meta/CartPole-SameStart``: ``meta/CartPole`` with 16 trials that all start from the
    meta-reset's state (popjaxrl's meta-CartPole setting), so what one trial teaches about
    the task replays in the next."""
    return cartpole_family(split=split, num_trials=num_trials, trial_steps=trial_steps,
                           obs_dim=obs_dim, same_start=True, num_tasks=num_tasks, seed=seed,
                           name="meta/CartPole-SameStart")


def pendulum_family(*, split: str = "train", num_trials: int = 4, trial_steps: int = 200,
                    obs_dim: int | None = None, same_start: bool = False,
                    num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0) -> MetaEnv:
    """``meta/Pendulum``: gymnax Pendulum-v1 with random mass, length and gravity
    (``PENDULUM_RANGES``) and random orthogonal projections of observations and actions."""
    require(is_int(trial_steps) and trial_steps >= 1,
            f"meta/Pendulum: trial_steps must be a positive int, got {trial_steps!r}")
    return MetaEnv(Pendulum(), _sample_pendulum(int(trial_steps)), num_trials=num_trials,
                   project_obs=True, project_actions=True, obs_dim=obs_dim, split=split,
                   num_tasks=num_tasks, same_start=same_start, seed=seed, name="meta/Pendulum")


def bandit_family(*, split: str = "train", num_arms: int = 5, num_trials: int = 20,
                  pulls_per_trial: int = 1, num_tasks: int = DEFAULT_NUM_TASKS,
                  seed: int = 0) -> MetaEnv:
    """``meta/BernoulliBandit``: a ``num_arms``-armed Bernoulli bandit with one good arm
    (probability from ``BANDIT_GOOD_RANGE``, test split from its tails) and bad arms from
    ``BANDIT_BAD_RANGE``; a trial is ``pulls_per_trial`` pulls (default one, as in RL²)."""
    require(is_int(pulls_per_trial) and pulls_per_trial >= 1,
            f"meta/BernoulliBandit: pulls_per_trial must be a positive int, "
            f"got {pulls_per_trial!r}")
    bandit = KArmedBandit(num_arms)
    return MetaEnv(bandit, _sample_bandit(bandit.num_arms, int(pulls_per_trial)),
                   num_trials=num_trials, project_obs=False, project_actions=False,
                   split=split, num_tasks=num_tasks, seed=seed, name="meta/BernoulliBandit")


def dlb_family(*, split: str = "train", horizon: int = 1000,
               num_tasks: int = DEFAULT_NUM_TASKS, seed: int = 0) -> BanditFamily:
    """``meta/DLB``: a new stable dynamical linear bandit every episode (n = m = d = 3, the 6
    budget arms; :func:`~hystax.envs.meta.bandit_samplers.sample_dlb_problem`), ``horizon``
    rounds; the observation is the previous arm, the previous reward and t / T."""
    return BanditFamily(sample_dlb_problem, num_arms=6, horizon=horizon, observe_time=True,
                        split=split, num_tasks=num_tasks, seed=seed, name="meta/DLB")


def lsd_family(*, split: str = "train", horizon: int = 1000, num_arms: int = 4,
               cap: int = LSD_CAP, kinds: tuple[str, ...] = LSD_KINDS,
               observe_arm: bool = True, num_tasks: int = DEFAULT_NUM_TASKS,
               seed: int = 0) -> BanditFamily:
    """``meta/LSD``: a new random monotone LSD problem every episode (``num_arms`` arms, caps
    up to ``cap``, the ``recharging`` and ``lsd`` kinds, Bernoulli rewards;
    :func:`~hystax.envs.meta.bandit_samplers.sample_lsd_problem`), ``horizon`` rounds. The
    agent sees only its previous arm and reward (``observe_arm=False``: the reward alone):
    the arms' states are hidden."""
    require(is_int(num_arms) and num_arms >= 1,
            f"meta/LSD: num_arms must be a positive int, got {num_arms!r}")
    require(is_int(cap) and cap >= 2, f"meta/LSD: cap must be an int >= 2, got {cap!r}")
    sample = functools.partial(sample_lsd_problem, num_arms=int(num_arms), cap=int(cap),
                               kinds=check_kinds(kinds))
    return BanditFamily(sample, num_arms=int(num_arms), horizon=horizon, observe_time=False,
                        observe_arm=observe_arm, reward_bounds=(0.0, 1.0), split=split, num_tasks=num_tasks, seed=seed,
                        name="meta/LSD")


FAMILIES: dict[str, Callable[..., MetaEnv | BanditFamily]] = {
    "meta/CartPole": cartpole_family,
    "meta/CartPole-SameStart": cartpole_same_start_family,
    "meta/Pendulum": pendulum_family,
    "meta/BernoulliBandit": bandit_family,
    "meta/DLB": dlb_family,
    "meta/LSD": lsd_family,
}


def register_all() -> None:
    """Register the :data:`FAMILIES` (``meta/CartPole``, ``meta/CartPole-SameStart``,
    ``meta/Pendulum``, ``meta/BernoulliBandit``, ``meta/DLB``, ``meta/LSD``); idempotent."""
    from hystax.envs.registry import is_registered, register
    for name, factory in FAMILIES.items():
        if not is_registered(name):
            register(name, factory)
