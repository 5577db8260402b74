"""Smoke test of the LSD benchmark (``hystax bench lsd --quick``); no timing thresholds."""

from __future__ import annotations

import json
import math

import pytest

from hystax.experiments import bench_lsd


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.slow  # the quick benchmark takes 12-25 s: kept out of the default run
def test_quick_bench_writes_json_with_positive_numbers_and_lp_values_agree(tmp_path, capsys):
    out = tmp_path / "nested" / "bench_lsd.json"
    returned = bench_lsd.main(quick=True, out=str(out))
    results = json.loads(out.read_text())
    sizes = bench_lsd.QUICK
    assert results["quick"] is True and results["benchmark"] == "lsd"
    assert {"devices", "jax", "cpu_count"} <= set(results["machine"])
    assert results["machine"]["devices"]

    dp = results["dp"]
    assert len(dp) == len(sizes.dp_arms) + len(sizes.dp_horizons)
    for row in dp:
        for key in ("joint_states", "horizon", "dp_value_first_s", "dp_value_warm_s",
                    "dp_plan_first_s", "dp_plan_warm_s", "backups_per_s_warm", "opt"):
            assert _positive(row[key]), (row, key)
        assert row["joint_states"] == (sizes.dp_idle_cap + 1) ** row["arms"]

    lp = results["lp"]
    assert [r["arms"] for r in lp] == list(sizes.lp_arms)
    for row in lp:
        for key in ("variables", "dual_first_s", "dual_warm_s", "highs_first_s", "highs_warm_s",
                    "dual_value", "highs_value"):
            assert _positive(row[key]), (row, key)
        # the one check that could fail: the jax dual and HiGHS solve the same LP
        assert math.isclose(row["dual_value"], row["highs_value"], rel_tol=0, abs_tol=1e-7), row
    assert results["lp_agree"] is True
    assert results["lp_max_abs_diff"] == max(r["abs_diff"] for r in lp)

    assert [r["horizon"] for r in results["rounding"]] == list(sizes.rounding_horizons)
    for row in results["rounding"]:
        assert row["shape"] == [sizes.rounding_keys, row["horizon"]]
        assert all(_positive(row[k]) for k in ("first_s", "warm_s", "schedule_rounds_per_s"))

    learners = results["learners"]
    assert [(r["key"], r["impl"]) for r in learners] == [
        ("lp-rounding-ucb", "jax"), ("lp-rounding-ucb", "numpy"),
        ("isi-comb-ucb1", "jax"), ("isi-comb-ucb1", "numpy")]
    for row in learners:
        for key in ("seeds", "rounds", "rounds_per_s", "run_s", "reward_per_round_mean", "ratio"):
            assert _positive(row[key]), (row["name"], key)
        assert math.isfinite(row["compile_s"]) and row["compile_s"] >= 0
        assert all(_positive(t) for t in row["run_s_all"])
    for name, ratio in results["ratios"].items():
        assert _positive(ratio), name
    assert isinstance(results["isi_replay"]["match"], bool)
    assert returned["ratios"] == results["ratios"]

    printed = capsys.readouterr().out
    assert results["table"] in printed and "ratio (jax / numpy rounds/s)" in printed
