"""The chunked runner: resume gives the same result as an uninterrupted run, chunking does
not change results, Ctrl-C saves and stops, and bad input leaves nothing in runs/."""

import os
import signal

import jax
import numpy as np
import pytest

from hystax import envs, rundir
from hystax.agents import ppo
from hystax.errors import HystaxError
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


def test_unreadable_checkpoint_gives_clear_error(tmp_path):
    train("ppo", "CartPole-v1", out_dir=tmp_path, name="x", **QUIET, **SMALL)
    for path in (tmp_path / "x" / "checkpoints").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    with pytest.raises(HystaxError, match="cannot read checkpoint"):
        train(resume=tmp_path / "x", **QUIET)


def test_runs_start_from_the_preset_for_the_env_and_memory_model():
    from hystax.agents import ppo
    from hystax.runner import resolve

    spec = resolve("ppo", "popgym/RepeatFirstEasy", memory="gru", check=False)
    assert spec.config == ppo.POPGYM["gru"] and spec.config.prev_action_reward
    assert resolve("ppo", "popgym/CountRecallEasy", check=False).config == ppo.POPGYM["s5"]
    assert resolve("ppo", "Pendulum-v1", check=False).config == ppo.PRESETS["Pendulum-v1"]
    assert resolve("ppo", "meta/CartPole", memory="gru", check=False).config.memory == "gru"
    assert resolve("ppo", "Acrobot-v1", check=False).config == ppo.Config()  # no preset
    plain = resolve("ppo", "popgym/RepeatFirstEasy", config=ppo.Config(memory="s5"), check=False)
    assert plain.config == ppo.Config(memory="s5")  # an explicit config wins
    with pytest.raises(HystaxError, match="unknown memory model 's6'"):
        resolve("ppo", "popgym/RepeatFirstEasy", memory="s6", check=False)


def test_a_saved_config_resumes_as_it_ran_not_with_newer_defaults():
    import dataclasses

    from hystax.agents import ppo
    from hystax.runner import saved_config

    today = dataclasses.asdict(ppo.Config(memory="s5"))
    old = {k: v for k, v in today.items() if k not in ppo.SAVED_DEFAULTS}  # an older run
    filled = saved_config("ppo", old)
    assert set(filled) == set(today)
    assert not filled["separate_memory"] and (filled["dt_min"], filled["dt_max"]) == (1e-3, 0.1)
    assert saved_config("ppo", today) == today  # what a run saved always wins
