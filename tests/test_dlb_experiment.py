"""The DLB experiment script and the bandit benchmark: one-line errors before any compilation, a
tiny run's files, the quick benchmark's JSON; DynLin-UCB's regret is sublinear (slow)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hystax.agents.bandits import ALGORITHM_SETS, ALGORITHMS, run_seeds
from hystax.agents.bandits import bandit_runner as runner
from hystax.agents.bandits import policy as api
from hystax.envs.dlb import preset
from hystax.experiments import bandit_dlb as dlb
from hystax.experiments.bench import bench_bandits

from hystax import cli
from hystax.core.stats import loglog_slope


@pytest.fixture
def no_compile(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("compiled before validating")
    monkeypatch.setattr(runner, "compiled_play", boom)


@pytest.mark.parametrize("args, message", [
    (["--preset", "reel"], "unknown DLB preset 'reel'"),
    (["--preset", "real", "--algorithms", "dynlin-ucb", "exp3"], "unknown bandit algorithm 'dynlin-ucb'"),
    (["--horizon", "0"], "horizon must be a positive integer, got '0'"),
    (["--horizon", "-5"], "horizon must be a positive integer"),
    (["--horizon", "1.5"], "horizon must be a positive integer"),
    (["--seeds", "0"], "seeds must be a positive integer"),
    (["--preset", "synthetic-0.1", "--algorithms", "expert"], "only for preset 'real'"),
    (["--horizon", "1000", "--record-every", "7"], "record_every must divide the horizon 1000"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--settings", "paper"], "unknown settings 'paper'"),
    (["--settings", "reference", "--algorithms", "lin-ucb-2-ref"], "unknown bandit algorithm"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, no_compile, args,
                                                            message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        dlb.cli([*args, "--out-dir", str(out.parent), "--name", out.name])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err and "\n" not in err, err
    assert err.startswith("python -m hystax.experiments.bandit_dlb: error:")
    assert not out.exists()


def test_bad_input_through_the_hystax_cli(tmp_path, capsys, no_compile):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bandit", "dlb", "--preset", "reel", "--out-dir", str(out.parent), "--name",
                  out.name])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hystax bandit dlb: error: unknown DLB preset 'reel'") and "\n" not in err
    assert not out.exists()


def test_default_algorithms():
    textbook = [a for a in ALGORITHMS if not a.endswith("-ref")]
    assert sorted(dlb.default_algorithms("real")) == sorted(textbook)
    assert "expert" not in dlb.default_algorithms("synthetic-0.01")
    assert set(dlb.default_algorithms("synthetic-0.01")) == set(textbook) - {"expert"}
    reference = dlb.default_algorithms("real", "reference")
    assert reference == ALGORITHM_SETS["reference"] and "ucb1" not in reference
    assert {"lin-ucb-1-ref", "lin-ucb-logT-ref", "d-lin-ucb-1-ref", "d-lin-ucb-logT-ref",
            "exp3-ref", "batch-exp3-ref", "dynlin-ucb-1", "dynlin-ucb-logT"} <= set(reference)


def test_reference_settings_run_through_the_cli(tmp_path):
    out = tmp_path / "ref"
    assert dlb.cli(["--preset", "real", "--settings", "reference", "--algorithms",
                    "lin-ucb-1-ref", "exp3-ref", "--seeds", "2", "--horizon", "500",
                    "--out-dir", str(out.parent), "--name", out.name, "--no-progress"]) == 0
    summary = json.loads((out / "final.json").read_text())
    assert summary["settings"] == "reference"
    assert {r["label"] for r in summary["rows"]} == {"Lin-UCB (lam=1, reference)", "Exp3 (reference)"}
    assert "(reference settings)" in (out / "final.md").read_text()


def test_tiny_run_writes_csv_png_and_tables(tmp_path, capsys):
    out = tmp_path / "real"
    assert dlb.cli(["--preset", "real", "--algorithms", "dynlin-ucb-logT", "clairvoyant",
                    "--seeds", "2", "--horizon", "2000", "--out-dir", str(out.parent),
                    "--name", out.name,
                    "--no-progress"]) == 0
    for name in ("regret.csv", "regret.png", "regret_realised.png", "final.md", "final.json"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "regret.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["algorithm", "seed", "round", "regret", "pseudo_regret"]
    every = api.record_interval(2000)
    assert len(rows) == 2 * 2 * (2000 // every)
    assert {r["algorithm"] for r in rows} == {"dynlin-ucb-logT", "clairvoyant"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert max(int(r["round"]) for r in rows) == 2000
    clair = [r for r in rows if r["algorithm"] == "clairvoyant"]
    assert max(abs(float(r["pseudo_regret"])) for r in clair) < 1e-9
    ours = [float(r["pseudo_regret"]) for r in rows
            if r["algorithm"] == "dynlin-ucb-logT" and r["round"] == "2000"]
    assert min(ours) > 0

    summary = json.loads((out / "final.json").read_text())
    assert [r["algorithm"] for r in summary["rows"]] == ["clairvoyant", "dynlin-ucb-logT"]
    assert summary["rows"][0]["pseudo_regret"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert summary["horizon"] == 2000 and summary["seeds"] == 2
    # final regret per seed = the CSV's last record, and the table shows mean ± s.e. and min/max
    np.testing.assert_allclose(sorted(summary["rows"][1]["pseudo_regret"]["per_seed"]),
                               sorted(ours), rtol=1e-8)
    table = (out / "final.md").read_text()
    assert "| Clairvoyant | 0.0 ± 0.0 |" in table and "DynLin-UCB (lam=log T)" in table
    assert "realised expected regret" in table and "min / max" in table
    assert "final regret at T = 2,000" in capsys.readouterr().out


@pytest.mark.slow  # like the other benchmarks' smoke runs
def test_quick_bench_writes_json_with_positive_numbers(tmp_path):
    path = tmp_path / "bench.json"
    bench_bandits.main(quick=True, out=str(path))
    results = json.loads(path.read_text())
    for row in (results["jax"], results["noise"], results["numpy"]):
        assert row["rounds_per_s"] > 0 and row["run_s"] > 0 and row["rounds"] > 0
    assert results["jax"]["compile_s"] > 0 and results["ratio"] > 0
    assert results["check"]["match"], results["check"]  # the numpy loop is the same algorithm
    for row in results["memory"]:
        assert row["output_bytes"] > 0 and row["temp_bytes"] > 0
    assert results["memory_flat"] is True
    assert "| ratio (jax / numpy loop rounds/s) |" in results["table"]
    assert "| harness floor" in results["table"] and results["numpy_seeds"]["rounds_per_s"] > 0
    assert "| noise ceiling" in results["table"] and results["noise_ratio_to_vectorised"] > 0


@pytest.mark.slow
def test_dynlin_ucb_regret_is_sublinear_on_real():
    """Mean final pseudo-regret of DynLin-UCB (lam = log T), 10 seeds, a separate run per T."""
    problem = preset("real")
    horizons = [10**3, 10**4, 10**5]
    means = [run_seeds(ALGORITHMS["dynlin-ucb-logT"](), problem, 10, T,
                       record_every=T).pseudo_regret[:, -1].mean() for T in horizons]
    slope = loglog_slope(horizons, means)
    print(f"DynLin-UCB (lam=log T) on real: mean pseudo-regret {means} at T = {horizons}; "
          f"log-log slope {slope:.3f}")
    assert slope < 1.0, (slope, means)
