"""The LSD experiment script: one-line errors before any compilation, a tiny run's files."""

from __future__ import annotations

import csv
import json

import pytest
from hystax.agents.bandits import bandit_runner as runner
from hystax.experiments import bandit_lsd as lsd
from hystax.experiments import bandit_lsd_planning

from hystax import cli


@pytest.fixture
def no_compile(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("compiled before validating")
    monkeypatch.setattr(runner, "compiled_play", boom)


@pytest.mark.parametrize("args, message", [
    (["--preset", "laforgue"], "unknown LSD preset 'laforgue'"),
    (["--algorithms", "isi-comb", "ucb1"], "unknown LSD algorithm 'isi-comb'"),
    (["--horizon", "0"], "horizon must be a positive integer, got '0'"),
    (["--horizon", "-5"], "horizon must be a positive integer"),
    (["--seeds", "0"], "seeds must be a positive integer"),
    (["--algorithms", "ucb1", "ucb1"], "algorithms repeated"),
    (["--horizon", "1000", "--record-every", "7"], "record_every must be a positive divisor"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, no_compile, args,
                                                            message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        lsd.cli([*args, "--out-dir", str(out.parent), "--name", out.name, "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not out.exists()


def test_tiny_run_through_the_hystax_cli_writes_tables_and_curves(tmp_path, capsys):
    out = tmp_path / "lsd"
    code = cli.main(["bandit", "lsd", "--preset", "laforgue-supp", "--horizon", "330", "--seeds",
                     "3", "--algorithms", "lp-rounding-ucb", "ucb1", "--no-planning",
                     "--no-progress", "--out-dir", str(out.parent), "--name", out.name])
    assert code == 0
    for name in ("rewards.md", "rewards.json", "regret.csv", "regret.png", "alpha_regret.csv",
                 "alpha_regret.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "rewards.json").read_text())
    assert summary["opt_source"] == "DP" and summary["horizon"] == 330
    assert [r["algorithm"] for r in summary["rows"]] == ["lp-rounding-ucb", "ucb1"]  # sorted
    for row in summary["rows"]:
        assert 0 < row["reward_over_opt"]["mean"] <= 1 and len(row["reward_over_opt"]["per_seed"]) == 3
    with open(out / "regret.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["algorithm"] for r in rows} == {"LP-rounding UCB", "UCB1 (state-blind)"}
    assert "LSD `laforgue-supp`" in capsys.readouterr().out


def test_planning_table_row(tmp_path, capsys):
    (row,) = bandit_lsd_planning.write_planning(tmp_path, ["L1"])
    assert "lsd planning: 100%" in capsys.readouterr().err  # its progress bar
    assert "| L1 | 3 | 1,000 |" in (tmp_path / "planning.md").read_text()
    assert row["opt"] == pytest.approx(656.598, abs=1e-3) and row["opt_source"] == "DP"
    assert row["greedy"] <= row["opt"] <= row["lp_bound"]
    assert row["rounding_mean"] <= row["rounding_best"] <= row["opt"] + 1e-9
    assert "| L1 | 3 | 1,000 |" in bandit_lsd_planning.format_planning([row])


def test_rewards_table_prints_no_nan_slope():
    row = {"label": "Planner", "reward_over_opt": {"mean": 1.0, "se": 0.0}, "alpha_regret": -3.0,
           "alpha_regret_slope": float("nan"), "wall_s": 1.0}
    summary = {"preset": "R1", "horizon": 100, "opt": 65.0, "opt_source": "DP", "seeds": 2,
               "rows": [row, {**row, "label": "UCB1", "alpha_regret_slope": 0.5}],
               "full_info_rounding": {"mean": 0.99, "se": 0.01}, "greedy_over_opt": 0.9}
    table = lsd.format_rewards(summary)
    assert "nan" not in table and "| Planner | 1.0000 ± 0.0000 | -3.0 | — |" in table
    assert "| UCB1 | 1.0000 ± 0.0000 | -3.0 | 0.50 |" in table
