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
   cannot), in jax (:mod:`hystax.experiments.reference.rls`: jitted, one ``lax.scan`` over the
   chunk, P donated), timed the same way where D <= ``rls_max_features``; the ratio RLS time
   / sparse FTL time at each D;
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

import dataclasses
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from hystax.experiments.bench.bench_losse_report import format_table, plot
from hystax.experiments.bench.bench_losse_rows import (
    LABELS,
    METHODS,
    RIDGE,
    bench_ftl,
    bench_rls,
    skipped_row,
)
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.experiments.bench.blas_threads import set_blas_threads, solve_timings
from hystax.progress import PartBar
from hystax.world_models import losse


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
                row = part(name, skipped_row, method, sizes, D, limit)
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


def main(quick: bool = False, out: str = "runs/bench_losse.json", progress: bool = True) -> dict:
    """Run the benchmark, print the tables, write JSON to ``out`` and the plot next to it."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    start = time.perf_counter()
    k = sizes.num_groups * 2**sizes.group_dim  # the [k, k] solve of every FTL update
    blas = {**solve_timings(k, sizes.out_dim, sizes.solve_reps),
            "sweep_threads": sizes.blas_threads}
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


cli = bench_cli(main, "losse", __doc__)

if __name__ == "__main__":
    sys.exit(cli())
