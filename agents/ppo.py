"""The PPO family: its ``Config``, the tuned presets, and the choice of training loop.

``config.memory.model == "none"`` (the default) trains the MLP actor-critic of
:mod:`hystax.agents.ff_ppo`; a memory model ("s5", "lru", "s6", "gru", "mingru", ...) the
recurrent PPO of :mod:`hystax.agents.recurrent_ppo`. Both are built from
:mod:`hystax.agents.ppo_parts`.

``make_train(config, env, env_params)`` gives a pure ``train(key, hparams=None)`` that runs
the whole training as one ``lax.scan``; ``jax.jit(jax.vmap(train))(keys)`` trains several
seeds at once, and ``jax.vmap(train, in_axes=(None, 0))(key, {"lr": lrs})`` a population
of learning rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hystax.agents import ff_ppo, recurrent_ppo
from hystax.agents.actor import Actor
from hystax.agents.algorithm import (
    MAX_TIMESTEPS,
    Algorithm,
    check_field_types,
    make_train_from,
    replace_config,
)
from hystax.agents.memory import MODELS, NO_MEMORY, MemoryConfig
from hystax.core.errors import HystaxError, require
from hystax.core.nn import ACTIVATIONS


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
    memory: MemoryConfig = MemoryConfig(NO_MEMORY)  # also "s5" etc., or a dict of its fields
    # ssm_lr_scale is a memory setting kept here: the HPARAMS are numbers that may be vmapped
    # (populations, sweeps), and a nested config's fields are not
    ssm_lr_scale: float = 30.0  # learning rate of S5/S4D's Λ, B, log Δ relative to lr

    HPARAMS: ClassVar[tuple[str, ...]] = (
        "lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm",
        "reward_scale", "ssm_lr_scale")

    def __post_init__(self):
        check_field_types(self)
        if isinstance(self.memory, str):  # a model name: its default settings
            object.__setattr__(self, "memory", MemoryConfig(self.memory))
        elif isinstance(self.memory, Mapping):  # from config.json
            object.__setattr__(self, "memory", replace_config(MemoryConfig(), self.memory))
        elif not isinstance(self.memory, MemoryConfig):
            raise HystaxError(f"memory must be a memory model name ({', '.join(MODELS)} or "
                              f"none), a MemoryConfig or a dict, got {self.memory!r}")
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs",
                     "num_minibatches"):
            value = getattr(self, name)
            require(float(value).is_integer() and value > 0,
                    f"{name} must be a positive integer, got {value}")
            object.__setattr__(self, name, int(value))  # 1e6 from Python or JSON -> 1000000
        require(self.total_timesteps <= MAX_TIMESTEPS,
                f"total_timesteps must be at most 2**31 - 1 = {MAX_TIMESTEPS:,} (int32 step "
                f"counters), got {self.total_timesteps:g}")
        sizes = (self.hidden_sizes,) if np.ndim(self.hidden_sizes) == 0 else self.hidden_sizes
        require(len(sizes) > 0 and all(float(h).is_integer() and h > 0 for h in sizes),
                f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in sizes))
        if self.memory.model != NO_MEMORY:
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
POPGYM_MEMORY = MemoryConfig("s5", d_model=64, state_size=64, encoder_sizes=(64,))
POPGYM_CPU = Config(memory=POPGYM_MEMORY, total_timesteps=1_000_000, num_envs=16,
                    num_steps=128, update_epochs=4, num_minibatches=4, hidden_sizes=(64,),
                    activation="leaky_relu", lr=3e-4, anneal_lr=False, gae_lambda=1.0,
                    ent_coef=0.0, vf_coef=1.0, prev_action_reward=True)
POPGYM_PAPER = dataclasses.replace(
    POPGYM_CPU, total_timesteps=15_000_000, num_envs=64, num_steps=1024, update_epochs=30,
    num_minibatches=8, hidden_sizes=(128, 128), lr=5e-5, memory=dataclasses.replace(
        POPGYM_MEMORY, layers=4, d_model=256, state_size=256, encoder_sizes=(128,)))
# S4D's state_size is per channel (d_model x state_size/2 complex states per env: 2,048 at
# the default 64, against S5's 32): N = 8 keeps it within 2-3x of S5's cost and learns as well.
# S6's is per channel too (d_model x state_size real states: 4,096 at 64): Mamba's N = 16.
POPGYM = {model: dataclasses.replace(POPGYM_CPU, memory=dataclasses.replace(
              POPGYM_MEMORY, model=model, **{"s4d": {"state_size": 8},
                                             "s6": {"state_size": 16}}.get(model, {})))
          for model in (NO_MEMORY, *MODELS)}
"""The POPGym preset of each memory model ("none": feed-forward PPO on the same settings)."""
META = {
    "meta/BernoulliBandit": Config(memory=POPGYM_MEMORY, total_timesteps=300_000, num_envs=16,
                                   num_steps=100, hidden_sizes=(64,), lr=1e-3),
    # POPGym's entropy 0 / GAE λ 1 collapse the policy here (return 135 -> 90); 0.01 / 0.95 learn
    "meta/CartPole": dataclasses.replace(POPGYM_CPU, total_timesteps=2_000_000,
                                         prev_action_reward=False, reward_scale=0.1,
                                         ent_coef=0.01, gae_lambda=0.95),
}
META["meta/CartPole-SameStart"] = META["meta/CartPole"]
# Bandit meta-families: 1,000-round episodes of a new problem each; the observation already
# holds the previous arm and reward. 32 envs x 128 steps, entropy 0.01 to keep exploring;
# 2**20 steps per seed is about 6 min for 3 S5 seeds on the 2-core CPU.
META["meta/DLB"] = Config(memory=POPGYM_MEMORY, total_timesteps=1_048_576, num_envs=32,
                          num_steps=128, hidden_sizes=(64,), lr=1e-3, ent_coef=0.01,
                          reward_scale=1.0)
META["meta/LSD"] = META["meta/DLB"]
"""Meta-RL families (their observations already hold the previous action and reward)."""
MEMORY_BEFORE = dict(layer_norm=False, ssm_lr_scale=1.0, dt_min=1e-3, dt_max=1e-1,
                     separate_memory=False, clip_eigs=False)
"""The memory defaults before S5 was made to learn (issue 13), as overrides with flat names
(``hystax.train(..., **MEMORY_BEFORE)``, ``replace_config``): the "-before" variants of
``hystax bench memory`` and of the POPGym ablation start from these."""
SAVED_DEFAULTS = dict(dt_min=1e-3, dt_max=1e-1, separate_memory=False, glu="full", ffn=0,
                      c_init="complex_normal", prev_reward_scale=1.0)
"""Fields added after runs were first saved, with the value such a run used: a ``config.json``
without them resumes as it ran, not with today's defaults. The memory fields among them
were flat then (a ``config.json`` with a nested ``memory`` holds all of its fields, which win
over these)."""
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
        memory = (overrides or {}).get("memory", "s5")  # a name, a MemoryConfig or a dict
        if isinstance(memory, Mapping):
            memory = memory.get("model", "s5")
        return POPGYM.get(getattr(memory, "model", memory), POPGYM_CPU)
    return None


def make_algorithm(config: Config, env, env_params) -> Algorithm:
    """PPO as ``init(key, hparams)`` / ``update(state)`` for one seed: the feed-forward loop
    (:mod:`hystax.agents.ff_ppo`) or, with a memory model, the recurrent one
    (:mod:`hystax.agents.recurrent_ppo`)."""
    family = ff_ppo if config.memory.model == NO_MEMORY else recurrent_ppo
    return family.make_algorithm(config, env, env_params)


def make_train(config: Config, env, env_params):
    """``train(key, hparams=None) -> (final TrainState, metrics)``; metrics are ``[num_updates]``."""
    return make_train_from(make_algorithm(config, env, env_params), config)


def make_actor(config: Config, env, env_params) -> Actor:
    """How a run of ``config`` acts (:class:`~hystax.agents.actor.Actor`): the MLP policy or,
    with a memory model, the recurrent one."""
    family = ff_ppo if config.memory.model == NO_MEMORY else recurrent_ppo
    return family.make_actor(config, env, env_params)
