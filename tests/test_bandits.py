"""Tests for hystax.agents.bandits: the run API (CRN, regrets, float64), DynLin-UCB, baselines."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.agents.bandits import (
    ALGORITHMS,
    Policy,
    clairvoyant,
    dynlin_ucb,
    epoch_schedule,
    expert,
    make_info,
    round_noise,
    run,
    run_seeds,
)
from hystax.agents.bandits import bandit_runner as runner
from hystax.agents.bandits.dynlin_ucb import beta, epoch_length
from hystax.envs import dlb

from hystax.core.errors import HystaxError

KEY = jax.random.PRNGKey(0)
REAL = dlb.preset("real")
SYN = dlb.preset("synthetic-0.01")


def _constant(arm: int, use_key: bool = False) -> Policy:
    """Plays ``arm`` forever; with ``use_key`` it also draws (and discards) random numbers."""
    def act(state, key, t):
        noise = jax.random.uniform(key) if use_key else 0.0
        return jnp.int32(arm) + jnp.int32(noise > 2.0)
    return Policy(lambda key, info: jnp.zeros(()) + jax.random.normal(key) * use_key, act,
                  lambda state, arm, reward, t: state + reward, f"const{arm}{use_key}")


def _cycling() -> Policy:
    return Policy(lambda key, info: jnp.int32(0), lambda s, key, t: (t % 6).astype(jnp.int32),
                  lambda s, arm, reward, t: s, "cycling")


# --- epochs and beta ----------------------------------------------------------------------------


@pytest.mark.parametrize("horizon, epochs, last", [(10_000, 2156, 5), (100_000, 17_075, 7),
                                                   (10**6, 137_206, 8)])
def test_epoch_schedule_matches_spec(horizon, epochs, last):
    """The schedule's epochs (the reference's list of update rounds S_m, S_{M-1} < T <= S_M);
    what T rounds play under the paper's alignment: tests/test_dlb_reference.py."""
    lengths = epoch_schedule(0.2, horizon)
    assert len(lengths) == epochs and lengths[-1] == last
    assert lengths[:-1].sum() < horizon <= lengths.sum()
    with jax.enable_x64(True):
        np.testing.assert_array_equal(epoch_length(0.2, jnp.arange(1, epochs + 1)), lengths)


def test_epoch_schedule_degenerates_as_rho_bar_goes_to_zero():
    for rho_bar in (0.0, 1e-12):
        assert np.all(epoch_schedule(rho_bar, 500) == 1) and len(epoch_schedule(rho_bar, 500)) == 500


def test_beta_matches_spec_value():
    info = make_info(SYN, 10**6)
    with jax.enable_x64(True):
        value = float(beta(info, 1.0, 1000))
    assert value == pytest.approx(19.18, abs=0.01)  # spec: ~19 at t = 10^3
    with jax.enable_x64(True):
        assert float(beta(info, 1.0, 10**5)) > value


def test_dynlin_ucb_updates_once_per_epoch_and_holds_its_arm():
    T = 1000
    out = run(dynlin_ucb(1.0), SYN, KEY, T, record_every=T)
    lengths = epoch_schedule(0.2, T)
    complete = int(np.sum(np.cumsum(lengths) <= T - 1))  # updates at rounds S_m (0-based)
    assert int(out.policy_state.n_updates) == complete
    assert int(out.policy_state.m) == complete + 1
    chex.assert_type([out.policy_state.V, out.policy_state.h_hat, out.regret], jnp.float64)
    # V = I + sum of u u^T over the updates, and every budget arm has ||u||^2 = 1.25
    assert np.trace(out.policy_state.V) == pytest.approx(3 + 1.25 * complete)


def test_dynlin_ucb_with_rho_bar_zero_updates_every_round():
    A0 = dlb.make_problem(np.zeros((3, 3)), np.eye(3), np.ones(3), np.ones(3), 0.01, dlb.BUDGET_ARMS)
    out = run(dynlin_ucb(1.0), A0, KEY, 200, record_every=200)
    assert A0.rho == 0.0 and int(out.policy_state.n_updates) == 200


def test_dynlin_ucb_regression_in_float64_recovers_h():
    p = dlb.preset("synthetic-0.001")
    out = run(dynlin_ucb("logT"), p, KEY, 20_000, record_every=20_000)
    assert np.abs(out.policy_state.h_hat - p.h).max() < 0.05


# --- run: CRN, regrets, dtypes -------------------------------------------------------------------


def test_common_random_numbers_across_policies():
    a = run(_constant(2), REAL, KEY, 300, record_every=1)
    b = run(_constant(2, use_key=True), REAL, KEY, 300, record_every=1)
    np.testing.assert_array_equal(a.regret, b.regret)
    np.testing.assert_array_equal(a.x_final, b.x_final)
    c = run(_constant(2), REAL, jax.random.PRNGKey(1), 300, record_every=1)
    assert not np.array_equal(a.x_final, c.x_final)


def test_regret_equals_numpy_recomputation():
    T, p = 60, REAL
    out = run(_cycling(), p, KEY, T, record_every=3)
    with jax.enable_x64(True):
        noise = [jax.device_get(round_noise(p, KEY, t, every=3)) for t in range(T)]
    x, regret, pseudo = np.zeros(3), [], []
    for t in range(T):
        u = p.arms[t % 6]
        regret.append(p.J_star - (p.omega @ x + p.theta @ u))
        pseudo.append(p.J_star - p.h @ u)
        x = p.A @ x + p.B @ u + noise[t][0]
    np.testing.assert_allclose(out.regret, np.cumsum(regret)[2::3], atol=1e-12)
    np.testing.assert_allclose(out.pseudo_regret, np.cumsum(pseudo)[2::3], atol=1e-12)
    np.testing.assert_allclose(out.x_final, x, atol=1e-12)
    np.testing.assert_array_equal(out.rounds, np.arange(3, T + 1, 3))
    np.testing.assert_array_equal(out.arm_counts, [10] * 6)


def test_clairvoyant_and_expert():
    out = run_seeds(clairvoyant(), REAL, 3, 1000, record_every=100)
    assert np.all(out.pseudo_regret == 0.0)
    assert np.all(np.abs(out.regret[:, -1]) < 5)  # only the transient from x_0 = 0 and state noise
    ex = run(expert(), REAL, KEY, 1000)
    gap = REAL.J_star - REAL.h @ dlb.EXPERT_ALLOCATION
    assert ex.pseudo_regret[-1] == pytest.approx(1000 * gap) and gap == pytest.approx(0.2157, abs=1e-4)
    assert ex.arm_counts.tolist() == [0] * 6 + [1000]


def test_run_seeds_matches_run_and_is_float64():
    many = run_seeds(ALGORITHMS["exp3"](), SYN, [4, 7], 500, record_every=50)
    one = run(ALGORITHMS["exp3"](), SYN, jax.random.PRNGKey(7), 500, record_every=50)
    chex.assert_shape([many.regret, many.pseudo_regret, many.arm_counts], [(2, 10), (2, 10), (2, 6)])
    np.testing.assert_allclose(many.regret[1], one.regret, atol=1e-12)
    assert many.regret.dtype == np.float64 and many.pseudo_regret.dtype == np.float64
    assert not jax.config.jax_enable_x64  # the caller's setting is left alone


# The default run scans one algorithm of each kind here (a UCB on the epoch schedule, a
# discounted ridge UCB, a reference row, an adversarial one, UCB1, the constant Expert); the
# others' scans are covered elsewhere in the default run (the learning test runs DynLin-UCB,
# Lin-UCB and Exp3; the CLI test lin-ucb-1-ref and exp3-ref; tests/test_dlb_reference.py
# steps every reference row by hand) and run here in the slow set.
_DEFAULT_RUN = {"dynlin-ucb-1", "d-lin-ucb", "d-lin-ucb-1-ref", "batch-exp3", "expert", "ucb1"}


@pytest.mark.parametrize("name", [n if n in _DEFAULT_RUN else
                                  pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(ALGORITHMS)])
def test_every_algorithm_runs(name):
    out = run_seeds(ALGORITHMS[name](), SYN, 2, 400, record_every=100)
    assert np.all(np.isfinite(out.regret)) and np.all(np.isfinite(out.pseudo_regret))
    assert np.all(np.diff(out.pseudo_regret, axis=1) >= -1e-12)  # pseudo-regret never decreases
    assert out.arm_counts.sum(axis=1).tolist() == [400, 400]


def test_learning_dynlin_ucb_beats_myopic_baselines_on_real():
    """Real preset, T = 20k, 32 seeds, paired by seed (common random numbers)."""
    T, seeds = 20_000, 32
    final = {name: run_seeds(ALGORITHMS[name](), REAL, seeds, T, record_every=T).pseudo_regret[:, -1]
             for name in ("dynlin-ucb-logT", "lin-ucb-1", "lin-ucb-logT", "exp3")}
    ours = final.pop("dynlin-ucb-logT")
    for name, theirs in final.items():
        diff = theirs - ours
        se = diff.std(ddof=1) / np.sqrt(seeds)
        assert diff.mean() > 2 * se and diff.mean() > 0, (name, ours.mean(), theirs.mean(), se)


# --- bad input, before any compilation ------------------------------------------------------------


@pytest.fixture
def no_compile(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("compiled before validating")
    monkeypatch.setattr(runner, "compiled_play", boom)


@pytest.mark.parametrize("horizon", [0, -5, 1.5, True])
def test_bad_horizon(no_compile, horizon):
    with pytest.raises(HystaxError, match="horizon"):
        run(dynlin_ucb(), REAL, KEY, horizon)


def test_rho_bar_below_rho_rejected(no_compile):
    with pytest.raises(HystaxError, match="rho_bar.*below"):
        run(dynlin_ucb(), REAL, KEY, 100, bounds={"rho_bar": 0.5})
    with pytest.raises(HystaxError, match="unknown bounds"):
        run(dynlin_ucb(), REAL, KEY, 100, bounds={"rho": 0.9})


def test_other_bad_input(no_compile):
    with pytest.raises(HystaxError, match="record_every"):
        run(dynlin_ucb(), REAL, KEY, 100, record_every=7)
    with pytest.raises(HystaxError, match="lam"):
        dynlin_ucb(lam=0)
    with pytest.raises(HystaxError, match="extra_arms"):
        run(expert((1.0, 2.0)), REAL, KEY, 100)
    with pytest.raises(HystaxError, match="seeds"):
        run_seeds(dynlin_ucb(), REAL, 0, 100)
    with pytest.raises(HystaxError, match="problem"):
        run(dynlin_ucb(), "real", KEY, 100)
