"""LSD bandits: the problem and its dynamics, the exact DP, Oracle Greedy and the cycle LP."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.agents.bandits.lsd import planning
from hystax.envs import check_env, lsd, make

from hystax.core.errors import HystaxError


def _reference_value(problem, schedule) -> float:
    """Expected reward of a schedule, by a plain Python walk of the module doc's rules."""
    z = [int(v) for v in problem.init_state]
    total = 0.0
    for arm in schedule:
        zi = z[arm]
        total += problem.idle_payoff[arm, zi - 1] if zi > 0 else problem.play_payoff[arm, -zi - 1]
        for i in range(len(z)):
            if i == arm:
                z[i] = -1 if z[i] > 0 else max(z[i] - 1, -problem.play_cap)
            else:
                z[i] = 1 if z[i] < 0 else min(z[i] + 1, problem.idle_cap)
    return total


def _tiny(seed, num_arms=2, idle_cap=3, play_cap=2, monotone=False):
    rng = np.random.default_rng(seed)
    idle, play = rng.uniform(size=(num_arms, idle_cap)), rng.uniform(size=(num_arms, play_cap))
    if monotone:
        idle, play = np.sort(idle, axis=1), -np.sort(-play, axis=1)
    init = rng.integers(1, idle_cap + 1, num_arms)
    return lsd.make_problem(idle, play, init_state=init)


# --- dynamics ------------------------------------------------------------------------------------


def test_dynamics_follow_the_state_rules():
    problem = lsd.make_problem(np.array([[.1, .2, .3], [.4, .5, .6]]), np.array([[.9, .8], [.7, .6]]))
    z = jnp.asarray(problem.init_state)
    chex.assert_trees_all_equal(z, jnp.array([3, 3], jnp.int32))
    expected_states = [[-1, 3], [-2, 3], [-2, 3], [1, -1], [-1, 1]]
    expected_means = [.3, .9, .8, .6, .1]  # f(3); g(2) = mu(-1); g(3) = mu(-2), capped; f(1)
    for arm, state, mean in zip([0, 0, 0, 1, 0], expected_states, expected_means):
        assert float(lsd.mean_payoff(problem, z, arm)) == pytest.approx(mean)
        z = lsd.advance(problem, z, arm)
        assert z.tolist() == state
    chex.assert_type(z, jnp.int32)


def test_schedule_value_matches_a_python_walk():
    problem = _tiny(0, num_arms=3)
    schedule = np.random.default_rng(1).integers(0, 3, 50)
    assert planning.schedule_value(problem, schedule) == pytest.approx(
        _reference_value(problem, schedule), abs=1e-12)
    per_round = planning.schedule_value(problem, schedule, per_round=True)
    chex.assert_shape(per_round, (50,))


def test_recharging_maps_delays():
    f = np.array([[.1, .2, .3, .4]])  # f(tau), tau = 1..4
    problem = lsd.recharging(f, init_state="played")
    # pulled every round -> delay 1; every other round -> delay 2; then idle long -> capped at 4
    assert planning.schedule_value(problem, np.zeros(3, int)) == pytest.approx(0.3)
    two = lsd.recharging(np.array([[.1, .2, .3, .4], [0, 0, 0, 0]]), init_state="played")
    assert planning.schedule_value(two, np.array([0, 1, 0, 1, 1, 1, 1, 0])) == pytest.approx(.1 + .2 + .4)


def test_bernoulli_rewards_have_the_mean_and_common_noise():
    problem = lsd.preset("L1")
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    draws = jax.vmap(lambda k: lsd.sample_reward(problem, k, 0.3))(keys)
    assert set(np.unique(np.asarray(draws)).tolist()) <= {0.0, 1.0}
    assert float(draws.mean()) == pytest.approx(0.3, abs=0.01)
    # same key, larger mean -> reward never smaller (one uniform per round: common random numbers)
    low = jax.vmap(lambda k: lsd.sample_reward(problem, k, 0.3))(keys[:100])
    high = jax.vmap(lambda k: lsd.sample_reward(problem, k, 0.6))(keys[:100])
    assert bool(jnp.all(high >= low))


def test_presets_are_built_and_monotone_where_claimed():
    for name in ("R1", "R2", "R3", "L1"):
        assert lsd.is_monotone(lsd.preset(name)), name
    assert not lsd.is_monotone(lsd.preset("laforgue-main"))  # arm 1 pays only at delay 3
    for seed in range(5):
        for kind in ("lsd", "recharging"):
            problem = lsd.random_monotone(seed, 12, kind=kind)
            assert lsd.is_monotone(problem) and problem.num_arms == 12
            assert problem.idle_payoff.min() >= 0 and problem.idle_payoff.max() <= 1


def test_gymnax_env_plays_the_problem():
    env, params = make("lsd/laforgue-main", env_kwargs={"max_steps_in_episode": 50})
    check_env(env, params)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    chex.assert_shape(obs, (6,))
    obs, state, reward, *_ = env.step(jax.random.PRNGKey(1), state, 2, params)
    assert obs[2] == 1.0 and state.z.tolist() == [1, 1, -1, 1, 1]
    assert float(reward) in (0.0, 1.0) and float(obs[5]) == float(reward)
    full = lsd.LSDEnv("L1", observe_state=True)
    obs, _ = full.reset(jax.random.PRNGKey(0), full.default_params)
    chex.assert_shape(obs, (7,))
    np.testing.assert_allclose(obs[4:], 1.0)  # recharged: z = cap


def test_no_action_variant_observes_only_the_reward():
    """``lsd/<preset>-no-action``: the same rounds (same key, same rewards), an observation of
    the previous reward alone."""
    env, params = make("lsd/laforgue-main", env_kwargs={"max_steps_in_episode": 50})
    blind, blind_params = make("lsd/laforgue-main-no-action",
                               env_kwargs={"max_steps_in_episode": 50})
    check_env(blind, blind_params)
    assert blind.observation_space(blind_params).shape == (1,)
    state, blind_state = env.reset(jax.random.PRNGKey(0), params)[1], blind.reset(
        jax.random.PRNGKey(0), blind_params)[1]
    for t, arm in enumerate([2, 2, 0, 1, 2]):
        obs, state, reward, *_ = env.step(jax.random.PRNGKey(t), state, arm, params)
        blind_obs, blind_state, blind_reward, *_ = blind.step(jax.random.PRNGKey(t),
                                                               blind_state, arm, blind_params)
        assert float(blind_reward) == float(reward) and blind_obs.tolist() == [obs[-1]]


# --- planners ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,num_arms,horizon", [(0, 2, 8), (1, 2, 9), (2, 3, 5), (3, 2, 1)])
def test_dp_equals_brute_force(seed, num_arms, horizon):
    problem = _tiny(seed, num_arms)
    best = max(_reference_value(problem, s)
               for s in itertools.product(range(num_arms), repeat=horizon))
    assert planning.dp_value(problem, horizon) == pytest.approx(best, abs=1e-12)
    value, schedule = planning.dp_plan(problem, horizon)
    chex.assert_shape(schedule, (horizon,))
    assert value == pytest.approx(best, abs=1e-12)
    assert _reference_value(problem, schedule) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("name", ["laforgue-supp", "R1", "R2", "R3", "L1"])
def test_dp_reproduces_the_spec_optima(name):
    spec = lsd.PRESETS[name]
    problem = spec.build()
    value, schedule = planning.dp_plan(problem, spec.horizon)
    assert _reference_value(problem, schedule) == pytest.approx(value, abs=1e-9)
    tolerance = 0.05 if name.startswith("laforgue") else 0.5e-4 * spec.horizon  # 4-digit OPT/T
    assert value == pytest.approx(spec.opt, abs=tolerance)
    assert planning.dp_value(problem, spec.horizon) == pytest.approx(value, abs=1e-9)


@pytest.mark.slow
def test_dp_reproduces_laforgue_main():
    value, _ = planning.dp_plan(lsd.preset("laforgue-main"), 3600)
    assert value == pytest.approx(1823.2, abs=0.05)


SPEC_GREEDY_LP = {"R1": (0.6000, 0.6667), "R2": (0.5132, 0.5510), "R3": (0.7377, 0.7958),
                  "L1": (0.6245, 0.6617)}


@pytest.mark.parametrize("name", sorted(lsd.PRESETS))
def test_greedy_le_dp_le_lp_bound(name):
    spec = lsd.PRESETS[name]
    problem, horizon = spec.build(), spec.horizon
    greedy = planning.schedule_value(problem, planning.greedy_schedule(problem, horizon))
    lp = planning.lp_relaxation(problem)
    slack = float(np.max(problem.idle_payoff))  # one head-start play per arm at most
    assert greedy <= spec.opt + 1e-9
    assert spec.opt <= lp.value * horizon + problem.num_arms * slack
    if name in SPEC_GREEDY_LP:
        greedy_rate, lp_rate = SPEC_GREEDY_LP[name]
        assert greedy / horizon == pytest.approx(greedy_rate, abs=5e-5)
        assert float(lp.value) == pytest.approx(lp_rate, abs=5e-5)
    if name.startswith("laforgue"):  # the instances where planning matters
        assert greedy / spec.opt < {"laforgue-main": 0.31, "laforgue-supp": 0.13}[name]


@pytest.mark.parametrize("seed", range(6))
def test_lp_dual_matches_highs(seed):
    problem = (lsd.random_monotone(seed, 4 + seed, idle_cap=5, play_cap=3, kind="lsd")
               if seed % 2 else _tiny(seed, 3, idle_cap=4, play_cap=3))
    dual = planning.lp_relaxation(problem)
    highs = planning.lp_relaxation(problem, method="highs")
    assert float(dual.value) == pytest.approx(float(highs.value), abs=1e-9)
    y, a, b = np.asarray(dual.y), np.asarray(dual.plays), np.asarray(dual.idle)
    assert y.min() >= -1e-12
    assert (y * a).sum() <= 1 + 1e-9 and np.all((y * (a + b)).sum(axis=1) <= 1 + 1e-9)
    rewards, _, _ = planning.cycle_table(problem.idle_payoff, problem.play_payoff)
    assert float((rewards * y).sum()) == pytest.approx(float(dual.value), abs=1e-12)


def test_lp_dual_runs_under_vmap():
    problems = [lsd.random_monotone(s, 5) for s in range(3)]
    tables = [planning.cycle_table(p.idle_payoff, p.play_payoff) for p in problems]
    rewards = jnp.stack([jnp.asarray(t[0]) for t in tables])
    _, plays, idle = tables[0]
    values = jax.vmap(lambda r: planning.lp_dual_solve(r, plays, idle).value)(rewards)
    expected = [float(planning.lp_relaxation(p, method="highs").value) for p in problems]
    np.testing.assert_allclose(np.asarray(values), expected, atol=1e-5)  # float32 here


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    ({"idle_payoff": [[1.2, 0.5]], "play_payoff": [[0.1]]}, "Bernoulli noise needs payoffs in"),
    ({"idle_payoff": [[0.2, np.nan]], "play_payoff": [[0.1]]}, "non-finite"),
    ({"idle_payoff": [0.2, 0.3], "play_payoff": [[0.1]]}, "idle_payoff must be"),
    ({"idle_payoff": [[0.2, 0.3]], "play_payoff": [[0.1], [0.2]]}, "play_payoff must be"),
    ({"idle_payoff": [[0.2, 0.3]], "play_payoff": [[0.1]], "init_state": [3]}, "init_state"),
    ({"idle_payoff": [[0.2, 0.3]], "play_payoff": [[0.1]], "noise": "poisson"}, "noise"),
])
def test_bad_problems_are_refused(kwargs, match):
    with pytest.raises(HystaxError, match=match):
        lsd.make_problem(**kwargs)


def test_gaussian_noise_allows_any_payoff():
    problem = lsd.make_problem([[1.5, 2.0]], [[-0.5]], noise="gaussian", sigma=0.2)
    assert problem.noise == "gaussian"


def test_bad_planner_input_is_refused():
    problem = lsd.preset("L1")
    for horizon in (0, -5, 2.5):
        with pytest.raises(HystaxError, match="horizon must be a positive int"):
            planning.dp_value(problem, horizon)
        with pytest.raises(HystaxError, match="horizon must be a positive int"):
            planning.greedy_schedule(problem, horizon)
    with pytest.raises(HystaxError, match="joint state space has 12\\^12"):
        planning.dp_plan(lsd.random_monotone(0, 12), 10)
    with pytest.raises(HystaxError, match="unknown LSD preset"):
        lsd.preset("laforgue")
    with pytest.raises(HystaxError, match="schedule entries"):
        planning.schedule_value(problem, np.array([0, 3]))
