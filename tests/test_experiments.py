"""The in-context RL experiment scripts: bad input fails before any training; tiny runs write
their tables (slow)."""

import csv

import numpy as np
import pytest

from hystax.experiments import meta_rl, popgym_mmer


@pytest.mark.parametrize("main, args, message", [
    (popgym_mmer._cli, ["--tasks", "RepeatPrevEasy"], "unknown env 'popgym/RepeatPrevEasy'"),
    (popgym_mmer._cli, ["--models", "s6"], "unknown memory model 's6'"),
    (meta_rl._cli, ["--env", "CartPole-v1"], "not a meta-RL env"),
    (meta_rl._cli, ["--models", "none"], "needs memory models"),
])
def test_bad_input_fails_before_training(tmp_path, capsys, main, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tiny_popgym_mmer_and_meta_rl_runs(tmp_path):
    scores = popgym_mmer.run(tasks=["RepeatPreviousEasy"], models=["s5", "mlp"], seeds=2,
                             total_timesteps=4096, out_dir=tmp_path / "p", progress=False)
    assert set(scores["RepeatPreviousEasy"]) == {"s5", "mlp"}
    rows = list(csv.DictReader(open(tmp_path / "p" / "mmer.csv")))
    assert len(rows) == 4 and all(-1 <= float(r["mmer"]) <= 1 for r in rows)
    assert (tmp_path / "p" / "RepeatPreviousEasy" / "returns.png").is_file()
    per_model = meta_rl.run(models=["gru"], seeds=2, total_timesteps=3200, eval_steps=100,
                            out_dir=tmp_path / "m", progress=False)
    assert per_model["gru"].shape == (2, 20) and np.isfinite(per_model["gru"]).all()
    assert (tmp_path / "m" / "gain.md").is_file() and (tmp_path / "m" / "trials.png").is_file()
