"""The two layouts of Losse-FTL's statistics A = Σ v vᵀ (see :mod:`.ftl`): a dense [D, D]
matrix, or sorted sparse rows with the residual r = A W. Each function reads or updates either:
accumulate v vᵀ, read A_SS and A_{S,:}W, follow a change of W_S."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["DenseStore", "SparseStore", "accumulate", "active_block", "diagonal", "follow_change",
           "matvec", "rows_times_weights", "sparse_block", "sparse_rows_add"]


@struct.dataclass
class DenseStore:
    """A [D, D] (stored units: true A = ``scale`` · A)."""

    matrix: jax.Array


@struct.dataclass
class SparseStore:
    """A row by row: ``columns`` [D, C] int32 sorted (D marks an empty slot), ``entries`` [D, C];
    ``residual`` r = A W [D, d] (stored units)."""

    columns: jax.Array
    entries: jax.Array
    residual: jax.Array


def sparse_rows_add(columns, entries, S, outer, active):
    """Add ``outer`` [k, k] at (S, S) to the sorted rows S (``S`` ascending) by a sort-free merge.

    ``active`` [k]: the features with a non-zero value (only their pairs are new). Returns
    (columns, entries, the symmetric [k, k] increment actually stored, dropped entries).
    A new pair (i, j) is stored only if both rows i and j have room for all their new columns;
    otherwise both (i, j) and (j, i) are dropped and |outer_ij| is added to A_ii and A_jj, which
    keeps the stored A symmetric positive semi-definite (a slightly stronger ridge). Existing
    entries are never evicted.
    """
    D, C = columns.shape
    k = S.shape[0]
    rows_cols, rows_vals = columns[S], entries[S]

    def locate(row_cols, row_active):
        raw = jnp.searchsorted(row_cols, S)
        found = row_cols[jnp.minimum(raw, C - 1)] == S
        new = ~found & row_active & active  # a zero value (a rejected sample) takes no slot
        return raw, found, new, jnp.sum(row_cols < D) + jnp.sum(new) <= C

    raw, found, new, fits = jax.vmap(locate)(rows_cols, active)
    new_kept = new & fits[:, None] & fits[None, :]
    dropped = new & ~new_kept
    compensation = jnp.sum(jnp.where(dropped, jnp.abs(outer), 0.0), axis=1)
    stored = jnp.where(found | new_kept, outer, 0.0) + jnp.diag(compensation)

    def insert(row_cols, row_vals, raw, found, new, add):
        row_vals = row_vals.at[jnp.minimum(raw, C - 1)].add(jnp.where(found, add, 0.0))
        count = jnp.cumsum(new.astype(jnp.int32))
        new_below = jnp.concatenate([jnp.zeros(1, jnp.int32), count])
        dest_old = jnp.arange(C, dtype=jnp.int32) + new_below[jnp.searchsorted(S, row_cols)]
        dest_new = jnp.where(new, raw + count - 1, C + k)
        cols = (jnp.full(C, D, jnp.int32).at[dest_old].set(row_cols, mode="drop")
                .at[dest_new].set(S, mode="drop"))
        vals = (jnp.zeros(C, row_vals.dtype).at[dest_old].set(row_vals, mode="drop")
                .at[dest_new].set(jnp.where(new, add, 0.0), mode="drop"))
        return cols, vals

    new_cols, new_vals = jax.vmap(insert)(rows_cols, rows_vals, raw, found, new_kept, stored)
    return (columns.at[S].set(new_cols), entries.at[S].set(new_vals), stored,
            jnp.sum(dropped).astype(jnp.int32))


def sparse_block(columns, entries, S):
    """A_SS [k, k] read from the sorted rows S."""
    C = columns.shape[1]

    def one_row(row_cols, row_vals):
        pos = jnp.clip(jnp.searchsorted(row_cols, S), 0, C - 1)
        return jnp.where(row_cols[pos] == S, row_vals[pos], 0.0)

    return jax.vmap(one_row)(columns[S], entries[S])


def accumulate(store, S, outer, active, weights):
    """A[S, S] += outer; returns (store, dropped entries)."""
    if isinstance(store, DenseStore):
        return DenseStore(store.matrix.at[S[:, None], S[None, :]].add(outer)), jnp.int32(0)
    columns, entries, stored, dropped = sparse_rows_add(store.columns, store.entries, S, outer,
                                                         active)
    residual = store.residual.at[S].add(stored @ weights[S])
    return SparseStore(columns, entries, residual), dropped.astype(jnp.int32)


def active_block(store, S):
    if isinstance(store, DenseStore):
        return store.matrix[S[:, None], S[None, :]]
    return sparse_block(store.columns, store.entries, S)


def rows_times_weights(store, S, weights):
    """A_{S,:} W [k, d]."""
    if isinstance(store, DenseStore):
        return store.matrix[S] @ weights
    return store.residual[S]


def follow_change(store, S, delta):
    """Keep r = AW after W_S += delta [k, d]."""
    if isinstance(store, DenseStore):
        return store
    cols = store.columns[S]                                   # [k, C]
    change = store.entries[S][..., None] * delta[:, None, :]  # [k, C, d]
    residual = store.residual.at[cols.reshape(-1)].add(change.reshape(-1, delta.shape[-1]),
                                                       mode="drop")
    return store.replace(residual=residual)


def matvec(store, weights):
    """A W [D, d] (stored units)."""
    if isinstance(store, DenseStore):
        return store.matrix @ weights
    padded = jnp.concatenate([weights, jnp.zeros((1, weights.shape[1]), weights.dtype)])

    def rows(args):
        cols, vals = args
        return jnp.einsum("c,cd->d", vals, padded[cols])

    return jax.lax.map(rows, (store.columns, store.entries), batch_size=1024)


def diagonal(store):
    if isinstance(store, DenseStore):
        return jnp.diagonal(store.matrix)
    rows = jnp.arange(store.columns.shape[0])[:, None]
    return jnp.sum(jnp.where(store.columns == rows, store.entries, 0.0), axis=1)
