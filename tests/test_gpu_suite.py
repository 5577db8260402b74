"""The GPU suite (``hystax bench gpu``, issue 20) on a CPU: its ``--quick`` run records every
part and writes the table, a part that overruns its timeout records that, and the report
judges the four targets from the records (no timing thresholds)."""

from __future__ import annotations

import json
import math

from hystax.experiments.bench import gpu_suite
from hystax.experiments.bench.gpu_suite_report import by_part, format_report, targets


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_quick_suite_records_every_part_and_writes_the_table(tmp_path):
    out = tmp_path / "suite" / "gpu_suite.json"
    results = gpu_suite.main(quick=True, out=str(out), progress=False, commit="abc123")
    records = gpu_suite.read_records(out.with_suffix(".jsonl"))
    parts = by_part(records)
    assert sorted(parts) == list("abcde")
    for part, named in parts.items():
        status = named["status"]
        assert status["status"] == "ok", (part, status.get("log_tail"))
        assert named["start"]["quick"] is True and named["start"]["device_kind"]
        items = {k: v for k, v in named.items() if k not in ("start", "status")}
        assert items, part
        assert not [v["error"] for v in items.values() if "error" in v], part
    a, b, c = parts["a"], parts["b"], parts["c"]
    assert _positive(a["s5-4"]["env_steps_per_s"]) and _positive(a["s5-4"]["compile_s"])
    assert a["s5-4"]["layers"] == 4 and len(a["s5-4"]["call_s_all"]) == 2
    assert {r["model"] for r in b["layers-16"]["rows"]} == {"s5", "gru"}
    cartpole = [v for k, v in c.items() if k.startswith("cartpole")]
    assert cartpole
    for row in cartpole:
        assert _positive(row["ppo"]["env_steps_per_s"])
        assert _positive(row["random"]["env_steps_per_s"]) and _positive(row["ppo_over_random"])
    assert _positive(parts["d"]["dynlin-ucb"]["rounds_per_s"])
    assert [r["method"] for r in parts["e"]["losse-ftl"]["rows"]] == ["sparse"]

    table = out.with_suffix(".md").read_text()
    assert table == results["table"] and "commit abc123" in table
    assert len(results["targets"]) == 4
    assert all(t["verdict"] == "not measured (quick run)" for t in results["targets"])
    assert json.loads(out.read_text())["records"] == records


def test_a_part_past_its_timeout_records_that_and_its_log(tmp_path):
    jsonl = tmp_path / "gpu_suite.jsonl"
    record = gpu_suite.run_part("d", True, jsonl, timeout=0.2)
    assert record["status"] == "timeout" and record["returncode"] is None
    assert "log_tail" in record and (tmp_path / "gpu_suite.d.log").exists()
    assert gpu_suite.read_records(jsonl) == [json.loads(json.dumps(record))]


def _gpu_records(s5=130_000.0, compile_s=40.0, gru=20_000.0, ms=(2.0, 30.0)):
    start = {"name": "start", "platform": "gpu", "device_kind": "NVIDIA H200",
             "machine": {"jax": "0.11.2", "date": "2026-12-03T10:00:00"}, "quick": False}
    rows = [{"model": "s5", "length": 1024, "fwd_bwd_ms": ms[0], "ratio_to_s5": 1.0},
            {"model": "gru", "length": 1024, "fwd_bwd_ms": ms[1], "ratio_to_s5": ms[1] / ms[0]}]
    return [{"part": "a", **start},
            {"part": "a", "name": "s5-4", "env_steps_per_s": s5, "compile_s": compile_s},
            {"part": "a", "name": "gru-1", "env_steps_per_s": gru, "compile_s": 10.0},
            {"part": "a", "name": "s4d-1", "error": "XlaRuntimeError: out of memory"},
            {"part": "a", "name": "status", "status": "ok", "seconds": 100.0},
            {"part": "b", **start},
            {"part": "b", "name": "layers-1024", "length": 1024, "rows": rows},
            {"part": "b", "name": "status", "status": "ok", "seconds": 50.0},
            {"part": "c", **start},
            {"part": "c", "name": "status", "status": "timeout", "seconds": 60.0}]


def test_targets_are_met_or_missed_on_a_full_gpu_run_only():
    records = _gpu_records()
    verdicts = [t["verdict"] for t in targets(by_part(records), quick=False)]
    assert verdicts == ["met", "missed", "met", "not measured (part (c): timeout)"]
    slow = _gpu_records(s5=90_000.0, compile_s=60.0, ms=(1.0, 30.0))
    figures = targets(by_part(slow), quick=False)
    assert [t["met"] for t in figures] == [False, True, False, None]
    assert figures[0]["figure"] == "90,000 env-steps/s, compile 60 s"
    assert figures[1]["figure"] == "30.0× (L = 1024)" and figures[2]["figure"] == "4.5×"
    cpu = [{**r, "platform": "cpu"} if r["name"] == "start" else r for r in records]
    assert {t["verdict"] for t in targets(by_part(cpu), quick=False)} == {"not measured (cpu)"}

    table = format_report(records, quick=False, commit="abc123")
    assert table.startswith("GPU suite: NVIDIA H200, jax 0.11.2, commit abc123")
    assert "| s5 ×4 | 130,000 | 40.0 | 6.5 | 80,399 | 201 |" in table
    assert "| (a) | ok | 100 | s4d-1 |" in table and "| (c) | timeout | 60 | — |" in table
