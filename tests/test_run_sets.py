"""Sets of runs (experiments/run_sets.py): a run left by an earlier call of the set is resumed
only when it was run with the same settings, in the layout it was saved in."""

import pytest

from hystax import rundir
from hystax.agents import ppo
from hystax.core.errors import HystaxError
from hystax.experiments.run_sets import train_or_resume

TINY = ppo.Config(total_timesteps=128, num_envs=2, num_steps=64, num_minibatches=2,
                  update_epochs=1, hidden_sizes=(8,))


def test_a_set_resumes_its_own_runs_only(tmp_path):
    args = dict(seeds=1, progress=False, resume_hint="the same command")
    first = train_or_resume(tmp_path, "mlp", "ppo", "CartPole-v1", config=TINY, **args)
    # a config.json saved before MemoryConfig: its memory settings flat on the PPO config
    saved = rundir.read_config(first.run_dir)
    memory = saved["config"].pop("memory")
    flat = {"model": "memory", "layers": "memory_layers", "blocks": "ssm_blocks",
            "separate": "separate_memory"}
    saved["config"].update({flat.get(k, k): v for k, v in memory.items()})
    rundir.write_config(first.run_dir, saved)  # as that older version wrote it (hashed)
    again = train_or_resume(tmp_path, "mlp", "ppo", "CartPole-v1", config=TINY, **args)
    assert again.run_dir == first.run_dir and again.config == TINY
    other = ppo.Config(**{**TINY.__dict__, "lr": 1e-3})
    with pytest.raises(HystaxError, match="was run with other settings"):
        train_or_resume(tmp_path, "mlp", "ppo", "CartPole-v1", config=other, **args)
