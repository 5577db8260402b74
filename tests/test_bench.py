"""Smoke test of the PPO benchmark (``hystax bench ppo --quick``); no timing thresholds."""

from __future__ import annotations

import json
import math

import pytest

from hystax.experiments.bench import bench_ppo

ROW_KEYS = {"name", "seeds", "updates_per_seed", "env_steps", "env_steps_per_s", "run_s",
            "run_s_all", "compile_s"}


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow  # like the other benchmarks' smoke runs
def test_quick_bench_writes_json_with_positive_numbers(tmp_path, capsys):
    out = tmp_path / "nested" / "bench_ppo.json"
    returned = bench_ppo.main(quick=True, out=str(out))
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["env"] == "CartPole-v1"
    assert {"devices", "jax", "cpu_count"} <= set(results["machine"])
    assert results["machine"]["devices"]

    rows = results["rows"]
    assert len(rows) == 4
    for row in rows:
        assert ROW_KEYS <= set(row), row["name"]
        for key in ("seeds", "env_steps", "env_steps_per_s", "run_s"):
            assert _positive(row[key]), (row["name"], key, row[key])
        assert math.isfinite(row["compile_s"]) and row["compile_s"] >= 0
        assert all(_positive(t) for t in row["run_s_all"])
    single, many, mono, chunked = rows
    assert single["seeds"] == 1 and many["seeds"] > 1
    assert mono["env_steps"] == chunked["env_steps"]
    assert chunked["num_chunks"] >= 2

    overhead = results["overhead"]
    assert _positive(overhead["ratio"])
    assert math.isclose(overhead["ratio"], chunked["run_s"] / mono["run_s"])
    assert isinstance(overhead["within_target"], bool)
    assert results["runner_train_end_to_end_s"] is None  # only the full run times runner.train
    assert returned["overhead"]["ratio"] == overhead["ratio"]

    captured = capsys.readouterr()
    printed = captured.out
    assert "| PPO-MLP CartPole-v1, 1 seed |" in printed and "ratio" in printed
    assert "bench ppo: 3/3 parts" in captured.err  # the progress bar
    assert results["table"] in printed


@pytest.mark.slow
def test_quick_memory_bench_writes_tables(tmp_path):
    from hystax.experiments.bench import bench_memory

    results = bench_memory.main(quick=True, out=str(tmp_path / "bench_memory.json"))
    assert {r["model"] for r in results["layers"]} == {"s5", "s5-before", "s4d", "gru", "lstm"}
    assert all(_positive(r["fwd_bwd_ms"]) for r in results["layers"])
    assert [r["memory"] for r in results["ppo"]] == ["s5", "s5-before", "gru", "gru-before"]
    assert all(_positive(r["ratio_to_gru"]) and _positive(r["ratio_to_before"])
               for r in results["ppo"])
    speed = {r["memory"]: r["env_steps_per_s"] for r in results["ppo"]}
    s5, s5_before, gru, _ = results["ppo"]
    assert s5["ratio_to_before"] == pytest.approx(speed["s5"] / speed["s5-before"])
    assert gru["ratio_to_before"] == pytest.approx(speed["gru"] / speed["gru-before"])
    assert s5_before["ratio_to_gru"] == pytest.approx(speed["s5-before"] / speed["gru-before"])
    assert [r["layers"] for r in results["compile"]] == [1, 2]


def test_memory_bench_runs_the_new_cells_in_its_full_run_only():
    from hystax.experiments.bench import bench_memory

    full, quick = bench_memory.FULL, bench_memory.QUICK
    assert set(bench_memory.NEW_CELLS) <= set(full.layer_models) & set(full.ppo_memories)
    assert not set(bench_memory.NEW_CELLS) & {*quick.layer_models, *quick.ppo_memories}
    row = {"memory": "lru", "num_envs": 8, "num_steps": 64, "env_steps_per_s": 1000.0,
           "compile_s": 1.0, "ratio_to_gru": 1.5, "ratio_to_before": None}  # no lru-before
    table = bench_memory.format_tables({"layers": [], "ppo": [row], "compile": []})
    assert "| lru | 8 × 64 | 1,000 | 1.0 | 1.50 | — |" in table
