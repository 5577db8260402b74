"""Continual MBRL as a family of the one runner (``hystax train mbrl``): the task sequence is
the outer loop (the host hook at each task's end), and a stopped run resumes bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hystax
from hystax import rundir
from hystax.agents.mbrl import ContinualConfig, continual_mbrl, forgetting_ratios, results
from hystax.agents.mpc import MPCConfig
from hystax.envs import continual_suites as continual_envs
from hystax.runner import train
from hystax.trained import TrainedWorldModel
from hystax.world_models.continual_methods import make_method

MPC = dict(horizon=5, num_samples=16, num_elites=4, iterations=2)
TINY = dict(warmup_steps=100, mpc_steps=200, episode_steps=100, retrain_every=100,
            train_steps=30, eval_episodes=2, test_steps=200, mpc=MPC)  # 2 episodes a task


@pytest.fixture
def two_tasks(monkeypatch):
    """A registered two-task suite (Pendulum, g = 10 and 14), so that a run can resume."""
    monkeypatch.setitem(continual_envs.SUITES, "test-two-gravities", ("Pendulum-v1", "g",
                                                                      (10.0, 14.0)))
    return "test-two-gravities"


def test_mbrl_under_the_runner_resumes_bit_exactly(tmp_path, capsys, two_tasks, same_leaves):
    """Stopped after 3 of 4 episodes (inside task 1, after task 0's boundary) and resumed:
    every leaf of the final state (method, per-task saved models, the task's data, reward and
    error matrices, keys) and metrics.csv equal an uninterrupted run's; and seed 0 plays the
    episodes that continual_mbrl (one seed, no runner) plays."""
    kw = dict(seeds=2, out_dir=tmp_path, progress=False, plots=False, chunk_updates=1,
              method="si", **TINY)
    full = train("mbrl", two_tasks, name="full", **kw)
    part = train("mbrl", two_tasks, name="part", callback=lambda done, m: done >= 3, **kw)
    assert part.interrupted and part.metrics["env_steps"].shape == (2, 3)
    rewards = np.asarray(part.state.rewards)  # [seeds, task evaluated, model after task j]
    assert np.isfinite(rewards[:, 0, 0]).all()  # task 0's model evaluated at its end
    assert np.isnan(rewards[:, 1, 0]).all() and np.isnan(rewards[:, :, 1]).all()  # not yet
    resumed = train(resume=tmp_path / "part", progress=False, plots=False)
    assert not resumed.interrupted and same_leaves(full.state, resumed.state)
    a, b = rundir.read_metrics(tmp_path / "full"), rundir.read_metrics(tmp_path / "part")
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    np.testing.assert_array_equal(a["task"][0], [0, 0, 1, 1])
    np.testing.assert_array_equal(a["env_steps"][0], [200, 300, 500, 600])  # warm-ups counted

    out = results(full.state)
    assert len(out) == 2 and out[0].reward_matrix.shape == (2, 2)
    assert np.isnan(out[0].reward_matrix[1, 0]) and np.isfinite(out[0].reward_matrix).sum() == 3
    assert np.all(out[0].error_matrix[np.isfinite(out[0].error_matrix)] > 0)
    np.testing.assert_allclose(out[0].train_returns.reshape(-1), a["episode_return"][0],
                               rtol=1e-6)  # metrics.csv: 8 significant digits
    assert not same_leaves(out[0].states[0], out[0].states[1])  # a model saved per task

    # loaded (hystax.load): the model and its per-task predictions, the final model's and the
    # copy saved after task 0, as the run's own state gives them
    loaded = hystax.load(tmp_path / "full")
    assert isinstance(loaded, TrainedWorldModel) and loaded.tasks_done == 2
    obs, action = jax.random.normal(jax.random.PRNGKey(1), (5, 3)), jnp.full((5, 1), 0.5)
    method = make_method("si", 3, 1, 2)
    for task, models, saved_after in ((1, full.state.model, None),
                                      (0, jax.tree.map(lambda x: x[:, 0], full.state.saved), 0)):
        want = jax.vmap(lambda m, t=task: method.predict(method.params_for(m, t), obs, action))(models)
        got = loaded.predict(obs, action, task=task, saved_after=saved_after)
        assert got.shape == (2, 5, 3)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.array_equal(loaded.results()[0].reward_matrix, out[0].reward_matrix, equal_nan=True)

    # the same pieces for one seed, unbatched (continual_mbrl): the same keys, so the same
    # MPC episodes and random-policy returns, to float32 rounding; a checkpoint per task
    suite = continual_envs.suite(two_tasks)
    one = continual_mbrl(make_method("si", 3, 1, 2), suite, jax.random.PRNGKey(0),
                         ContinualConfig(**{**TINY, "mpc": MPCConfig(**MPC)}),
                         checkpoint_dir=tmp_path / "tasks")
    np.testing.assert_allclose(out[0].random_returns, one.random_returns, rtol=1e-5)
    np.testing.assert_allclose(out[0].train_returns, one.train_returns, rtol=1e-3)
    assert one.reward_matrix.shape == one.error_matrix.shape == (2, 2) and len(one.states) == 2
    assert np.all(one.random_returns < 0) and forgetting_ratios(one).shape == (2,)
    assert sorted(p.name for p in (tmp_path / "tasks").iterdir() if p.name.isdigit()) == ["0", "1"]
    assert "continual test-two-gravities" in capsys.readouterr().err.lower()  # its own bar
