"""``check_env``: validate a custom env against the gymnax 1.0 API before training on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from hystax.core.errors import HystaxError
from hystax.core.spaces import shape_of

_METHODS = ("reset", "step", "observation_space", "action_space")
_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool"}


def check_env(env: Any, params: Any = None, *, key: jax.Array | None = None,
              num_steps: int = 64) -> None:
    """Raise one :class:`HystaxError` naming the first way ``env`` breaks the gymnax 1.0 API.

    Checks, in order: the four methods exist; the env is hashable (gymnax jits with a static
    ``self``); ``reset`` runs under ``jax.jit`` and its obs matches ``observation_space(params)``
    (exact shape, same dtype kind); ``step`` runs under ``jit`` inside a ``lax.scan`` of
    ``num_steps`` random actions from ``action_space(params)`` and returns six values with
    scalar reward, bool scalar ``terminated``/``truncated``, a state like ``reset``'s and an
    ``info`` dict with ``final_observation``; obs and reward are finite; ``reset``/``step``
    work under ``jax.vmap`` over 4 keys; the same key gives the same outputs.

    Args:
      env: a gymnax-style env (an instance, not a class).
      params: env params (default ``env.default_params``).
      key: PRNG key (default ``jax.random.PRNGKey(0)``).
      num_steps: length of the random rollout.
    """
    label = f"check_env({_env_name(env)})"

    def fail(message: str) -> HystaxError:
        return HystaxError(f"{label}: {message}")

    if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) \
            or num_steps < 1:
        raise HystaxError(f"check_env: num_steps must be a positive int, got {num_steps!r}")
    if isinstance(env, type):
        raise fail("got a class; pass an instance of it")
    for method in _METHODS:
        if not callable(getattr(env, method, None)):
            raise fail(f"env has no {method}() method")
    try:
        hash(env)
    except TypeError:
        raise fail("env is not hashable (gymnax jits reset/step with the env as a static "
                   "argument); do not define __eq__ without __hash__") from None
    if params is None:
        if not hasattr(env, "default_params"):
            raise fail("env has no default_params; pass params=")
        params = _guard(fail, "reading default_params", lambda: env.default_params)
    key = jax.random.PRNGKey(0) if key is None else key

    obs_space = _guard(fail, "observation_space(params)", env.observation_space, params)
    action_space = _guard(fail, "action_space(params)", env.action_space, params)
    if not (hasattr(obs_space, "shape") and hasattr(obs_space, "dtype")):
        raise fail(f"observation_space(params) is {type(obs_space).__name__}; "
                   "check_env supports spaces with a shape and dtype (Box, Discrete)")
    if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
        raise fail(f"action_space(params) is {type(action_space).__name__}; "
                   "check_env supports Discrete and Box")
    obs_shape = shape_of(obs_space.shape)
    obs_kind = _kind(obs_space.dtype)

    # reset
    reset_key, rollout_key = jax.random.split(key)
    reset_jit = jax.jit(env.reset)
    out = _guard(fail, "reset() under jax.jit", reset_jit, reset_key, params)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise fail(f"reset() returned {_count(out)}, expected 2 (obs, state)")
    obs, state = out
    _check_array(fail, "reset() obs", obs, obs_shape, obs_kind, "observation_space")
    _check_finite(fail, "reset() obs", obs)

    # step, structure first (traced once, nothing runs)
    action = action_space.sample(jax.random.PRNGKey(1))
    out = _guard(fail, "step() under jax.jit", jax.eval_shape, env.step,
                 reset_key, state, action, params)
    if not (isinstance(out, (tuple, list)) and len(out) == 6):
        raise fail(f"step() returned {_count(out)}, expected 6 "
                   "(obs, state, reward, terminated, truncated, info)")
    s_obs, s_state, s_reward, s_term, s_trunc, s_info = out
    _check_array(fail, "step() obs", s_obs, obs_shape, obs_kind, "observation_space")
    _check_scalar(fail, "step() reward", s_reward, ("float", "int"))
    _check_scalar(fail, "step() terminated", s_term, ("bool",))
    _check_scalar(fail, "step() truncated", s_trunc, ("bool",))
    if not isinstance(s_info, dict):
        raise fail(f"step() info is {type(s_info).__name__}, expected a dict")
    if "final_observation" not in s_info:
        raise fail("step() info has no 'final_observation' (the pre-reset observation)")
    _check_array(fail, "step() info['final_observation']", s_info["final_observation"],
                 obs_shape, obs_kind, "observation_space")
    _check_same_state(fail, state, s_state)

    # step, run: a jitted scan of random actions
    def rollout(key, state):
        def body(state, key):
            action_key, step_key = jax.random.split(key)
            action = action_space.sample(action_key)
            obs, state, reward, term, trunc, info = env.step(step_key, state, action, params)
            return state, (obs, reward, term, trunc, info["final_observation"])
        return jax.lax.scan(body, state, jax.random.split(key, num_steps))[1]

    rollout_jit = jax.jit(rollout)
    traj = _guard(fail, f"step() under jax.jit in a lax.scan of {num_steps} random actions",
                  rollout_jit, rollout_key, state)
    for name, values in zip(("obs", "reward", "final_observation"), (traj[0], traj[1], traj[4])):
        _check_finite(fail, f"step() {name}", values, per_step=True)

    # vmap over 4 keys
    keys = jax.random.split(key, 4)
    out = _guard(fail, "reset() under jax.vmap over 4 keys",
                 jax.jit(jax.vmap(env.reset, in_axes=(0, None))), keys, params)
    _check_array(fail, "vmapped reset() obs", out[0], (4, *obs_shape), obs_kind,
                 "4 x observation_space")
    actions = jax.vmap(action_space.sample)(keys)
    out = _guard(fail, "step() under jax.vmap over 4 keys",
                 jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None))), keys, out[1], actions,
                 params)
    _check_array(fail, "vmapped step() obs", out[0], (4, *obs_shape), obs_kind,
                 "4 x observation_space")
    if jnp.shape(out[2]) != (4,):
        raise fail(f"vmapped step() reward has shape {jnp.shape(out[2])}, expected (4,)")

    # determinism
    again = _guard(fail, "reset() under jax.jit", reset_jit, reset_key, params)
    if not _same(obs, again[0]):
        raise fail("reset() is not deterministic: the same key gave a different obs")
    traj_again = _guard(fail, "step() under jax.jit", rollout_jit, rollout_key, state)
    names = ("obs", "reward", "terminated", "truncated", "final_observation")
    for name, first, second in zip(names, traj, traj_again):
        first, second = np.asarray(first), np.asarray(second)
        differ = [t for t in range(num_steps) if not _same(first[t], second[t])]
        if differ:
            raise fail(f"step() is not deterministic: the same key gave a different {name} "
                       f"at step {differ[0]}")
    return None


def _guard(fail: Callable[[str], HystaxError], what: str, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` (blocked until ready); any exception becomes one HystaxError line."""
    try:
        return jax.block_until_ready(fn(*args))
    except Exception as error:  # noqa: BLE001 -- the user's env may raise anything
        raise fail(f"{what} failed: {type(error).__name__}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    for line in str(error).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 200 else line[:197] + "..."
    return "(no message)"


def _env_name(env: Any) -> str:
    if isinstance(env, type):
        return env.__name__
    try:
        name = env.name
    except Exception:  # noqa: BLE001 -- a broken name property must not hide the real problem
        name = None
    return name if isinstance(name, str) and name else type(env).__name__


def _count(out: Any) -> str:
    if isinstance(out, (tuple, list)):
        return f"{len(out)} values"
    return f"a single {type(out).__name__}"



def _kind(dtype: Any) -> str:
    kind = np.dtype(dtype).kind
    return _KINDS.get(kind, np.dtype(dtype).name)


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _check_array(fail, what: str, x: Any, shape: tuple[int, ...], kind: str, expected: str):
    if not _is_array(x):
        raise fail(f"{what} is a {type(x).__name__}, expected an array")
    if tuple(x.shape) != shape:
        raise fail(f"{what} has shape {tuple(x.shape)}, expected {shape} from {expected}")
    if _kind(x.dtype) != kind:
        raise fail(f"{what} has dtype {np.dtype(x.dtype).name}, expected a {kind}-kind dtype "
                   f"from {expected}")


def _check_scalar(fail, what: str, x: Any, kinds: tuple[str, ...]):
    if not _is_array(x):
        raise fail(f"{what} is a {type(x).__name__}, expected a scalar array")
    if tuple(x.shape) != ():
        raise fail(f"{what} has shape {tuple(x.shape)}, expected a scalar")
    if _kind(x.dtype) not in kinds:
        raise fail(f"{what} has dtype {np.dtype(x.dtype).name}, expected {' or '.join(kinds)}")


def _check_same_state(fail, before: Any, after: Any):
    """The state from step must have reset's tree structure, shapes and dtypes."""
    if jax.tree.structure(before) != jax.tree.structure(after):
        raise fail("step() returns a state whose tree structure differs from reset()'s state")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(before),
                            jax.tree.leaves(after)):
        where = jax.tree_util.keystr(path) or "state"
        a_type, b_type = _dtype(a), _dtype(b)
        if jnp.shape(a) != jnp.shape(b) or a_type != b_type:
            raise fail(f"step() state{where} is {b_type.name}{list(jnp.shape(b))} "
                       f"but reset() gave {a_type.name}{list(jnp.shape(a))}")


def _dtype(x: Any) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.dtype(jnp.result_type(x))


def _check_finite(fail, what: str, x: Any, per_step: bool = False):
    """No NaN/inf in float arrays; ``per_step`` reports the first bad index of axis 0."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = x[~finite].flat[0]
    problem = "nan" if np.isnan(bad) else "inf"
    if per_step:
        step = int(np.argmin(finite.reshape(len(x), -1).all(axis=1)))
        raise fail(f"{what} is {problem} at step {step}")
    raise fail(f"{what} is {problem}")


def _same(a: Any, b: Any) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
