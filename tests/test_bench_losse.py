"""Smoke test of the Losse-FTL scaling benchmark (``python -m hystax.experiments.bench.bench_losse
--quick``); no timing thresholds."""

from __future__ import annotations

import json
import math

import pytest
from hystax.experiments.bench import bench_losse


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_bins_for_picks_the_closest_feature_count():
    # L = 50, ρ = 2: D = 50 (n + 1)^2
    assert bench_losse.bins_for(10**3, 50, 2) == 3        # 800 (1,250 is 250 away)
    assert bench_losse.bins_for(10**4, 50, 2) == 13       # 9,800
    assert bench_losse.bins_for(10**5, 50, 2) == 44       # 101,250
    assert bench_losse.bins_for(10**6, 50, 2) == 140      # 994,050
    assert bench_losse.bins_for(10, 50, 2) == 1           # at least one bin


@pytest.mark.slow  # the quick benchmark takes ~25 s: kept out of the default run
def test_quick_bench_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "nested" / "bench_losse.json"
    returned = bench_losse.main(quick=True, out=str(out))
    results = json.loads(out.read_text())
    sizes = bench_losse.QUICK
    assert results["quick"] is True and results["benchmark"] == "losse"
    assert {"benchmark", "quick", "sizes", "ridge", "machine", "rows", "summary", "plot",
            "total_s", "table"} <= set(results)
    assert {"devices", "jax", "cpu_count", "loadavg_at_start"} <= set(results["machine"])
    assert _positive(results["total_s"])
    png = out.with_suffix(".png")
    assert results["plot"] == str(png) and png.stat().st_size > 0

    rows = results["rows"]
    assert [(r["target"], r["method"]) for r in rows] == [
        (t, m) for t in sizes.targets for m in bench_losse.METHODS]
    k = sizes.num_groups * 2**sizes.group_dim
    for row in rows:
        assert row["active"] == k  # fixed k at every D
        assert row["num_features"] == sizes.num_groups * (row["bins"] + 1) ** sizes.group_dim
        assert _positive(row["state_bytes"])
        if row["skipped"]:
            continue
        for key in ("us_per_transition", "call_s", "compile_s", "transitions_per_s"):
            assert _positive(row[key]), (row["method"], row["target"], key)
        assert len(row["call_s_all"]) == row["timed_calls"]
        assert math.isclose(row["us_per_transition"], row["call_s"] / row["chunk"] * 1e6)
        assert row["us_per_transition_min"] <= row["us_per_transition"]
        assert {"rss_peak_growth_bytes", "ru_maxrss_before_bytes", "ru_maxrss_after_bytes",
                "memory_analysis", "holdout_mse", "weights_finite"} <= set(row)
        assert row["ru_maxrss_after_bytes"] > 0 and row["ru_maxrss_before_bytes"] > 0
        if row["rss_peak_reset"]:  # Linux: the row's own peak over its starting RSS
            assert row["rss_peak_growth_bytes"] >= 0
        if row["method"] == "sparse":
            assert row["row_capacity"] == sizes.row_capacity
            assert {"overflow", "row_fill_mean", "row_fill_max"} <= set(row)
            assert row["row_fill_max"] <= sizes.row_capacity
            # the sparse layout stores [D, C] columns and entries: linear in D at fixed C
            assert row["state_bytes"] >= row["num_features"] * sizes.row_capacity * 8
        else:
            assert row["weights_finite"] and math.isfinite(row["holdout_mse"])
            assert row["state_bytes"] >= row["num_features"] ** 2 * 4  # a dense [D, D] float32

    blas = results["blas"]
    assert {"libraries", "sweep_threads", "solve_us_threads_as_found",
            "solve_us_one_thread"} <= set(blas)
    assert _positive(blas["solve_us_threads_as_found"]) and _positive(blas["solve_us_one_thread"])

    summary = results["summary"]
    keys = {f"{t:.0e}" for t in sizes.targets}
    for suffix in ("", "_median"):  # from the fastest call, from the median call
        assert set(summary[f"sparse_growth_vs_first{suffix}"]) == keys
        assert summary[f"sparse_growth_vs_first{suffix}"][f"{sizes.targets[0]:.0e}"] == 1.0
        assert set(summary[f"rls_over_sparse{suffix}"]) == keys  # RLS runs at every quick D
        assert all(_positive(v) for v in summary[f"rls_over_sparse{suffix}"].values())
        assert summary[f"sparse_target_met{suffix}"] is None  # no 1e5 in the quick sizes
    assert returned["summary"] == summary
    printed = capsys.readouterr().out
    assert results["table"] in printed and "us/tr" in printed
