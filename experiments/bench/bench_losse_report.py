"""The tables and the figure of ``hystax bench losse`` (:mod:`.bench_losse`): update time per
transition and memory against the number of features D, for sparse FTL, dense FTL and dense
RLS."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hystax.experiments.bench.bench_losse_rows import LABELS, METHODS
from hystax.figure import new_figure, save_figure


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
        temp = r["memory_analysis"].get("temp_bytes")
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
    """Time per transition vs D (log-log, with D and D² guides) and memory vs D."""
    rows = results["rows"]
    fig, axes = new_figure(figsize=(11, 4.4), ncols=2)
    ax_t, ax_m = axes[0]
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
    save_figure(fig, path)
    print(f"wrote {path}")
    return Path(path)
