"""The bandit meta-families (meta/DLB, meta/LSD), in-context agents as bandit policies, and the
comparison command."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hystax
from hystax.agents import ppo, recurrent_ppo
from hystax.agents.bandits import make_info as dlb_info
from hystax.agents.bandits.bandit_runner import play, play_instances
from hystax.agents.bandits.incontext import incontext_policy
from hystax.agents.bandits.lsd import ALGORITHMS as LSD_ALGORITHMS
from hystax.agents.bandits.lsd import dp_value
from hystax.agents.bandits.lsd import make_info as lsd_info
from hystax.agents.memory import MemoryConfig
from hystax.envs import check_env, dlb, lsd
from hystax.envs.meta import BanditFamily
from hystax.envs.meta.bandit_samplers import (
    DLB_RHO,
    dlb_on_host,
    lsd_on_host,
    sample_dlb_problem,
    sample_lsd_problem,
)
from hystax.experiments.incontext_bandit_eval import family_problems


@pytest.mark.slow
@pytest.mark.parametrize("name", ["meta/DLB", "meta/LSD"])
def test_bandit_families_pass_check_env(name):
    env, params = hystax.make(name)
    check_env(env, params, num_steps=20)


@pytest.mark.parametrize("name", ["meta/DLB", "meta/LSD"])
def test_bandit_families_hold_out_disjoint_problems(name):
    env, params = hystax.make(name)
    test = env.params_for("test")
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    train_idx = jax.vmap(lambda k: env.reset(k, params)[1].task_index)(keys)
    test_idx = jax.vmap(lambda k: env.reset(k, test)[1].task_index)(keys)
    assert int(train_idx.max()) < env.num_tasks <= int(test_idx.min())
    obs = env.reset(keys[0], params)[0]
    assert obs.shape == env.observation_space(params).shape == (
        (6 + 1 + 1,) if name == "meta/DLB" else (4 + 1,))
    if name == "meta/LSD":  # the reward alone
        blind, blind_params = hystax.make(name, env_kwargs={"observe_arm": False})
        assert blind.reset(keys[0], blind_params)[0].shape == (1,)


def test_dlb_family_problems_are_stable_with_the_stated_radius_and_steady_state():
    """Over 128 problems, the host recomputation (make_problem: eigenvalues, Φ, h, J) agrees
    with the sampler: ρ(A) in the stated range, Φ(A) <= cond(P) <= 3, h and J* equal."""
    keys = jax.random.split(jax.random.PRNGKey(3), 128)
    batch = jax.device_get(jax.vmap(sample_dlb_problem)(keys))
    for i in range(128):
        sampled = jax.tree.map(lambda x, i=i: x[i], batch)
        host = dlb_on_host(sampled)
        assert DLB_RHO[0] - 1e-5 <= host.rho <= DLB_RHO[1] + 1e-5
        np.testing.assert_allclose(host.rho, sampled.rho, rtol=1e-4)
        assert host.phi <= 3.0 + 1e-4
        np.testing.assert_allclose(host.h, sampled.h, rtol=1e-3, atol=1e-5)
        assert host.best_arm == sampled.best_arm or np.isclose(host.J_star, sampled.J_star,
                                                                atol=1e-5)


def test_lsd_family_problems_are_monotone_and_trimming_keeps_the_optimum():
    """128 problems are monotone (strictly: f(1) >= g(2)); both kinds occur; trimming the
    padded tables to their own caps leaves the exact optimum unchanged (DP on both)."""
    keys = jax.random.split(jax.random.PRNGKey(4), 128)
    batch = jax.device_get(jax.vmap(sample_lsd_problem)(keys))
    problems = [jax.tree.map(lambda x, i=i: x[i], batch) for i in range(128)]
    constant_play = 0
    for p in problems:
        padded = lsd_on_host(p, trim=False)
        assert lsd.is_monotone(padded, strict=True)
        constant_play += bool(np.all(padded.play_payoff == padded.play_payoff[:, :1]))
    assert 20 < constant_play < 108  # recharging and lsd problems, about half each
    for p in problems[:3]:
        small, padded = lsd_on_host(p), lsd_on_host(p, trim=False)
        assert small.states_per_arm <= padded.states_per_arm
        np.testing.assert_allclose(dp_value(small, 40), dp_value(padded, 40), rtol=1e-12)


def test_lsd_family_kinds_restrict_the_play_side():
    keys = jax.random.split(jax.random.PRNGKey(5), 32)
    play = jax.vmap(lambda k: sample_lsd_problem(k, kinds=("recharging",)).play_payoff)(keys)
    np.testing.assert_array_equal(play, jnp.broadcast_to(play[..., :1], play.shape))
    with pytest.raises(hystax.HystaxError, match="kinds must be a non-empty subset"):
        hystax.make("meta/LSD", env_kwargs={"kinds": ("satiation",)})


def test_play_instances_equals_playing_each_problem_with_its_seed():
    env, _ = hystax.make("meta/LSD")
    problems = family_problems(env, [env.num_tasks + i for i in range(3)],
                               lambda p: lsd_on_host(p, trim=False))
    infos = [lsd_info(p, 60) for p in problems]
    policy = LSD_ALGORITHMS["isi-comb-ucb1"]()
    together = play_instances(policy, problems, infos, [0, 1, 2], 60, record_every=10)
    for i, (problem, info) in enumerate(zip(problems, infos)):
        alone = play(policy, problem, info, jax.random.PRNGKey(i), 60, record_every=10)
        np.testing.assert_array_equal(together.reward[i], alone.reward)
        np.testing.assert_array_equal(together.arm_counts[i], alone.arm_counts)


def _gru_actor(env, params):
    config = ppo.Config(memory=MemoryConfig("gru", d_model=8, encoder_sizes=(8,)),
                        hidden_sizes=(8,))
    actor = ppo.make_actor(config, env, params)
    network = recurrent_ppo.make_network(config, env.num_actions, True)
    obs = jnp.zeros((1, 1, env.observation_space(params).shape[0]))
    weights = network.init(jax.random.PRNGKey(7), network.initialize_carry(1), obs,
                           jnp.ones((1, 1), bool))
    return actor, weights


def test_an_agent_plays_the_same_in_the_runner_as_in_its_env():
    """A (random) GRU policy, greedy, on a noise-free DLB problem: stepping the family env
    with the actor and playing the in-context bandit policy in the runner choose the same
    arms and collect the same rewards (the observation, the carry and the reset agree)."""
    problem = dlb.preset("real").replace(sigma=np.float64(0.0), reward_std=np.float64(0.0))
    # the env gets its own float32 copy: jax caches a numpy array's device copy by identity,
    # so the same arrays traced in float32 here would reach the float64 runner as float32
    own = jax.tree.map(lambda x: np.array(x, np.float32), problem)
    env = BanditFamily(lambda key: own, num_arms=6, horizon=40, observe_time=True)
    params = env.default_params
    actor, weights = _gru_actor(env, params)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    carry, total, counts = actor.init_carry(1), 0.0, np.zeros(6, int)
    act, step = jax.jit(actor.act, static_argnums=5), jax.jit(env.step)
    for t in range(40):
        arm, carry = act(weights, obs[None], carry, jnp.array([t == 0]), jax.random.PRNGKey(t),
                         True)
        obs, state, reward, *_ = step(jax.random.PRNGKey(100 + t), state, arm[0], params)
        total += float(reward)
        counts[int(arm[0])] += 1
    policy = incontext_policy(actor, weights, env.observe, deterministic=True)
    out = play(policy, problem, dlb_info(problem, 40), jax.random.PRNGKey(9), 40, 40)
    np.testing.assert_array_equal(out.arm_counts, counts)
    np.testing.assert_allclose(out.realised[-1], total, rtol=1e-5)


@pytest.mark.slow
def test_incontext_bandits_command_writes_tables_and_resumes(tmp_path, capsys):
    from hystax.experiments import incontext_bandits

    args = ["--models", "s5", "mlp", "--seeds", "1", "--problems", "3",
            "--total-timesteps", "4096", "--out-dir", str(tmp_path), "--name", "set",
            "--no-progress"]
    assert incontext_bandits.cli(args) == 0
    for family in ("dlb", "lsd"):
        folder = tmp_path / "set" / family
        summary = json.loads((folder / "table.json").read_text())
        assert set(summary["sets"]) == ({"held-out", "real", "synthetic-0.01"} if family == "dlb"
                                        else {"held-out", "long-caps", "R1", "R2", "R3"})
        assert {"s5", "mlp"} <= set(summary["sets"]["held-out"])
        assert (folder / "regret.png").stat().st_size > 0
        assert (folder / "curves.csv").read_text().count("\n") > 3 * 100
    capsys.readouterr()
    assert incontext_bandits.cli([*args[:-3], "--name", "set", "--resume", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "read back, nothing to train" in captured.out + captured.err


@pytest.mark.slow
def test_a_briefly_trained_s5_agent_beats_uniform_play_on_held_out_lsd_problems(tmp_path):
    """S5 after 2**17 env steps (one seed) collects more expected reward than uniformly random
    arms on 64 held-out meta/LSD problems, with the same noise; the per-problem difference's
    95% interval lies above zero."""
    from hystax.agents.bandits.policy import Policy
    from hystax.core.stats import mean_and_t_interval
    from hystax.experiments.incontext_bandit_eval import agent_policies

    result = hystax.train("ppo", "meta/LSD", memory="s5", seeds=1, total_timesteps=2**17,
                          out_dir=tmp_path, progress=False, plots=False)
    env, _ = hystax.make("meta/LSD")
    problems = family_problems(env, range(env.num_tasks, env.num_tasks + 64),
                               lambda p: lsd_on_host(p, trim=False))
    infos = [lsd_info(p, env.horizon) for p in problems]
    uniform = Policy(lambda key, info: jnp.int32(0),
                     lambda state, key, t: jax.random.randint(key, (), 0, env.num_actions),
                     lambda state, arm, reward, t: state, "uniform")
    (agent,) = agent_policies(hystax.load(result.run_dir), env)
    rewards = [play_instances(p, problems, infos, range(64), env.horizon).reward[:, -1]
               for p in (agent, uniform)]
    mean, half = mean_and_t_interval(rewards[0] - rewards[1])
    assert mean - half > 0, (mean, half)
