"""Follow-The-Leader linear regression on sparse features, with sparse incremental updates.

FTL is the ridge solution over all data so far, W* = (A/N + εI)⁻¹ b/N with A = ΦᵀΦ [D, D],
b = ΦᵀY [D, d]. A sample (indices S [k], values v [k], target y [d]) adds vvᵀ to A[S, S] and
v yᵀ to b[S], then re-solves the active block only (one block Gauss–Seidel step):

    W_S ← (A_SS/N + εI)⁻¹ (b_S − A_{S,¬S} W_{¬S}) / N

Two storage layouts give the same numbers (``FTLConfig.layout``):

- ``"dense"``: A as a dense [D, D] array; A_{S,:}W costs O(k·D·d). For D up to about 10⁴.
- ``"sparse"``: A row by row in a fixed-capacity sorted sparse format (``row_capacity`` column
  slots per row, ELLPACK) plus the residual r = AW [D, d], kept exact incrementally: adding vvᵀ
  changes r_S, and a change Δ of W_S changes r by A[:, S]Δ (A is symmetric, so these are the
  stored rows S). An update costs O(k·C·(log C + d) + k³), independent of D; memory O(D·C).
  C must be at least k. A new pair that does not fit both of its rows is dropped from both and
  its magnitude added to their diagonals (A stays symmetric PSD; existing entries are never
  evicted); the dropped entries (each pair twice) are counted in ``overflow``, and the
  statistics are then not exact:
  raise ``row_capacity`` (:func:`check` warns).

Exponential forgetting (``forget`` γ < 1) weighs a sample t steps old by γ^t: A, b and N decay
lazily through one scalar, so an update stays sparse (the scalar is folded into the statistics
when it falls below 1e-15, a ``lax.cond``: under ``vmap`` that becomes a select, an O(size)
pass per sample). Samples with non-finite values or targets (or, inside jit, indices out of
range) are rejected (statistics untouched) and counted in ``rejected``; called eagerly,
out-of-range or repeated indices are errors.

The one-step block update tracks the ridge solution closely in predictions but not exactly in
weights (features outside S keep the values they had when last active); :func:`refine` runs
conjugate-gradient iterations on the whole ridge system (O(iterations · nnz(A))) to reach it,
and ``update_batch(..., refine_iterations=m)`` does so after a batch.

>>> config = FTLConfig(num_features=1800, out_dim=3, ridge=1e-3)
>>> state = init(config)
>>> state = update(config, state, indices, values, target)      # [k], [k], [d]
>>> state = update_batch(config, state, indices, values, targets)  # [B, k], [B, k], [B, d]
>>> y = predict(state, indices, values)                          # [..., d]
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.core.errors import require

__all__ = [
    "LAYOUTS",
    "DenseStore",
    "FTLConfig",
    "FTLState",
    "FTLWarning",
    "SparseStore",
    "check",
    "dense_matrix",
    "init",
    "predict",
    "refine",
    "ridge_solution",
    "update",
    "update_batch",
]
from hystax.world_models.ftl_store import (
    DenseStore,
    SparseStore,
    accumulate,
    active_block,
    diagonal,
    follow_change,
    matvec,
    rows_times_weights,
)

LAYOUTS = ("auto", "dense", "sparse")
_DENSE_AUTO_LIMIT = 10_000  # "auto": dense A (400 MB) up to this many features
_RESCALE_BELOW = 1e-15  # forgetting: fold the lazy scale into the statistics below this


@dataclasses.dataclass(frozen=True)
class FTLConfig:
    """Static configuration (hashable; pass it as a static argument to ``jax.jit``).

    num_features D, out_dim d; ``ridge`` ε in (A/N + εI); ``forget`` γ in (0, 1] (1: plain FTL);
    ``layout`` "dense", "sparse" or "auto" (dense up to 10,000 features); ``row_capacity`` C:
    stored columns per row of the sparse layout (capped at D).
    """

    num_features: int
    out_dim: int
    ridge: float = 1e-3
    forget: float = 1.0
    layout: str = "auto"
    row_capacity: int = 1024

    def __post_init__(self):
        for name in ("num_features", "out_dim", "row_capacity"):
            value = getattr(self, name)
            require(isinstance(value, (int, np.integer)) and value >= 1,
                    f"FTL {name} must be a positive integer, got {value!r}")
        require(self.num_features < 2**31 - 1,
                f"FTL num_features={self.num_features} does not fit the int32 feature index")
        require(np.isfinite(self.ridge) and self.ridge > 0,
                f"FTL ridge must be finite and > 0, got {self.ridge!r}")
        require(np.isfinite(self.forget) and 0 < self.forget <= 1,
                f"FTL forget must be in (0, 1], got {self.forget!r}")
        require(self.layout in LAYOUTS,
                f"FTL layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    @property
    def storage(self) -> str:
        """The layout in use: "auto" resolved by D."""
        if self.layout != "auto":
            return self.layout
        return "dense" if self.num_features <= _DENSE_AUTO_LIMIT else "sparse"

    @property
    def capacity(self) -> int:
        return min(self.row_capacity, self.num_features)


@struct.dataclass
class FTLState:
    """weights W [D, d]; ``moments`` b [D, d] and ``store`` A in stored units (true = scale ·
    stored); ``count`` N (the forgetting-weighted sample count); ``rejected`` samples skipped
    (non-finite, or indices out of range); ``overflow`` entries of A the sparse layout dropped
    for lack of row capacity (a pair counts twice)."""

    weights: jax.Array
    moments: jax.Array
    store: DenseStore | SparseStore
    count: jax.Array
    scale: jax.Array
    rejected: jax.Array
    overflow: jax.Array


def init(config: FTLConfig) -> FTLState:
    """Empty statistics and zero weights."""
    D, d = config.num_features, config.out_dim
    def zeros():
        return jnp.zeros((D, d), jnp.float32)

    if config.storage == "dense":
        store = DenseStore(jnp.zeros((D, D), jnp.float32))
    else:
        C = config.capacity
        store = SparseStore(jnp.full((D, C), D, jnp.int32), jnp.zeros((D, C), jnp.float32), zeros())
    return FTLState(zeros(), zeros(), store, jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32),
                    jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def _rescaled(state: FTLState, factor) -> FTLState:
    """Multiply the stored statistics by ``factor`` and divide the lazy scale by it."""
    store = state.store
    if isinstance(store, DenseStore):
        store = DenseStore(store.matrix * factor)
    else:
        store = SparseStore(store.columns, store.entries * factor, store.residual * factor)
    return state.replace(moments=state.moments * factor, store=store, scale=state.scale / factor)


# --- the algorithm -----------------------------------------------------------------------------

def _is_traced(*arrays) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in arrays)


def _check_sample(config: FTLConfig, indices, values, target, batched: bool) -> None:
    lead = "[B, k]" if batched else "[k]"
    want = 2 if batched else 1
    require(indices.ndim == want and values.shape == indices.shape,
            f"FTL update expects indices and values {lead} of one shape, got "
            f"{tuple(indices.shape)} and {tuple(values.shape)}")
    require(jnp.issubdtype(indices.dtype, jnp.integer),
            f"FTL indices must be integers, got {indices.dtype}")
    require(target.shape == (*indices.shape[:-1], config.out_dim),
            f"FTL targets must be [{'B, ' if batched else ''}{config.out_dim}] (out_dim), got "
            f"{tuple(target.shape)}")
    if not _is_traced(indices):  # concrete indices: range and distinctness
        flat = np.asarray(indices).reshape(-1, indices.shape[-1])
        require(flat.size == 0 or (flat.min() >= 0 and flat.max() < config.num_features),
                f"FTL indices must lie in [0, {config.num_features}), got "
                f"[{flat.min()}, {flat.max()}]")
        ordered = np.sort(flat, axis=1)
        require(not np.any(ordered[:, 1:] == ordered[:, :-1]),
                "FTL indices of one sample must be distinct")
    require(config.storage != "sparse" or config.capacity >= indices.shape[-1],
            f"FTL sparse layout needs row_capacity >= k active features ({indices.shape[-1]}), "
            f"got {config.capacity}")


def _update(config: FTLConfig, state: FTLState, indices, values, target) -> FTLState:
    """One sample; jit-able. Non-finite samples leave the statistics untouched."""
    S = indices.astype(jnp.int32)
    ok = (jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(target))
          & jnp.all((S >= 0) & (S < config.num_features)))
    S = jnp.where(ok, S, jnp.arange(S.shape[0], dtype=jnp.int32) % config.num_features)
    order = jnp.argsort(S)  # the sparse rows' merge wants S ascending
    S, values = S[order], values[order]
    v = jnp.where(ok, values, 0.0).astype(jnp.float32)
    y = jnp.where(ok, target, 0.0).astype(jnp.float32)
    gamma = jnp.where(ok, jnp.float32(config.forget), 1.0)
    count = gamma * state.count + ok.astype(jnp.float32)
    state = state.replace(scale=state.scale * gamma)
    if config.forget < 1.0:
        state = jax.lax.cond(state.scale < _RESCALE_BELOW, lambda s: _rescaled(s, s.scale),
                             lambda s: s, state)
    v_stored = v / state.scale
    outer = v_stored[:, None] * v[None, :]
    store, dropped = accumulate(state.store, S, outer, v != 0, state.weights)
    moments = state.moments.at[S].add(v_stored[:, None] * y[None, :])
    # (A_SS + λI) W_S = b_S − A_{S,¬S} W_¬S in stored units, λ = Nε / scale
    lam = jnp.maximum(count, 1.0) * config.ridge / state.scale
    block = active_block(store, S)
    w_S = state.weights[S]
    rhs = moments[S] - rows_times_weights(store, S, state.weights) + block @ w_S
    eye = jnp.eye(S.shape[0], dtype=jnp.float32)
    new_w_S = jnp.linalg.solve(block + lam * eye, rhs)
    delta = jnp.where(ok, new_w_S - w_S, 0.0)
    store = follow_change(store, S, delta)
    return state.replace(weights=state.weights.at[S].add(delta), moments=moments, store=store,
                         count=count, rejected=state.rejected + (~ok).astype(jnp.int32),
                         overflow=state.overflow + dropped)


@functools.partial(jax.jit, static_argnums=0)
def _update_jit(config, state, indices, values, target):
    return _update(config, state, indices, values, target)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _update_batch_jit(config, state, indices, values, targets, refine_iterations):
    def step(s, sample):
        return _update(config, s, *sample), None

    state, _ = jax.lax.scan(step, state, (indices, values, targets))
    if refine_iterations:
        state = _refine(config, state, refine_iterations)
    return state


def update(config: FTLConfig, state: FTLState, indices, values, target) -> FTLState:
    """One sample: indices [k] (distinct), values [k], target [d]. Jit-able (called eagerly it
    runs a compiled step)."""
    indices, values, target = jnp.asarray(indices), jnp.asarray(values), jnp.asarray(target)
    _check_sample(config, indices, values, target, batched=False)
    if _is_traced(indices, values, target, state.weights):
        return _update(config, state, indices, values, target)
    return _update_jit(config, state, indices, values, target)


def update_batch(config: FTLConfig, state: FTLState, indices, values, targets,
                 refine_iterations: int = 0) -> FTLState:
    """B samples in order ([B, k], [B, k], [B, d]), then ``refine_iterations`` CG iterations.

    The same numbers as B calls of :func:`update`; rejected samples are counted and skipped.
    """
    indices, values, targets = jnp.asarray(indices), jnp.asarray(values), jnp.asarray(targets)
    _check_sample(config, indices, values, targets, batched=True)
    require(isinstance(refine_iterations, (int, np.integer)) and refine_iterations >= 0,
            f"refine_iterations must be an integer >= 0, got {refine_iterations!r}")
    if _is_traced(indices, values, targets, state.weights):
        return _update_batch_jit.__wrapped__(config, state, indices, values, targets,
                                             int(refine_iterations))
    return _update_batch_jit(config, state, indices, values, targets, int(refine_iterations))


def predict(state: FTLState, indices, values) -> jax.Array:
    """Predictions [..., d] for encodings indices/values [..., k]: gather + dot."""
    return jnp.einsum("...k,...kd->...d", values, state.weights[indices])


def _refine(config: FTLConfig, state: FTLState, iterations: int) -> FTLState:
    lam = jnp.maximum(state.count, 1.0) * config.ridge / state.scale
    diag = diagonal(state.store)[:, None] + lam

    def system(w):
        return matvec(state.store, w) + lam * w

    weights, _ = jax.scipy.sparse.linalg.cg(system, state.moments, x0=state.weights,
                                            maxiter=iterations, M=lambda r: r / diag)
    store = state.store
    if isinstance(store, SparseStore):
        store = store.replace(residual=matvec(store, weights))
    return state.replace(weights=weights, store=store)


@functools.partial(jax.jit, static_argnums=(0, 2))
def refine(config: FTLConfig, state: FTLState, iterations: int = 200) -> FTLState:
    """``iterations`` preconditioned conjugate-gradient steps on (A/N + εI)W = b/N from the
    current weights: O(iterations · nnz(A) · d). Converges to the exact ridge solution."""
    return _refine(config, state, iterations)


class FTLWarning(UserWarning):
    """Samples were rejected, or the sparse layout dropped pairs for lack of row capacity."""


def check(state: FTLState) -> dict:
    """Rejected samples and dropped pairs (summed over any leading seed axes); warns with
    :class:`FTLWarning` when either is non-zero. Call it on the host after training."""
    report = {"rejected": int(np.sum(state.rejected)), "overflow": int(np.sum(state.overflow))}
    if report["rejected"]:
        warnings.warn(f"FTL rejected {report['rejected']} samples with non-finite values or "
                      "targets or out-of-range indices (the statistics exclude them)",
                      FTLWarning, stacklevel=2)
    if report["overflow"]:
        warnings.warn(f"FTL sparse layout dropped {report['overflow']} entries of A for lack of "
                      "row capacity: the statistics are not exact; raise row_capacity",
                      FTLWarning, stacklevel=2)
    return report


def dense_matrix(config: FTLConfig, state: FTLState) -> jax.Array:
    """A [D, D] in true units (a reference for tests and small D)."""
    store = state.store
    if isinstance(store, DenseStore):
        return store.matrix * state.scale
    D = config.num_features
    rows = jnp.broadcast_to(jnp.arange(D)[:, None], store.columns.shape)
    dense = jnp.zeros((D, D + 1), jnp.float32).at[rows, store.columns].add(store.entries)
    return dense[:, :D] * state.scale


def ridge_solution(config: FTLConfig, state: FTLState) -> np.ndarray:
    """The exact FTL weights (A/N + εI)⁻¹ b/N [D, d] by a dense float64 solve (small D only)."""
    A = np.asarray(dense_matrix(config, state), np.float64)
    b = np.asarray(state.moments, np.float64) * float(state.scale)
    N = max(float(state.count), 1.0)
    return np.linalg.solve(A / N + config.ridge * np.eye(A.shape[0]), b / N)
