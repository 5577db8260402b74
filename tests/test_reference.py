"""The reference learners of ``hystax.experiments.reference`` on small cases: ISI-CombUCB1 in
numpy replays the JAX learner bit for bit, LP-rounding UCB in numpy plays a valid run, and
dense RLS reaches the ridge solution. (DynLin-UCB's numpy reference: test_bandit_runner; the
filler LP and the arm choice: test_bench_lsd.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hystax.agents.bandits.bandit_runner import noise_of_rounds
from hystax.agents.bandits.lsd import run_seeds
from hystax.agents.bandits.lsd.comb_ucb import isi_comb_ucb1
from hystax.envs.lsd import payoff_table, preset
from hystax.experiments.reference import (
    numpy_isi_comb_ucb1,
    numpy_lp_rounding_ucb,
    rls_init,
    rls_predict,
    rls_update_batch,
)


def test_isi_comb_ucb1_reference_replays_the_jax_learner():
    """Seed 0's Bernoulli draws, as the bandit runner makes them, through the numpy loop: the
    same cumulative expected reward at every record and the same arm counts."""
    problem, horizon, every, block = preset("L1"), 48, 8, 2
    out = run_seeds(isi_comb_ucb1(block), problem, 1, horizon, every)
    with jax.enable_x64(True):
        uniforms = np.asarray(noise_of_rounds(problem, jax.random.PRNGKey(0), horizon, every))
    cumulative, counts = numpy_isi_comb_ucb1(problem, horizon, block, uniforms=uniforms)
    np.testing.assert_allclose(cumulative[every - 1::every], out.reward[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(counts, out.arm_counts[0])


def test_lp_rounding_ucb_reference_plays_a_valid_run():
    problem, horizon = preset("L1"), 60
    total, played = numpy_lp_rounding_ucb(problem, horizon, np.random.default_rng(0), epoch=20)
    mu = payoff_table(problem)
    assert played.shape == (horizon,) and set(played) <= set(range(problem.num_arms))
    assert horizon * mu.min() <= total <= horizon * mu.max()
    again, played_again = numpy_lp_rounding_ucb(problem, horizon, np.random.default_rng(0),
                                                epoch=20)
    assert again == total and np.array_equal(played, played_again)  # the rng decides all


def test_rls_reaches_the_ridge_solution():
    """Sherman–Morrison updates over sparse rows equal (Φᵀ Φ + ε I)⁻¹ Φᵀ Y."""
    rng = np.random.default_rng(0)
    features, active, out_dim, samples, ridge = 12, 3, 2, 40, 0.5
    indices = np.stack([rng.choice(features, active, replace=False) for _ in range(samples)])
    values = rng.standard_normal((samples, active)).astype(np.float32)
    targets = rng.standard_normal((samples, out_dim)).astype(np.float32)
    carry = rls_update_batch(rls_init(features, out_dim, ridge), jnp.asarray(indices),
                             jnp.asarray(values), jnp.asarray(targets))
    phi = np.zeros((samples, features))
    np.put_along_axis(phi, indices, values, axis=1)
    weights = np.linalg.solve(phi.T @ phi + ridge * np.eye(features), phi.T @ targets)
    np.testing.assert_allclose(np.asarray(carry[1]), weights, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(rls_predict(carry, indices[:5], values[:5])),
                               phi[:5] @ weights, rtol=1e-3, atol=1e-4)
