"""Losse-FTL: update time and memory vs the number of features D at a fixed number of active
features k; sparse FTL vs dense FTL vs dense recursive least squares (RLS).

``python -m hystax.experiments.bench.bench_losse [--quick] [--out PATH]`` measures, in float32:

1. the time of one FTL update (:func:`~hystax.world_models.ftl.update_batch`) per transition
   against D. The features are Losse encodings (:mod:`hystax.world_models.losse`) of a fixed
   stream of random inputs [6] (standard normal; an obs [4] + action [2]) with L = 50 groups of
   ρ = 2 coordinates, so k = L·2^ρ = 200 active features at every D; the bins n are chosen so
   that D = L(n+1)^ρ is the closest to each target (1e3, 1e4, 1e5, 1e6). The targets [6] (Δobs
   [4], reward, done) are a fixed smooth function of the inputs. Every method gets the same
   transitions, already encoded (encoding is not timed). One call is ``jax.jit`` of
   ``update_batch`` over a chunk of transitions (one ``lax.scan``), compiled ahead of time
   (``lower().compile()``, reported apart) with the state donated, so the statistics are updated
   in place; one warm-up call, then ``reps`` timed calls (``block_until_ready``): the median and
   the fastest call, divided by the chunk size (on a shared machine the fastest is the least
   disturbed by other work; the growth ratios and the 2x target are given for both). The
   sparse layout (``row_capacity`` C fixed across D, below the smallest D, so the comparison is
   at fixed k and C) runs at every D; the dense layout ([D, D] A) where
   D <= ``dense_max_features``;
2. a dense RLS baseline on the SAME features: Sherman–Morrison updates of a dense [D, D] inverse
   P (P₀ = I/ε), O(D²) per update (the product P φ uses φ's sparsity, the rank-one update of P
   cannot), written here in jax (jitted, one ``lax.scan`` over the chunk, P donated), timed the
   same way where D <= ``rls_max_features``; the ratio RLS time / sparse FTL time at each D;
3. memory against D: the bytes of each state (sum of the leaves' nbytes; from
   ``jax.eval_shape`` for the layouts too big to run), the compiled chunk update's
   ``memory_analysis()`` (temporary / argument / output bytes) and the process's peak RSS
   growth while the row ran (VmHWM, reset through ``/proc/self/clear_refs`` before the row, minus
   VmRSS at its start; compiling counts too), next to ``ru_maxrss`` before and after the row.
   ``ru_maxrss`` is cumulative over the process (a high-water mark), but on Linux the same reset
   clears it too, so where the reset worked its "after" value is the row's own peak (and may be
   below the "before" value, an earlier row's peak); where it did not, only a row that sets a new
   process peak shows a growth.

The [k, k] solve of every FTL update goes to the LAPACK/BLAS jax takes from scipy (OpenBLAS),
whose multi-threaded triangular solve is slow on a small busy machine: the sweep runs with
OpenBLAS limited to ``blas_threads`` (1; restored afterwards), and the jitted solve alone is
timed with the threads as found and with one thread (``blas``).

Each row also reports the mean squared error of the updated model on held-out transitions (all
three learn the same regression; RLS's ridge is ε, FTL's Nε), the sparse layout's row fill and
the pairs it dropped for lack of row capacity (``overflow``: random i.i.d. inputs make every
row's co-active set large, so C overflows at every D here; the timing does not depend on it
much, but the statistics are then no longer exact: the dropped pairs' magnitudes go to the
diagonal, a stronger ridge, visible in the held-out error).

Results go to stdout as markdown tables, to ``out`` as JSON (with machine info) and a plot next
to it (same stem, ``.png``): time per transition vs D (log-log) and memory vs D.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.progress import PartBar
from hystax.world_models import ftl, losse

import hystax  # noqa: F401  (before jax starts a backend: the XLA:CPU workaround)

METHODS = ("sparse", "dense", "rls")
LABELS = {"sparse": "sparse FTL", "dense": "dense FTL", "rls": "dense RLS"}
RIDGE = 1e-3


@dataclasses.dataclass(frozen=True)
class Sizes:
    targets: tuple              # wanted D (the closest L(n+1)^ρ is used)
    num_groups: int             # L
    group_dim: int              # ρ; k = L·2^ρ
    input_dim: int
    out_dim: int
    row_capacity: int           # C of the sparse layout, the same at every D
    chunk: int                  # transitions per timed FTL call
    reps: int                   # timed FTL calls (median), after one warm-up call
    dense_max_features: int     # dense FTL only up to this D
    rls_max_features: int       # RLS only up to this D
    rls_chunk: int
    rls_reps: int
    holdout: int                # held-out transitions for the error check
    blas_threads: int | None    # OpenBLAS threads during the sweep (None: left as found)
    solve_reps: int             # calls of the [k, k] solve timed in the BLAS check


FULL = Sizes(targets=(10**3, 10**4, 10**5, 10**6), num_groups=50, group_dim=2, input_dim=6,
             out_dim=6, row_capacity=512, chunk=64, reps=9, dense_max_features=20_000,
             rls_max_features=20_000, rls_chunk=16, rls_reps=3, holdout=256,
             blas_threads=1, solve_reps=20)
QUICK = Sizes(targets=(10**3, 10**4), num_groups=50, group_dim=2, input_dim=6, out_dim=6,
              row_capacity=512, chunk=16, reps=2, dense_max_features=20_000,
              rls_max_features=20_000, rls_chunk=4, rls_reps=2, holdout=64,
              blas_threads=1, solve_reps=5)


def bins_for(target: int, num_groups: int, group_dim: int) -> int:
    """The bins n >= 1 whose D = L(n+1)^ρ is the closest to ``target`` (ties: the smaller)."""
    n = max(1, round((target / num_groups) ** (1 / group_dim)) - 1)
    candidates = [m for m in (n - 1, n, n + 1, n + 2) if m >= 1]
    return min(candidates, key=lambda m: (abs(num_groups * (m + 1) ** group_dim - target), m))


def tree_bytes(tree) -> int:
    """Sum of the leaves' nbytes (arrays or ``jax.ShapeDtypeStruct``)."""
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


# --- data --------------------------------------------------------------------------------------


def make_stream(sizes: Sizes, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` transitions: inputs [count, input_dim] ~ N(0, 1) from a fixed seed and targets
    [count, out_dim] (Δobs, reward, done) a fixed function of them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count, sizes.input_dim)).astype(np.float32)
    obs = sizes.out_dim - 2
    mix = rng.standard_normal((sizes.input_dim, obs)).astype(np.float32)
    mix /= math.sqrt(sizes.input_dim)
    delta = 0.1 * np.sin(x @ mix)
    reward = np.cos(x[:, :1]) - 0.1 * np.sum(x[:, obs:] ** 2, axis=1, keepdims=True)
    done = (np.abs(x[:, :1]) > 2.0).astype(np.float32)
    y = np.concatenate([delta, reward, done], axis=1)[:, : sizes.out_dim]
    return x, y.astype(np.float32)


def _chunks(encoded, size: int, count: int, start: int = 0) -> list[tuple]:
    idx, val, y = encoded
    return [(idx[s:s + size], val[s:s + size], y[s:s + size])
            for s in range(start, start + count * size, size)]


# --- memory ------------------------------------------------------------------------------------


def _status_kib() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class RssProbe:
    """Peak RSS while a row runs: VmHWM reset through /proc/self/clear_refs, minus VmRSS at the
    start; plus ``ru_maxrss`` before and after (a high-water mark over the process, which the
    same reset clears on Linux)."""

    def __enter__(self):
        gc.collect()
        self.maxrss_before = _maxrss_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.rss_before = _status_kib().get("VmRSS")
        return self

    def __exit__(self, *exc):
        status = _status_kib()
        self.maxrss_after = _maxrss_bytes()
        self.hwm = status.get("VmHWM")
        return False

    def record(self) -> dict:
        clean = self.reset and self.hwm is not None and self.rss_before is not None
        return {"rss_before_bytes": None if self.rss_before is None else self.rss_before * 1024,
                "rss_peak_bytes": None if self.hwm is None else self.hwm * 1024,
                "rss_peak_growth_bytes": (self.hwm - self.rss_before) * 1024 if clean else None,
                "rss_peak_reset": self.reset,
                "ru_maxrss_before_bytes": self.maxrss_before,
                "ru_maxrss_after_bytes": self.maxrss_after,
                "ru_maxrss_growth_bytes": self.maxrss_after - self.maxrss_before}


def _memory_analysis(compiled) -> dict:
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001  (not every backend implements it)
        m = None
    if m is None:
        return {}
    return {key: int(getattr(m, f"{key}_size_in_bytes")) for key in ("temp", "argument", "output",
                                                                     "alias")
            if hasattr(m, f"{key}_size_in_bytes")}


# --- BLAS threads ------------------------------------------------------------------------------
# jax's CPU linear algebra (the [k, k] solve of every FTL update: LU, then triangular solves) calls
# the LAPACK/BLAS that scipy ships (OpenBLAS). Its multi-threaded triangular solve with several
# right-hand sides is very slow on a small, busy machine (threads spin while the cores are taken),
# so the sweep runs with OpenBLAS limited to ``blas_threads`` and ``blas_check`` measures the solve
# both ways.

_SETTERS = ("scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads", "openblas_set_num_threads64_")
_GETTERS = ("scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads", "openblas_get_num_threads64_")


def _openblas_libraries() -> list[tuple[str, object, object]]:
    """(path, setter, getter) of every OpenBLAS library loaded in this process (Linux)."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
            found.append((path, setter, getter))
    return found


def set_blas_threads(threads: int | dict | None) -> dict[str, int]:
    """Set every loaded OpenBLAS to ``threads`` (an int, or {path: threads} as returned before);
    returns {path: threads before}. None leaves them alone."""
    before = {}
    for path, setter, getter in _openblas_libraries():
        before[path] = int(getter())
        wanted = threads.get(path) if isinstance(threads, dict) else threads
        if wanted is not None:
            setter(int(wanted))
    return before


def _solve_us(k: int, d: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    r = rng.standard_normal((k, k)).astype(np.float32)
    a, b = r @ r.T / k + np.eye(k, dtype=np.float32), rng.standard_normal((k, d)).astype(np.float32)
    solve = jax.jit(jnp.linalg.solve)
    jax.block_until_ready(solve(a, b))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(solve(a, b))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def blas_check(sizes: Sizes) -> dict:
    """The FTL update's [k, k] x [k, d] solve (jitted ``jnp.linalg.solve``) with the BLAS threads
    as found and with one thread."""
    jax.block_until_ready(jnp.linalg.solve(jnp.eye(2), jnp.ones(2)))  # loads jax's LAPACK
    k = sizes.num_groups * 2**sizes.group_dim
    found = set_blas_threads(None)
    default_us = _solve_us(k, sizes.out_dim, sizes.solve_reps)
    set_blas_threads(1)
    one_us = _solve_us(k, sizes.out_dim, sizes.solve_reps)
    set_blas_threads(found)
    return {"libraries": {os.path.basename(p): t for p, t in found.items()},
            "controllable": bool(found), "sweep_threads": sizes.blas_threads,
            "solve_shape": [k, k, sizes.out_dim], "solve_us_threads_as_found": default_us,
            "solve_us_one_thread": one_us}


# --- timing ------------------------------------------------------------------------------------


def _time_calls(fn, state, calls: list[tuple]) -> tuple[float, list[float], object, dict]:
    """Compile ``fn`` (state donated) on the first call's shapes, run the first call as a
    warm-up, time the rest; returns (compile_s, [seconds per timed call], final state, the
    compiled memory analysis)."""
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(state, *calls[0]).compile()
    compile_s = time.perf_counter() - start
    state = jax.block_until_ready(compiled(state, *calls[0]))
    times = []
    for call in calls[1:]:
        start = time.perf_counter()
        state = jax.block_until_ready(compiled(state, *call))
        times.append(time.perf_counter() - start)
    return compile_s, times, state, _memory_analysis(compiled)


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


def bench_ftl(sizes: Sizes, layout: str, encoder, encoded, holdout) -> dict:
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


# --- dense recursive least squares (the O(D²) baseline) ----------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def rls_init(num_features: int, out_dim: int, ridge: float = RIDGE) -> tuple[jax.Array, jax.Array]:
    """(P = (εI)⁻¹ [D, D], W [D, d]): the ridge solution of no data (jitted: P is built in one
    buffer)."""
    return (jnp.eye(num_features, dtype=jnp.float32) / ridge,
            jnp.zeros((num_features, out_dim), jnp.float32))


def rls_update_batch(carry, indices, values, targets):
    """Sherman–Morrison RLS over a chunk [B, k], [B, k], [B, d] in order (one ``lax.scan``):
    P ← P − Pφ(Pφ)ᵀ/(1 + φᵀPφ), W ← W + Pφ (y − Wᵀφ)ᵀ/(1 + φᵀPφ); φ is sparse (indices,
    values), P symmetric, so Pφ = P[S]ᵀv costs O(Dk) and the rank-one update of P O(D²)."""

    def step(carry, sample):
        P, W = carry
        S, v, y = sample
        ok = jnp.all(jnp.isfinite(v)) & jnp.all(jnp.isfinite(y))
        v = jnp.where(ok, v, 0.0)
        p_phi = v @ P[S]                                  # [D]
        denom = 1.0 + v @ p_phi[S]
        gain = p_phi / denom
        error = jnp.where(ok, y - v @ W[S], 0.0)          # [d]
        return (P - gain[:, None] * p_phi[None, :], W + gain[:, None] * error[None, :]), None

    carry, _ = jax.lax.scan(step, carry, (indices, values, targets))
    return carry


def rls_predict(carry, indices, values):
    return jnp.einsum("...k,...kd->...d", values, carry[1][indices])


def bench_rls(sizes: Sizes, encoder, encoded, holdout) -> dict:
    D = encoder.num_features
    calls = _chunks(encoded, sizes.rls_chunk, 1 + sizes.rls_reps)
    with RssProbe() as probe:
        carry = jax.block_until_ready(rls_init(D, sizes.out_dim))
        state_bytes = tree_bytes(carry)
        compile_s, times, carry, analysis = _time_calls(rls_update_batch, carry, calls)
        row = {"method": "rls", "state_bytes": state_bytes, "row_capacity": None,
               **_timing_fields(compile_s, times, sizes.rls_chunk),
               "holdout_mse": _holdout_mse(rls_predict(carry, holdout[0], holdout[1]), holdout[2]),
               **_weight_stats(carry[1])}
        del carry
    row.update(memory_analysis=analysis, **probe.record())
    return row


def _skipped(method: str, sizes: Sizes, D: int, limit: int) -> dict:
    if method == "rls":
        state_bytes = tree_bytes(jax.eval_shape(functools.partial(rls_init, D, sizes.out_dim)))
    else:
        config = ftl.FTLConfig(D, sizes.out_dim, ridge=RIDGE, layout=method,
                               row_capacity=sizes.row_capacity)
        state_bytes = tree_bytes(jax.eval_shape(functools.partial(ftl.init, config)))
    return {"method": method, "state_bytes": state_bytes, "skipped": True,
            "reason": f"D = {D:,} > {limit:,}: the [D, D] state alone is {state_bytes / 2**30:.1f} "
                      f"GiB"}


# --- the sweep ---------------------------------------------------------------------------------


def bench_sweep(sizes: Sizes, progress: bool = True) -> list[dict]:
    """Every method at every target feature count (one bar tick each); rows as in the JSON."""
    need = max(sizes.chunk * (1 + sizes.reps), sizes.rls_chunk * (1 + sizes.rls_reps))
    x, y = make_stream(sizes, need + sizes.holdout)
    rows = []
    part = PartBar(len(sizes.targets) * len(METHODS), "bench losse", progress)
    for target in sizes.targets:
        bins = bins_for(target, sizes.num_groups, sizes.group_dim)
        encoder = losse.make_encoder(jax.random.PRNGKey(0), sizes.input_dim, sizes.num_groups,
                                     bins, sizes.group_dim)
        D, k = encoder.num_features, encoder.num_active
        idx, val = losse.encode(encoder, x)
        idx, val = np.asarray(idx), np.asarray(val)
        encoded = (idx[:need], val[:need], y[:need])
        holdout = (idx[need:], val[need:], y[need:])
        common = {"target": target, "bins": bins, "num_features": D, "active": k}
        for method in METHODS:
            limit = {"sparse": None, "dense": sizes.dense_max_features,
                     "rls": sizes.rls_max_features}[method]
            name = f"D = {D:,} {LABELS[method]}"
            if limit is not None and D > limit:
                row = part(name, _skipped, method, sizes, D, limit)
            elif method == "rls":
                row = part(name, bench_rls, sizes, encoder, encoded, holdout)
            else:
                row = part(name, bench_ftl, sizes, method, encoder, encoded, holdout)
            rows.append({**common, "skipped": False, **row})
            if not row.get("skipped"):
                print(f"  D = {D:>9,} {LABELS[method]:>10}: {row['us_per_transition']:10,.0f} us/"
                      f"transition (compile {row['compile_s']:.1f} s)", flush=True)
    part.close()
    return rows


def summarize(rows: list[dict], sizes: Sizes) -> dict:
    """Growth of the sparse time with D and the baselines' times over sparse FTL's, from the
    median call (``..._median``) and from the fastest call (the plain keys: the least disturbed
    by other work on a shared machine)."""
    timed = {(r["method"], r["target"]): r for r in rows if not r["skipped"]}
    first = sizes.targets[0]
    summary = {"first_target": first, "sparse_target_max_growth_1e3_to_1e5": 2.0}
    for suffix, field in (("", "us_per_transition_min"), ("_median", "us_per_transition")):
        base = timed[("sparse", first)][field]
        summary[f"sparse_growth_vs_first{suffix}"] = {
            f"{t:.0e}": timed[("sparse", t)][field] / base for t in sizes.targets}
        for t in (10**5, 10**6):
            if ("sparse", t) in timed:
                key = f"sparse_t{int(math.log10(t))}_over_t{int(math.log10(first))}{suffix}"
                summary[key] = timed[("sparse", t)][field] / base
        key = f"sparse_t5_over_t{int(math.log10(first))}{suffix}"
        summary[f"sparse_target_met{suffix}"] = (bool(summary[key] <= 2.0)
                                                 if key in summary and first == 10**3 else None)
        for method in ("rls", "dense"):
            summary[f"{method}_over_sparse{suffix}"] = {
                f"{t:.0e}": timed[(method, t)][field] / timed[("sparse", t)][field]
                for t in sizes.targets if (method, t) in timed}
    sparse = [r for r in rows if r["method"] == "sparse"]
    summary["sparse_overflow"] = {f"{r['target']:.0e}": r["overflow"] for r in sparse}
    summary["sparse_weights_finite"] = {f"{r['target']:.0e}": r["weights_finite"] for r in sparse}
    return summary


# --- report ------------------------------------------------------------------------------------


def _mb(x) -> str:
    return "n/a" if x is None else f"{x / 2**20:,.1f}"


def _ratio(x) -> str:
    return "—" if x is None else f"{x:,.3g}"


def format_table(results: dict) -> str:
    rows, sizes = results["rows"], results["sizes"]
    by = {(r["method"], r["target"]): r for r in rows}
    header = (f"Losse L = {sizes['num_groups']}, ρ = {sizes['group_dim']} (k = "
              f"{rows[0]['active']} active), input {sizes['input_dim']}, out {sizes['out_dim']}; "
              f"sparse row_capacity C = {sizes['row_capacity']}; us per transition = median "
              f"(and fastest) call / chunk (FTL chunk {sizes['chunk']}, RLS chunk "
              f"{sizes['rls_chunk']})")
    blas = results["blas"]
    header += (f"; OpenBLAS threads in the sweep: {blas['sweep_threads']} (as found: "
               f"{', '.join(f'{n} {t}' for n, t in blas['libraries'].items()) or 'none found'}). "
               f"The update's [{blas['solve_shape'][0]}, {blas['solve_shape'][1]}] x "
               f"[{blas['solve_shape'][1]}, {blas['solve_shape'][2]}] solve: "
               f"{blas['solve_us_threads_as_found']:,.0f} us with the threads as found, "
               f"{blas['solve_us_one_thread']:,.0f} us with one")
    lines = [header, "",
             ("| D target | n | D | sparse FTL us/tr | dense FTL us/tr | dense RLS us/tr "
              "| sparse t(D)/t(first) | RLS / sparse | dense / sparse |"),
             ("| | | | median / min | median / min | median / min | median / min | median / min "
              "| median / min |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summary = results["summary"]

    def cell(method, t):
        r = by[(method, t)]
        return ("—" if r["skipped"] else
                f"{r['us_per_transition']:,.0f} / {r['us_per_transition_min']:,.0f}")

    for t in sizes["targets"]:
        s = by[("sparse", t)]
        key = f"{t:.0e}"
        ratios = [" / ".join(_ratio(summary[f"{what}{suffix}"].get(key))
                             for suffix in ("_median", ""))
                  for what in ("sparse_growth_vs_first", "rls_over_sparse", "dense_over_sparse")]
        lines.append(f"| {t:.0e} | {s['bins']} | {s['num_features']:,} | {cell('sparse', t)} | "
                     f"{cell('dense', t)} | {cell('rls', t)} | {' | '.join(ratios)} |")
    lines += ["", ("| D | method | state MB | compiled temp MB | peak RSS growth MB "
                   "| RSS start → row peak MB | compile s | held-out MSE | max abs W "
                   "| overflow | row fill mean / max |"),
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["skipped"]:
            lines.append(f"| {r['num_features']:,} | {LABELS[r['method']]} | "
                         f"{_mb(r['state_bytes'])} (not run) | | | | | | | | |")
            continue
        temp = r["memory_analysis"].get("temp")
        fill = (f"{r['row_fill_mean']:.0f} / {r['row_fill_max']}" if r["method"] == "sparse"
                else "")
        overflow = f"{r['overflow']:,}" if "overflow" in r else ""
        big = "nan/inf" if not r["weights_finite"] else f"{r['max_abs_weight']:.3g}"
        lines.append(f"| {r['num_features']:,} | {LABELS[r['method']]} | {_mb(r['state_bytes'])} | "
                     f"{_mb(temp)} | {_mb(r['rss_peak_growth_bytes'])} | "
                     f"{_mb(r['rss_before_bytes'])} → {_mb(r['rss_peak_bytes'])} | "
                     f"{r['compile_s']:.1f} | {r['holdout_mse']:.4g} | {big} | {overflow} | "
                     f"{fill} |")
    growth = [f"t({k})/t(first) = {v:.2f} ({summary['sparse_growth_vs_first_median'][k]:.2f})"
              for k, v in summary["sparse_growth_vs_first"].items()]
    met = {True: "met", False: "NOT met", None: "n/a"}
    lines += ["", (f"Sparse FTL update time growth with D, fastest call (median call): "
                   f"{', '.join(growth)}. Target, at most 2x from 1e3 to 1e5: "
                   f"{met[summary['sparse_target_met']]} "
                   f"({met[summary['sparse_target_met_median']]} by the median).")]
    overflowed = [k for k, v in summary["sparse_overflow"].items() if v]
    if overflowed:
        diverged = [k for k, v in summary["sparse_weights_finite"].items() if not v]
        lines.append(f"Sparse rows that overflowed C = {sizes['row_capacity']} (statistics no "
                     f"longer exact): D target {', '.join(overflowed)}; non-finite weights at "
                     f"{', '.join(diverged) or 'none'}.")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.4))
    colors = {"sparse": "C0", "dense": "C1", "rls": "C3"}
    styles = {"sparse": "--", "dense": "--", "rls": ":"}  # dense FTL and RLS states: same size
    for method in METHODS:
        run = [r for r in rows if r["method"] == method and not r["skipped"]]
        if run:
            ax_t.loglog([r["num_features"] for r in run], [r["us_per_transition"] for r in run],
                        "o-", color=colors[method], label=f"{LABELS[method]} (median)")
            ax_t.loglog([r["num_features"] for r in run],
                        [r["us_per_transition_min"] for r in run], "_", color=colors[method],
                        markersize=10)
        every = [r for r in rows if r["method"] == method]
        ax_m.loglog([r["num_features"] for r in every], [r["state_bytes"] / 2**20 for r in every],
                    styles[method], color=colors[method], alpha=0.6,
                    label=f"{LABELS[method]} state bytes (line: all D, dots: run)")
        ax_m.loglog([r["num_features"] for r in run], [r["state_bytes"] / 2**20 for r in run], "o",
                    color=colors[method])
        peak = [r for r in run if r.get("rss_peak_growth_bytes")]
        ax_m.loglog([r["num_features"] for r in peak],
                    [r["rss_peak_growth_bytes"] / 2**20 for r in peak], "x", color=colors[method],
                    markersize=9, label=f"{LABELS[method]} peak RSS growth")
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        ax_m.axhline(ram / 2**20, color="k", lw=0.8, alpha=0.6,
                     label=f"this machine's RAM ({ram / 2**30:.0f} GiB)")
    except (ValueError, OSError, AttributeError):
        pass
    sparse = [r for r in rows if r["method"] == "sparse"]
    rls = [r for r in rows if r["method"] == "rls" and not r["skipped"]]
    ds = np.array([r["num_features"] for r in rows])
    ds = np.array([ds.min(), ds.max()])
    d0, t0 = sparse[0]["num_features"], sparse[0]["us_per_transition"]
    ax_t.loglog(ds, t0 * ds / d0, ":", color="gray", label="∝ D (from sparse FTL)")
    if rls:
        d0, t0 = rls[0]["num_features"], rls[0]["us_per_transition"]
        ax_t.loglog(ds, t0 * (ds / d0) ** 2, "-.", color="gray", alpha=0.6,
                    label="∝ D² (from RLS)")
    top = max(r["us_per_transition"] for r in rows if not r["skipped"])
    bottom = min(r["us_per_transition_min"] for r in rows if not r["skipped"])
    ax_t.set_ylim(bottom / 2, top * 30)
    sizes = results["sizes"]
    ax_t.set(xlabel="features D", ylabel="update time per transition (µs; bars: fastest call)",
             title=f"update time, k = {sparse[0]['active']} active, C = {sizes['row_capacity']}")
    ax_m.set(xlabel="features D", ylabel="MiB", title="memory")
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def main(quick: bool = False, out: str = "runs/bench_losse.json", progress: bool = True) -> dict:
    """Run the benchmark, print the tables, write JSON to ``out`` and the plot next to it."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    start = time.perf_counter()
    blas = blas_check(sizes)
    found = set_blas_threads(sizes.blas_threads)
    try:
        rows = bench_sweep(sizes, progress)
    finally:
        set_blas_threads(found)
    png = Path(out).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    results = {"benchmark": "losse", "quick": quick, "sizes": dataclasses.asdict(sizes),
               "ridge": RIDGE, "machine": machine, "blas": blas, "rows": rows,
               "summary": summarize(rows, sizes), "plot": str(png)}
    plot(results, png)
    return finish(results, format_table(results), start, out)


def cli(argv: list[str] | None = None) -> int:
    return bench_cli(main, "losse", __doc__, argv)


if __name__ == "__main__":
    sys.exit(cli())
