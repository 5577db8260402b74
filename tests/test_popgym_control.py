"""Fidelity tests: POPGym's partially observed CartPoles and Pendulums vs the numpy reference.

Each transition is checked step for step: the reference's physical state is copied into the
port's ``EnvState`` before every step (so float32-vs-float64 rounding cannot compound through
the unstable dynamics), both take the same action, and next state, observation, reward,
terminated and truncated are compared. Observation noise is compared in distribution.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.envs import check_env, make
from hystax.envs.popgym import cartpole, pendulum

import hystax  # noqa: F401 -- sets XLA flags before jax starts
from hystax.core.errors import HystaxError

gym = pytest.importorskip("gymnasium")
pytest.importorskip("popgym")

LEVELS = ("easy", "medium", "hard")
NAMES = ("PositionOnlyCartPole", "VelocityOnlyCartPole", "NoisyPositionOnlyCartPole",
         "PositionOnlyPendulum", "NoisyPositionOnlyPendulum")
MODULES = {"PositionOnlyCartPole": "position_only_cartpole",
           "VelocityOnlyCartPole": "velocity_only_cartpole",
           "NoisyPositionOnlyCartPole": "noisy_position_only_cartpole",
           "PositionOnlyPendulum": "position_only_pendulum",
           "NoisyPositionOnlyPendulum": "noisy_position_only_pendulum"}
KEY = jax.random.PRNGKey(0)
CONTROLLER = np.array([0.1, 0.2, 1.0, 0.3])  # balances CartPole from any reset state


def reference(name: str, level: str):
    module = pytest.importorskip(f"popgym.envs.{MODULES[name]}")
    return getattr(module, f"{name}{level.capitalize()}")()


@functools.cache
def port(name: str, level: str):
    """One env instance (and params) per name and level, so jitted functions are reused."""
    return make(f"popgym/{name}{level.capitalize()}")


@functools.cache
def stepper(name: str, level: str):
    """``env.step`` without the auto-reset (cheaper to compile): obs, state, reward, term, trunc."""
    env, params = port(name, level)

    def step(key, state, action):
        obs, state, reward, term, _ = env.step_env(key, state, action, params)
        return obs, state, reward, term, env.is_truncated(state, params)
    return jax.jit(step)


def is_cartpole(name: str) -> bool:
    return "CartPole" in name


def to_state(name: str, physical, t=0):
    """The port's EnvState from the reference's float64 physical state (batched or not)."""
    s = np.asarray(physical, np.float32)
    t = np.full(s.shape[:-1], t, np.int32)
    if is_cartpole(name):
        return cartpole.EnvState(x=s[..., 0], x_dot=s[..., 1], theta=s[..., 2],
                                 theta_dot=s[..., 3], time=t)
    return pendulum.EnvState(theta=s[..., 0], theta_dot=s[..., 1], last_u=jnp.zeros_like(s[..., 0]),
                             time=t)


def as_action(name: str, action) -> np.ndarray:
    """One dtype per family, so the jitted step compiles once."""
    return np.asarray(action, np.int32 if is_cartpole(name) else np.float32)


def from_state(name: str, state) -> np.ndarray:
    fields = ("x", "x_dot", "theta", "theta_dot") if is_cartpole(name) else ("theta", "theta_dot")
    return np.stack([np.asarray(getattr(state, f)) for f in fields], -1)


def clean_obs(name: str, physical) -> np.ndarray:
    """The noise-free observation of a (reference) physical state."""
    s = np.asarray(physical, np.float64)
    if name == "VelocityOnlyCartPole":
        return s[..., [1, 3]]
    if is_cartpole(name):
        return s[..., [0, 2]]
    return np.stack([np.cos(s[..., 0]), np.sin(s[..., 0])], -1)


# --- API, spaces ---------------------------------------------------------------------------


# check_env compiles reset/step several times (~2 s per env and level): the default run
# checks each env at one level, rotating; ``-m slow`` checks every level.
CHECK_LEVEL = {name: LEVELS[i % len(LEVELS)] for i, name in enumerate(NAMES)}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("level", LEVELS)
def test_check_env_and_spaces(name, level):
    env, params = port(name, level)
    if level == CHECK_LEVEL[name]:  # all levels: test_check_env_every_level (slow)
        check_env(env, params, num_steps=16)
    assert env.name == f"popgym/{name}{level.capitalize()}"
    ref = reference(name, level)
    flat = gym.spaces.flatten_space(ref.observation_space)
    space = env.observation_space(params)
    assert tuple(space.shape) == flat.shape
    np.testing.assert_allclose(np.broadcast_to(space.low, flat.shape), flat.low, rtol=1e-6)
    np.testing.assert_allclose(np.broadcast_to(space.high, flat.shape), flat.high, rtol=1e-6)
    action_space = env.action_space(params)
    if is_cartpole(name):
        assert action_space.n == env.num_actions == ref.action_space.n
    else:
        assert tuple(action_space.shape) == ref.action_space.shape
        np.testing.assert_array_equal([action_space.low, action_space.high],
                                      [ref.action_space.low[0], ref.action_space.high[0]])
    assert params.max_steps_in_episode == ref.max_episode_length
    assert env.noise_sigma == getattr(ref, "noise_sigma", np.zeros(1))[0]


@pytest.mark.parametrize("cls", [cartpole.PositionOnlyCartPole, cartpole.VelocityOnlyCartPole,
                                 cartpole.NoisyPositionOnlyCartPole,
                                 pendulum.PositionOnlyPendulum,
                                 pendulum.NoisyPositionOnlyPendulum])
def test_bad_level_raises(cls):
    assert cls("Medium").level == "medium"
    with pytest.raises(HystaxError):
        cls("extreme")


# --- step for step -------------------------------------------------------------------------


def run_episode(name, level, ref, seed, policy, key=KEY):
    """Reset ``ref``, then step it and the port (synced to the reference's state before each
    step) with ``policy(state) -> action`` until the episode ends; compare every step.
    Returns (port's return, steps, terminated)."""
    step = stepper(name, level)
    keys = np.asarray(jax.random.split(key, 1000))
    ref.reset(seed=seed)
    ours, theirs = [], []
    for t in range(1000):
        before = np.array(ref.state, np.float64)
        action = policy(before)
        ref_obs, ref_reward, ref_term, ref_trunc, _ = ref.step(action)
        after = np.array(ref.state, np.float64)
        theirs.append((after, ref_obs, ref_reward, ref_term, ref_trunc, t + 1))
        obs, state, reward, term, trunc = step(keys[t], to_state(name, before, t),
                                               as_action(name, action))
        ours.append((from_state(name, state), obs, reward, term, trunc, state.time))
        if ref_term or ref_trunc:
            break
    assert ref_term or ref_trunc, "episode did not end"
    ours, theirs = ([np.stack([np.asarray(x) for x in column]) for column in zip(*rows)]
                    for rows in (ours, theirs))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)  # next state
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5, atol=1e-7)  # reward
    for i in (3, 4, 5):  # terminated, truncated, time
        np.testing.assert_array_equal(ours[i], theirs[i])
    if "Noisy" in name:  # noise-free part of the observation, via the state
        np.testing.assert_allclose(clean_obs(name, ours[0]), clean_obs(name, theirs[0]),
                                   rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    return float(ours[2].sum()), t + 1, bool(ref_term)


@pytest.mark.parametrize("name", NAMES[:3])
@pytest.mark.parametrize("level", LEVELS)
def test_cartpole_step_for_step(name, level):
    ref = reference(name, level)
    rng = np.random.default_rng(LEVELS.index(level))
    length = ref.max_episode_length
    for seed in range(3):  # random pushes: the pole falls, terminated with return t/L
        total, steps, term = run_episode(name, level, ref, seed, lambda s: rng.integers(2))
        assert term and steps < length
        np.testing.assert_allclose(total, steps / length, rtol=1e-5)
    # the reference's -1: stepping a state that already failed (the port never auto-skips it)
    ref_reward = ref.step(0)[1]
    failed = to_state(name, np.array(ref.state), steps)
    reward = stepper(name, level)(KEY, failed, as_action(name, 0))[2]
    assert ref_reward == -1.0 and float(reward) == -1.0
    # a balancing controller: truncated after exactly L steps with return 1, the best
    total, steps, term = run_episode(name, level, ref, 7, lambda s: int(CONTROLLER @ s > 0))
    assert not term and steps == length
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES[3:])
@pytest.mark.parametrize("level", LEVELS)
def test_pendulum_step_for_step(name, level):
    """Random torques in [-3, 3] (so the clip to [-2, 2] is exercised) for a whole episode."""
    ref = reference(name, level)
    rng = np.random.default_rng(LEVELS.index(level))
    total, steps, term = run_episode(
        name, level, ref, 0, lambda s: rng.uniform(-3, 3, (1,)).astype(np.float32))
    assert not term and steps == ref.max_episode_length
    assert -1.0 <= total <= 1.0


@pytest.mark.parametrize("name", NAMES[3:])
@pytest.mark.parametrize("level", LEVELS)
def test_pendulum_best_return(name, level):
    """Upright and still with no torque, both pay the top reward 1/L per step: return 1."""
    _, params = port(name, level)
    ref = reference(name, level)
    ref.reset(seed=0)
    ref.state = np.zeros(2)
    ref_total = sum(ref.step(np.zeros(1, np.float32))[1] for _ in range(ref.max_episode_length))
    step, state, total = stepper(name, level), to_state(name, np.zeros(2)), 0.0
    for t in range(params.max_steps_in_episode):
        _, state, reward, term, trunc = step(KEY, state, as_action(name, [0.0]))
        total += float(reward)
        assert not term and bool(trunc) == (t == params.max_steps_in_episode - 1)
    np.testing.assert_allclose([total, ref_total], 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES[:3])
@pytest.mark.parametrize("level", LEVELS)
def test_cartpole_closed_loop_controller(name, level):
    """The port on its own (no syncing): the controller balances for L steps, return 1."""
    env, params = port(name, level)
    step = stepper(name, level)
    _, state = env.reset_env(jax.random.PRNGKey(3), params)
    total = 0.0
    for t in range(params.max_steps_in_episode):
        action = as_action(name, CONTROLLER @ from_state(name, state) > 0)
        _, state, reward, term, trunc = step(KEY, state, action)
        total += float(reward)
        assert not term and bool(trunc) == (t == params.max_steps_in_episode - 1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


# --- laws: resets and observation noise -----------------------------------------------------


def assert_same_noise(env, params, obs, clean, ref_obs, ref_clean):
    """Port and reference noise around clean observations: all port observations inside the
    declared bounds (clipped, unlike earlier JAX ports), same share of clipped entries, same
    spread and centre of the unclipped residuals."""
    space = env.observation_space(params)
    low, high = np.broadcast_to(space.low, (2,)), np.broadcast_to(space.high, (2,))
    assert (obs >= low).all() and (obs <= high).all()
    stats = []
    for o, c in ((obs, clean), (ref_obs, ref_clean)):
        inside = (o > low) & (o < high)
        resid = (o - c)[inside]
        stats.append((1 - inside.mean(), resid.std(), resid.mean()))
    (clip, sd, mean), (ref_clip, ref_sd, ref_mean) = stats
    np.testing.assert_allclose(clip, ref_clip, atol=0.04)
    np.testing.assert_allclose(sd, ref_sd, rtol=0.12)
    assert abs(mean - ref_mean) < 0.1 * env.noise_sigma
    assert ref_sd > 0.5 * env.noise_sigma  # sanity: the reference's noise is what we think


@pytest.mark.parametrize("name", NAMES)
def test_reset_law(name):
    """Reset states follow the reference's law; observations are of that state (plus noise
    of the reference's law for the noisy variants)."""
    env, params = port(name, "easy")
    ref = reference(name, "easy")
    n = 1000
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(KEY, n), params)
    obs, ours = np.asarray(obs), from_state(name, states)
    refs, ref_obs = [], []
    ref.reset(seed=0)
    for _ in range(n):
        ref_obs.append(ref.reset()[0])
        refs.append(np.array(ref.state, np.float64))
    refs, ref_obs = np.stack(refs), np.stack(ref_obs).astype(np.float64)
    assert (np.asarray(states.time) == 0).all()
    width = refs.max(0) - refs.min(0)
    assert (ours.min(0) >= refs.min(0) - 0.02 * width).all()
    assert (ours.max(0) <= refs.max(0) + 0.02 * width).all()
    for q in (0.1, 0.5, 0.9):
        assert (np.abs(np.quantile(ours, q, 0) - np.quantile(refs, q, 0)) < 0.05 * width).all()
    if "Noisy" in name:
        assert_same_noise(env, params, obs, clean_obs(name, ours), ref_obs, clean_obs(name, refs))
    else:
        np.testing.assert_allclose(obs, clean_obs(name, ours), atol=1e-6)
    if name == "VelocityOnlyCartPole":
        # reference bug, kept out of the port: popgym's reset observes [x, theta]
        np.testing.assert_allclose(ref_obs, refs[:, [0, 2]], atol=1e-7)


@pytest.mark.parametrize("name", ("NoisyPositionOnlyCartPole", "NoisyPositionOnlyPendulum"))
@pytest.mark.parametrize("level", LEVELS)
def test_noise_law(name, level):
    """Around the same clean observations (states of reference rollouts), the port's step
    noise matches the reference's."""
    env, params = port(name, level)
    ref = reference(name, level)
    rng = np.random.default_rng(5)
    states, ref_obs = [], []
    seed = 0
    while len(states) < 800:
        obs, _ = ref.reset(seed=seed)
        done = False
        while not done:
            action = (int(rng.integers(2)) if is_cartpole(name)
                      else rng.uniform(-2, 2, (1,)).astype(np.float32))
            obs, _, term, trunc, _ = ref.step(action)
            states.append(np.array(ref.state))
            ref_obs.append(obs)
            done = term or trunc
        seed += 1
    states, ref_obs = np.stack(states), np.stack(ref_obs).astype(np.float64)
    observe = jax.jit(jax.vmap(lambda k, s: env.observe(k, s, None, params)))
    obs = np.asarray(observe(jax.random.split(KEY, len(states)), to_state(name, states)))
    clean = clean_obs(name, states)
    assert_same_noise(env, params, obs, clean, ref_obs, clean)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("level", LEVELS)
def test_check_env_every_level(name, level):
    env, params = port(name, level)
    check_env(env, params, num_steps=16)
