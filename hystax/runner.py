"""The training runner: jitted chunks of updates under a host loop.

Between chunks the host loop updates the tqdm bar (env-steps/s, recent return), appends
to ``metrics.csv``, writes orbax checkpoints (:mod:`hystax.checkpoints`) and honours Ctrl-C
and SIGTERM (:mod:`hystax.stopping`: finish the chunk, save, exit). ``train(...)`` here is the one entry point that both ``hystax.train`` and the
``hystax train`` command call.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

import hystax
from hystax import checkpoints as ckpt
from hystax import loggers as sinks_module
from hystax import rundir
from hystax.agents.algorithm import merge_hparams, replace_config, update_at
from hystax.core import sharding
from hystax.core.errors import HystaxError, is_int, require
from hystax.stopping import StopRequests


class RunResult(NamedTuple):
    """What a run leaves behind: final state ``[seeds, ...]`` and metrics ``[seeds, updates]``."""

    run_dir: Path | None
    state: Any
    metrics: dict[str, np.ndarray]
    config: Any
    seeds: list[int]
    interrupted: bool  # stopped before the end (a signal or the callback); resume continues it
    stop_signal: int | None = None  # the signal that stopped it (SIGINT, SIGTERM), if one did
    agent: str | None = None  # the agent family's name (hystax.agents.get)


class RunSpec(NamedTuple):
    """A validated run: everything needed before anything is written to disk."""

    agent: str
    env_name: str
    env: Any
    env_params: Any
    env_overrides: dict
    config: Any
    seeds: list[int]
    module: Any


def resolve(agent: str = "ppo", env: str | Any = "CartPole-v1", *, seeds: int | Sequence[int] = 1,
            config: Any = None, env_params: Mapping | None = None, check: bool = True,
            **overrides) -> RunSpec:
    """Validate the agent, env, config and seeds; raise :class:`HystaxError` on bad input."""
    from hystax import agents, envs

    module = agents.get(agent)
    env_label = env if isinstance(env, str) else getattr(env, "name", type(env).__name__)
    if config is None:
        config = default_config(module, env_label, overrides)
    elif isinstance(config, Mapping):
        overrides = {**config, **overrides}
        config = module.Config()
    elif not isinstance(config, module.Config):
        raise HystaxError(f"config must be a {module.__name__}.Config or a dict, "
                          f"got {type(config).__name__}")
    # JSON and some callers give lists; configs keep tuples so they stay hashable
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    config = replace_config(config, overrides) if overrides else config

    require(is_int(seeds) or (isinstance(seeds, (Sequence, np.ndarray))
                               and not isinstance(seeds, str) and all(is_int(s) for s in seeds)),
            f"seeds must be a positive int or a list of non-negative ints, got {seeds!r}")
    if is_int(seeds):
        require(seeds > 0, f"seeds must be positive, got {seeds}")
        seeds = list(range(int(seeds)))
    seeds = sorted(int(s) for s in seeds)  # rows of metrics follow this order
    require(len(seeds) > 0, "at least one seed is needed")
    require(len(set(seeds)) == len(seeds), f"seeds must be distinct, got {seeds}")
    require(all(s >= 0 for s in seeds), f"seeds must be non-negative, got {seeds}")

    env_overrides = dict(env_params or {})
    if hasattr(module, "make_env"):  # a family with envs of its own kind (mbrl: task suites)
        env_obj, params = module.make_env(env, env_overrides)
        env_name = env if isinstance(env, str) else env_obj.name
        return RunSpec(agent, env_name, env_obj, params, env_overrides, config, seeds, module)
    if isinstance(env, str):
        env_name = env
        env_obj, params = envs.make(env, **env_overrides)
        custom = env not in _gymnax_names()  # gymnax's own envs are trusted
    else:
        require(all(hasattr(env, a) for a in ("reset", "step", "default_params")),
                f"env must be a registered name or a gymnax-style env (reset, step, "
                f"default_params), got {type(env).__name__}")
        env_obj, env_name = env, getattr(env, "name", type(env).__name__)
        params = envs.registry.override_params(env_name, env_obj.default_params, env_overrides)
        custom = True
    if check and custom:
        envs.check_env(env_obj, params)
    return RunSpec(agent, env_name, env_obj, params, env_overrides, config, seeds, module)


def default_config(module, env_name: str, overrides: Mapping | None = None):
    """The config a run starts from when none is given: the agent's tuned preset for
    ``env_name`` (``module.preset(env_name, overrides)``, e.g. PPO's POPGym preset for the
    memory model in ``overrides``) when it has one, else the plain ``module.Config()``."""
    preset = getattr(module, "preset", None)
    config = preset(env_name, dict(overrides or {})) if preset is not None else None
    return module.Config() if config is None else config


def _gymnax_names() -> set[str]:
    import gymnax

    return set(gymnax.registered_envs)


def train(agent: str = "ppo", env: str | Any = "CartPole-v1", *, seeds: int | Sequence[int] = 1,
          config: Any = None, env_params: Mapping | None = None, name: str | None = None,
          out_dir: str | Path | None = "runs", chunk_updates: int | None = None,
          checkpoint_every: int = 10, resume: str | Path | None = None, progress: bool = True,
          devices: int | None = None, callback: Callable[[int, dict], bool] | None = None,
          plots: bool = True, check: bool = True, loggers=("csv",), **overrides) -> RunResult:
    """Train ``agent`` on ``env`` for several seeds at once, writing ``runs/<name>/``.

    Args:
      agent: agent family (``hystax.agents.names()``).
      env: a registered env name (``hystax.envs.names()``) or a gymnax-style env object.
      seeds: number of seeds (0..n-1) or a list of seeds (kept sorted); vmapped and sharded
        over devices.
      config: the agent's ``Config`` or a dict of its fields; ``**overrides`` go on top.
        ``None`` starts from the agent's preset for ``env`` where it has one (e.g.
        ``ppo.preset``: POPGym envs, Pendulum-v1), else from ``Config()``.
      env_params: overrides of the env's default params (fields of its ``EnvParams``).
      name / out_dir: the run is written to ``out_dir/name`` (``out_dir=None``: nothing
        is written, no checkpoints).
      chunk_updates: updates per jitted chunk (default: about 1/25 of the run).
      checkpoint_every: write an orbax checkpoint every this many chunks (and at the end, and
        after every host-hook boundary of an algorithm with ``hook_every``, e.g. each task).
      resume: a run directory to continue from its latest checkpoint; all other settings
        are read from its ``config.json`` (only ``progress``, ``devices``, ``callback``,
        ``plots`` and ``loggers`` may be given with it).
      devices: how many devices to shard the seeds over (default: the most, up to all of
        them, that divides the number of seeds).
      callback: ``callback(updates_done, chunk_metrics) -> stop?`` after every chunk.
      loggers: ``"csv,tensorboard,wandb"`` or a list: where metrics go (:mod:`hystax.loggers`).

    Returns:
      :class:`RunResult`; ``metrics[k]`` has shape ``[seeds, updates]``.
    """
    loggers = sinks_module.parse_loggers(loggers, run_folder=(out_dir, resume) != (None, None))
    if resume is not None:
        settings = dict(agent=agent, env=env, seeds=seeds, config=config, env_params=env_params,
                        name=name, chunk_updates=chunk_updates, checkpoint_every=checkpoint_every)
        defaults = inspect.signature(train).parameters
        given = {k for k, v in settings.items() if v is not defaults[k].default
                 and v != defaults[k].default} | (set(overrides) - {"total_timesteps"})
        if given:
            raise HystaxError(f"resume takes its settings from the run's config.json (only a "
                              f"larger total_timesteps may be given); drop "
                              f"{', '.join(sorted(given))}")
        return _resume(Path(resume), loggers, progress=progress, callback=callback, plots=plots,
                       devices=devices, total_timesteps=overrides.get("total_timesteps"))
    require(checkpoint_every > 0, f"checkpoint_every must be positive, got {checkpoint_every}")
    rundir.check_name(name)
    spec = resolve(agent, env, seeds=seeds, config=config, env_params=env_params, check=check,
                   **overrides)
    algorithm = spec.module.make_algorithm(spec.config, spec.env, spec.env_params)
    chunk_updates = chunk_size(algorithm.num_updates, chunk_updates or algorithm.chunk_updates)
    mesh = sharding.seed_mesh(len(spec.seeds), devices)

    run_dir = None
    if out_dir is not None:
        require(name is not None or jax.process_count() == 1,
                "runs over several hosts need an explicit name (--name), the same on every host")
        run_dir = Path(out_dir) / (name or _default_name(spec))
        if jax.process_index() == 0:
            rundir.make_writable_dir(Path(out_dir))  # a one-line error, not an OSError
            if run_dir.exists():
                raise HystaxError(f"{run_dir} already exists; pass another name or resume it "
                                  f"(hystax train --resume {run_dir})")
            saved = _jsonable({
                "agent": spec.agent, "env": spec.env_name, "env_params": spec.env_overrides,
                "seeds": spec.seeds, "config": dataclasses.asdict(spec.config),
                "name": run_dir.name, "chunk_updates": chunk_updates,
                "checkpoint_every": checkpoint_every, "hystax_version": hystax.__version__})
            run_dir.mkdir(parents=True)
            rundir.write_config(run_dir, saved)
    try:
        return _run(spec, algorithm, mesh, run_dir, chunk_updates, checkpoint_every, progress,
                    callback, plots, restore=False, loggers=loggers)
    except BaseException:
        _remove_if_no_checkpoint(run_dir)
        raise


def saved_config(agent: str, config: Mapping) -> dict:
    """A saved run's config dict with the fields it predates filled in as that run used them
    (the agent module's ``SAVED_DEFAULTS``), not with today's defaults. A default named by a
    flat name (PPO's ``dt_min``) counts as present when the run saved that field nested
    (``memory.dt_min``)."""
    from hystax import agents

    module = agents.get(agent)
    nested = {name for f in dataclasses.fields(module.Config)
              if isinstance(config.get(f.name), Mapping)
              for name, field in getattr(f.default, "FLAT_NAMES", {}).items()
              if field in config[f.name]}
    return {**{k: v for k, v in getattr(module, "SAVED_DEFAULTS", {}).items()
               if k not in {*config, *nested}}, **config}


def _resume(run_dir: Path, loggers: tuple[str, ...], *, progress, callback, plots, devices,
            total_timesteps=None) -> RunResult:
    saved = rundir.read_config(run_dir)
    rundir.check_unedited(run_dir, saved)
    if total_timesteps is not None:
        saved = _extended(run_dir, saved, total_timesteps)
    missing = {"agent", "env", "seeds", "config", "chunk_updates", "checkpoint_every"} - set(saved)
    if missing:
        raise HystaxError(f"{run_dir / rundir.CONFIG_FILE} lacks the field(s) "
                          f"{', '.join(sorted(missing))}")
    from hystax import agents, envs

    if not envs.is_registered(saved["env"]) and not hasattr(agents.get(saved["agent"]),
                                                            "make_env"):
        raise HystaxError(f"this run's env {saved['env']!r} is not registered in this process; "
                          f"register it (hystax.register) and resume from Python")
    spec = resolve(saved["agent"], saved["env"], seeds=saved["seeds"],
                   config=saved_config(saved["agent"], saved["config"]),
                   env_params=saved.get("env_params") or None, check=False)
    algorithm = spec.module.make_algorithm(spec.config, spec.env, spec.env_params)
    mesh = sharding.seed_mesh(len(spec.seeds), devices)
    if total_timesteps is not None and jax.process_index() == 0:
        rundir.write_config(run_dir, saved)  # validated above: the run now runs longer
    return _run(spec, algorithm, mesh, run_dir, saved["chunk_updates"], saved["checkpoint_every"],
                progress, callback, plots, restore=True, loggers=loggers)


def _extended(run_dir: Path, saved: dict, total_timesteps) -> dict:
    """``saved`` with a larger ``total_timesteps`` (the one setting a resume may change)."""
    config = dict(saved["config"])
    require("total_timesteps" in config, f"a {saved.get('agent')} run cannot be extended with "
            "total_timesteps (only PPO runs can; a Dyna run's replay holds exactly its "
            "total_steps, an mbrl run's tasks are fixed): start a new run")
    before = config.get("total_timesteps")
    require(isinstance(total_timesteps, (int, float, np.integer)) and before is not None
            and total_timesteps >= before,
            f"a resume may only raise total_timesteps (the run has {before}), got "
            f"{total_timesteps!r}")
    require(not config.get("anneal_lr") or total_timesteps == before,
            f"{run_dir} anneals its learning rate over its total_timesteps, so it cannot be "
            "extended: start a new run")
    config["total_timesteps"] = total_timesteps
    return {k: v for k, v in {**saved, "config": config}.items() if k != rundir.HASH_FIELD}


def _run(spec: RunSpec, algorithm, mesh, run_dir, chunk_updates, checkpoint_every, progress,
         callback, plots, restore, loggers) -> RunResult:
    from tqdm.auto import tqdm

    shard = sharding.seed_sharding(mesh)
    init = jax.jit(jax.vmap(algorithm.init, in_axes=(0, None)), out_shardings=shard)
    state = init(sharding.seed_keys(spec.seeds, mesh), merge_hparams(spec.config, None))
    chunk = make_chunk_fn(algorithm, shard, chunk_updates)  # compiled once, on the first chunk
    writer = run_dir is not None and jax.process_index() == 0

    checkpoints, done, history = None, 0, {}
    if restore:
        checkpoints, state, done = ckpt.restore_latest(run_dir, state)
        if done == 0 and writer:
            print(f"hystax: {run_dir} has no checkpoint yet: starting it from the beginning",
                  file=sys.stderr, flush=True)
        elif done == algorithm.num_updates and writer:
            print(f"hystax: {run_dir} is complete ({done} updates): read back, nothing to train",
                  file=sys.stderr, flush=True)
        rundir.check_history(run_dir, spec.seeds, done)
        if writer:
            rundir.truncate_metrics(run_dir, done)
        history = _read_history(run_dir, done)
    elif run_dir is not None:
        checkpoints = ckpt.manager(run_dir)
    sinks = (sinks_module.open_loggers(loggers, run_dir, rundir.read_config(run_dir), done)
             if writer and done < algorithm.num_updates else [])  # where metrics.csv is written
    steps_per_chunk_update = algorithm.steps_per_update * len(spec.seeds)
    bar = tqdm(total=algorithm.num_updates * steps_per_chunk_update,
               initial=done * steps_per_chunk_update, unit="step", unit_scale=True,
               disable=not progress or jax.process_index() != 0,
               desc=f"{spec.agent} on {spec.env_name}", dynamic_ncols=True)
    chunks_done, stopped, requests = 0, False, StopRequests()
    with requests:  # until the last checkpoint is written: a second signal exits at once
        try:
            for done, state, metrics in iterate_chunks(chunk, state, done, algorithm.num_updates,
                                                       chunk_updates, spec, algorithm.host_hook,
                                                       algorithm.hook_every):
                n = metrics["env_steps"].shape[1]
                if writer:  # metrics.csv, then TensorBoard / W&B
                    sinks_module.write_all(sinks, run_dir, spec.seeds, done - n, metrics)
                for k, v in metrics.items():
                    history.setdefault(k, []).append(v)
                chunks_done += 1
                bar.update(n * steps_per_chunk_update)
                recent = recent_return(metrics)
                if recent is not None:
                    bar.set_postfix(ret=f"{recent:.4g}")
                stopped = callback is not None and bool(callback(done, metrics))
                stopped = (stopped or requests.requested) and done < algorithm.num_updates
                boundary = bool(algorithm.hook_every) and done % algorithm.hook_every == 0
                if checkpoints is not None and (chunks_done % checkpoint_every == 0 or stopped
                                                or boundary or done == algorithm.num_updates):
                    ckpt.save(checkpoints, done, state)
                if stopped:
                    break
        finally:
            bar.close()
            if checkpoints is not None:
                ckpt.close(checkpoints)
            sinks_module.close_all(sinks)
    metrics = {k: np.concatenate(v, axis=1) for k, v in history.items()}
    if writer and plots:
        from hystax import plots as plots_module

        plots_module.plot_run_dirs([run_dir])
    return RunResult(run_dir, state, metrics, spec.config, spec.seeds, stopped,
                     requests.signum if stopped else None, spec.agent)


def iterate_chunks(chunk, state, done: int, num_updates: int, chunk_updates: int, spec: RunSpec,
                   host_hook=None, hook_every: int | None = None):
    """The host loop's core: yield ``(updates_done, state, metrics)`` after every jitted chunk
    (and the algorithm's ``host_hook``, if any; chunks end at multiples of ``hook_every``).

    ``metrics`` are numpy ``[seeds, n]`` (progress columns first), checked to be finite.
    """
    while done < num_updates:
        n = min(chunk_updates, num_updates - done)
        if hook_every:  # end the chunk where the hook must run
            n = min(n, hook_every - done % hook_every)
        state, metrics = chunk(state, n, done)
        metrics = _ordered(sharding.to_host(metrics))
        _check_finite(metrics, done, spec)
        if host_hook is not None:
            state = host_hook(state, done, done + n)
        done += n
        yield done, state, metrics


def make_chunk_fn(algorithm, shard, chunk_updates):
    """``chunk(state [seeds], n, first=0) -> (state, metrics [seeds, n])`` for any
    ``n <= chunk_updates``, the updates numbered from ``first`` (for ``indexed`` algorithms).

    One compilation serves every chunk: a shorter last chunk runs the same scan of
    ``chunk_updates`` steps with the surplus updates skipped by ``lax.cond``.
    """

    def run_chunk(state, num_valid, first):
        def one(s, i):
            return update_at(algorithm, s, first + i)

        empty = jax.tree.map(lambda x: jax.numpy.zeros(x.shape, x.dtype),
                             jax.eval_shape(one, state, 0)[1])

        def step(s, i):
            return jax.lax.cond(i < num_valid, one, lambda s, i: (s, empty), s, i)

        return jax.lax.scan(step, state, jax.numpy.arange(chunk_updates))

    donate = () if jax.default_backend() == "cpu" else (0,)  # CPU buffers cannot be donated
    jitted = jax.jit(jax.vmap(run_chunk, in_axes=(0, None, None)), out_shardings=(shard, shard),
                     donate_argnums=donate)

    def chunk(state, n, first=0):
        state, metrics = jitted(state, n, first)
        return state, jax.tree.map(lambda m: m[:, :n], metrics)

    return chunk


def _ordered(metrics: dict) -> dict:
    """Progress columns first (``rundir.PROGRESS_COLUMNS``), then the rest by name."""
    first = [k for k in rundir.PROGRESS_COLUMNS if k in metrics]
    return {k: metrics[k] for k in [*first, *sorted(set(metrics) - set(first))]}


def chunk_size(num_updates: int, chunk_updates: int | None) -> int:
    if chunk_updates is None:
        return max(1, math.ceil(num_updates / 25))
    require(int(chunk_updates) > 0, f"chunk_updates must be positive, got {chunk_updates}")
    return int(chunk_updates)


def _read_history(run_dir: Path, done: int) -> dict[str, list[np.ndarray]]:
    if done == 0 or not (run_dir / rundir.METRICS_FILE).exists():
        return {}
    saved = rundir.read_metrics(run_dir)
    return {k: [v] for k, v in saved.items() if k not in rundir.INDEX_COLUMNS}


def _check_finite(metrics, first_update, spec):
    """Stop a diverged run with a clear error (episode statistics may be NaN: no episode ended)."""
    for k, v in metrics.items():
        if k not in rundir.EPISODE_COLUMNS and not np.all(np.isfinite(v)):
            seed_i, upd = np.argwhere(~np.isfinite(v))[0]
            raise HystaxError(
                f"training produced a non-finite {k} at update {first_update + upd} (seed "
                f"{spec.seeds[seed_i]}) on {spec.env_name}; check the env's observations and "
                f"rewards (hystax.envs.check_env) and the learning rate")


def recent_return(metrics) -> float | None:
    r = metrics.get("episode_return")
    if r is None:
        return None
    recent = np.asarray(r)[:, -max(1, r.shape[1] // 2):]  # [seeds, last half of the chunk]
    return float(np.nanmean(recent)) if np.isfinite(recent).any() else None


def _default_name(spec: RunSpec) -> str:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.env_name)
    return f"{spec.agent}-{env}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def _jsonable(x):
    """Tuples to lists, numpy scalars to Python numbers, recursively."""
    if isinstance(x, (tuple, list)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (np.generic, np.ndarray)) or hasattr(x, "item") and not isinstance(x, str):
        return np.asarray(x).item()
    return x


def _remove_if_no_checkpoint(run_dir: Path | None) -> None:
    """A run that failed before its first checkpoint leaves nothing behind in runs/."""
    if run_dir is None or jax.process_index() != 0 or not run_dir.exists():
        return
    if not ckpt.has_checkpoint(run_dir):
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
