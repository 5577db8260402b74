"""Online world models for Dyna: learn (Δobs, reward, terminal) from a stream of real transitions.

Every model sees inputs x = [obs, action features] [n + m] and targets y = [Δobs, reward,
terminal] [n + 2], one transition per env step, and shares one interface:

- ``init(key, scales) -> state``: :class:`Scales` standardise the inputs and targets (fitted
  once on warm-up data by the caller).
- ``observe(state, x, y, replay, key) -> state``: learn from the newest transition;
  ``replay`` (:class:`Replay`) holds every real transition so far, for the models that use it.
- ``predict(state, x) -> y`` [n + 2].
- ``retrain(state, replay, key) -> state`` or None: called by the training loop every
  ``reset_interval`` env steps (between jitted chunks, so that vmapped seeds do not run it on
  every step).

Models (:data:`MODELS`):

- ``losse``: Losse encoding + FTL linear model, one sparse update per transition (single pass,
  no replay); :mod:`hystax.world_models.losse`.
- ``mlp-online``: an MLP with one Adam step on the newest transition (single pass, no replay).
- ``mlp-replay``: an MLP with one Adam step per env step on a minibatch from all data so far.
- ``mlp-replay-reset``: as ``mlp-replay``, and re-initialised and retrained ``reset_steps``
  steps on all data at the first chunk boundary after every ``reset_interval`` env steps (the
  reviewers' full-replay-with-reset upper bound, on a fixed schedule rather than at each
  episode's end).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hystax.core.errors import require, unknown_name
from hystax.core.nn import MLP
from hystax.world_models import ftl, losse

__all__ = ["ONLINE_MODELS", "OnlineModelConfig", "OnlineWorldModel", "Replay", "Scales",
           "fit_scales", "make_online_model"]


class Replay(NamedTuple):
    """All real transitions so far: inputs [capacity, n + m], targets [capacity, n + 2]; the
    first ``size`` rows are filled."""

    inputs: jax.Array
    targets: jax.Array
    size: jax.Array


class Scales(NamedTuple):
    """Input loc / scale [n + m] and target loc / scale [n + 2]: models regress the standardised
    target (y - target_loc) / target_scale, so that what they have not learnt yet predicts the
    warm-up mean rather than zero."""

    loc: jax.Array
    scale: jax.Array
    target_loc: jax.Array
    target_scale: jax.Array

    def standardise(self, y: jax.Array) -> jax.Array:
        return (y - self.target_loc) / self.target_scale

    def restore(self, z: jax.Array) -> jax.Array:
        return z * self.target_scale + self.target_loc


def fit_scales(inputs: jax.Array, targets: jax.Array, obs_dim: int, floor: float = 1e-3) -> Scales:
    """:class:`Scales` from warm-up inputs [N, n + m] and targets [N, n + 2]: means and stds, the
    Δobs stds floored at ``floor`` and the reward / terminal stds at 1 (a warm-up that saw no
    terminal or a constant reward must not blow up the later, rarer targets)."""
    target_floor = jnp.where(jnp.arange(targets.shape[1]) < obs_dim, floor, 1.0)
    return Scales(inputs.mean(0), jnp.maximum(inputs.std(0), floor), targets.mean(0),
                  jnp.maximum(targets.std(0), target_floor))


class OnlineWorldModel(NamedTuple):
    name: str
    init: Callable[[jax.Array, Scales], Any]
    observe: Callable[..., Any]
    predict: Callable[[Any, jax.Array], jax.Array]
    retrain: Callable[[Any, Replay, jax.Array], Any] | None = None


@dataclasses.dataclass(frozen=True)
class OnlineModelConfig:
    """Settings of the online world models (Losse's and the MLPs')."""

    num_groups: int = 32
    bins: int = 6
    group_dim: int = 2
    ridge: float = 1e-3
    forget: float = 1.0
    hidden: tuple[int, ...] = (128, 128)
    lr: float = 1e-3
    batch_size: int = 64
    reset_steps: int = 1000
    reset_interval: int = 2000

    def __post_init__(self):
        for name in ("num_groups", "bins", "group_dim", "batch_size", "reset_steps",
                     "reset_interval"):
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0,
                    f"world-model {name} must be a positive integer, got {value!r}")
        require(all(isinstance(h, int) and h > 0 for h in self.hidden),
                f"world-model hidden sizes must be positive integers, got {self.hidden!r}")
        require(self.lr > 0, f"world-model lr must be > 0, got {self.lr!r}")
        require(self.ridge > 0 and 0 < self.forget <= 1,
                f"world-model ridge must be > 0 and forget in (0, 1], got {self.ridge!r}, "
                f"{self.forget!r}")


class LosseModelState(NamedTuple):
    model: losse.LosseModel
    scales: Scales


def _losse_model(config: OnlineModelConfig, input_dim: int, out_dim: int) -> OnlineWorldModel:
    features = config.num_groups * (config.bins + 1) ** config.group_dim
    ftl_config = ftl.FTLConfig(features, out_dim, ridge=config.ridge, forget=config.forget)

    def init(key, scales):
        encoder = losse.make_encoder(key, input_dim, config.num_groups, config.bins,
                                     config.group_dim, scales.loc, scales.scale)
        return LosseModelState(losse.LosseModel(encoder, ftl.init(ftl_config)), scales)

    def observe(state, x, y, replay, key):
        indices, values = losse.encode(state.model.encoder, x)
        updated = ftl.update(ftl_config, state.model.state, indices, values,
                             state.scales.standardise(y))
        return state._replace(model=state.model._replace(state=updated))

    def predict(state, x):
        indices, values = losse.encode(state.model.encoder, x)
        return state.scales.restore(ftl.predict(state.model.state, indices, values))

    return OnlineWorldModel("losse", init, observe, predict)


@struct.dataclass
class MLPModelState:
    params: Any
    opt_state: Any
    scales: Scales


def _mlp_model(name: str, config: OnlineModelConfig, input_dim: int,
               out_dim: int) -> OnlineWorldModel:
    net = MLP(config.hidden, out_dim, activation="relu")
    optimiser = optax.adam(config.lr)

    def fresh(key, scales):
        params = net.init(key, jnp.zeros((1, input_dim)))
        return MLPModelState(params, optimiser.init(params), scales)

    def apply(params, state, x):  # standardised targets
        return net.apply(params, (x - state.scales.loc) / state.scales.scale)

    def adam_step(state, x, y):
        def loss(params):
            return jnp.mean((apply(params, state, x) - state.scales.standardise(y)) ** 2)

        grads = jax.grad(loss)(state.params)
        updates, opt_state = optimiser.update(grads, state.opt_state, state.params)
        return state.replace(params=optax.apply_updates(state.params, updates),
                             opt_state=opt_state)

    def replay_step(state, replay, key):
        rows = jax.random.randint(key, (config.batch_size,), 0, jnp.maximum(replay.size, 1))
        return adam_step(state, replay.inputs[rows], replay.targets[rows])

    def observe(state, x, y, replay, key):
        if name == "mlp-online":
            return adam_step(state, x[None], y[None])
        return replay_step(state, replay, key)

    def retrain(state, replay, key):
        init_key, train_key = jax.random.split(key)
        keys = jax.random.split(train_key, config.reset_steps)
        return jax.lax.fori_loop(0, config.reset_steps,
                                 lambda i, s: replay_step(s, replay, keys[i]),
                                 fresh(init_key, state.scales))

    def predict(state, x):
        return state.scales.restore(apply(state.params, state, x))

    return OnlineWorldModel(name, fresh, observe, predict,
                            retrain if name == "mlp-replay-reset" else None)


def make_online_model(name: str, input_dim: int, out_dim: int,
                      config: OnlineModelConfig = OnlineModelConfig()) -> OnlineWorldModel:
    """The online world model called ``name`` (one of :data:`ONLINE_MODELS`)."""
    if name not in ONLINE_MODELS:
        raise unknown_name("online world model", name, ONLINE_MODELS)
    return ONLINE_MODELS[name](config, input_dim, out_dim)


ONLINE_MODELS: dict[str, Callable[[OnlineModelConfig, int, int], OnlineWorldModel]] = {
    "losse": _losse_model,
    "mlp-online": functools.partial(_mlp_model, "mlp-online"),
    "mlp-replay": functools.partial(_mlp_model, "mlp-replay"),
    "mlp-replay-reset": functools.partial(_mlp_model, "mlp-replay-reset"),
}
"""Online world model name -> ``constructor(config, input_dim, out_dim)``; its names are
:data:`hystax.world_models.ONLINE_MODEL_NAMES` too (what ``hystax list`` shows without jax)."""
