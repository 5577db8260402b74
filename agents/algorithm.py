"""The agent API every family implements.

A family provides a frozen ``Config`` dataclass and ``make_algorithm(config, env, env_params)``
returning an :class:`Algorithm`: pure ``init(key, hparams) -> state`` and
``update(state) -> (state, metrics)`` for one seed. Everything else is derived here:

* ``make_train`` turns it into ``train(key, hparams=None) -> (final_state, metrics)``, one
  ``lax.scan`` over all updates, which can be jitted and vmapped over seeds and hparams;
* the runner (:mod:`hystax.runner`) vmaps ``init``/``update`` over seeds and calls the update
  in jitted chunks under a host loop (progress, CSV, checkpoints).

``hparams`` is a dict of the config's numeric hyperparameters (``Config.HPARAMS``), kept in
the train state, so a population of learning rates is just a vmap over ``hparams``.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hystax.core.errors import HystaxError

Metrics = dict[str, jax.Array]
MAX_TIMESTEPS = 2**31 - 1  # env-step counters are int32: no config may ask for more


class Algorithm(NamedTuple):
    """One seed's training loop, split into ``init`` and one ``update``.

    indexed: ``update(state, i)`` also gets the update's index i (a scalar, the same for every
    seed, so a schedule on it stays a real branch under vmap). host_hook:
    ``host_hook(state [seeds], done_before, done_after) -> state``, run by the runner on the
    host between chunks (e.g. a world model's retraining); ``make_train`` refuses it.
    chunk_updates: the family's preferred updates per jitted chunk (None: the runner's).
    hook_every: chunks end at every multiple of this many updates, so that the host hook
    runs exactly there (e.g. a task boundary), and the runner checkpoints there; None:
    wherever the chunks end.
    """

    init: Callable[[jax.Array, Mapping[str, jax.Array]], Any]
    update: Callable[..., tuple[Any, Metrics]]
    num_updates: int
    steps_per_update: int  # env steps consumed by one update
    extras: Mapping[str, Any] = types.MappingProxyType({})  # family-specific pieces exposed for tests and tools
    indexed: bool = False
    host_hook: Callable[[Any, int, int], Any] | None = None
    chunk_updates: int | None = None
    hook_every: int | None = None


def update_at(algorithm: Algorithm, state, i):
    """One update of ``algorithm`` as the i-th (``indexed`` algorithms get ``i``)."""
    return algorithm.update(state, i) if algorithm.indexed else algorithm.update(state)


def default_hparams(config) -> dict[str, jax.Array]:
    """The numeric hyperparameters of ``config`` as float32 scalars."""
    return {k: jnp.asarray(getattr(config, k), jnp.float32) for k in config.HPARAMS}


def merge_hparams(config, hparams: Mapping[str, Any] | None) -> dict[str, jax.Array]:
    """``default_hparams(config)`` with ``hparams`` (possibly traced/batched) on top."""
    merged = default_hparams(config)
    for k, v in (hparams or {}).items():
        if k not in merged:
            raise HystaxError(
                f"{k!r} is not a numeric hyperparameter of {type(config).__name__}; "
                f"choose from {', '.join(config.HPARAMS)}")
        merged[k] = jnp.asarray(v, jnp.float32)
    return merged


def make_train_from(algorithm: Algorithm, config) -> Callable:
    """``train(key, hparams=None) -> (final_state, metrics[num_updates])`` as one scan."""

    if algorithm.host_hook is not None:
        raise HystaxError(f"{type(config).__name__}: this setting needs host work between "
                          "updates; train it with hystax.train (the runner)")

    def train(key: jax.Array, hparams: Mapping[str, Any] | None = None):
        state = algorithm.init(key, merge_hparams(config, hparams))
        return jax.lax.scan(lambda s, i: update_at(algorithm, s, i), state,
                            jnp.arange(algorithm.num_updates))

    return train


def check_field_types(config) -> None:
    """Raise :class:`HystaxError` for a field whose value is not of its default's kind: a
    bool for a bool, a real number (not a bool) for a number, a str for a str, numbers (or one
    number) for a tuple of numbers. Ranges are the config's own ``__post_init__``'s to check."""
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), f.default
        if isinstance(default, bool):
            ok, kind = isinstance(value, (bool, np.bool_)), "True or False"
        elif isinstance(default, (int, float)):
            ok, kind = _is_number(value), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        elif isinstance(default, tuple) and all(_is_number(x) for x in default):
            ok = _is_number(value) or (isinstance(value, (tuple, list))
                                       and all(_is_number(x) for x in value))
            kind = "a list of numbers"
        else:
            continue
        if not ok:
            raise HystaxError(f"{type(config).__name__}.{f.name} must be {kind}, "
                              f"got {value!r}")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def replace_config(config, overrides: Mapping[str, Any]):
    """``dataclasses.replace`` with a clear error for unknown fields.

    A nested settings field (a dataclass, e.g. PPO's ``memory``) takes a dict of its fields
    (as ``config.json`` holds it), merged into its current value. Where the nested class has
    ``FLAT_NAMES`` (flat name -> its field), those names are routed into it, so
    ``memory_layers=4`` sets ``memory.layers`` and ``memory="gru"`` (the field's own name
    with a plain value) sets ``memory.model``, keeping the other memory settings. A nested
    dict wins over flat names for the same field (a saved nested dict is complete).
    """
    overrides = _route_flat_names(config, overrides)
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise HystaxError(f"{type(config).__name__} has no field {unknown[0]!r}; "
                          f"fields are {', '.join(sorted(fields))}")
    nested = {k: replace_config(getattr(config, k), {
                  name: tuple(x) if isinstance(x, list) else x for name, x in v.items()})
              for k, v in overrides.items()
              if isinstance(v, Mapping) and dataclasses.is_dataclass(getattr(config, k))}
    return dataclasses.replace(config, **{**overrides, **nested})  # nested: from config.json


def _route_flat_names(config, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` with the flat names of ``config``'s nested settings gathered into one
    entry per nested field (see :func:`replace_config`)."""
    overrides, fields = dict(overrides), [f.name for f in dataclasses.fields(config)]
    for field in fields:
        flat = getattr(getattr(config, field), "FLAT_NAMES", None)
        if not flat:
            continue
        routed = {flat[name]: overrides.pop(name) for name in list(overrides)
                  if name in flat and (name not in fields or (name == field and not (
                      isinstance(overrides[name], Mapping)
                      or dataclasses.is_dataclass(overrides[name]))))}
        if routed:
            given = overrides.pop(field, {})
            overrides[field] = (replace_config(given, routed) if dataclasses.is_dataclass(given)
                                 else {**routed, **given})
    return overrides
