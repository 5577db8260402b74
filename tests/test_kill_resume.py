"""Exact resume after SIGKILL, for every family under the runner: a ``hystax train`` process
killed mid-run (between checkpoints or not) and resumed ends with every leaf of its state and
every row of metrics.csv equal to an uninterrupted run's (for mbrl: the per-task saved models,
the task's data and the reward / error matrices too)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hystax.runner import train

CASES = {  # agent: (env, CLI flags, the same as hystax.train keywords), 20-200 one-update chunks
    "ppo": ("CartPole-v1",
            ["--total-timesteps", "12800", "--num-envs", "4", "--num-steps", "16",
             "--num-minibatches", "2", "--update-epochs", "1", "--hidden-sizes", "16"],
            dict(total_timesteps=12800, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=1, hidden_sizes=(16,))),
    "dyna": ("CartPole-v1",
             ["--model", "losse", "--total-steps", "10300", "--warmup-steps", "300",
              "--steps-per-update", "100", "--hidden", "16"],
             dict(model="losse", total_steps=10300, warmup_steps=300, steps_per_update=100,
                  hidden=(16,))),
    "mbrl": ("pendulum-gravity",  # 5 tasks x 4 episodes; killed in task 3
             ["--method", "ewc", "--warmup-steps", "100", "--mpc-steps", "400",
              "--episode-steps", "100", "--retrain-every", "200", "--train-steps", "50",
              "--test-steps", "200"],
             dict(method="ewc", warmup_steps=100, mpc_steps=400, episode_steps=100,
                  retrain_every=200, train_steps=50, test_steps=200)),
}


@pytest.mark.slow
@pytest.mark.parametrize("agent", sorted(CASES))
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, agent, same_leaves):
    env, flags, kwargs = CASES[agent]
    common = ["--seeds", "2", "--chunk-updates", "1", "--checkpoint-every", "3", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "hystax.cli", "train", agent, "--env", env,
                             *flags, *common,
                             "--out-dir", str(tmp_path), "--name", "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "killed" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > 1 + 2 * 10:
            break  # 10 updates done: kill it wherever it is
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    full = train(agent, env, seeds=2, chunk_updates=1, checkpoint_every=3,
                 out_dir=tmp_path, name="full", progress=False, plots=False, **kwargs)
    assert len(metrics.read_text().splitlines()) < len((tmp_path / "full" / "metrics.csv")
                                                     .read_text().splitlines())  # killed early
    resumed = train(resume=tmp_path / "killed", progress=False, plots=False)
    assert not resumed.interrupted and same_leaves(full.state, resumed.state)
    assert metrics.read_bytes() == (tmp_path / "full" / "metrics.csv").read_bytes()
