"""The one bandit runner: problem-neutral (any problem with the round protocol), exact sums,
block noise replayable, and the runner's modules import no specific env."""

import ast
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits import Policy
from hystax.agents.bandits import bandit_runner as runner
from hystax.envs.bandit_rounds import BanditProblem


@struct.dataclass
class TwoArms:
    """A stateless Gaussian two-armed bandit written only against the round protocol."""

    means: np.ndarray

    num_arms = 2

    @property
    def optimal_rate(self):
        return jnp.max(jnp.asarray(self.means))

    def initial_state(self):
        return jnp.zeros((), jnp.int32)  # counts the rounds, to check the state is threaded

    def draw_noise(self, key, rounds):
        return jax.random.normal(key, (rounds,), jnp.result_type(float))

    def play(self, state, arm, noise):
        mean = jnp.asarray(self.means)[arm]
        return mean, mean + noise, mean, state + 1

    def with_extra_arms(self, extra):
        return self


def _fixed(arm: int) -> Policy:
    return Policy(lambda key, info: jnp.int32(arm), lambda s, key, t: s,
                  lambda s, a, r, t: s, name=f"arm {arm}")


def test_a_new_problem_plays_through_the_runner_with_exact_sums():
    problem = TwoArms(np.array([0.25, 0.75]))
    assert isinstance(problem, BanditProblem)
    key, horizon, every = jax.random.PRNGKey(3), 60, 20
    best = runner.play(_fixed(1), problem, None, key, horizon, record_every=every)
    worst = runner.play(_fixed(0), problem, None, key, horizon, record_every=every)
    with jax.enable_x64(True):
        noise = np.asarray(runner.noise_of_rounds(problem, key, horizon, every))
    np.testing.assert_array_equal(best.regret, [0.0, 0.0, 0.0])  # summed round by round
    np.testing.assert_allclose(worst.regret, [10.0, 20.0, 30.0], rtol=1e-12)
    np.testing.assert_allclose(best.realised, np.cumsum(0.75 + noise)[every - 1::every],
                               rtol=1e-12)
    # common random numbers: both policies met the same noise
    np.testing.assert_allclose(best.realised - best.reward, worst.realised - worst.reward,
                               rtol=1e-12)
    assert int(best.final_state) == horizon and best.arm_counts.tolist() == [0, horizon]


def test_seeds_vmapped_equal_single_runs_and_differ_from_each_other():
    problem = TwoArms(np.array([0.25, 0.75]))
    many = runner.play_seeds(_fixed(0), problem, None, [4, 9], 40, record_every=10)
    one = runner.play(_fixed(0), problem, None, jax.random.PRNGKey(9), 40, record_every=10)
    np.testing.assert_allclose(many.realised[1], one.realised, rtol=1e-12)
    assert not np.allclose(many.realised[0], many.realised[1])


def test_the_runner_and_the_generic_api_import_no_specific_env():
    root = Path(__file__).resolve().parents[1] / "agents" / "bandits"
    for name in ("policy.py", "bandit_runner.py", "dlb_runs.py", "lsd/lsd_runs.py"):
        tree = ast.parse((root / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        specific = {m for m in imported if m and m.startswith(("hystax.envs.dlb", "hystax.envs.lsd"))}
        assert not specific, (name, specific)


def test_dynlin_ucb_on_its_schedule_equals_every_round_and_the_numpy_reference():
    """The runner skips DynLin-UCB between its epoch boundaries (Policy.schedule): the same
    bits as calling it every round, and the numpy reference replayed on the same noise."""
    from hystax.agents.bandits import dynlin_ucb, run_seeds
    from hystax.envs.dlb import preset
    from hystax.experiments.reference import numpy_dynlin_ucb

    for name, horizon in (("real", 4000),):
        problem, policy = preset(name), dynlin_ucb("logT")
        fast = run_seeds(policy, problem, 3, horizon, record_every=1000)
        slow = run_seeds(policy._replace(schedule=None), problem, 3, horizon, record_every=1000)
        np.testing.assert_array_equal(fast.regret, slow.regret)
        np.testing.assert_array_equal(fast.policy_state.V_inv, slow.policy_state.V_inv)
        with jax.enable_x64(True):
            key = jax.random.PRNGKey(0)
            noise = [np.asarray(v) for v in runner.noise_of_rounds(problem, key, horizon, 1000)]
            first = int(jax.random.randint(runner.policy_key(key, 0, 1000), (), 0,
                                           problem.num_arms))
        regret, pseudo, _ = numpy_dynlin_ucb(problem, horizon, horizon, noise=noise,
                                             first_arm=first)
        np.testing.assert_allclose([regret, pseudo],
                                   [fast.regret[0, -1], fast.pseudo_regret[0, -1]], rtol=1e-9)


def test_the_numpy_reference_runs_seeds_side_by_side():
    from hystax.envs.dlb import preset
    from hystax.experiments.reference import numpy_dynlin_ucb

    problem = preset("synthetic-0.01")
    regret, pseudo, played = numpy_dynlin_ucb(problem, 500, 500, rng=np.random.default_rng(0),
                                              seeds=4)
    assert regret.shape == pseudo.shape == (4,) and played.shape == (4, 500)
    one = numpy_dynlin_ucb(problem, 500, 500, noise=(np.zeros((500, 3)), np.zeros(500)),
                           first_arm=int(played[2, 0]))
    many = numpy_dynlin_ucb(problem, 500, 500, rng=None, noise=(np.zeros((500, 3)),
                                                                 np.zeros(500)),
                            first_arm=int(played[2, 0]), seeds=2)
    np.testing.assert_allclose(many[1], [one[1]] * 2, rtol=1e-12)
