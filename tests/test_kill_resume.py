"""Exact resume after SIGKILL, for every family under the runner: a ``hystax train`` process
killed mid-run (between checkpoints or not) and resumed ends with every leaf of its state and
every row of metrics.csv equal to an uninterrupted run's."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from hystax.runner import train

CASES = {  # agent: (CLI flags, the same as hystax.train keywords), ~100-200 one-update chunks
    "ppo": (["--total-timesteps", "12800", "--num-envs", "4", "--num-steps", "16",
             "--num-minibatches", "2", "--update-epochs", "1", "--hidden-sizes", "16"],
            dict(total_timesteps=12800, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=1, hidden_sizes=(16,))),
    "dyna": (["--model", "losse", "--total-steps", "10300", "--warmup-steps", "300",
              "--steps-per-update", "100", "--hidden", "16"],
             dict(model="losse", total_steps=10300, warmup_steps=300, steps_per_update=100,
                  hidden=(16,))),
}


def _same_leaves(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y),
                              equal_nan=np.issubdtype(np.asarray(x).dtype, np.inexact))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("agent", sorted(CASES))
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, agent):
    flags, kwargs = CASES[agent]
    common = ["--seeds", "2", "--chunk-updates", "1", "--checkpoint-every", "3", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "hystax.cli", "train", agent, *flags, *common,
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
    full = train(agent, "CartPole-v1", seeds=2, chunk_updates=1, checkpoint_every=3,
                 out_dir=tmp_path, name="full", progress=False, plots=False, **kwargs)
    assert len(metrics.read_text().splitlines()) < len((tmp_path / "full" / "metrics.csv")
                                                     .read_text().splitlines())  # killed early
    resumed = train(resume=tmp_path / "killed", progress=False, plots=False)
    assert not resumed.interrupted and _same_leaves(full.state, resumed.state)
    assert metrics.read_bytes() == (tmp_path / "full" / "metrics.csv").read_bytes()
