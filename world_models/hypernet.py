"""HyperCRL: a task-conditioned hypernetwork that emits *every* weight of a dynamics network.

A learned embedding e_t per task (a fixed [num_tasks, emb_dim] array, init N(0, 1)) goes
through the hypernetwork h(e; θ), whose output is unflattened into the full parameter pytree
of the main (dynamics) network. Continual learning without replay (Huang et al., ICRA 2021,
after von Oswald et al., ICLR 2020): before task t the outputs h*(e_j) = h(e_j; θ) of every
other seen task j are snapshotted, and task t trains on

    task_loss(θ, e_t) + β · mean_{j seen, j ≠ t} ‖h(e_j; θ + Δθ) − h*(e_j)‖²

(the squared norm summed over the P main-net weights, averaged over the old tasks). Δθ is
the *look-ahead*: the update the optimiser (clip + Adam, from its current state) would apply
for the task-loss gradient alone, detached. Old embeddings are frozen; e_t is trained on the
task loss only.

Main-net weights. Any flax module works (``main_net=``; default
:class:`~hystax.world_models.dynamics.DynamicsMLP`): :func:`weight_spec` records the tree
structure, shapes and dtypes of its ``params`` and :func:`unflatten_weights` turns a flat
[P] vector back into exactly that pytree. The generator emits a *standardised* raw vector and
each leaf is ``offset + scale * raw`` with the leaf's mean / std in a reference init of the
main net (two constants per leaf), so freshly generated weights have init-like statistics for
any architecture (LayerNorm scales start near 1, kernels near a lecun init).

Generators (:class:`HyperNetwork`):

- full: MLP(e) → Dense(P), one linear output per main-net weight;
- chunked (``chunk_size=c``): a shared MLP on [e, chunk embedding k] emits c weights at a time
  for ⌈P / c⌉ learned chunk embeddings (the last chunk truncated);
- recurrent chunked (``recurrent=True``, after Chandra et al., WACV 2023): the chunks come out of
  a GRU run over the chunk sequence (input [e, k] through the MLP, hidden state carried), so
  later chunks depend on earlier ones.

Sizes (:func:`hnet_sizes`): the pendulum main net 4 → 32 → 32 → 3 has 1,315 weights; the
full hypernetwork [16, 16] on 10-d embeddings has 22,803 parameters (its output layer alone
16 · 1315 + 1315 = 22,355); the chunked one (``"hnet-chunked"``: chunks of 128, hidden [32, 32])
5,976 with its 11 chunk embeddings, its recurrent version 11,192; plus 10 per task embedding.
The HyperCRL pusher net 12 → 200 → 200 → 10 has 44,810 weights and its full [50, 50]
hypernetwork 2,288,410 parameters (the paper's ≈ 2.29M).

Defaults follow the spec (β = 0.05, gradient-norm clip 5, embeddings of dim 10) except the
learning rate: Adam 1e-3 rather than the reference 1e-4, which trains our small pendulum /
toy models within a few thousand steps.

>>> method = hnet(obs_dim=3, act_dim=1, num_tasks=5)
>>> state = method.begin_task(method.init(key), 0, data)
>>> state, metrics = fit(method, state, data, task=0, steps=1000, batch_size=64, key=key)
>>> method.predict(method.params_for(state, 0), obs, action)          # [..., 3]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from hystax.core.errors import HystaxError, require
from hystax.world_models.continual_api import (
    ContinualMethod,
    check_task,
    set_normaliser,
    stacked_normalisers,
    task_normaliser,
)
from hystax.world_models.dynamics import (
    DynamicsMLP,
    DynamicsParams,
    Normaliser,
    Transitions,
    check_transitions,
    delta_loss,
    predict_next,
)
from hystax.world_models.weight_spec import (
    WeightSpec,
    flatten_weights,
    main_net_shapes,
    offset_scale,
    param_count,
    unflatten_weights,
    weight_spec,
)

__all__ = [
    "HnetState",
    "HyperNetwork",
    "WeightSpec",
    "flatten_weights",
    "generate",
    "hnet",
    "hnet_chunked",
    "hnet_sizes",
    "main_net_shapes",
    "output_regulariser",
    "param_count",
    "unflatten_weights",
    "weight_spec",
]

HNET_CHUNK_SIZE = 128
"""Chunk size of the registered ``"hnet-chunked"`` method."""


# --- the hypernetwork ---------------------------------------------------------------------


def _check_generator(hidden, chunk_size, chunk_emb_dim, recurrent) -> None:
    """HystaxError naming the first bad generator option."""
    require(all(isinstance(w, int) and w > 0 for w in hidden),
            f"hypernetwork hidden widths must be positive ints, got {tuple(hidden)}")
    require(chunk_size is None
            or (isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size > 0),
            f"chunk size must be a positive int, got {chunk_size!r}")
    require(isinstance(chunk_emb_dim, int) and chunk_emb_dim > 0,
            f"chunk_emb_dim must be a positive int, got {chunk_emb_dim!r}")
    require(not recurrent or chunk_size is not None,
            "the recurrent hypernetwork needs a chunk size (chunked=...)")
    require(not recurrent or len(hidden) > 0,
            "the recurrent hypernetwork needs at least one hidden layer (its GRU width)")


class HyperNetwork(nn.Module):
    """h(e; θ): a task embedding [emb_dim] → the main net's weights, flat [P] (``spec.total``).

    ``chunk_size=None``: full (MLP ``hidden`` then one Dense(P)). ``chunk_size=c``: a shared MLP
    on [e, chunk embedding] (``chunk_emb_dim``, init N(0, 1)) emits [⌈P/c⌉, c], truncated to P.
    ``recurrent=True`` (needs ``chunk_size``): the last hidden layer is a GRU scanned over the
    chunks. Unbatched; ``jax.vmap`` over embeddings. :func:`generate` gives the pytree.
    """

    spec: WeightSpec
    hidden: Sequence[int] = (16, 16)
    chunk_size: int | None = None
    chunk_emb_dim: int = 8
    recurrent: bool = False
    activation: str = "relu"

    def __post_init__(self):
        require(isinstance(self.spec, WeightSpec),
                f"HyperNetwork needs a WeightSpec (see weight_spec), got "
                f"{type(self.spec).__name__}")
        _check_generator(self.hidden, self.chunk_size, self.chunk_emb_dim, self.recurrent)
        super().__post_init__()

    @property
    def num_chunks(self) -> int:
        return 1 if self.chunk_size is None else -(-self.spec.total // self.chunk_size)

    @nn.compact
    def __call__(self, emb: jax.Array) -> jax.Array:
        act = getattr(nn, self.activation)
        total = self.spec.total
        if self.chunk_size is None:
            x = emb
            for width in self.hidden:
                x = act(nn.Dense(width)(x))
            raw = nn.Dense(total, name="head")(x)
        else:
            chunks = self.param("chunk_emb", nn.initializers.normal(1.0),
                                (self.num_chunks, self.chunk_emb_dim))
            task = jnp.broadcast_to(emb, (self.num_chunks, emb.shape[-1]))
            x = jnp.concatenate([task, chunks], axis=-1)  # [chunks, emb_dim + chunk_emb_dim]
            for width in self.hidden[:-1] if self.recurrent else self.hidden:
                x = act(nn.Dense(width)(x))
            if self.recurrent:
                gru = nn.scan(nn.GRUCell, variable_broadcast="params", split_rngs={"params": False},
                              in_axes=0, out_axes=0)(features=self.hidden[-1], name="gru")
                _, x = gru(jnp.zeros((self.hidden[-1],), x.dtype), x)  # x [chunks, hidden]
            raw = nn.Dense(self.chunk_size, name="head")(x).reshape(-1)[:total]
        offset, scale = offset_scale(self.spec)
        return offset + scale * raw


def generate(hyper: HyperNetwork, theta, emb: jax.Array):
    """The main net's parameter pytree for one embedding [emb_dim]."""
    return unflatten_weights(hyper.spec, hyper.apply(theta, emb))


def output_regulariser(hyper: HyperNetwork, theta, embs: jax.Array, targets: jax.Array,
                       mask: jax.Array) -> jax.Array:
    """Mean over the rows j with mask[j] of ‖h(embs[j]; θ) − targets[j]‖² (0 with no row set).

    embs [T, emb_dim], targets [T, P], mask [T] bool.
    """
    out = jax.vmap(lambda e: hyper.apply(theta, e))(embs)
    sq = jnp.sum((out - targets) ** 2, axis=-1)
    return jnp.sum(jnp.where(mask, sq, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


# --- the continual method -------------------------------------------------------------------


@struct.dataclass
class HnetState:
    """HyperCRL state: hypernetwork variables ``theta``, task embeddings ``emb`` [T, emb_dim],
    the optimiser state over {theta, emb} (reset at each ``begin_task``), the snapshot
    ``targets`` [T, P] with ``target_mask`` [T] (rows regularised on the current task), the
    per-task ``norms`` (leaves [T, dim]) and ``seen`` [T] bool."""

    theta: Any
    emb: jax.Array
    opt_state: Any
    targets: jax.Array
    target_mask: jax.Array
    norms: Normaliser
    seen: jax.Array


def _check_main_output(net: nn.Module, shapes, obs_dim: int, act_dim: int) -> None:
    """HystaxError unless ``net`` maps [1, n + m] to [1, n] or a (mean, logvar) pair of them."""
    x = jax.ShapeDtypeStruct((1, obs_dim + act_dim), jnp.float32)
    try:
        out = jax.eval_shape(net.apply, {"params": shapes}, x)
    except Exception as err:  # noqa: BLE001
        raise HystaxError(f"main net {type(net).__name__} cannot be applied to its own "
                          f"parameters: {type(err).__name__}") from None
    parts = out if isinstance(out, tuple) else (out,)
    ok = len(parts) in (1, 2) and all(getattr(p, "shape", None) == (1, obs_dim) for p in parts)
    got = tuple(getattr(p, "shape", type(p).__name__) for p in parts)
    require(ok, f"main net must map [1, {obs_dim + act_dim}] inputs to [1, {obs_dim}] or "
                f"(mean, logvar), got {got}")


def _build(obs_dim, act_dim, *, hidden, hnet_hidden, chunked, chunk_emb_dim, recurrent,
           gaussian, main_net, reference=True):
    """The main net and its hypernetwork (validated); offsets / scales from a reference init
    unless ``reference=False`` (shape rule only, enough for counting)."""
    for what, value in (("obs_dim", obs_dim), ("act_dim", act_dim)):
        require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                f"hnet: {what} must be a positive int, got {value!r}")
    _check_generator(tuple(hnet_hidden), chunked, chunk_emb_dim, recurrent)  # before any tracing
    net = DynamicsMLP(obs_dim, tuple(hidden), gaussian) if main_net is None else main_net
    shapes = main_net_shapes(net, obs_dim, act_dim)
    spec = weight_spec(shapes)  # validates the leaves before anything runs
    _check_main_output(net, shapes, obs_dim, act_dim)
    if reference:
        x = jnp.zeros((1, obs_dim + act_dim))
        spec = weight_spec(jax.jit(net.init)(jax.random.PRNGKey(0), x)["params"])
    hyper = HyperNetwork(spec, tuple(hnet_hidden), chunked, chunk_emb_dim, recurrent)
    return net, hyper


_BUILD_DEFAULTS = {"hidden": (32, 32), "hnet_hidden": (16, 16), "chunked": None,
                   "chunk_emb_dim": 8, "recurrent": False, "gaussian": False, "main_net": None}


def hnet_sizes(obs_dim: int, act_dim: int, num_tasks: int, *, emb_dim: int = 10,
               **options) -> dict[str, int]:
    """Parameter counts for :func:`hnet` with these options: ``main_weights`` (P, emitted per
    task), ``hypernetwork`` (θ, chunk embeddings included) and ``embeddings`` (T · emb_dim)."""
    build = {k: options.get(k, v) for k, v in _BUILD_DEFAULTS.items()}
    _, hyper = _build(obs_dim, act_dim, **build, reference=False)
    theta = jax.eval_shape(hyper.init, jax.random.PRNGKey(0), jnp.zeros((emb_dim,)))
    return {"main_weights": hyper.spec.total, "hypernetwork": param_count(theta),
            "embeddings": num_tasks * emb_dim}


def hnet(obs_dim: int, act_dim: int, num_tasks: int, *, hidden: Sequence[int] = (32, 32),
         hnet_hidden: Sequence[int] = (16, 16), emb_dim: int = 10, beta: float = 0.05,
         lookahead: bool = True, chunked: int | None = None, chunk_emb_dim: int = 8,
         recurrent: bool = False, gaussian: bool = False, lr: float = 1e-3, clip: float = 5.0,
         main_net: nn.Module | None = None) -> ContinualMethod:
    """HyperCRL as a :class:`~hystax.world_models.continual_api.ContinualMethod` (see the module doc).

    ``hidden`` / ``gaussian`` shape the default main net ``DynamicsMLP(obs_dim, hidden,
    gaussian)``; ``main_net`` replaces it with any flax module mapping [..., n + m] to [..., n]
    or (mean, logvar), with only a ``params`` collection. ``hnet_hidden``, ``chunked`` (chunk
    size or None), ``chunk_emb_dim`` and ``recurrent`` choose the generator; ``beta`` weighs the
    output regulariser, ``lookahead`` evaluates it at θ + Δθ; optimiser
    ``clip_by_global_norm(clip)`` then Adam(``lr``) over θ and the embeddings.
    """
    require(isinstance(num_tasks, int) and not isinstance(num_tasks, bool) and num_tasks > 0,
            f"hnet: num_tasks must be a positive int, got {num_tasks!r}")
    require(isinstance(emb_dim, int) and emb_dim > 0,
            f"hnet: emb_dim must be a positive int, got {emb_dim!r}")
    require(beta >= 0, f"hnet: beta must be >= 0, got {beta!r}")
    require(lr > 0 and clip > 0,
            f"hnet: lr and clip must be positive, got lr={lr!r}, clip={clip!r}")
    net, hyper = _build(obs_dim, act_dim, hidden=hidden, hnet_hidden=hnet_hidden, chunked=chunked,
                        chunk_emb_dim=chunk_emb_dim, recurrent=recurrent, gaussian=gaussian,
                        main_net=main_net)
    spec, rows = hyper.spec, jnp.arange(num_tasks)
    opt = optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))

    @jax.jit
    def init(key: jax.Array) -> HnetState:
        k_theta, k_emb = jax.random.split(key)
        theta = hyper.init(k_theta, jnp.zeros((emb_dim,)))
        emb = jax.random.normal(k_emb, (num_tasks, emb_dim))
        return HnetState(theta=theta, emb=emb, opt_state=opt.init({"theta": theta, "emb": emb}),
                         targets=jnp.zeros((num_tasks, spec.total)),
                         target_mask=jnp.zeros(num_tasks, bool),
                         norms=stacked_normalisers(obs_dim, act_dim, num_tasks),
                         seen=jnp.zeros(num_tasks, bool))

    @jax.jit
    def snapshot(theta, emb):
        return jax.vmap(lambda e: hyper.apply(theta, e))(emb)

    def begin_task(state: HnetState, task: int, data: Transitions) -> HnetState:
        """Fit the task's normaliser, snapshot h*(e_j) for every other seen task j, reset Adam."""
        check_task(method, task)
        data = check_transitions(data, obs_dim, act_dim)
        state = set_normaliser(state, task, data)
        mask = state.seen & (rows != task)
        targets = jnp.where(mask[:, None], snapshot(state.theta, state.emb), 0.0)
        opt_state = opt.init({"theta": state.theta, "emb": state.emb})
        return state.replace(targets=targets, target_mask=mask, opt_state=opt_state)

    def update(state: HnetState, batch: Transitions, task) -> tuple[HnetState, dict]:
        """One gradient step on task ``task`` (may be traced): metrics loss, task_loss, reg."""
        params = {"theta": state.theta, "emb": state.emb}
        norm = task_normaliser(state, task)

        def task_loss(p):
            weights = unflatten_weights(spec, hyper.apply(p["theta"], p["emb"][task]))
            return delta_loss(net, weights, norm, batch)

        def reg(theta):
            return output_regulariser(hyper, theta, jax.lax.stop_gradient(state.emb),
                                      state.targets, state.target_mask)

        task_value, grads = jax.value_and_grad(task_loss)(params)
        theta = state.theta
        if lookahead:  # θ + Δθ: the detached step the optimiser would take on the task loss
            step, _ = opt.update(grads, state.opt_state, params)
            theta = optax.apply_updates(theta, jax.lax.stop_gradient(step["theta"]))
        if beta > 0:
            reg_value, reg_grads = jax.value_and_grad(reg)(theta)
            grads = {"theta": jax.tree.map(lambda g, r: g + beta * r, grads["theta"], reg_grads),
                     "emb": grads["emb"]}
        else:
            reg_value = reg(theta)
        updates, opt_state = opt.update(grads, state.opt_state, params)
        new = optax.apply_updates(params, updates)
        emb = jnp.where((rows == task)[:, None], new["emb"], state.emb)  # old embeddings frozen
        metrics = {"loss": task_value + beta * reg_value, "task_loss": task_value, "reg": reg_value}
        return state.replace(theta=new["theta"], emb=emb, opt_state=opt_state), metrics

    def end_task(state: HnetState, task: int, data: Transitions) -> HnetState:
        check_task(method, task)
        return state

    def params_for(state: HnetState, task) -> DynamicsParams:
        if isinstance(task, int):
            check_task(method, task)
        weights = unflatten_weights(spec, hyper.apply(state.theta, state.emb[task]))
        return DynamicsParams(weights=weights, norm=task_normaliser(state, task))

    method = ContinualMethod(name="HyperCRL", obs_dim=obs_dim, act_dim=act_dim,
                             num_tasks=num_tasks, init=init, begin_task=begin_task, update=update,
                             end_task=end_task, params_for=params_for,
                             predict=functools.partial(predict_next, net))
    return method


def hnet_chunked(obs_dim: int, act_dim: int, num_tasks: int, *,
                 chunked: int | None = HNET_CHUNK_SIZE, hnet_hidden: Sequence[int] = (32, 32),
                 **options) -> ContinualMethod:
    """:func:`hnet` with a chunked generator (chunks of ``HNET_CHUNK_SIZE``, hidden [32, 32])."""
    return hnet(obs_dim, act_dim, num_tasks, chunked=chunked, hnet_hidden=hnet_hidden, **options)

