"""Trained runs as objects: ``hystax.load(run_dir)`` -> act, evaluate, predict.

>>> trained = hystax.load("runs/ppo-CartPole-v1-20261203-101500")   # the newest checkpoint
>>> policy = trained.policy()                    # every seed at once, vmapped
>>> carry = policy.init_carry(8)                 # [seeds, ...]; None for a memoryless policy
>>> action, carry = policy.act(policy.params, obs, carry, start, keys)  # obs [seeds, 8, ...]
>>> trained.evaluate(episodes=20).returns        # [seeds, 20]: fresh episodes, jitted

PPO (the MLP and every memory model) and Dyna-DQN runs load as :class:`Trained`; continual
world-model runs (``mbrl``) as :class:`TrainedWorldModel`, which predicts each task's next
observations. Loading reads the run's ``config.json`` and one orbax checkpoint and changes
nothing in the folder.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hystax import checkpoints, rundir
from hystax.agents.actor import (
    Actor,
    Episodes,
    check_same_spaces,
    default_max_steps,
    play_episodes,
    space_signature,
)
from hystax.agents.algorithm import merge_hparams
from hystax.core.errors import HystaxError, is_int, require
from hystax.runner import RunSpec, resolve, saved_config

DEFAULT_EPISODES = 10
MAX_EPISODES = 2**20  # per seed: all are played at once, as one batch of envs


class Policy(NamedTuple):
    """A loaded policy: ``act(params, obs, carry, start, key, deterministic=False) ->
    (action, carry)`` and ``init_carry(batch)`` (:class:`~hystax.agents.actor.Actor`), with
    ``params``. Over all seeds every argument gains a leading ``[seeds]`` axis (``key``:
    one key per seed)."""

    act: Callable[..., tuple[jax.Array, Any]]
    init_carry: Callable[[int], Any]
    params: Any


class Evaluation(NamedTuple):
    """``returns`` and ``lengths`` ``[seeds, episodes]`` on ``env_name`` under ``env_params``."""

    returns: np.ndarray
    lengths: np.ndarray
    env_name: str
    env_params: Any


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A run at one checkpoint: ``spec`` (agent, env, config, seeds), ``state`` the whole
    train state ``[seeds, ...]``, ``step`` the updates it had done."""

    run_dir: Path
    spec: RunSpec
    step: int
    state: Any

    @property
    def config(self):
        return self.spec.config

    @property
    def seeds(self) -> list[int]:
        return self.spec.seeds


@dataclasses.dataclass(frozen=True)
class Trained(LoadedRun):
    """A policy-learning run (PPO, Dyna) at one checkpoint, with the ``actor`` it acts by."""

    actor: Actor

    @property
    def params(self):
        """Every seed's params ``[seeds, ...]``."""
        return self.actor.params_of(self.state)

    def policy(self, seed: int | None = None) -> Policy:
        """Seed ``seed``'s policy, or (None) all seeds' vmapped over a leading axis."""
        if seed is None:
            n = len(self.seeds)
            each_seed = jax.vmap(self.actor.act, in_axes=(0, 0, 0, 0, 0, None))

            def act(params, obs, carry, start, key, deterministic=False):
                return each_seed(params, obs, carry, start, key, deterministic)

            return Policy(act, lambda batch: _broadcast(self.actor.init_carry(batch), n),
                          self.params)
        require(seed in self.seeds, f"seed {seed!r} is not one of this run's seeds {self.seeds}")
        i = self.seeds.index(seed)
        return Policy(self.actor.act, self.actor.init_carry,
                      jax.tree.map(lambda x: x[i], self.params))

    def env(self):
        """``(env, env_params)``: the training env with the agent's wrappers (e.g.
        ``PreviousActionReward``), one copy, so observations are what the policy saw."""
        return self.actor.env, self.spec.env_params

    def evaluate(self, env: str | Any = None, env_params: Mapping | Any = None,
                 episodes: int = DEFAULT_EPISODES, deterministic: bool = False,
                 key: jax.Array | None = None, max_steps: int | None = None) -> Evaluation:
        """One fresh episode in each of ``episodes`` envs per seed (jitted, vmapped over
        seeds). ``env``: None (the training env), a registered name or an env object;
        ``env_params``: field overrides (a dict) or params. A meta-RL env defaults to its
        held-out tasks (``split="test"``) unless ``env_params`` sets ``split``."""
        actor, name, params = self.actor_for(env, env_params)
        require(is_int(episodes) and 0 < episodes <= MAX_EPISODES,
                f"episodes must be a positive integer up to {MAX_EPISODES:,}, got {episodes!r}")
        require(max_steps is None or (is_int(max_steps) and 0 < max_steps < 2**31),
                f"max_steps must be a positive integer below 2**31, got {max_steps!r}")
        require(key is None or isinstance(key, jax.Array),
                f"key must be a jax PRNG key (jax.random.key(0)), got {key!r}")
        key = jax.random.PRNGKey(0) if key is None else key
        max_steps = default_max_steps(params) if max_steps is None else int(max_steps)
        out = _play_every_seed(actor, self.params, params, jax.random.split(key, len(self.seeds)),
                               int(episodes), deterministic, max_steps)
        return Evaluation(np.asarray(out.returns), np.asarray(out.lengths), name, params)

    def actor_for(self, env=None, env_params=None) -> tuple[Actor, str, Any]:
        """``(actor, env name, params)`` on another env variant, checked to have the training
        env's spaces (see :meth:`evaluate` for the arguments)."""
        spec = self.spec
        if env is None:  # the training env: its actor, and its compiled evaluation, reused
            params = _env_params(spec.env, spec.env_name, spec.env_params, env_params)
            return self.actor, spec.env_name, params
        if isinstance(env, str):
            from hystax import envs

            raw, base = envs.make(env)
            name = env
        else:
            require(all(hasattr(env, a) for a in ("reset", "step", "default_params")),
                    f"env must be a registered name or a gymnax-style env, got "
                    f"{type(env).__name__}")
            raw, name, base = env, getattr(env, "name", type(env).__name__), env.default_params
        params = _env_params(raw, name, base, env_params)
        actor = spec.module.make_actor(spec.config, raw, params)
        check_same_spaces(space_signature(*self.env()), actor.env, params, f"env {name!r}")
        return actor, name, params


@dataclasses.dataclass(frozen=True)
class TrainedWorldModel(LoadedRun):
    """A continual world-model run (``mbrl``) at one checkpoint: ``state`` is its
    ``MBRLState`` ``[seeds, ...]`` (the model, and its copy saved after each task)."""

    method: Any  # the ContinualMethod

    @property
    def tasks_done(self) -> int:
        """Tasks whose model copy has been saved (their column of the matrices filled)."""
        return int(np.isfinite(np.asarray(self.state.errors)[0]).any(axis=0).sum())

    def predict(self, obs, action, task: int, saved_after: int | None = None):
        """Next observations ``[seeds, B, obs_dim]`` for ``obs [B, obs_dim]`` and ``action
        [B, act_dim]`` under task ``task``, by the model at the checkpoint or (``saved_after``
        = j) its copy saved after task j."""
        from hystax.world_models.continual_api import check_task

        check_task(self.method, task)
        models = self.state.model
        if saved_after is not None:
            require(is_int(saved_after) and 0 <= saved_after < self.tasks_done,
                    f"saved_after must be a finished task (0..{self.tasks_done - 1}), got "
                    f"{saved_after!r}")
            models = jax.tree.map(lambda x: x[:, saved_after], self.state.saved)
        method = self.method
        return jax.vmap(lambda m: method.predict(method.params_for(m, task), obs, action))(models)

    def results(self):
        """One ``ContinualResult`` per seed (reward and error matrices, returns)."""
        from hystax.agents.mbrl import results

        return results(self.state)


def load(run_dir: str | Path, step: int | None = None) -> Trained | TrainedWorldModel:
    """Load the run in ``run_dir`` at checkpoint ``step`` (updates done; None: the newest).

    Returns :class:`Trained` for PPO and Dyna runs, :class:`TrainedWorldModel` for ``mbrl``.
    HystaxError (one line) for a folder that is not a run, a step with no checkpoint, or a
    run whose env is not registered in this process.
    """
    from hystax import agents, envs

    run_dir = Path(run_dir)
    require(step is None or (is_int(step) and step >= 0),
            f"step must be a non-negative integer, got {step!r}")
    saved = rundir.read_config(run_dir)
    missing = {"agent", "env", "seeds", "config"} - set(saved)
    require(not missing, f"{run_dir / rundir.CONFIG_FILE} lacks the field(s) "
            f"{', '.join(sorted(missing))}")
    module = agents.get(saved["agent"])
    require(envs.is_registered(saved["env"]) or hasattr(module, "make_env"),
            f"this run's env {saved['env']!r} is not registered in this process; register it "
            "(hystax.register) first")
    spec = resolve(saved["agent"], saved["env"], seeds=saved["seeds"],
                   config=saved_config(saved["agent"], saved["config"]),
                   env_params=saved.get("env_params") or None, check=False)
    state, step = checkpoints.read(run_dir, _abstract_state(spec), None if step is None
                                   else int(step))
    if hasattr(module, "make_actor"):
        return Trained(run_dir, spec, step, state,
                       module.make_actor(spec.config, spec.env, spec.env_params))
    if hasattr(module, "method_of"):
        return TrainedWorldModel(run_dir, spec, step, state, module.method_of(spec.config, spec.env))
    raise HystaxError(f"{saved['agent']} runs cannot be loaded (the family has no make_actor)")


@functools.partial(jax.jit, static_argnames=("actor", "num_envs", "max_steps"))
def _play_every_seed(actor: Actor, params, env_params, keys, num_envs: int, deterministic,
                     max_steps: int) -> Episodes:
    """:func:`~hystax.agents.actor.play_episodes` vmapped over seeds (``params``, ``keys``);
    compiled once per actor (a :class:`Trained` keeps its own)."""
    return jax.vmap(lambda p, k: play_episodes(actor, p, env_params, k, num_envs, deterministic,
                                               max_steps))(params, keys)


def _abstract_state(spec: RunSpec):
    """The shapes and dtypes of the run's train state ``[seeds, ...]`` (nothing computed)."""
    algorithm = spec.module.make_algorithm(spec.config, spec.env, spec.env_params)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in spec.seeds])
    shapes = jax.eval_shape(jax.vmap(algorithm.init, in_axes=(0, None)), keys,
                            merge_hparams(spec.config, None))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes)


def _env_params(env, name: str, base, given):
    """The params to evaluate under: ``given`` params as they are, or ``base`` with ``given``'s
    field overrides; a meta-RL env's held-out split unless ``split`` is given."""
    if given is not None and not isinstance(given, Mapping):
        return given
    given = dict(given or {})
    if hasattr(env, "params_for") and hasattr(base, "split"):
        split = given.pop("split", "test")  # "train", "test", or the field's 0 / 1
        if isinstance(split, str):
            base = env.params_for(split, num_tasks=base.num_tasks,
                                  max_steps_in_episode=base.max_steps_in_episode)
        else:
            given["split"] = split
    from hystax.envs.registry import override_params

    return override_params(name, base, given)


def _broadcast(tree, n: int):
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), tree)
