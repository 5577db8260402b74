"""Seeds sharded over 4 simulated CPU devices give the same metrics as one device."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, jax, numpy as np
    from hystax.runner import train
    from hystax.core.errors import HystaxError
    small = dict(total_timesteps=4 * 16 * 6, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=2, hidden_sizes=(16,))
    kw = dict(seeds=4, out_dir=None, progress=False, plots=False, chunk_updates=3, **small)
    sharded = train("ppo", "CartPole-v1", devices=4, **kw)
    single = train("ppo", "CartPole-v1", devices=1, **kw)
    leaf = jax.tree.leaves(sharded.state.params)[0]
    def devices_used(seeds):  # default device count: the most that divides the seeds
        r = train("ppo", "CartPole-v1", **{**kw, "seeds": seeds})
        return len(jax.tree.leaves(r.state.params)[0].sharding.device_set)
    try:
        train("ppo", "CartPole-v1", devices=4, **{**kw, "seeds": 6})
        error = None
    except HystaxError as err:
        error = str(err)
    print(json.dumps({
        "devices": len(jax.devices()),
        "devices_used": len(leaf.sharding.device_set),
        "max_diff": max(float(np.nanmax(np.abs(sharded.metrics[k] - single.metrics[k])))
                        for k in ("value_loss", "policy_loss", "episode_return")),
        "error": error,
        "default_devices": [devices_used(1), devices_used(2), devices_used(8)],
    }))
""")


def test_four_simulated_devices_match_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4
    assert result["devices_used"] == 4
    assert result["max_diff"] < 1e-4
    assert "6 seeds cannot be split evenly over 4 devices" in result["error"]
    assert result["default_devices"] == [1, 2, 4]


BANDIT_SCRIPT = textwrap.dedent("""
    import json, jax, numpy as np
    import hystax
    from hystax.agents.bandits import ALGORITHMS, run, run_seeds
    from hystax.envs.dlb import preset
    problem = preset("real")
    out = run_seeds(ALGORITHMS["dynlin-ucb-logT"](), problem, seeds=4, horizon=2000)
    alone = run(ALGORITHMS["dynlin-ucb-logT"](), problem, jax.random.PRNGKey(3), 2000)
    print(json.dumps({"devices": len(jax.devices()),
                      "max_diff": float(np.abs(out.pseudo_regret[3] - alone.pseudo_regret).max()
                                        + np.abs(out.regret[3] - alone.regret).max())}))
""")


def test_bandit_seeds_sharded_over_four_devices_match_a_single_run():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", BANDIT_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4 and result["max_diff"] < 1e-9
