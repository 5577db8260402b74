"""Tests for hystax.envs.meta: the meta-RL wrapper, its families and ``trial_returns``."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces
from gymnax.environments.classic_control.cartpole import CartPole
from hystax.envs import check_env, make, meta
from hystax.envs.meta import MetaEnv, orthogonal, trial_returns
from hystax.envs.registry import is_registered

from hystax.core.errors import HystaxError

KEY = jax.random.PRNGKey(0)
NUM_ENVS = 256


@functools.cache
def family(name):
    """One registered env per family for the whole file (jit caches are per env instance)."""
    return make(name)[0]


@functools.cache
def batched(env):
    """Jitted ``reset(keys [B], params)`` and ``step(keys [B], state, actions [B], params)``."""
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    return reset, step


# --- tiny inner envs with known dynamics -------------------------------------------------------


@struct.dataclass
class CountState(environment.EnvState):
    count: jax.Array


@struct.dataclass
class CountParams(environment.EnvParams):
    episode_length: int = 2
    bonus: float = 0.0
    max_steps_in_episode: int = 100


class CountEnv(environment.Environment):
    """Discrete(3); trials of exactly ``episode_length`` steps (terminated);
    obs = [count, bonus]; reward = action + 1 + bonus."""

    @property
    def default_params(self):
        return CountParams()

    def reset_env(self, key, params):
        state = CountState(time=jnp.int32(0), count=jnp.int32(0))
        return jnp.array([0.0, params.bonus], jnp.float32), state

    def step_env(self, key, state, action, params):
        state = CountState(time=state.time + 1, count=state.count + 1)
        obs = jnp.array([state.count, params.bonus], jnp.float32)
        reward = action.astype(jnp.float32) + 1.0 + params.bonus
        return obs, state, reward, state.count >= params.episode_length, {}

    def is_terminated(self, state, params):
        return state.count >= params.episode_length

    def action_space(self, params=None):
        return spaces.Discrete(3)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 100.0, (2,), jnp.float32)


class EchoEnv(CountEnv):
    """Box(-2, 2, (3,)) actions; obs = the inner action it got; reward = its sum; never
    terminates (trials end by truncation at ``max_steps_in_episode``)."""

    def reset_env(self, key, params):
        return jnp.zeros(3, jnp.float32), CountState(time=jnp.int32(0), count=jnp.int32(0))

    def step_env(self, key, state, action, params):
        state = CountState(time=state.time + 1, count=state.count + 1)
        return action, state, jnp.sum(action), jnp.array(False), {}

    def is_terminated(self, state, params):
        return jnp.array(False)

    def action_space(self, params=None):
        return spaces.Box(-2.0, 2.0, (3,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-2.0, 2.0, (3,), jnp.float32)


def sample_count(key, split):
    """Trials of 2 steps; ``bonus`` in [0, 1) for train, [10, 11) for test."""
    return CountParams(episode_length=2, bonus=10.0 * split + jax.random.uniform(key))


def sample_echo(key, split):
    return CountParams(max_steps_in_episode=5)


def count_env(**kwargs):
    kwargs = {"num_trials": 3, "project_obs": False, "project_actions": False, **kwargs}
    return MetaEnv(CountEnv(), sample_count, **kwargs)


def echo_env(**kwargs):
    kwargs = {"num_trials": 2, "project_obs": True, "project_actions": True, **kwargs}
    return MetaEnv(EchoEnv(), sample_echo, **kwargs)


def _rollout(env, params, actions, key=KEY):
    """Step ``env`` with ``actions`` from reset: (reset_obs, reset_state, list of step outputs).

    Runs the file's shared batched functions (one compile per env) and returns env 0's part.
    """
    reset, step = batched(env)
    first = functools.partial(jax.tree.map, lambda x: x[0])
    obs, state = reset(jax.random.split(key, NUM_ENVS), params)
    outs = [(obs, state)]
    for i, action in enumerate(actions):
        action = jnp.asarray(action)
        action = jnp.broadcast_to(action, (NUM_ENVS, *action.shape))
        out = step(jax.random.split(jax.random.fold_in(key, i), NUM_ENVS), outs[-1][1],
                   action, params)
        outs.append(out)
    return first(obs), first(state), [first(out) for out in outs[1:]]


def _assert_orthonormal_columns(q):
    q = np.asarray(q, np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-5)


# --- check_env on every family -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["meta/CartPole", "meta/Pendulum", "meta/BernoulliBandit"])
def test_families_pass_check_env_on_train_and_test_split(name):
    env = family(name)
    assert env.name == name
    for split in ("train", "test"):
        params = env.params_for(split)
        assert params.split == ("train", "test").index(split)
    # check_env costs ~10 s per family and split: the test split is checked in the slow run
    check_env(env, env.params_for("train"), num_steps=48)  # bandit meta-episodes end inside
    test_env, test_params = make(name, env_kwargs={"split": "test"})
    assert test_env.split == "test" and test_params == env.params_for("test")


def test_families_are_registered_and_register_all_is_idempotent():
    meta.register_all()
    meta.register_all()
    for name in meta.FAMILIES:
        assert is_registered(name)
    env, params = make("meta/BernoulliBandit", env_kwargs={"num_arms": 3, "num_trials": 7})
    assert env.action_space(params).n == 3
    assert env.observation_space(params).shape == (1 + 3 + 3,)
    assert params.max_steps_in_episode == 7


# --- projections -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, cols", [(4, 4), (6, 4), (3, 5), (1, 1)])
def test_orthogonal_matrices(rows, cols):
    q = orthogonal(jax.random.PRNGKey(3), rows, cols)
    assert q.shape == (rows, cols) and q.dtype == jnp.float32
    _assert_orthonormal_columns(q if rows >= cols else q.T)
    assert not np.allclose(q, orthogonal(jax.random.PRNGKey(4), rows, cols))


def test_obs_projection_is_orthogonal_applied_and_differs_across_meta_episodes():
    env = family("meta/CartPole")
    params = env.default_params
    assert env.observation_space(params).shape == (4 + 2 + 3,)
    obs, state = batched(env)[0](jax.random.split(KEY, NUM_ENVS), params)
    proj = np.asarray(state.obs_proj, np.float64)
    assert proj.shape == (NUM_ENVS, 4, 4)
    for p in proj[:16]:
        _assert_orthonormal_columns(p)
    inner_obs = np.asarray(jax.vmap(CartPole().get_obs)(state.inner))
    np.testing.assert_allclose(obs[:, :4], np.einsum("bij,bj->bi", proj, inner_obs), atol=1e-6)
    assert np.abs(proj[1:] - proj[:-1]).max(axis=(1, 2)).min() > 1e-3   # all differ
    # a wider projection (obs_dim > inner dim) has orthonormal columns
    wide = meta.orthogonal(jax.random.PRNGKey(1), 6, 4)
    _assert_orthonormal_columns(wide)
    assert meta.cartpole_family(obs_dim=6).observation_space(params).shape == (6 + 2 + 3,)


def test_action_projection_rotates_and_clips_box_actions():
    env = echo_env()
    params = env.default_params
    actions = [[0.5, -1.0, 0.25], [2.0, 2.0, -2.0]]
    _, state, outs = _rollout(env, params, actions)
    q = np.asarray(state.act_proj)
    assert q.shape == (3, 3)
    _assert_orthonormal_columns(q)
    assert not np.allclose(q, np.eye(3), atol=0.1)
    p = np.asarray(state.obs_proj)
    for action, out in zip(actions, outs):
        inner_action = np.clip(q @ np.asarray(action), -2.0, 2.0)   # bounds are symmetric
        np.testing.assert_allclose(out[2], inner_action.sum(), atol=1e-5)
        # obs: projected inner obs (= the inner action), then the policy's own action
        np.testing.assert_allclose(out[0][:3], p @ inner_action, atol=1e-5)
        np.testing.assert_allclose(out[0][3:6], action, atol=1e-6)
    # Pendulum (d = 1): the torque the pendulum got is the projected, clipped action
    env = family("meta/Pendulum")
    _, state, outs = _rollout(env, env.default_params, [[1.5], [-0.7]])
    sign = float(state.act_proj[0, 0])
    assert abs(sign) == pytest.approx(1.0)
    np.testing.assert_allclose(outs[-1][1].inner.last_u, -0.7 * sign, atol=1e-6)


# --- tasks and held-out tasks ---------------------------------------------------------------------


def test_train_and_test_task_sets_are_disjoint_and_reproducible():
    env = family("meta/BernoulliBandit")
    keys = jax.random.split(KEY, NUM_ENVS)
    states = {}
    for split, task_range in (("train", range(8)), ("test", range(8, 16))):
        params = env.params_for(split, num_tasks=8)
        _, state = batched(env)[0](keys, params)
        states[split] = state
        index = np.asarray(state.task_index)
        assert set(index.tolist()) == set(task_range)   # 256 draws hit all 8 tasks
        # the same index gives the same task, in another instance too
        again = meta.bandit_family().task(int(index[0]), params)
        np.testing.assert_array_equal(again[0].probs, state.task_params.probs[0])
    train = {tuple(p) for p in np.asarray(states["train"].task_params.probs).round(6)}
    test = {tuple(p) for p in np.asarray(states["test"].task_params.probs).round(6)}
    assert len(train) == 8 and len(test) == 8 and not train & test
    # the good arm's probability comes from disjoint ranges (held-out tails for test)
    good_train = np.asarray(states["train"].task_params.probs).max(axis=1)
    good_test = np.asarray(states["test"].task_params.probs).max(axis=1)
    assert np.all((good_train >= 0.6) & (good_train <= 0.9))
    assert np.all((good_test <= 0.6) | (good_test >= 0.9))


def test_cartpole_test_split_uses_held_out_physics_and_projections():
    env = family("meta/CartPole")
    keys = jax.random.split(KEY, NUM_ENVS)
    lengths, projections = {}, {}
    for split in ("train", "test"):
        _, state = batched(env)[0](keys, env.params_for(split))
        lengths[split] = np.asarray(state.task_params.length)
        projections[split] = np.asarray(state.obs_proj)
        p = state.task_params
        np.testing.assert_allclose(p.total_mass, p.masscart + p.masspole, rtol=1e-6)
        np.testing.assert_allclose(p.polemass_length, p.masspole * p.length, rtol=1e-6)
    assert np.all((lengths["train"] >= 0.4) & (lengths["train"] <= 0.85))
    assert np.all((lengths["test"] <= 0.4) | (lengths["test"] >= 0.85))
    assert len(np.unique(lengths["train"])) > 200
    distance = np.abs(projections["train"][:, None] - projections["test"][None]).max(axis=(2, 3))
    assert distance.min() > 1e-3   # no test projection equals a train one


# --- the meta-episode contract, on a scripted run ----------------------------------------------


def test_scripted_meta_episode_flags_and_previous_action_reward():
    env = count_env()   # 3 trials of exactly 2 steps: meta-episodes of 6 steps
    params = env.default_params
    actions = [2, 0, 1, 1, 0, 2, 1, 0]
    obs0, state0, outs = _rollout(env, params, actions)
    bonus = float(state0.task_params.bonus)
    # obs layout: inner obs [2] | one-hot prev action [3] | prev reward | trial-done | first
    assert obs0.shape == (8,) and obs0.dtype == jnp.float32
    np.testing.assert_allclose(obs0, [0, bonus, 0, 0, 0, 0, 0, 1], atol=1e-6)

    expected_index = [0, 0, 1, 1, 2, 2, 0, 0]
    expected_trial_done = [False, True, False, True, False, True, False, True]
    for t, (action, out) in enumerate(zip(actions, outs)):
        obs, state, reward, terminated, truncated, info = out
        assert int(info["trial_index"]) == expected_index[t] and info["trial_index"].dtype == jnp.int32
        assert bool(info["trial_done"]) == expected_trial_done[t]
        assert bool(terminated) == (t == 5), t             # only after the 3rd trial
        assert not bool(truncated)                          # no step cap was reached
        if t == 5:   # auto-reset: a new meta-episode with zeroed history and first flag 1
            assert obs[-1] == 1.0 and obs[-2] == 0.0
            np.testing.assert_array_equal(obs[2:6], 0.0)
            final = info["final_observation"]
            np.testing.assert_allclose(final[:2], [2.0, bonus], atol=1e-6)  # terminal inner obs
            assert final[-1] == 0.0 and final[-2] == 0.0
            continue
        assert obs[-1] == 0.0                               # not a first step
        assert obs[-2] == float(t in (1, 3, 7))             # first step of trials 2, 3 (and 2)
        # the previous action/reward in obs are the ones of this step
        np.testing.assert_array_equal(obs[2:5], np.eye(3)[action])
        assert reward == pytest.approx(action + 1 + float(state.task_params.bonus))
        assert obs[5] == pytest.approx(float(reward))
        # inner obs: the count restarts at each new trial
        assert obs[0] == (0.0 if t in (1, 3, 7) else 1.0)
    # the second meta-episode drew a new task (a new bonus)
    assert float(outs[5][1].task_params.bonus) != bonus


def test_step_cap_ends_meta_episode_and_trial_returns_uses_done():
    env = echo_env()   # 2 trials of 5 steps, capped at 7 steps
    params = env.params_for("train", max_steps_in_episode=7)
    assert env.default_params.max_steps_in_episode == 10
    _, _, outs = _rollout(env, params, [[0.1, 0.0, 0.0]] * 17)
    truncated = np.array([bool(o[4]) for o in outs])
    assert np.flatnonzero(truncated).tolist() == [6, 13]
    assert not any(bool(o[3]) for o in outs)   # cut short: the trials were never all done
    # a cut meta-episode is no complete one, and done= keeps it apart from the next
    rewards = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    index = np.array([0, 0, 0, 0, 0, 1, 1])
    trial_done = np.array([False, False, False, False, True, False, True])
    done = np.array([False, False, True, False, False, False, True])   # cap cut at step 2
    np.testing.assert_array_equal(trial_returns(rewards, index, trial_done, 2, done=done),
                                  [[24.0, 96.0]])
    np.testing.assert_array_equal(trial_returns(rewards, index, trial_done, 2),
                                  [[31.0, 96.0]])   # without done= the two merge


def test_same_start_restarts_every_trial_from_the_meta_reset_state():
    for env in (meta.cartpole_family(same_start=True), family("meta/CartPole")):
        obs0, _, outs = _rollout(env, env.default_params, [0] * 40)   # falls in ~10 steps
        trial_starts = [out[0] for out in outs if out[0][-2] == 1.0]
        assert len(trial_starts) >= 2
        for obs in trial_starts:
            assert np.allclose(obs[:4], obs0[:4], atol=1e-6) == env.same_start
    registered = family("meta/CartPole-SameStart")   # the same class: no second rollout
    assert registered.same_start and registered.num_trials == 16


# --- trial_returns -------------------------------------------------------------------------------


def _python_trial_returns(rewards, index, trial_done, num_trials):
    """The plain loop: one env's stream [T] -> list of per-trial returns of complete episodes."""
    episodes, current, started = [], [0.0] * num_trials, index[0] == 0
    for t in range(len(rewards)):
        current[index[t]] += rewards[t]
        if trial_done[t] and index[t] == num_trials - 1:
            if started:
                episodes.append(current)
            current, started = [0.0] * num_trials, True
    return episodes


def _random_stream(rng, steps, num_trials, start_trial):
    """A stream [steps] of random trials of random lengths, starting in trial ``start_trial``."""
    rewards = rng.normal(size=steps)
    index, trial_done, trial = [], [], start_trial
    left = rng.integers(1, 4)
    for _ in range(steps):
        index.append(trial)
        left -= 1
        trial_done.append(left == 0)
        if left == 0:
            trial, left = (trial + 1) % num_trials, rng.integers(1, 4)
    return rewards, np.array(index), np.array(trial_done)


def test_trial_returns_matches_a_python_loop():
    rng = np.random.default_rng(0)
    num_trials = 3
    columns = [_random_stream(rng, 200, num_trials, start) for start in (0, 1, 0, 2)]
    rewards, index, done = (np.stack(c, axis=1) for c in zip(*columns))
    expected = [row for b in range(4)
                for row in _python_trial_returns(rewards[:, b], index[:, b], done[:, b],
                                                 num_trials)]
    got = trial_returns(rewards, index, done, num_trials)
    assert got.shape == (len(expected), num_trials) and len(expected) > 40
    np.testing.assert_allclose(got, np.array(expected), atol=1e-12)
    one = trial_returns(rewards[:, 0], index[:, 0], done[:, 0], num_trials)   # [T] input
    np.testing.assert_allclose(one, _python_trial_returns(rewards[:, 0], index[:, 0],
                                                          done[:, 0], num_trials), atol=1e-12)
    # a stream that starts mid-episode (trial 1) drops that episode
    assert len(trial_returns(rewards[:, 1], index[:, 1], done[:, 1], num_trials)) == \
        len(_python_trial_returns(rewards[:, 1], index[:, 1], done[:, 1], num_trials))
    with pytest.raises(HystaxError, match="num_trials"):
        trial_returns(rewards, index, done, 0)
    with pytest.raises(HystaxError, match="shapes differ"):
        trial_returns(rewards, index[:-1], done, num_trials)


# --- in-context learning on the bandit family ----------------------------------------------------


def _bandit_run(env, params, policy, num_envs=NUM_ENVS, meta_episodes=3, seed=1):
    """Mean return per trial [num_trials] over complete meta-episodes of ``policy(obs, rng)``."""
    reset, step = batched(env)
    key = jax.random.PRNGKey(seed)
    obs, state = reset(jax.random.split(key, num_envs), params)
    rng = np.random.default_rng(seed)
    learner = {}
    rewards, index, trial_done = [], [], []
    for t in range(meta_episodes * env.num_trials):
        action = policy(np.asarray(obs), rng, learner)
        obs, state, reward, _, _, info = step(
            jax.random.split(jax.random.fold_in(key, t), num_envs), state,
            jnp.asarray(action, jnp.int32), params)
        # the meta-episode lasts exactly num_trials trials (one pull each), then terminates
        assert np.all(np.asarray(info["terminated"]) == (t % env.num_trials == env.num_trials - 1))
        assert not np.asarray(info["truncated"]).any()
        rewards.append(reward)
        index.append(info["trial_index"])
        trial_done.append(info["trial_done"])
    returns = trial_returns(np.stack(rewards), np.stack(index), np.stack(trial_done),
                            env.num_trials)
    assert returns.shape == (num_envs * meta_episodes, env.num_trials)
    return returns.mean(axis=0)


def greedy(obs, rng, learner, num_arms=5):
    """Greedy on the empirical means read from the obs stream; untried arms first."""
    prev_action, prev_reward = obs[:, 1:1 + num_arms], obs[:, 1 + num_arms]
    first = obs[:, -1] == 1.0
    if "counts" not in learner:
        learner["counts"] = np.zeros((len(obs), num_arms))
        learner["sums"] = np.zeros((len(obs), num_arms))
    learner["counts"][first] = 0.0
    learner["sums"][first] = 0.0
    learner["counts"] += prev_action
    learner["sums"] += prev_action * prev_reward[:, None]
    counts = learner["counts"]
    means = np.where(counts > 0, learner["sums"] / np.maximum(counts, 1), np.inf)
    return np.argmax(means, axis=1)


def random_policy(obs, rng, learner, num_arms=5):
    return rng.integers(0, num_arms, size=len(obs))


@pytest.mark.parametrize("split", ["train", "test"])
def test_bandit_in_context_learner_gains_over_trials_random_policy_does_not(split):
    env = family("meta/BernoulliBandit")
    params = env.params_for(split)
    learned = _bandit_run(env, params, greedy)
    late = learned[10:].mean()
    # about 0.33 -> 0.62 (seeded); the noise on these means is about 0.02
    assert late > learned[0] + 0.15, learned      # trial 1 is a blind pull
    chance = _bandit_run(env, params, random_policy)
    assert abs(chance[10:].mean() - chance[0]) < 0.06, chance
    assert late > chance[10:].mean() + 0.15


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("build, message", [
    (lambda: count_env(num_trials=0), "num_trials must be a positive int"),
    (lambda: count_env(num_trials=-2), "num_trials must be a positive int"),
    (lambda: count_env(num_trials=2.0), "num_trials must be a positive int"),
    (lambda: count_env(project_actions=True), "project_actions=True needs a Box action"),
    (lambda: count_env(split="validation"), "unknown split 'validation'"),
    (lambda: count_env(num_tasks=0), "num_tasks must be an int"),
    (lambda: count_env(obs_dim=4), "obs_dim needs project_obs=True"),
    (lambda: make("meta/CartPole", env_kwargs={"split": "val"}), "unknown split 'val'"),
    (lambda: make("meta/Pendulum", env_kwargs={"num_trials": 0}), "num_trials"),
    (lambda: count_env().params_for("val"), "unknown split 'val'"),
    (lambda: count_env().params_for("test", num_tasks=-1), "num_tasks must be an int"),
    (lambda: meta.bandit_family(num_arms=1), "num_arms must be an int >= 2"),
])
def test_bad_input_raises_hystax_error(build, message):
    with pytest.raises(HystaxError, match=message):
        build()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["meta/CartPole", "meta/Pendulum", "meta/BernoulliBandit"])
def test_families_pass_check_env_on_test_split(name):
    env = family(name)
    check_env(env, env.params_for("test"), num_steps=48)
