"""Tests for hystax.envs: registry, wrappers, check_env."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from hystax.envs import (
    BatchEnv,
    EpisodeStatistics,
    FlattenObservation,
    PreviousActionReward,
    check_env,
    is_registered,
    make,
    names,
    register,
)
from hystax.envs import registry
from hystax.core.errors import HystaxError

KEY = jax.random.PRNGKey(0)


# --- a tiny env with known dynamics ----------------------------------------------------------


@struct.dataclass
class CountState(environment.EnvState):
    count: jax.Array


@struct.dataclass
class CountParams(environment.EnvParams):
    episode_length: int = 3
    max_steps_in_episode: int = 100


class CountEnv(environment.Environment):
    """Episodes of exactly ``episode_length`` steps; reward = action + 1; obs = [t, 1.0]."""

    @property
    def default_params(self) -> CountParams:
        return CountParams()

    def reset_env(self, key, params):
        state = CountState(time=jnp.int32(0), count=jnp.int32(0))
        return self.observe(key, state, None, params), state

    def step_env(self, key, state, action, params):
        state = CountState(time=state.time + 1, count=state.count + 1)
        reward = self.reward(state, action)
        terminated = state.count >= params.episode_length
        return self.observe(key, state, action, params), state, reward, terminated, {}

    def reward(self, state, action):
        return action.astype(jnp.float32) + 1.0

    def observe(self, key, state, action, params):
        return jnp.array([state.count, 1.0], dtype=jnp.float32)

    def is_terminated(self, state, params):
        return state.count >= params.episode_length

    def action_space(self, params=None):
        return spaces.Discrete(3)

    def observation_space(self, params):
        return spaces.Box(0.0, 100.0, (2,), jnp.float32)


# --- broken envs, one fault each ---------------------------------------------------------------


class WrongObsShapeEnv(CountEnv):
    def observation_space(self, params):
        return spaces.Box(0.0, 100.0, (3,), jnp.float32)


class LateNaNRewardEnv(CountEnv):
    """Reward turns NaN from the 4th step of an episode on (episodes last 10 steps)."""

    @property
    def default_params(self):
        return CountParams(episode_length=10)

    def reward(self, state, action):
        return jnp.where(state.count >= 4, jnp.nan, 1.0)


class VectorRewardEnv(CountEnv):
    def reward(self, state, action):
        return jnp.ones((2,), jnp.float32)


class RaisingStepEnv(CountEnv):
    def step_env(self, key, state, action, params):
        raise ValueError("boom: the simulator exploded\nsecond line of a long message")


class FloatTimeEnv(CountEnv):
    """step() hands back state.time as float32 (reset gave int32): breaks lax.scan."""

    def step(self, key, state, action, params=None):
        obs, state, *rest = super().step(key, state, action, params)
        return (obs, state.replace(time=state.time.astype(jnp.float32)), *rest)


class HostRandomEnv(CountEnv):
    """Reward drawn from a host numpy RNG through a callback: different on every run."""

    def reward(self, state, action):
        rng = np.random.default_rng()
        return jax.pure_callback(lambda: np.float32(rng.standard_normal()),
                                 jax.ShapeDtypeStruct((), jnp.float32),
                                 vmap_method="sequential")


class NoObservationSpace:
    """Has reset/step/action_space but no observation_space."""

    default_params = CountParams()

    def reset(self, key, params=None):
        return jnp.zeros(2), None

    def step(self, key, state, action, params=None):
        return jnp.zeros(2), None, 0.0, False, False, {}

    def action_space(self, params=None):
        return spaces.Discrete(2)


class UnhashableEnv(CountEnv):
    def __eq__(self, other):
        return isinstance(other, UnhashableEnv)

    __hash__ = None


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))


def _rollout(env, params, actions, key=KEY):
    """Step ``env`` with ``actions`` from reset: (reset_obs, list of step outputs)."""
    obs, state = env.reset(key, params)
    outs = []
    for i, action in enumerate(actions):
        out = env.step(jax.random.fold_in(key, i), state, jnp.asarray(action), params)
        state = out[1]
        outs.append(out)
    return obs, outs


# --- registry ---------------------------------------------------------------------------------


def test_make_gymnax_envs_with_defaults():
    env, params = make("CartPole-v1")
    assert env.name == "CartPole-v1"
    assert params == env.default_params
    env, params = make("Pendulum-v1")
    assert env.name == "Pendulum-v1"
    assert params.max_steps_in_episode == 200


def test_make_with_overrides():
    env, params = make("CartPole-v1", max_steps_in_episode=7, gravity=10)
    assert params.max_steps_in_episode == 7
    assert params.gravity == 10.0 and isinstance(params.gravity, float)
    assert params.masscart == env.default_params.masscart
    _, params = make("Pendulum-v1", max_torque=1.5)
    assert params.max_torque == 1.5


@pytest.mark.parametrize("overrides, message", [
    (dict(gravity="heavy"), "parameter gravity must be a finite number, got 'heavy'"),
    (dict(gravity=float("inf")), "parameter gravity must be a finite number"),
    (dict(max_steps_in_episode=-5), "parameter max_steps_in_episode must be positive, got -5"),
    (dict(max_steps_in_episode=2.5), "max_steps_in_episode must be"),
])
def test_make_refuses_bad_params_by_their_field_kind(overrides, message):
    """Checked when made, not later inside JAX (issue 14)."""
    with pytest.raises(HystaxError, match=message):
        make("CartPole-v1", **overrides)


def test_make_unknown_env_suggests_close_match():
    with pytest.raises(HystaxError, match=r"unknown env 'cartpole'.*'CartPole-v1'"):
        make("cartpole")


def test_make_unknown_override_field_names_field_and_valid_ones():
    message = r"unknown parameter 'gravty'.*'gravity'.*valid:.*masscart"
    with pytest.raises(HystaxError, match=message):
        make("CartPole-v1", gravty=3.0)


def test_make_rejects_bad_env_kwargs(clean_registry):
    register("hystax-test/Count-v0", CountEnv)
    with pytest.raises(HystaxError, match="bad env_kwargs for env 'hystax-test/Count-v0'"):
        make("hystax-test/Count-v0", env_kwargs={"size": 3})


def test_names_are_sorted_and_include_gymnax():
    all_names = names()
    assert all_names == sorted(all_names)
    assert {"CartPole-v1", "Pendulum-v1", "Breakout-MinAtar"} <= set(all_names)
    assert is_registered("CartPole-v1") and not is_registered("cartpole")


def test_register_and_make_custom_env(clean_registry):
    assert not is_registered("hystax-test/Count-v0")
    register("hystax-test/Count-v0", CountEnv)
    assert is_registered("hystax-test/Count-v0")
    assert "hystax-test/Count-v0" in names()
    env, params = make("hystax-test/Count-v0", episode_length=5)
    assert isinstance(env, CountEnv)
    assert params.episode_length == 5 and params.max_steps_in_episode == 100


def test_register_rejects_duplicates_and_bad_arguments(clean_registry):
    register("hystax-test/Count-v0", CountEnv)
    with pytest.raises(HystaxError, match="'hystax-test/Count-v0' is already registered"):
        register("hystax-test/Count-v0", CountEnv)
    with pytest.raises(HystaxError, match="'CartPole-v1' is already registered"):
        register("CartPole-v1", CountEnv)
    with pytest.raises(HystaxError, match="must be a non-empty str"):
        register(3, CountEnv)
    with pytest.raises(HystaxError, match="must be callable"):
        register("hystax-test/Other-v0", CountEnv())


def test_register_rejects_factory_not_returning_env(clean_registry):
    register("hystax-test/Bad-v0", lambda: 42)
    with pytest.raises(HystaxError, match="returned int, not an env"):
        make("hystax-test/Bad-v0")


# --- check_env: good envs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_check_env_passes_gymnax_envs(name):
    env, params = make(name)
    assert check_env(env, params, num_steps=32) is None


def test_check_env_passes_custom_env_and_wrappers():
    env = CountEnv()
    assert check_env(env, num_steps=16) is None
    assert check_env(PreviousActionReward(env), num_steps=16) is None
    assert check_env(EpisodeStatistics(env), num_steps=16) is None


# --- check_env: one fault each ----------------------------------------------------------------


@pytest.mark.parametrize(
    "env, message",
    [
        (WrongObsShapeEnv(),
         r"^check_env\(WrongObsShapeEnv\): reset\(\) obs has shape \(2,\), expected \(3,\)"),
        (LateNaNRewardEnv(), r"^check_env\(LateNaNRewardEnv\): step\(\) reward is nan at step 3$"),
        (VectorRewardEnv(),
         r"^check_env\(VectorRewardEnv\): step\(\) reward has shape \(2,\), expected a scalar$"),
        (NoObservationSpace(),
         r"^check_env\(NoObservationSpace\): env has no observation_space\(\) method$"),
        (UnhashableEnv(), r"^check_env\(UnhashableEnv\): env is not hashable"),
        (RaisingStepEnv(),
         r"^check_env\(RaisingStepEnv\): step\(\) under jax\.jit failed: "
         r"ValueError: boom: the simulator exploded$"),
        (FloatTimeEnv(),
         r"^check_env\(FloatTimeEnv\): step\(\) state\.time is float32\[\] "
         r"but reset\(\) gave int32\[\]$"),
        (HostRandomEnv(),
         r"^check_env\(HostRandomEnv\): step\(\) is not deterministic: the same key gave a "
         r"different reward at step 0$"),
    ],
    ids=lambda x: type(x).__name__ if not isinstance(x, str) else "",
)
def test_check_env_names_first_violation(env, message):
    with pytest.raises(HystaxError, match=message) as info:
        check_env(env, num_steps=8)
    assert "\n" not in str(info.value)
    error = info.value  # no chained traceback from the user's code
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_check_env_rejects_class_and_bad_num_steps():
    with pytest.raises(HystaxError, match="got a class; pass an instance"):
        check_env(CountEnv)
    with pytest.raises(HystaxError, match="num_steps must be a positive int"):
        check_env(CountEnv(), num_steps=0)


# --- PreviousActionReward ---------------------------------------------------------------------


def test_previous_action_reward_shapes_discrete_and_box():
    env = PreviousActionReward(CountEnv())
    params = env.default_params
    obs, _ = env.reset(KEY, params)
    chex.assert_shape(obs, (2 + 3 + 2,))
    chex.assert_type(obs, jnp.float32)
    assert env.observation_space(params).shape == (7,)
    assert env.action_space(params).n == 3 and env.name == "CountEnv"

    pendulum, p_params = make("Pendulum-v1")
    wrapped = PreviousActionReward(pendulum)
    obs, state = wrapped.reset(KEY, p_params)
    chex.assert_shape(obs, (3 + 1 + 2,))
    obs, *_ = wrapped.step(KEY, state, jnp.array([0.5]), p_params)
    np.testing.assert_allclose(obs[3], 0.5)
    space = wrapped.observation_space(p_params)
    assert space.shape == (6,)
    np.testing.assert_allclose(space.low[3:], [-2.0, -np.inf, 0.0])
    np.testing.assert_allclose(space.high[3:], [2.0, np.inf, 1.0])


def test_previous_action_reward_content_and_auto_reset():
    env = PreviousActionReward(CountEnv())  # episodes of 3 steps, reward = action + 1
    params = env.default_params
    obs0, outs = _rollout(env, params, [2, 0, 1, 1])
    np.testing.assert_array_equal(obs0, [0, 1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(outs[0][0], [1, 1, 0, 0, 1, 3, 0])  # one-hot(2), r=3
    np.testing.assert_array_equal(outs[1][0], [2, 1, 1, 0, 0, 1, 0])  # one-hot(0), r=1
    # third step ends the episode: obs is the reset obs, flags reset
    obs, _, reward, terminated, truncated, info = outs[2]
    assert bool(terminated) and not bool(truncated) and float(reward) == 2.0
    np.testing.assert_array_equal(obs, [0, 1, 0, 0, 0, 0, 1])
    # final_observation: the pre-reset obs with the action and reward that led to it
    np.testing.assert_array_equal(info["final_observation"], [3, 1, 0, 1, 0, 2, 0])
    # after a non-final step final_observation equals obs
    np.testing.assert_array_equal(outs[1][5]["final_observation"], outs[1][0])
    np.testing.assert_array_equal(outs[3][0], [1, 1, 0, 1, 0, 2, 0])


def test_previous_action_reward_scales_only_the_observed_reward():
    env = PreviousActionReward(CountEnv(), reward_scale=10.0)
    _, outs = _rollout(env, env.default_params, [2, 0])
    np.testing.assert_array_equal(outs[0][0], [1, 1, 0, 0, 1, 30, 0])  # r = 3, observed x10
    assert float(outs[0][2]) == 3.0  # the reward returned is unscaled
    with pytest.raises(HystaxError, match="reward_scale must be positive"):
        PreviousActionReward(CountEnv(), reward_scale=0.0)


def test_previous_action_reward_resets_on_truncation():
    env = PreviousActionReward(CountEnv())
    params = env.default_params.replace(episode_length=50, max_steps_in_episode=2)
    _, outs = _rollout(env, params, [1, 1])
    _, _, _, terminated, truncated, info = outs[1]
    assert bool(truncated) and not bool(terminated)
    assert float(outs[1][0][-1]) == 1.0 and float(outs[1][0][-2]) == 0.0
    np.testing.assert_array_equal(info["final_observation"], [2, 1, 0, 1, 0, 2, 0])


# --- BatchEnv ---------------------------------------------------------------------------------


def test_batch_env_shapes_and_equivalence_with_vmap():
    env, params = make("CartPole-v1")
    batch = BatchEnv(env, 8)
    obs, state = batch.reset(KEY, params)
    chex.assert_shape(obs, (8, 4))
    actions = jnp.arange(8) % 2
    step_key = jax.random.PRNGKey(1)
    out = batch.step(step_key, state, actions, params)
    chex.assert_shape(out[0], (8, 4))
    chex.assert_shape([out[2], out[3], out[4]], (8,))
    chex.assert_shape(out[5]["final_observation"], (8, 4))
    assert batch.observation_space(params).shape == (4,) and batch.name == "CartPole-v1"
    assert hash(batch) == hash(batch)

    manual_obs, manual_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(KEY, 8), params)
    chex.assert_trees_all_close(obs, manual_obs)
    manual = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(step_key, 8), manual_state, actions, params)
    chex.assert_trees_all_close(out, manual)


def test_batch_env_batched_params():
    env = CountEnv()
    lengths = jnp.array([1, 2, 3, 4])
    params = jax.vmap(lambda n: env.default_params.replace(episode_length=n))(lengths)
    batch = BatchEnv(env, 4, batched_params=True)
    _, state = batch.reset(KEY, params)
    done_at = []
    for t in range(4):
        _, state, _, terminated, _, _ = batch.step(jax.random.fold_in(KEY, t), state,
                                                   jnp.zeros(4, jnp.int32), params)
        done_at.append(np.asarray(terminated))
    # env i terminates first after i + 1 steps
    np.testing.assert_array_equal(np.argmax(np.stack(done_at), axis=0), [0, 1, 2, 3])
    with pytest.raises(HystaxError, match="leading axis 4"):
        batch.reset(KEY, env.default_params)


def test_batch_env_rejects_bad_arguments():
    with pytest.raises(HystaxError, match="num_envs must be a positive int"):
        BatchEnv(CountEnv(), 0)
    with pytest.raises(HystaxError, match="actions with leading axis 3"):
        batch = BatchEnv(CountEnv(), 3)
        _, state = batch.reset(KEY)
        batch.step(KEY, state, jnp.zeros(2, jnp.int32))


# --- EpisodeStatistics / FlattenObservation ---------------------------------------------------


def test_episode_statistics_reports_episode_return():
    env = EpisodeStatistics(CountEnv())  # episodes of 3 steps, reward = action + 1
    _, outs = _rollout(env, env.default_params, [0, 1, 2, 2])
    infos = [out[5] for out in outs]
    assert [bool(i["returned_episode"]) for i in infos] == [False, False, True, False]
    assert float(infos[2]["returned_episode_returns"]) == 1.0 + 2.0 + 3.0
    assert int(infos[2]["returned_episode_lengths"]) == 3
    assert float(infos[3]["returned_episode_returns"]) == 6.0  # kept until the next episode ends


def test_flatten_observation():
    env = FlattenObservation(make("Breakout-MinAtar")[0])
    params = env.default_params
    obs, state = env.reset(KEY, params)
    chex.assert_shape(obs, (10 * 10 * 4,))
    assert env.observation_space(params).shape == (400,)
    out = env.step(KEY, state, jnp.int32(0), params)
    chex.assert_shape([out[0], out[5]["final_observation"]], (400,))
