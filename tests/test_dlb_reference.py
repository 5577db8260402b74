"""The DLB baselines' reference settings (the authors' constants, row by row), UCB tie-breaking
by the lowest arm index, and DynLin-UCB's epoch boundary (first update after round 1).

Every constant is recomputed here in plain numpy (floats and complex numbers, the way the
reference code computes it) and compared with the jnp implementation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.agents.bandits import ALGORITHM_SETS, ALGORITHMS, make_info, make_policy, run
from hystax.agents.bandits.dlb_baselines import (
    batch_exp3_reference_constants,
    d_lin_ucb,
    d_lin_ucb_beta,
    exp3,
    exp3_reference_scale,
    lin_ucb,
    lin_ucb_beta,
    reference_eigenvalue,
    ucb1,
)
from hystax.agents.bandits.dynlin_ucb import dynlin_ucb, epoch_schedule
from hystax.envs import dlb

from hystax.core.errors import HystaxError

KEY = jax.random.PRNGKey(0)
PRESETS = ("synthetic-0.01", "real")
TIMES = (0, 1, 10, 1000, 123_456)
T = 10**6


def _bounds(problem):
    """The reference's constants from the problem, in numpy (d, U, L, Theta, Omega, B, Phi, rho)."""
    arms = np.asarray(problem.arms)
    return dict(d=arms.shape[1], U=max(np.linalg.norm(u) for u in arms), L=1.5,
                theta=np.linalg.norm(problem.theta), omega=np.linalg.norm(problem.omega),
                b=np.linalg.norm(problem.B, 2), phi=float(problem.phi),
                rho=max(abs(np.linalg.eigvals(problem.A))), sigma=float(problem.sigma))


def _numpy_betas(problem, t):
    """(Lin-UCB 1, Lin-UCB log T, D-Lin-UCB 1, D-Lin-UCB log T) as the reference computes them."""
    c = _bounds(problem)
    d, U, L, sigma = c["d"], c["U"], c["L"], c["sigma"]
    c1 = c["theta"] + c["omega"] * c["b"] * c["phi"] / (1 - c["rho"])
    sbar2 = sigma**2 * (1 + c["omega"] ** 2 * c["phi"] ** 2 / (1 - c["rho"] ** 2))
    lam = np.log(T)
    lin_1 = c["theta"] + np.sqrt(2 * np.log(T) + d * np.log((d + T * L**2) / d))
    lin_log = c1 * np.sqrt(lam) + np.sqrt(2 * sbar2 * (np.log(T) + d / 2 * np.log(1 + t * U**2 / (d * lam))))
    g6 = 0.999999
    d_log = c1 * np.sqrt(lam) + np.sqrt(2 * sbar2 * (np.log(T) + d / 2 * np.log(
        1 + (t * U**2 / (d * lam)) * (1 - g6 ** (2 * t)) / (1 - g6**2))))
    g9 = 0.999999999
    lam_t = g9 ** (-t) * 1.0
    d_1 = c["theta"] * np.sqrt(lam_t) + sigma * np.sqrt(2 * np.log(T) + d * np.log(
        1 + L**2 * (1 - g9 ** (2 * t)) / (d * lam_t * (1 - g9**2))))
    return lin_1, lin_log, d_1, d_log


@pytest.mark.parametrize("name", PRESETS)
def test_reference_betas_match_numpy(name):
    problem = dlb.preset(name)
    info = make_info(problem, T)
    for t in TIMES:
        want = _numpy_betas(problem, t)
        with jax.enable_x64(True):
            got = (lin_ucb_beta(info, 1.0, t, "reference"), lin_ucb_beta(info, "logT", t, "reference"),
                   d_lin_ucb_beta(info, 1.0, t, "reference"),
                   d_lin_ucb_beta(info, "logT", t, "reference"))
        np.testing.assert_allclose(np.array(got, float), want, rtol=1e-9, err_msg=f"t = {t}")


def test_reference_lin_ucb_1_ignores_sigma_and_t():
    """The reference's Lin-UCB (lam = 1) radius has no sigma and no t (a documented quirk)."""
    loud = make_info(dlb.preset("synthetic-0.1"), T)
    quiet = make_info(dlb.preset("synthetic-0.001"), T)
    with jax.enable_x64(True):
        values = [float(lin_ucb_beta(i, 1.0, t, "reference")) for i in (loud, quiet) for t in (5, 10**5)]
    assert max(values) - min(values) < 1e-12


def _drive(policy, problem, arms, rewards, horizon=T):
    """init, then (act, update) per round with the given rewards, updating on the given arm
    (``arms=None``: on the arm the policy chose). Returns (final state, chosen arms)."""
    with jax.enable_x64(True):
        info = make_info(problem, horizon)
        state = policy.init(KEY, info)
        chosen = []
        for t, r in enumerate(rewards):
            chosen.append(int(policy.act(state, jax.random.fold_in(KEY, t), jnp.int32(t))))
            a = chosen[-1] if arms is None else arms[t]
            state = policy.update(state, jnp.int32(a), jnp.float64(r), jnp.int32(t))
        return jax.device_get(state), chosen


def test_reference_d_lin_ucb_1_discounts_with_growing_regulariser():
    problem = dlb.preset("real")
    arms, rewards = [0, 3, 3, 5, 1, 2], [0.3, -0.1, 0.25, 0.05, 0.2, 0.12]
    state, _ = _drive(d_lin_ucb(1.0, settings="reference"), problem, arms, rewards)
    g, eye = 0.999999999, np.eye(3)
    V, Vt, b = eye.copy(), eye.copy(), np.zeros(3)
    for t, (a, r) in enumerate(zip(arms, rewards)):
        u = problem.arms[a]
        lam_t = g ** (-t)
        V = g * V + np.outer(u, u) + (1 - g) * lam_t * eye
        Vt = g**2 * Vt + np.outer(u, u) + (1 - g**2) * lam_t * eye
        b = g * b + r * u
    np.testing.assert_allclose(state.V, V, rtol=1e-12)
    np.testing.assert_allclose(state.V_tilde, Vt, rtol=1e-12)
    np.testing.assert_allclose(state.theta_hat, np.linalg.inv(V) @ b, rtol=1e-9)
    assert float(state.gamma) == g


@pytest.mark.parametrize("make", [lambda: lin_ucb("logT", settings="reference"),
                                  lambda: d_lin_ucb("logT", settings="reference")])
def test_reference_log_t_rows_update_every_round_without_discount(make):
    problem = dlb.preset("synthetic-0.01")
    arms, rewards = [2, 2, 0, 4], [0.5, 0.4, 0.8, -0.2]
    state, _ = _drive(make(), problem, arms, rewards)
    U = problem.arms[arms]
    V = np.log(T) * np.eye(3) + U.T @ U
    np.testing.assert_allclose(state.V, V, rtol=1e-12)
    np.testing.assert_allclose(state.theta_hat, np.linalg.solve(V, U.T @ rewards), rtol=1e-9)


def test_reference_round_zero_is_random_then_ucb():
    problem = dlb.preset("synthetic-0.01")
    with jax.enable_x64(True):
        policy = lin_ucb(1.0, settings="reference")
        state = policy.init(KEY, make_info(problem, T))
        firsts = {int(policy.act(state, jax.random.PRNGKey(s), jnp.int32(0))) for s in range(40)}
        later = {int(policy.act(state, jax.random.PRNGKey(s), jnp.int32(1))) for s in range(5)}
    assert len(firsts) > 3  # uniformly random at round 0
    assert later == {0}  # all arms tie at V = lam I, theta_hat = 0: the lowest index


def _numpy_exp3_constants(problem, horizon):
    """The reference's Exp3 / Batch-Exp3 constants, with its raw (complex) eigenvalue and numpy's
    complex -> real truncation at floor / ceil."""
    c = _bounds(problem)
    K = len(problem.arms)
    lam = max(np.linalg.eigvals(problem.A), key=lambda z: (z.real, z.imag))
    M = (c["theta"] + c["omega"] * c["b"] / (1 - lam)) * c["U"]
    scale = (1 / (4 * M)).real  # (y + 2M) / (4M) = 1/2 + y / (4M), real part kept
    gamma = min(1.0, math.sqrt(K * math.log(K) / ((math.e - 1) * 2 * horizon / 3)))
    m, total = 0, 0
    while total < horizon:
        m += 1
        total += 1 + math.floor((np.log(m) / np.log(1 / lam)).real)
    batch = math.ceil((np.log(m) / np.log(1 / lam)).real)
    batch_gamma = min(1.0, math.sqrt(K * math.log(K) / ((math.e - 1) * 2 * (horizon / batch) / 3)))
    return scale, gamma, m, batch, batch_gamma


@pytest.mark.parametrize("name, batch", [("synthetic-0.01", 8), ("real", 14)])
def test_reference_exp3_constants_match_numpy(name, batch):
    problem = dlb.preset(name)
    scale, gamma, epochs, want_batch, batch_gamma = _numpy_exp3_constants(problem, T)
    assert want_batch == batch
    info = make_info(problem, T)
    ev = reference_eigenvalue(problem.A)
    with jax.enable_x64(True):
        assert float(exp3_reference_scale(info, ev)) == pytest.approx(scale, rel=1e-12)
        got_batch, got_epochs = jax.device_get(batch_exp3_reference_constants(info, ev))
        e_state = exp3("reference", ev).init(KEY, info)
        b_state = make_policy("batch-exp3-ref", problem).init(KEY, info)
    assert (int(got_batch), int(got_epochs)) == (batch, epochs)
    assert float(e_state.gamma) == pytest.approx(gamma, rel=1e-12)
    assert int(b_state.batch) == batch and float(b_state.gamma) == pytest.approx(batch_gamma, rel=1e-12)


def test_reference_batch_length_without_the_eigenvalue_quirk():
    """lambda = rho_bar (no raw eigenvalue): 8 at rho = 0.2 and 27 on the real system (|lambda|)."""
    with jax.enable_x64(True):
        got = [int(batch_exp3_reference_constants(make_info(dlb.preset(n), T))[0]) for n in PRESETS]
    assert got == [8, 27]
    assert np.sum(epoch_schedule(0.2, T)) >= T and len(epoch_schedule(0.2, T)) == 137_206


def test_reference_exp3_feeds_the_unclipped_affine_reward():
    problem = dlb.preset("real")
    ev = reference_eigenvalue(problem.A)
    state, _ = _drive(exp3("reference", ev), problem, [2], [0.37])
    g, scale = float(state.gamma), _numpy_exp3_constants(problem, T)[0]
    # log_w = eta G, eta = gamma / K, G_2 = unit reward / p_2 with p_2 = 1 / K at the start
    np.testing.assert_allclose(state.log_w[2], g * (0.5 + scale * 0.37), rtol=1e-12)


def test_reference_settings_are_checked():
    with pytest.raises(HystaxError, match="lam = 1 and lam = 'logT' only"):
        lin_ucb(2.0, settings="reference")
    with pytest.raises(HystaxError, match="settings must be one of textbook, reference"):
        d_lin_ucb(1.0, settings="paper")
    assert set(ALGORITHM_SETS["reference"]) <= set(ALGORITHMS)
    assert ALGORITHMS["lin-ucb-logT-ref"]().name == "Lin-UCB (lam=log T, reference)"


# --- ties: the lowest arm index --------------------------------------------------------------------


def _tied_problem(arms):
    return dlb.make_problem(np.diag([0.2, 0.0, 0.1]), np.eye(3), np.ones(3), np.ones(3), 0.01,
                            np.asarray(arms, float))


TIE_MAKERS = [lambda: lin_ucb(1.0), lambda: lin_ucb("logT", settings="reference"),
              lambda: d_lin_ucb(1.0), lambda: d_lin_ucb(1.0, settings="reference"),
              lambda: d_lin_ucb("logT", settings="reference"), lambda: dynlin_ucb(1.0)]


@pytest.mark.parametrize("make", TIE_MAKERS)
def test_ucb_ties_go_to_the_lowest_index(make):
    """Identical arms tie exactly at every round: the lowest index wins (a reversed order would
    pick the last). Round 0 (random in the reference rows and DynLin-UCB) and DynLin-UCB's
    first epoch (rounds 0 and 1) hold a random arm."""
    rewards = [0.5, -0.2, 0.3, 0.1, 0.6, 0.2, 0.0, 0.4]
    same = [[1.0, 0.5, 0.0]] * 3
    _, chosen = _drive(make(), _tied_problem(same), None, rewards)
    assert chosen[2:] == [0] * (len(rewards) - 2), chosen
    # two copies of one arm among others: the second copy (index 2) is never chosen after round 0
    dup = [[0.0, 0.0, 1.0], [1.0, 0.5, 0.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]]
    _, chosen = _drive(make(), _tied_problem(dup), None, rewards)
    assert 2 not in chosen[2:], chosen


def test_ucb1_ties_go_to_the_lowest_index():
    problem = dlb.preset("synthetic-0.01")
    state, chosen = _drive(ucb1(), problem, [0, 1, 2, 3, 4, 5], [0.0] * 6)
    assert chosen == [0, 1, 2, 3, 4, 5]  # unplayed arms in index order
    with jax.enable_x64(True):
        assert int(ucb1().act(state, KEY, jnp.int32(6))) == 0  # equal counts and sums


# --- DynLin-UCB's epoch boundary ------------------------------------------------------------------


def test_dynlin_ucb_first_update_is_after_round_1():
    problem = dlb.preset("synthetic-0.01")
    rewards = [0.7, 0.2, 0.4, 0.9, 0.3, 0.1, 0.6, 0.8]
    policy = dynlin_ucb(1.0)
    with jax.enable_x64(True):
        info = make_info(problem, T)
        state = policy.init(KEY, info)
        held, updates = [], []
        for t, r in enumerate(rewards):
            arm = policy.act(state, jax.random.fold_in(KEY, t), jnp.int32(t))
            held.append(int(arm))
            before = int(state.n_updates)
            state = policy.update(state, arm, jnp.float64(r), jnp.int32(t))
            if int(state.n_updates) > before:
                updates.append(t)
                if t == 1:  # the first update uses round 1's reward on the arm held since round 0
                    u = problem.arms[held[0]]
                    np.testing.assert_allclose(state.b, 0.2 * u, rtol=1e-12)
                    np.testing.assert_allclose(state.V, np.eye(3) + np.outer(u, u), rtol=1e-12)
    assert held[0] == held[1]
    S = np.cumsum(epoch_schedule(0.2, T))  # updates at rounds S_m (0-based)
    assert updates == [int(s) for s in S if s < len(rewards)] and updates[:2] == [1, 2]


@pytest.mark.parametrize("horizon, played, updates", [(10_000, 2155, 2155), (100_000, 17_075, 17_074),
                                                       (10**6, 137_206, 137_205)])
def test_epochs_played_and_updates_under_the_paper_alignment(horizon, played, updates):
    """The schedule (the spec's 2,156 / 17,075 / 137,206 epochs) vs what T rounds play."""
    S = np.cumsum(epoch_schedule(0.2, horizon))
    starts = np.concatenate([[0], S[:-1] + 1])
    assert int(np.sum(starts < horizon)) == played
    assert int(np.sum(S <= horizon - 1)) == updates


def test_dynlin_ucb_run_counts_the_updates_at_10k():
    out = run(dynlin_ucb(1.0), dlb.preset("synthetic-0.01"), KEY, 10_000, record_every=10_000)
    assert int(out.policy_state.n_updates) == 2155 and int(out.policy_state.m) == 2156
