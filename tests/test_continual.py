"""Continual world models end to end: the offline forgetting benchmark, the continual MBRL loop
and the ``hystax continual`` experiment."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from hystax.agents.mbrl import ContinualConfig, continual_mbrl, forgetting_ratios
from hystax.agents.mpc import MPCConfig
from hystax.envs.continual_suites import suite, task_sequence
from hystax.experiments import continual, continual_offline
from hystax.world_models.continual_methods import make_method

from hystax import cli
from hystax.core.errors import HystaxError


@pytest.fixture(scope="module")
def offline():
    """Pendulum-gravity, 1,000 random transitions and 1,000 steps per task, seed 0."""
    s = suite("pendulum-gravity")
    runs = {"hnet": {}, "hnet-beta0": {"beta": 0.0}, "finetune": {}, "multitask": {}}
    return {name: continual_offline.offline_errors(s, name.split("-beta")[0],
                                                   jax.random.PRNGKey(0), points=1000,
                                                   steps=1000, **opts)
            for name, opts in runs.items()}


def test_offline_hypernetwork_keeps_every_task_near_the_joint_bound(offline):
    """Measured (seed 0): after all tasks, mean one-step MSE 7.8e-4 (hnet) vs 8.1e-4 (joint)."""
    hnet, joint = offline["hnet"], offline["multitask"]
    assert np.nanmean(hnet[:, -1]) <= 1.5 * np.nanmean(joint[:, -1])
    forgetting = hnet[:, -1] - np.diag(hnet)
    assert np.all(forgetting <= 0.5 * np.diag(hnet) + 1e-4)  # near zero, task by task
    assert np.isnan(hnet[1, 0]) and np.isfinite(hnet[0, 4])  # task 1 not seen after task 0


def test_offline_without_the_regulariser_forgetting_is_large(offline):
    """Task 1's error after all tasks / right after it: measured 34,000x (beta = 0), 18x (fine-tune)."""
    for name in ("hnet-beta0", "finetune"):
        errors = offline[name]
        assert errors[0, -1] >= 10 * errors[0, 0], name
    assert offline["hnet"][0, -1] <= 2 * offline["hnet"][0, 0]


TINY = ContinualConfig(warmup_steps=100, mpc_steps=100, episode_steps=50, retrain_every=50,
                       train_steps=20, batch_size=16, eval_episodes=1, test_steps=50,
                       mpc=MPCConfig(horizon=5, num_samples=16, num_elites=4, iterations=2,
                                     action_low=-2.0, action_high=2.0))


def test_continual_mbrl_refuses_mismatched_methods_and_configs():
    tasks = task_sequence("Pendulum-v1", [{"g": 10.0}, {"g": 14.0}])
    with pytest.raises(HystaxError, match="built for obs/action dims 4/1"):
        continual_mbrl(make_method("finetune", 4, 1, 2), tasks, jax.random.PRNGKey(0), TINY)
    with pytest.raises(HystaxError, match="holds 1 tasks"):
        continual_mbrl(make_method("finetune", 3, 1, 1), tasks, jax.random.PRNGKey(0), TINY)
    with pytest.raises(HystaxError, match="mpc_steps .* must be a multiple of episode_steps"):
        ContinualConfig(mpc_steps=150, episode_steps=100)
    with pytest.raises(HystaxError, match="horizon"):
        MPCConfig(horizon=0)


@pytest.mark.parametrize("args, message", [
    (["--suite", "pendulum"], "unknown"),
    (["--method", "hypernet"], "unknown continual method 'hypernet'"),
    (["--seeds", "0"], "seeds must be a positive integer"),
    (["--mode", "offline", "--steps", "-1"], "steps must be a positive integer"),
])
def test_bad_experiment_input_is_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        continual.cli([*args, "--out-dir", str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def test_offline_experiment_through_the_cli(tmp_path):
    out = tmp_path / "offline"
    code = cli.main(["continual", "--suite", "pendulum-gravity", "--mode", "offline", "--method",
                     "hnet", "--method", "finetune", "--seeds", "1", "--points", "200",
                     "--steps", "50", "--out-dir", str(out.parent), "--name", out.name,
                     "--no-progress"])
    assert code == 0
    for name in ("errors.csv", "errors.png", "summary.md", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert [r["method"] for r in summary["rows"]] == ["hnet", "finetune"]
    assert len(summary["rows"][0]["after_per_task"]) == 5


def test_method_names_match_the_registry():
    from hystax.world_models import METHOD_NAMES
    from hystax.world_models.continual_methods import METHODS

    assert set(METHOD_NAMES) == set(METHODS)


@pytest.mark.slow
def test_online_hypernetwork_does_not_forget():
    """Pendulum-gravity, seed 0, a small budget (measured: forgetting ratio 1.0 on every task the
    agent learnt; returns -124 / -180 / -116 / -282 on g = 10..16 with the final model)."""
    tasks = suite("pendulum-gravity")
    config = ContinualConfig(warmup_steps=200, mpc_steps=1000, retrain_every=200, train_steps=300,
                             eval_episodes=2, test_steps=600,
                             mpc=MPCConfig(horizon=15, num_samples=100, num_elites=10, iterations=3))
    result = continual_mbrl(make_method("hnet", 3, 1, 5), tasks, jax.random.PRNGKey(0), config)
    ratios = forgetting_ratios(result)
    assert np.isfinite(ratios).sum() >= 3  # the agent learnt at least g = 10, 12, 14
    assert np.nanmin(ratios) >= 0.9
