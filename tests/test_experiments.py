"""The in-context RL experiment scripts: bad input fails before any training; the tables and
figures from synthetic learning curves; tiny runs write their tables (slow)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from hystax.experiments import incontext_bandits, meta_rl, popgym_mmer, popgym_tables


@pytest.mark.parametrize("main, args, message", [
    (popgym_mmer.cli, ["--tasks", "RepeatPrevEasy"], "unknown env 'popgym/RepeatPrevEasy'"),
    (popgym_mmer.cli, ["--models", "s7"], "unknown memory model 's7'"),
    (meta_rl.cli, ["--env", "CartPole-v1"], "not a meta-RL env"),
    (meta_rl.cli, ["--models", "none"], "needs memory models"),
    (meta_rl.cli, ["--models", "gru", "gru"], "models must be distinct"),
    (meta_rl.cli, ["--seeds", "0"], "seeds must be a positive"),
    (meta_rl.cli, ["--total-timesteps", "100"], "smaller than one update"),
    (meta_rl.cli, ["--gamma", "abc"], "gamma must be a number"),
    (meta_rl.cli, ["--gamma", "nan"], "gamma must be finite"),
    (meta_rl.cli, ["--gamma", "1.5"], "gamma must be in [0, 1]"),
    (popgym_mmer.cli, ["--models", "s5", "s5"], "models must be distinct"),
    (popgym_mmer.cli, ["--set", "depth", "--models", "s5", "gru"], "need the mlp baseline"),
    (popgym_mmer.cli, ["--total-timesteps", "100"], "smaller than one update"),
    (incontext_bandits.cli, ["--families", "dlb", "mab"], "unknown family 'mab'"),
    (incontext_bandits.cli, ["--models", "s7"], "unknown memory model 's7'"),
    (incontext_bandits.cli, ["--models", "none"], "need a memory model name"),
    (incontext_bandits.cli, ["--models", "s5", "s5"], "must be distinct"),
    (incontext_bandits.cli, ["--problems", "-3"], "problems must be a positive integer"),
    (incontext_bandits.cli, ["--seeds", "nan"], "seeds must be a positive integer"),
    (incontext_bandits.cli, ["--total-timesteps", "100"], "smaller than one update"),
    (incontext_bandits.cli, ["--resume"], "--resume continues the set named by --name"),
])
def test_bad_input_fails_before_training(tmp_path, capsys, main, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_existing_or_unwritable_output_fails_before_training(tmp_path, capsys):
    (tmp_path / "p" / "breadth").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        popgym_mmer.cli(["--out-dir", str(tmp_path / "p")])
    assert exit_info.value.code == 2 and "--resume" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        popgym_mmer.cli(["--out-dir", str(tmp_path / "file")])
    assert exit_info.value.code == 2 and "cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        meta_rl.cli(["--out-dir", str(tmp_path / "file")])
    assert exit_info.value.code == 2 and "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("module, args", [
    (popgym_mmer, ["--tasks", "RepeatPreviousEasy", "--models", "s5", "mlp"]),
    (meta_rl, ["--models", "gru", "mlp"]),
])
def test_a_stopped_run_stops_the_whole_set(module, args, tmp_path, monkeypatch, capsys):
    """Ctrl-C saves the running run and ends the set (exit 130), not only that run."""
    from hystax import runner

    calls = []

    def stopped_run(*a, name=None, out_dir=None, **kw):
        calls.append(name)
        return runner.RunResult(Path(out_dir) / name, None, {}, None, [0], interrupted=True)

    monkeypatch.setattr(runner, "train", stopped_run)
    assert module.cli([*args, "--out-dir", str(tmp_path), "--no-progress"]) == 130
    assert len(calls) == 1 and "interrupted" in capsys.readouterr().out


def _curves(jump_at: dict, updates=100, seeds=3, seed=0, high=1.0):
    """Synthetic results: each model's return steps from -0.5 to ``high`` at
    ``jump_at[model]``, plus noise of standard deviation 0.01."""
    rng = np.random.default_rng(seed)
    steps = np.arange(1, updates + 1) * 2048.0
    out = {}
    for model, at in jump_at.items():
        level = np.where(np.arange(updates) >= at, high, -0.5)
        out[model] = (steps, level + 0.01 * rng.normal(size=(seeds, updates)))
    return out


def test_steps_to_threshold_table_from_synthetic_curves(tmp_path):
    results = {"A": _curves({"s5": 20, "gru": 50, "mlp": 10_000}, high=0.95),
               "B": _curves({"s5": 70, "gru": 30, "mlp": 10_000}, seed=1, high=0.95)}
    reached = popgym_tables.threshold_steps(results)
    # thresholds from the MLP's -0.5: 50% -> 0.25, 90% -> 0.85. k updates after the jump the
    # 10-update mean is -0.5 + 1.45 k / 10: 0.225 at k = 5, 0.37 at k = 6 (the 50% crossing),
    # 0.805 at k = 9, 0.95 at k = 10 (the 90% one); margins of 0.02 or more against noise
    # averaging to about 0.002
    steps = results["A"]["s5"][0]
    assert reached["A"]["s5"] == {0.5: steps[20 + 5], 0.9: steps[20 + 9]}
    assert reached["B"]["gru"] == {0.5: steps[30 + 5], 0.9: steps[30 + 9]}
    assert np.isnan(reached["A"]["mlp"][0.5])
    popgym_tables.write_depth(results, tmp_path, seeds=3, steps=204_800)
    table = (tmp_path / "thresholds.md").read_text()
    assert "| A | 53k / 61k | 115k / 123k | — / — |" in table
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(tmp_path / "thresholds.csv")))
    assert len(rows) == 2 * 3 * 2


def test_breadth_tables_normalize_by_the_mlp(tmp_path):
    results = {t: _curves({"s5": 10, "gru": 60, "mlp": 10_000}, seed=i) for i, t in
               enumerate("ABCD")}
    iqms = popgym_tables.write_breadth(results, tmp_path, seeds=3, steps=204_800)
    assert set(iqms) == {"s5", "gru"}
    # both reach ~1 (normalized ~1); the MLP's own score would be 0 by construction
    for point, lo, hi in iqms.values():
        assert 0.95 < point < 1.05 and lo <= point <= hi
    normalized = popgym_tables.normalized_mmer(popgym_tables.mmer_scores(results))
    assert normalized["s5"].shape == (3, 4)
    table = (tmp_path / "mmer.md").read_text()
    assert "Student-t" in table and table.count("±") == 4 * 3
    assert (tmp_path / "iqm.png").is_file() and (tmp_path / "mmer.csv").is_file()


def test_a_task_the_mlp_solves_is_left_out_of_the_iqm(tmp_path):
    results = {t: _curves({"s5": 10, "gru": 60, "mlp": 10_000}, seed=i) for i, t in
               enumerate("ABC")}
    steps = results["A"]["s5"][0]
    solved = np.full((3, steps.size), 0.9999992)  # float32 sums of a perfect episode
    results["D"] = {"s5": (steps, solved + 7e-8), "gru": (steps, solved), "mlp": (steps, solved)}
    scores = popgym_tables.mmer_scores(results)
    assert popgym_tables.normalizable_tasks(scores) == ["A", "B", "C"]
    assert popgym_tables.normalized_mmer(scores)["s5"].shape == (3, 3)
    popgym_tables.write_breadth(results, tmp_path, seeds=3, steps=204_800)
    assert "IQM over 3 tasks" in (tmp_path / "iqm.md").read_text()
    assert "left out, as mlp reaches the best return: D" in (tmp_path / "iqm.md").read_text()


def test_meta_gain_tables_compare_carried_and_reset_memory(tmp_path):
    rng = np.random.default_rng(0)
    carried = {"s5": rng.normal(50, 5, (3, 4)), "gru": rng.normal(60, 5, (3, 4))}
    reset = {m: v - rng.uniform(0, 10, (3, 4)) for m, v in carried.items()}
    memoryless = {m: v - rng.uniform(10, 20, (3, 4)) for m, v in carried.items()}
    rows = meta_rl.gain_rows(carried, reset, memoryless)
    for model, v in carried.items():
        np.testing.assert_allclose(rows[model]["gain"][0], (v[:, -1] - v[:, 0]).mean())
        np.testing.assert_allclose(rows[model]["carried_minus_reset"][0],
                                   (v[:, -1] - reset[model][:, -1]).mean())
        np.testing.assert_allclose(rows[model]["first_minus_memoryless"][0],
                                   (v[:, 0] - memoryless[model][:, 0]).mean())
        assert 0 < rows[model]["carried_minus_reset"][0] < 10
        assert 10 < rows[model]["first_minus_memoryless"][0] < 20
    meta_rl.write_outputs(carried, "meta/CartPole", 1000, 3, tmp_path, reset, memoryless)
    trials = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert len(trials) == 3 * 2 * 3 * 4
    assert {r["memory"] for r in trials} == {"carried", "reset", "memoryless"}
    table = (tmp_path / "gain.md").read_text()
    assert "trial 4: carried − reset" in table and "trial 1: carried − reset every step" in table
    assert (tmp_path / "trials.png").is_file()


@pytest.mark.slow
def test_tiny_popgym_mmer_and_meta_rl_runs(tmp_path):
    results = popgym_mmer.run("breadth", tasks=["RepeatPreviousEasy", "RepeatFirstEasy"],
                              models=["s5", "mlp"], seeds=2, total_timesteps=4096,
                              out_dir=tmp_path / "p", progress=False)
    assert set(results["RepeatPreviousEasy"]) == {"s5", "mlp"}
    out = tmp_path / "p" / "breadth"
    rows = list(csv.DictReader(open(out / "mmer.csv")))
    assert len(rows) == 8 and all(-1 <= float(r["mmer"]) <= 1 for r in rows)
    assert (out / "RepeatPreviousEasy" / "returns.png").is_file() and (out / "iqm.md").is_file()
    # --resume reads the finished runs back instead of training them again
    again = popgym_mmer.run("breadth", tasks=["RepeatPreviousEasy", "RepeatFirstEasy"],
                            models=["s5", "mlp"], seeds=2, total_timesteps=4096,
                            out_dir=tmp_path / "p", resume=True, progress=False)
    np.testing.assert_array_equal(again["RepeatFirstEasy"]["s5"][1],
                                  results["RepeatFirstEasy"]["s5"][1])
    per_model = meta_rl.run(models=["gru"], seeds=2, total_timesteps=3200, eval_steps=100,
                            out_dir=tmp_path / "m", progress=False)
    assert per_model["gru"].shape == (2, 20) and np.isfinite(per_model["gru"]).all()
    out = tmp_path / "m" / "BernoulliBandit"
    assert (out / "gain.md").is_file() and (out / "trials.png").is_file()
