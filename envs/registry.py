"""Environments by name: hystax's own registry first, then gymnax's.

>>> env, params = make("CartPole-v1", max_steps_in_episode=200)
>>> register("MyEnv-v0", MyEnv)      # MyEnv(**env_kwargs) returns a gymnax-style env
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import gymnax
import numpy as np

from hystax.core.errors import HystaxError, require, unknown_name

EnvFactory = Callable[..., Any]

_registry: dict[str, EnvFactory] = {}
"""hystax's own environments: name -> factory returning a fresh env."""


def names() -> list[str]:
    """All environment names, hystax's and gymnax's, sorted (no env is built)."""
    return sorted(set(_registry).union(gymnax.registered_envs))


def is_registered(name: str) -> bool:
    """Whether ``make(name)`` would find an environment."""
    return isinstance(name, str) and (name in _registry or name in gymnax.registered_envs)


def register(name: str, factory: EnvFactory) -> None:
    """Register ``factory`` under ``name``; ``factory(**env_kwargs)`` must return an env.

    The env follows the gymnax 1.0 API (``reset``, six-value ``step``, ``default_params``,
    ``observation_space``, ``action_space``). Names already known to hystax or gymnax are refused.
    """
    require(isinstance(name, str) and name != "",
            f"env name must be a non-empty str, got {name!r}")
    require(callable(factory),
            f"factory for env {name!r} must be callable, got {type(factory).__name__}")
    require(not is_registered(name), f"env {name!r} is already registered")
    _registry[name] = factory


def make(name: str, *, env_kwargs: dict[str, Any] | None = None, **param_overrides: Any):
    """Build the env called ``name`` and its params.

    Args:
      name: a registered name (see :func:`names`).
      env_kwargs: keyword arguments for the env's constructor (static settings).
      **param_overrides: fields of the env's default ``EnvParams`` to replace
        (e.g. ``max_steps_in_episode=200``).

    Returns:
      ``(env, params)``.
    """
    if not isinstance(name, str):
        raise HystaxError(f"env name must be a str, got {type(name).__name__}")
    env_kwargs = dict(env_kwargs or {})
    if name in _registry:
        factory = _registry[name]
        _check_kwargs(name, factory, env_kwargs)
        env = factory(**env_kwargs)
        require(all(hasattr(env, a) for a in ("reset", "step", "default_params")),
                f"factory for env {name!r} returned {type(env).__name__}, "
                "not an env with reset/step/default_params")
    elif name in gymnax.registered_envs:
        _check_kwargs(name, getattr(gymnax.registration, "_registry", {}).get(name), env_kwargs)
        env, _ = gymnax.make(name, **env_kwargs)
    else:
        raise unknown_name("env", name, names())
    return env, override_params(name, env.default_params, param_overrides)


def override_params(name: str, params: Any, overrides: dict[str, Any]) -> Any:
    """``params`` with the fields in ``overrides`` replaced; unknown fields raise HystaxError."""
    if not overrides:
        return params
    if not dataclasses.is_dataclass(params):
        raise HystaxError(f"env {name!r} has params of type {type(params).__name__}, "
                          "which cannot be overridden by field name")
    defaults = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for field in overrides:
        if field not in defaults:
            close = difflib.get_close_matches(field, list(defaults), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise HystaxError(f"unknown parameter {field!r} for env {name!r}{hint} "
                              f"(valid: {', '.join(sorted(defaults))})")
    return params.replace(**{k: _checked(name, k, defaults[k], v) for k, v in overrides.items()})


def _checked(env_name: str, field: str, default: Any, value: Any) -> Any:
    """``value`` checked against the kind of the field's default (bool, int, finite float;
    ``max_steps_in_episode`` positive), as a float where the default is a float (keeps the
    params' dtypes stable under jit); fields of other kinds pass unchecked."""
    where = f"env {env_name!r} parameter {field}"
    is_bool = isinstance(value, (bool, np.bool_))
    if isinstance(default, (bool, np.bool_)):
        require(is_bool, f"{where} must be True or False, got {value!r}")
        return bool(value)
    if isinstance(default, (int, np.integer)):
        integral = isinstance(value, (int, np.integer)) or (
            isinstance(value, (float, np.floating)) and float(value).is_integer())
        require(integral and not is_bool, f"{where} must be an integer, got {value!r}")
        require(abs(value) < 2**31, f"{where} must fit in int32 (|value| < 2**31), got {value!r}")
        require(field != "max_steps_in_episode" or value >= 1,
                f"{where} must be positive, got {value!r}")
        return int(value)
    if isinstance(default, (float, np.floating)):
        require(isinstance(value, numbers.Real) and not is_bool and np.isfinite(value),
                f"{where} must be a finite number, got {value!r}")
        return float(value)
    return value


def _check_kwargs(name: str, factory: EnvFactory | None, env_kwargs: dict[str, Any]) -> None:
    """Raise HystaxError when ``factory`` cannot take ``env_kwargs``."""
    if not env_kwargs or factory is None:
        return
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        signature.bind(**env_kwargs)
    except TypeError as error:
        raise HystaxError(f"bad env_kwargs for env {name!r}: {error}") from None
