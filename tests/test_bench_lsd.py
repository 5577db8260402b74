"""Smoke test of the LSD benchmark (``hystax bench lsd --quick``); no timing thresholds."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hystax.agents.bandits.lsd.planning import cycle_table
from hystax.agents.bandits.lsd.rounding import CyclePlan, choose_arm, filler_lp
from hystax.experiments.bench import bench_lsd
from hystax.experiments.reference import numpy_choose_arm, numpy_filler_lp


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


def test_numpy_lp_rounding_reference_mirrors_the_filler_lp_and_choose_arm():
    """The numpy learner's pieces against the JAX ones: the HiGHS leave-one-out LP gives the
    same filler and value as ``filler_lp``, and ``numpy_choose_arm`` the same arm as
    ``choose_arm`` (nobody asking, so the filler pool decides, included)."""
    rng = np.random.default_rng(0)
    k, ci, cp = 4, 3, 2
    for trial in range(6):
        table = rng.random((k, cp + ci))
        if trial == 0:
            table[:] = 1.0  # the learner's first plan: every arm unseen, all tied
        rewards, plays, idle = cycle_table(table[:, cp:], table[:, :cp])
        with jax.enable_x64(True):
            lp, filler = filler_lp(jnp.asarray(rewards), plays, idle)
        value, y, np_filler = numpy_filler_lp(rewards, plays, idle)
        assert np_filler == int(filler) and not y[np_filler].any()
        assert math.isclose(value, float(lp.value), rel_tol=0, abs_tol=1e-7)
    for _ in range(200):
        plan = (rng.random(k) < 0.6, rng.integers(1, cp + 2, k), rng.integers(0, ci + 1, k),
                rng.integers(0, 6, k))
        plan = (plan[0], np.where(plan[0], plan[1], 0), np.where(plan[0], plan[2], 0), plan[3])
        z = np.where(rng.random(k) < 0.5, -rng.integers(1, cp + 1, k), rng.integers(1, ci + 1, k))
        t = int(rng.integers(0, 50))
        table = rng.integers(0, 4, (k, cp + ci)) / 4.0  # ties, to check the tie rule too
        jax_plan = CyclePlan(*(jnp.asarray(a) for a in plan))
        expect = int(choose_arm(jax_plan, jnp.asarray(t), jnp.asarray(z), jnp.asarray(table), ci))
        assert numpy_choose_arm(plan, t, z, table, cp) == expect
