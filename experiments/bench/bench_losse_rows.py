"""One row of ``hystax bench losse`` (:mod:`.bench_losse`): the sparse or dense FTL update, or
dense RLS (:mod:`hystax.experiments.reference.rls`), at one feature count D on the same encoded
transitions: compiled ahead of time with the state donated, one warm-up chunk, then timed
chunks; the state's bytes, the compiled update's memory analysis, the peak RSS growth and the
held-out error. A row too big to run gives its state's bytes only (``jax.eval_shape``).

``sizes`` is a :class:`.bench_losse.Sizes`; ``encoded`` and ``holdout`` are (indices [N, k],
values [N, k], targets [N, d]).
"""

from __future__ import annotations

import functools
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from hystax.experiments.bench.bench_tools import compile_ahead, memory_analysis, timed, tree_bytes
from hystax.experiments.bench.rss_probe import RssProbe
from hystax.experiments.reference.rls import rls_init, rls_predict, rls_update_batch
from hystax.world_models import ftl

METHODS = ("sparse", "dense", "rls")
LABELS = {"sparse": "sparse FTL", "dense": "dense FTL", "rls": "dense RLS"}
RIDGE = 1e-3


def _chunks(encoded, size: int, count: int, start: int = 0) -> list[tuple]:
    idx, val, y = encoded
    return [(idx[s:s + size], val[s:s + size], y[s:s + size])
            for s in range(start, start + count * size, size)]


def _time_calls(fn, state, calls: list[tuple]) -> tuple[float, list[float], object, dict]:
    """Compile ``fn`` (state donated) on the first call's shapes, run the first call as a
    warm-up, time the rest; returns (compile_s, [seconds per timed call], final state, the
    compiled memory analysis)."""
    compile_s, compiled = compile_ahead(fn, state, *calls[0], donate_argnums=0)
    state = jax.block_until_ready(compiled(state, *calls[0]))
    times = []
    for call in calls[1:]:
        seconds, state = timed(lambda s=state, c=call: compiled(s, *c))
        times.append(seconds)
    return compile_s, times, state, memory_analysis(compiled, ("temp", "argument", "output",
                                                               "alias"))


def _timing_fields(compile_s: float, times: list[float], chunk: int) -> dict:
    call_s = statistics.median(times)
    return {"compile_s": compile_s, "chunk": chunk, "timed_calls": len(times),
            "call_s": call_s, "call_s_all": times, "us_per_transition": call_s / chunk * 1e6,
            "us_per_transition_min": min(times) / chunk * 1e6,
            "transitions_per_s": chunk / call_s}


def _holdout_mse(prediction, targets) -> float:
    return float(np.mean((np.asarray(prediction) - np.asarray(targets)) ** 2))


def _weight_stats(weights) -> dict:
    w = np.asarray(weights)
    finite = np.isfinite(w)
    return {"weights_finite": bool(finite.all()), "weights_nonfinite": int((~finite).sum()),
            "max_abs_weight": float(np.abs(w[finite]).max()) if finite.any() else None}


def bench_ftl(sizes, layout: str, encoder, encoded, holdout) -> dict:
    D = encoder.num_features
    config = ftl.FTLConfig(D, sizes.out_dim, ridge=RIDGE, layout=layout,
                           row_capacity=sizes.row_capacity)
    calls = _chunks(encoded, sizes.chunk, 1 + sizes.reps)

    def chunk_update(state, indices, values, targets):
        return ftl.update_batch(config, state, indices, values, targets)

    with RssProbe() as probe:
        state = jax.block_until_ready(ftl.init(config))
        state_bytes = tree_bytes(state)
        compile_s, times, state, analysis = _time_calls(chunk_update, state, calls)
        row = {"method": layout, "state_bytes": state_bytes,
               "row_capacity": config.capacity if layout == "sparse" else None,
               **_timing_fields(compile_s, times, sizes.chunk),
               "holdout_mse": _holdout_mse(ftl.predict(state, holdout[0], holdout[1]), holdout[2]),
               **_weight_stats(state.weights), "rejected": int(state.rejected),
               "overflow": int(state.overflow)}
    row.update(memory_analysis=analysis, **probe.record())
    if layout == "sparse":  # after the probe: this count allocates more than the update does
        used = np.asarray(jax.jit(lambda c: jnp.sum(c < D, axis=1))(state.store.columns))
        touched = used[used > 0]
        row.update(rows_touched=int(touched.size),
                   row_fill_mean=float(touched.mean()) if touched.size else 0.0,
                   row_fill_max=int(used.max()))
    del state
    return row


def bench_rls(sizes, encoder, encoded, holdout) -> dict:
    D = encoder.num_features
    calls = _chunks(encoded, sizes.rls_chunk, 1 + sizes.rls_reps)
    with RssProbe() as probe:
        carry = jax.block_until_ready(rls_init(D, sizes.out_dim, RIDGE))
        state_bytes = tree_bytes(carry)
        compile_s, times, carry, analysis = _time_calls(rls_update_batch, carry, calls)
        row = {"method": "rls", "state_bytes": state_bytes, "row_capacity": None,
               **_timing_fields(compile_s, times, sizes.rls_chunk),
               "holdout_mse": _holdout_mse(rls_predict(carry, holdout[0], holdout[1]), holdout[2]),
               **_weight_stats(carry[1])}
        del carry
    row.update(memory_analysis=analysis, **probe.record())
    return row


def skipped_row(method: str, sizes, D: int, limit: int) -> dict:
    if method == "rls":
        shapes = jax.eval_shape(functools.partial(rls_init, D, sizes.out_dim, RIDGE))
        state_bytes = tree_bytes(shapes)
    else:
        config = ftl.FTLConfig(D, sizes.out_dim, ridge=RIDGE, layout=method,
                               row_capacity=sizes.row_capacity)
        state_bytes = tree_bytes(jax.eval_shape(functools.partial(ftl.init, config)))
    return {"method": method, "state_bytes": state_bytes, "skipped": True,
            "reason": f"D = {D:,} > {limit:,}: the [D, D] state alone is {state_bytes / 2**30:.1f} "
                      f"GiB"}
