"""The chunked runner: resume gives the same result as an uninterrupted run, chunking does
not change results, Ctrl-C saves and stops, and bad input leaves nothing in runs/."""

import os
import signal
from pathlib import Path

import jax
import numpy as np
import pytest

from hystax import envs, rundir
from hystax.agents import ppo
from hystax.core.errors import HystaxError
from hystax.runner import train

SMALL = dict(total_timesteps=4 * 16 * 10, num_envs=4, num_steps=16, num_minibatches=2,
             update_epochs=2, hidden_sizes=(16,))
QUIET = dict(progress=False, plots=False)


def _equal_trees(a, b):
    return all(jax.tree.leaves(jax.tree.map(
        lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)))


def test_resume_ends_with_same_params_as_uninterrupted_run(tmp_path):
    kw = dict(seeds=2, out_dir=tmp_path, chunk_updates=3, checkpoint_every=1, **QUIET, **SMALL)
    full = train("ppo", "CartPole-v1", name="full", **kw)
    part = train("ppo", "CartPole-v1", name="part", callback=lambda done, m: done >= 6, **kw)
    assert part.interrupted and part.metrics["env_steps"].shape == (2, 6)
    resumed = train(resume=tmp_path / "part", **QUIET)
    assert not resumed.interrupted
    assert _equal_trees(full.state.params, resumed.state.params)
    a, b = rundir.read_metrics(tmp_path / "full"), rundir.read_metrics(tmp_path / "part")
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


@pytest.mark.slow  # the default run keeps test_resume_ends_with_same_params_as_uninterrupted_run
def test_resume_after_a_crash_between_checkpoints(tmp_path):
    """Unsorted seeds, a crash one chunk after the last checkpoint: the resumed run drops the
    uncheckpointed rows, recomputes them, and returns the full run's metrics."""
    kw = dict(seeds=[5, 2], out_dir=tmp_path, chunk_updates=2, checkpoint_every=2, **QUIET,
              **SMALL)
    full = train("ppo", "CartPole-v1", name="full", **kw)
    assert full.seeds == [2, 5]

    def crash(done, metrics):
        if done == 6:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        train("ppo", "CartPole-v1", name="crashed", callback=crash, **kw)
    assert rundir.read_metrics(tmp_path / "crashed")["env_steps"].shape == (2, 6)
    resumed = train(resume=tmp_path / "crashed", **QUIET)
    assert _equal_trees(full.state.params, resumed.state.params)
    for k in ("episode_return", "value_loss", "env_steps"):
        np.testing.assert_allclose(resumed.metrics[k], full.metrics[k], rtol=1e-6)


def test_failure_before_the_first_checkpoint_leaves_nothing(tmp_path):
    def fail(done, metrics):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        train("ppo", "CartPole-v1", out_dir=tmp_path, name="f", callback=fail,
              checkpoint_every=100, **QUIET, **SMALL)
    assert not (tmp_path / "f").exists()


def test_numpy_config_values_and_resume_with_settings(tmp_path):
    result = train("ppo", "CartPole-v1", out_dir=tmp_path, name="n", lr=np.float32(1e-3),
                   total_timesteps=np.int64(640), **QUIET,
                   **{k: v for k, v in SMALL.items() if k != "total_timesteps"})
    assert rundir.read_config(result.run_dir)["config"]["total_timesteps"] == 640
    with pytest.raises(HystaxError, match="drop lr"):
        train(resume=result.run_dir, lr=1e-2)


def test_chunked_runner_matches_monolithic_train(tmp_path):
    result = train("ppo", "CartPole-v1", seeds=[3, 5], out_dir=None, chunk_updates=4, **QUIET,
                   **SMALL)
    env, params = envs.make("CartPole-v1")
    keys = jax.numpy.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(5)])
    _, metrics = jax.jit(jax.vmap(ppo.make_train(ppo.Config(**SMALL), env, params)))(keys)
    for k in ("value_loss", "policy_loss", "episode_return"):
        np.testing.assert_allclose(result.metrics[k], metrics[k], rtol=1e-4, atol=1e-6)


def test_run_dir_contents(tmp_path):
    result = train("ppo", "CartPole-v1", seeds=2, out_dir=tmp_path, name="r", progress=False,
                   **SMALL)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "checkpoints", "returns.png"} <= files
    config = rundir.read_config(result.run_dir)
    assert config["agent"] == "ppo" and config["seeds"] == [0, 1]
    assert config["config"]["num_steps"] == 16
    metrics = rundir.read_metrics(result.run_dir)
    assert metrics["env_steps"].shape == (2, 10)
    np.testing.assert_array_equal(metrics["env_steps"][0], 64 * np.arange(1, 11))


def test_ctrl_c_saves_a_checkpoint_and_stops(tmp_path):
    def press_ctrl_c(done, metrics):
        if done == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return False

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a shell's background job
    result = train("ppo", "CartPole-v1", out_dir=tmp_path, name="c", chunk_updates=2,
                   checkpoint_every=100, callback=press_ctrl_c, **QUIET, **SMALL)
    assert result.interrupted
    assert result.metrics["env_steps"].shape == (1, 4)
    assert sorted(p.name for p in (tmp_path / "c" / "checkpoints").iterdir() if p.name.isdigit()) == ["4"]
    assert signal.getsignal(signal.SIGINT) is before  # the runner restores the old handler


@pytest.mark.parametrize("kwargs, message", [
    (dict(env="CartPol-v1"), "did you mean 'CartPole-v1'"),
    (dict(agent="ppoo"), "unknown agent 'ppoo'"),
    (dict(total_timesteps=-5), "total_timesteps must be a positive integer"),
    (dict(num_minibatches=3), "not divisible by num_minibatches"),
    (dict(seeds=0), "seeds must be positive"),
    (dict(learning_rate=1e-3), "has no field 'learning_rate'"),
    (dict(env_params={"gravty": 9.0}), "gravty"),
    (dict(seeds=2.5), "seeds must be a positive int or a list"),
    (dict(seeds=[0, True]), "seeds must be a positive int or a list"),
    (dict(lr="fast"), r"Config.lr must be a number, got 'fast'"),
    (dict(anneal_lr=1), "Config.anneal_lr must be True or False"),
    (dict(hidden_sizes="64"), "hidden_sizes must be a list of numbers"),
    (dict(env=object()), "env must be a registered name or a gymnax-style env"),
    (dict(total_timesteps=1e30), r"total_timesteps must be at most 2\*\*31 - 1"),
    (dict(name="../x"), "name must be a folder name"),
    (dict(name="a/b"), "name must be a folder name"),
    (dict(env_params={"max_steps_in_episode": -5}), "max_steps_in_episode must be positive"),
    (dict(env_params={"gravity": "heavy"}), "gravity must be a finite number"),
    (dict(env_params={"gravity": float("nan")}), "gravity must be a finite number"),
])
def test_bad_input_raises_and_writes_nothing(tmp_path, kwargs, message):
    args = dict(agent="ppo", env="CartPole-v1", out_dir=tmp_path / "runs", **QUIET)
    args.update(kwargs)  # (seeds that do not divide over the devices: test_sharding.py)
    with pytest.raises(HystaxError, match=message):
        train(**args)
    assert not (tmp_path / "runs").exists()


def test_existing_run_dir_and_bad_resume(tmp_path):
    train("ppo", "CartPole-v1", out_dir=tmp_path, name="x", **QUIET, **SMALL)
    with pytest.raises(HystaxError, match="already exists"):
        train("ppo", "CartPole-v1", out_dir=tmp_path, name="x", **QUIET, **SMALL)
    with pytest.raises(HystaxError, match="not a hystax run directory"):
        train(resume=tmp_path / "nothing-here")


def _garble(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")




@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 10-update run checkpointed after every update (so checkpoints 9 and 10 are kept)."""
    out = tmp_path_factory.mktemp("finished")
    return train("ppo", "CartPole-v1", out_dir=out, name="x", checkpoint_every=1, **QUIET, **SMALL)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run stopped after 6 of its 10 updates, checkpointed after every update."""
    out = tmp_path_factory.mktemp("stopped")
    return train("ppo", "CartPole-v1", out_dir=out, name="x", callback=lambda d, m: d >= 6,
                 checkpoint_every=1, **QUIET, **SMALL)


def _copy(result, tmp_path):
    import shutil

    return Path(shutil.copytree(result.run_dir, tmp_path / "run"))


def test_unreadable_checkpoints_give_one_clear_error(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path)
    _garble(run / "checkpoints")
    with pytest.raises(HystaxError, match="no checkpoint in .* reads back"):
        train(resume=run, **QUIET)
    assert {p.name for p in (run / "unreadable").iterdir()} == {"9", "10"}  # moved, not deleted


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(finished_run, tmp_path,
                                                                  capsys):
    run = _copy(finished_run, tmp_path)
    _garble(run / "checkpoints" / "10")
    resumed = train(resume=run, **QUIET)   # from checkpoint 9, then update 10 again
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "checkpoint 10" in warning[0], warning
    assert "from checkpoint 9" in warning[0]
    assert _equal_trees(finished_run.state.params, resumed.state.params)
    assert (run / "unreadable" / "10").is_dir()


@pytest.mark.slow  # a resume from scratch (8-10 s); see the allowance above
def test_a_run_killed_before_its_first_checkpoint_restarts_on_resume(finished_run, tmp_path,
                                                                     capsys):
    """SIGKILL before the first checkpoint leaves config.json and metrics rows, no checkpoint:
    --resume starts it from the beginning (saying so) and ends as the uninterrupted run."""
    import shutil

    run = _copy(finished_run, tmp_path)
    shutil.rmtree(run / "checkpoints")
    resumed = train(resume=run, **QUIET)
    assert "has no checkpoint yet: starting it from the beginning" in capsys.readouterr().err
    assert _equal_trees(finished_run.state.params, resumed.state.params)
    assert rundir.read_metrics(run)["env_steps"].shape == (1, 10)


def test_an_edited_config_is_refused_on_resume_naming_the_field(stopped_run, tmp_path):
    import json

    run = _copy(stopped_run, tmp_path)
    saved = json.loads((run / "config.json").read_text())
    for field, value in (("lr", 1e-2), ("num_envs", 8)):
        (run / "config.json").write_text(json.dumps(
            {**saved, "config": {**saved["config"], field: value}}))
        with pytest.raises(HystaxError, match=rf"edited .* \(config\.{field}: .* -> {value}\)"):
            train(resume=run, **QUIET)
    (run / "config.json").write_text(json.dumps({**saved, "seeds": [0, 1]}))
    with pytest.raises(HystaxError, match=r"\(seeds: \[0\] -> \[0, 1\]\)"):
        train(resume=run, **QUIET)


@pytest.mark.slow  # two trainings (15-20 s); issue 14's default-run allowance is 60 s
def test_a_resume_may_raise_total_timesteps_and_nothing_else(tmp_path):
    run = train("ppo", "CartPole-v1", out_dir=tmp_path, name="x", anneal_lr=False, **QUIET,
                **SMALL).run_dir
    longer = train(resume=run, total_timesteps=2 * SMALL["total_timesteps"], **QUIET)
    assert longer.metrics["env_steps"].shape == (1, 20) and not longer.interrupted
    assert rundir.read_config(run)["config"]["total_timesteps"] == 2 * SMALL["total_timesteps"]
    rundir.check_unedited(run, rundir.read_config(run))   # rewritten with its hash, not edited
    with pytest.raises(HystaxError, match="may only raise total_timesteps"):
        train(resume=run, total_timesteps=64, **QUIET)
    with pytest.raises(HystaxError, match="only a larger total_timesteps may be given"):
        train(resume=run, lr=1e-2, **QUIET)


def test_a_resume_refuses_a_gap_in_metrics_csv(stopped_run, tmp_path):
    run = _copy(stopped_run, tmp_path)
    lines = (run / "metrics.csv").read_text().splitlines()
    (run / "metrics.csv").write_text("\n".join(lines[:4]) + "\n")  # updates 0-2 of 6 kept
    with pytest.raises(HystaxError, match="lacks 3 of the 6 updates .* first: update 3"):
        train(resume=run, **QUIET)
    (run / "metrics.csv").unlink()
    with pytest.raises(HystaxError, match="lacks 6 of the 6 updates"):
        train(resume=run, **QUIET)


def test_runs_start_from_the_preset_for_the_env_and_memory_model():
    from hystax.agents import ppo
    from hystax.runner import resolve

    spec = resolve("ppo", "popgym/RepeatFirstEasy", memory="gru", check=False)
    assert spec.config == ppo.POPGYM["gru"] and spec.config.prev_action_reward
    assert resolve("ppo", "popgym/CountRecallEasy", check=False).config == ppo.POPGYM["s5"]
    s6 = resolve("ppo", "popgym/CountRecallEasy", memory="s6", check=False).config.memory
    assert (s6.model, s6.state_size) == ("s6", 16)  # N per channel (Mamba's), not S5's 64
    assert resolve("ppo", "Pendulum-v1", check=False).config == ppo.PRESETS["Pendulum-v1"]
    assert resolve("ppo", "meta/CartPole", memory="gru", check=False).config.memory.model == "gru"
    assert resolve("ppo", "Acrobot-v1", check=False).config == ppo.Config()  # no preset
    plain = resolve("ppo", "popgym/RepeatFirstEasy", config=ppo.Config(memory="s5"), check=False)
    assert plain.config == ppo.Config(memory="s5")  # an explicit config wins
    with pytest.raises(HystaxError, match="unknown memory model 's7'"):
        resolve("ppo", "popgym/RepeatFirstEasy", memory="s7", check=False)


def test_a_saved_config_resumes_as_it_ran_not_with_newer_defaults():
    import dataclasses

    from hystax.agents import ppo
    from hystax.agents.memory import FLAT_NAMES
    from hystax.runner import saved_config

    config = ppo.Config(memory="s5")  # saved as older runs did: the memory settings flat
    today = {**{k: v for k, v in dataclasses.asdict(config).items() if k != "memory"},
             **{flat: getattr(config.memory, field) for flat, field in FLAT_NAMES.items()}}
    old = {k: v for k, v in today.items() if k not in ppo.SAVED_DEFAULTS}  # an older run
    filled = saved_config("ppo", old)
    assert set(filled) == set(today)
    assert not filled["separate_memory"] and (filled["dt_min"], filled["dt_max"]) == (1e-3, 0.1)
    assert saved_config("ppo", today) == today  # what a run saved always wins


def test_memory_settings_flat_or_nested_build_one_config():
    """Flat memory names (hystax.train keywords, CLI flags, config.json before MemoryConfig)
    go into ``config.memory``; a nested config.json's memory wins over SAVED_DEFAULTS."""
    import dataclasses
    import json

    from hystax.agents import ppo
    from hystax.agents.memory import FLAT_NAMES, MemoryConfig
    from hystax.runner import resolve, saved_config

    spec = resolve("ppo", "CartPole-v1", memory="gru", memory_layers=2, d_model=16,
                   separate_memory=False, dt_min=0.5, dt_max=0.6, lr=1e-3, check=False)
    memory = MemoryConfig("gru", layers=2, d_model=16, separate=False, dt_min=0.5, dt_max=0.6)
    assert spec.config == ppo.Config(memory=memory, lr=1e-3)
    nested = json.loads(json.dumps(dataclasses.asdict(spec.config)))
    flat = {**{k: v for k, v in nested.items() if k != "memory"},
            **{name: nested["memory"][field] for name, field in FLAT_NAMES.items()}}
    for saved in (nested, flat):
        config = resolve("ppo", "CartPole-v1", config=saved_config("ppo", saved), check=False)
        assert config.config == spec.config
    # a model name keeps the preset's other memory settings; a MemoryConfig replaces them
    s4d = resolve("ppo", "popgym/RepeatFirstEasy", memory="s4d", d_model=32, check=False)
    assert s4d.config.memory == dataclasses.replace(ppo.POPGYM["s4d"].memory, d_model=32)
    whole = resolve("ppo", "CartPole-v1", memory=memory, check=False)
    assert whole.config.memory == memory
