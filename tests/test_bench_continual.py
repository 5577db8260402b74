"""Smoke test of the continual world-model benchmark (``hystax bench continual --quick``); no
timing thresholds."""

from __future__ import annotations

import json
import math

import pytest

from hystax.experiments.bench import bench_continual


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.slow  # the quick benchmark takes 12-25 s: kept out of the default run
def test_quick_bench_writes_json_with_positive_numbers_and_hnet_state_is_constant(tmp_path, capsys):
    out = tmp_path / "nested" / "bench_continual.json"
    returned = bench_continual.main(quick=True, out=str(out))
    results = json.loads(out.read_text())
    sizes = bench_continual.QUICK
    assert results["quick"] is True and results["benchmark"] == "continual"
    assert {"devices", "jax", "cpu_count", "loadavg_at_start"} <= set(results["machine"])
    assert results["machine"]["devices"]
    assert _positive(results["total_s"])

    planning = results["planning"]
    cem = [r for r in planning if r["planner"] == "cem"]
    assert sorted({r["horizon"] for r in cem}) == sorted(sizes.plan_horizons)
    for horizon in sizes.plan_horizons:
        batched = [r["envs"] for r in cem if r["horizon"] == horizon and r["call"] == "plan_batch"]
        assert batched == list(sizes.plan_envs)
        assert [r["envs"] for r in cem if r["horizon"] == horizon and r["call"] == "single"] == [1]
    assert any(r["planner"] == "random" for r in planning)
    for row in planning:
        for key in ("compile_s", "call_s", "plans_per_s", "model_steps_per_s"):
            assert _positive(row[key]), (row, key)
        assert len(row["call_s_all"]) == sizes.plan_reps
        assert math.isclose(row["plans_per_s"], row["envs"] / row["call_s"])
        assert math.isfinite(row["predicted_best_return"])

    updates = results["updates"]
    assert [r["method"] for r in updates] == list(sizes.update_methods)
    for row in updates:
        for key in ("begin_s", "fit_s", "end_s", "per_task_s", "steps_per_s", "first_fit_s",
                    "state_bytes", "last_task_loss"):
            assert _positive(row[key]), (row["method"], key)
        assert row["compile_s"] >= 0 and len(row["tasks"]) == 1 + sizes.update_tasks

    memory = {m["method"]: m for m in results["memory"]}
    assert list(memory) == list(sizes.memory_methods)
    hnet = memory["hnet"]
    rows = hnet["rows"]
    assert [r["tasks_seen"] for r in rows] == list(range(1, sizes.memory_tasks + 1))
    assert [r["seen"] for r in rows] == [r["tasks_seen"] for r in rows]  # tasks really began
    # the check that could fail: hnet's state (bytes, shapes) is the same after every task
    assert all(_positive(r["state_bytes"]) for r in rows)
    assert len({r["state_bytes"] for r in rows}) == 1, [r["state_bytes"] for r in rows]
    assert len({r["signature"] for r in rows}) == 1
    assert len({r["program_sha"] for r in rows}) == 1
    if hnet["memory_analysis_available"]:
        for key in ("temp_bytes", "argument_bytes", "output_bytes"):
            assert len({r[key] for r in rows}) == 1, key
        assert rows[0]["argument_bytes"] >= rows[0]["state_bytes"]
    assert hnet["constant"] is True and results["memory_verdict"]["hnet_constant"] is True
    assert rows[0]["emb_bytes"] == hnet["capacity"] * 10 * 4  # [num_tasks, emb_dim] float32
    assert 0 < rows[0]["emb_share"] < rows[0]["emb_with_adam_share"] < 1

    capacity = [r for r in results["capacity"] if r["method"] == "hnet"]
    assert [r["capacity"] for r in capacity] == list(sizes.capacities)
    assert capacity[0]["state_bytes"] == rows[0]["state_bytes"]
    assert all(_positive(r["bytes_per_slot"]) for r in capacity[1:])

    assert returned["memory_verdict"] == results["memory_verdict"]
    printed = capsys.readouterr().out
    assert results["table"] in printed and "plans/s" in printed
