"""Trained runs as objects (``hystax.load``) and ``hystax evaluate``: the loaded policy acts as
the training network did, evaluation equals a step-by-step loop, evaluations never overwrite
each other, and bad input is one line with exit code 2."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import hystax
from hystax import rundir
from hystax.agents import ppo, recurrent_ppo
from hystax.agents.actor import start_play
from hystax.agents.memory import MODELS, MemoryConfig
from hystax.agents.networks import ActorCritic
from hystax.cli import main
from hystax.core.stats import mean_and_t_interval
from hystax.runner import resolve
from hystax.trained import Trained

QUIET = dict(progress=False, plots=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs on demand, each trained once per worker: ``runs("mlp")`` -> run folder."""
    root, made = tmp_path_factory.mktemp("runs"), {}
    settings = {
        "mlp": ("ppo", "CartPole-v1", dict(total_timesteps=4096, num_envs=4, num_steps=128)),
        "dyna": ("dyna", "CartPole-v1", dict(model="none", total_steps=900, warmup_steps=500)),
    }

    def get(name):
        if name not in made:
            agent, env, overrides = settings[name]
            made[name] = hystax.train(agent, env, seeds=2, out_dir=root, name=name, **QUIET,
                                      **overrides).run_dir
        return made[name]

    return get


@pytest.mark.parametrize("model", [m if m in ("gru", "mlp") else pytest.param(
    m, marks=pytest.mark.slow) for m in MODELS])  # s5, s4d, lstm: the slow set (compiles)
def test_policy_acting_step_by_step_equals_the_training_network_over_the_sequence(model):
    """``act`` one step at a time, with ``start`` set where episodes begin, picks the argmax of
    the logits the training network computes over the whole sequence (the reset inside the
    scan); a garbage carry is wiped where ``start`` is set."""
    env, params = hystax.make("popgym/RepeatPreviousEasy")
    config = ppo.Config(memory=MemoryConfig(model, d_model=8, state_size=8, encoder_sizes=(8,)),
                        hidden_sizes=(8,), prev_action_reward=True)
    actor = ppo.make_actor(config, env, params)
    obs_dim = actor.env.observation_space(params).shape[0]
    network = recurrent_ppo.make_network(config, env.action_space(params).n, True)
    steps, batch = 12, 3
    k_obs, k_init = jax.random.split(jax.random.PRNGKey(1))
    obs = jax.random.normal(k_obs, (steps, batch, obs_dim))
    start = jnp.zeros((steps, batch), bool).at[0].set(True).at[5, 1].set(True).at[8].set(True)
    weights = network.init(k_init, network.initialize_carry(batch), obs[:1], start[:1])
    _, (logits, _) = jax.jit(network.apply)(weights, network.initialize_carry(batch), obs, start)

    carry = jax.tree.map(lambda x: x + 3.0, actor.init_carry(batch))  # wiped at step 0
    act = jax.jit(actor.act)
    for t in range(steps):
        action, carry = act(weights, obs[t], carry, start[t], jax.random.PRNGKey(t), True)
        np.testing.assert_array_equal(action, jnp.argmax(logits[t], -1), err_msg=f"step {t}")


@pytest.mark.parametrize("name", ["mlp", "dyna"])
def test_evaluate_equals_a_step_by_step_loop(runs, name):
    """Greedy evaluation (a jitted while-loop, vmapped over seeds) equals stepping the same
    resets in a Python loop and summing each env's rewards up to its first episode's end."""
    trained = hystax.load(runs(name))
    assert isinstance(trained, Trained)
    assert trained.step == rundir.read_metrics(runs(name))["update"].size  # the newest
    key, episodes = jax.random.PRNGKey(5), 3
    cap = {"max_steps_in_episode": 60}  # CartPole is chaotic: float rounding of batched and
    # unbatched nets may part after hundreds of steps; this many steps keep them together
    result = trained.evaluate(env_params=cap, episodes=episodes, deterministic=True, key=key)
    assert result.returns.shape == result.lengths.shape == (2, episodes)
    env, env_params = trained.env()
    env_params = env_params.replace(**cap)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    for i, seed_key in enumerate(jax.random.split(key, 2)):
        policy = trained.policy(trained.seeds[i])
        act = jax.jit(policy.act)
        play = start_play(trained.actor, env_params, seed_key, episodes)
        obs, state, ended = play.obs, play.env_state, np.zeros(episodes, bool)
        totals, lengths = np.zeros(episodes), np.zeros(episodes, int)
        while not ended.all():
            action, _ = act(policy.params, obs, None, play.start, key, True)
            obs, state, reward, terminated, truncated, _ = step(
                jax.random.split(key, episodes), state, action, env_params)
            totals += np.where(ended, 0.0, reward)
            lengths += ~ended
            ended |= np.asarray(terminated | truncated)
        np.testing.assert_array_equal(result.returns[i], totals)
        np.testing.assert_array_equal(result.lengths[i], lengths)
    assert main(["evaluate", str(runs(name)), "--episodes", "2"]) == 0  # and from the shell
    rows = list(csv.DictReader(max(runs(name).glob("eval-*.csv")).open()))
    assert len(rows) == 4 and all(int(r["length"]) > 0 for r in rows)


def test_policy_over_every_seed_equals_each_seeds_policy(runs):
    """``policy()`` acts for every seed at once (one key each); ``policy(seed)`` is that seed's
    slice; a seed the run does not have is refused."""
    trained = hystax.load(runs("mlp"))
    env, params = trained.env()
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 5), params)
    obs, start = jnp.stack([obs, obs]), jnp.ones((2, 5), bool)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    policy = trained.policy()
    assert policy.init_carry(5) is None  # an MLP has no memory
    action, _ = jax.jit(policy.act)(policy.params, obs, None, start, keys)  # sampled
    assert action.shape == (2, 5)
    for i, seed in enumerate(trained.seeds):
        one = trained.policy(seed)
        alone, _ = jax.jit(one.act)(one.params, obs[i], None, start[i], keys[i])
        np.testing.assert_array_equal(alone, action[i])
    with pytest.raises(hystax.HystaxError, match="not one of this run's seeds"):
        trained.policy(7)


def test_meta_rl_envs_evaluate_on_held_out_tasks_by_default():
    """A meta-RL policy (here untrained: initial params, no run folder) is evaluated on the
    held-out split unless ``split`` is given (by name or number); ``evaluate`` plays under the
    params ``actor_for`` gives."""
    spec = resolve("ppo", "meta/BernoulliBandit", memory="none", seeds=2, check=False)
    actor = ppo.make_actor(spec.config, spec.env, spec.env_params)
    obs = jnp.zeros(actor.env.observation_space(spec.env_params).shape)
    network = ActorCritic(spec.env.action_space(spec.env_params).n, True,
                          spec.config.hidden_sizes, spec.config.activation)
    params = jax.vmap(network.init, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2), obs)
    trained = Trained(None, spec, 0, SimpleNamespace(params=params), actor)
    assert int(trained.env()[1].split) == 0  # trained on the train split
    assert int(trained.actor_for()[2].split) == 1  # what evaluate() plays under
    for split in ("train", 0):
        assert int(trained.actor_for(env_params={"split": split})[2].split) == 0
    assert int(trained.actor_for("meta/BernoulliBandit")[2].split) == 1  # by name, too


def test_hystax_evaluate_writes_numbered_files_and_records_episodes(runs, capsys):
    """Two evaluations of one run: numbered files, none overwritten; the CSV (seeds x
    episodes) equals ``Trained.evaluate`` with the same key; the sidecar holds the settings
    and the summary; ``--record 1`` saves each seed's first evaluated episode (the CSV's
    return; rewards sum to it; nothing past its length) and a GIF of it."""
    run = runs("mlp")
    n = len(list(run.glob("eval-*.json")))  # evaluations other tests made of this run
    a, b = f"eval-{n + 1:03d}", f"eval-{n + 2:03d}"
    assert main(["evaluate", str(run), "--episodes", "4", "--seed", "3"]) == 0
    assert main(["evaluate", str(run), "--episodes", "2", "--deterministic", "--record", "1",
                 "--env-param", "max_steps_in_episode=40"]) == 0
    out = capsys.readouterr().out
    assert out.count("95% CI over seeds") == 2 and f"{b}.csv" in out
    first = list(csv.DictReader((run / f"{a}.csv").open()))
    again = hystax.load(run).evaluate(episodes=4, key=jax.random.PRNGKey(3))
    np.testing.assert_allclose([float(r["return"]) for r in first], again.returns.reshape(-1))
    side = json.loads((run / f"{b}.json").read_text())
    assert side["deterministic"] and side["episodes"] == 2 and side["step"] == 8
    assert side["summary"] in out and json.loads((run / f"{a}.json").read_text())["seed"] == 3
    assert side["env_params"] == {"max_steps_in_episode": 40} and side["max_steps"] == 40

    second = list(csv.DictReader((run / f"{b}.csv").open()))
    assert len(second) == 2 * 2
    data = np.load(run / f"{b}-episodes.npz")
    returns = np.array([float(r["return"]) for r in second]).reshape(2, 2)[:, :1]
    np.testing.assert_array_equal(data["returns"], returns)
    np.testing.assert_allclose(data["rewards"].sum(-1), returns)
    assert data["obs"].shape == (2, 1, data["lengths"].max(), 4)
    past = np.arange(data["obs"].shape[2]) >= data["lengths"][..., None]
    assert not np.any(data["obs"][past])
    gifs = [f for f in side["files"] if f.endswith(".gif")]
    assert gifs == [f"{b}-seed0-episode0.gif", f"{b}-seed1-episode0.gif"]
    assert all(Image.open(run / g).n_frames > 1 for g in gifs)


@pytest.mark.parametrize("args, message", [
    (["evaluate", "{tmp}"], "is not a hystax run directory"),
    (["evaluate", "{mlp}", "--step", "3"], "has no checkpoint at update 3; it has"),
    (["evaluate", "{mlp}", "--env", "Pendulum-v1"], "differ from the training env's"),
    (["evaluate", "{mlp}", "--episodes", "-2"], "episodes must be a positive integer"),
    (["evaluate", "{mlp}", "--episodes", "3", "--record", "5"], "record (5) cannot exceed"),
    (["evaluate", "{mlp}", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
    (["evaluate", "{mlp}", "--env-param", "gravity=nan"], "gravity must be a finite number"),
    (["evaluate", "{mlp}", "--env-param", "gravity=9", "--env-param", "gravity=8"], "given twice"),
    (["evaluate", "{mlp}", "--env-param", "max_steps_in_episode=3e9"], "must fit in int32"),
    (["evaluate", "{mlp}", "--max-steps", "3000000000"], "max_steps must be a positive integer"),
    (["evaluate", "{mlp}", "--episodes", "3e9"], "episodes must be at most 1,048,576"),
    (["evaluate", "{mlp}", "--seed", "18446744073709551616"], "seed must be an integer in"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path, mlp=runs("mlp")) for a in args]
    before = sorted(p.name for p in runs("mlp").iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in runs("mlp").iterdir()) == before  # nothing written


def test_load_refuses_a_run_without_a_checkpoint_and_a_negative_step(runs, tmp_path):
    (tmp_path / rundir.CONFIG_FILE).write_text((runs("mlp") / rundir.CONFIG_FILE).read_text())
    with pytest.raises(hystax.HystaxError, match="has no checkpoint yet"):
        hystax.load(tmp_path)
    with pytest.raises(hystax.HystaxError, match="step must be a non-negative integer"):
        hystax.load(runs("mlp"), step=-1)


@pytest.mark.slow  # 4 seeds of S5 for 300k steps (about 100 s)
def test_evaluated_s5_return_lies_in_the_ci_of_its_last_training_updates(tmp_path, capsys):
    """A trained S5 agent on RepeatPreviousEasy, evaluated on fresh episodes with its
    stochastic policy, scores within the 95% CI (over seeds) of the mean return of its last
    10 training updates. The learning rate is annealed, so the last updates' policies are the
    evaluated one's neighbours. ``env()`` has the training wrappers; ``hystax evaluate`` plays
    the run too (the default run evaluates MLP and Dyna runs; an S5 run's compile is long)."""
    result = hystax.train("ppo", "popgym/RepeatPreviousEasy", seeds=4, out_dir=tmp_path,
                          total_timesteps=300_000, anneal_lr=True, **QUIET)
    training = np.nanmean(result.metrics["episode_return"][:, -10:], axis=1)  # [seeds]
    mean, half = mean_and_t_interval(training)
    assert mean > 0.9  # it learned the task
    trained = hystax.load(result.run_dir)
    evaluated = trained.evaluate(episodes=200).returns.mean()
    assert mean - half <= evaluated <= mean + half, (evaluated, mean, half)

    env, params = trained.env()
    raw, _ = hystax.make("popgym/RepeatPreviousEasy")
    extra = raw.action_space(params).n + 2  # one-hot previous action, reward, is-first
    assert env.observation_space(params).shape[0] == raw.observation_space(params).shape[0] + extra
    assert main(["evaluate", str(result.run_dir), "--episodes", "3", "--env",
                 "popgym/RepeatPreviousMedium"]) == 0
    rows = list(csv.DictReader((result.run_dir / "eval-001.csv").open()))
    assert len(rows) == 4 * 3 and all(int(r["length"]) > 0 for r in rows)
    assert "on popgym/RepeatPreviousMedium" in capsys.readouterr().out
