"""DynLin-UCB (lambda = log T) as a plain numpy loop over rounds, the environment stepped in
numpy too: the reference :mod:`hystax.agents.bandits.dynlin_ucb` is checked against
(``tests/test_bandit_runner.py``) and timed against (``hystax bench bandits``).

The paper's epoch alignment: round 0 joins epoch 1, updates at rounds S_m = L_1 + ... + L_m,
a new arm at S_m + 1; V re-inverted per update, float64. ``seeds`` > 1 runs the seeds side by
side as arrays ([S, ...], one loop over rounds): a fairer peer for the JAX runner than one loop
per seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["numpy_dynlin_ucb"]


def _constants(problem, horizon: int) -> dict:
    """The learner's info exactly as ``make_info`` builds it (true bounds, delta = 1 / T)."""
    arms, B = np.asarray(problem.arms), np.asarray(problem.B)
    rho_bar, phi_bar = float(problem.rho), float(problem.phi)
    theta_b = float(np.linalg.norm(problem.theta))
    omega_b = float(np.linalg.norm(problem.omega))
    b_b, u_b = float(np.linalg.norm(B, 2)), float(np.max(np.linalg.norm(arms, axis=1)))
    x_b = u_b / (1 - rho_bar)
    return {"rho_bar": rho_bar, "lam": np.log(float(horizon)), "delta": 1.0 / horizon,
            "u_b": u_b, "c_a": theta_b + omega_b * b_b * phi_bar / (1 - rho_bar),
            "c_b": u_b * omega_b * phi_bar * (u_b * b_b / (1 - rho_bar) + x_b),
            "sigma2": float(problem.sigma) ** 2 * (1 + omega_b**2 * phi_bar**2
                                                  / (1 - rho_bar**2))}


def numpy_dynlin_ucb(problem, horizon: int, rounds: int, rng=None, noise=None, first_arm=None,
                     seeds: int = 1):
    """DynLin-UCB (lambda = log T) for ``rounds`` rounds of a ``horizon``-round run.

    noise: optional (eta [rounds, n], eps [rounds]) to replay (one seed); else drawn per round
    from ``rng`` ([seeds, n] and [seeds] at a time). first_arm: round 0's random arm (else
    drawn from ``rng``). Returns (regret [seeds], pseudo_regret [seeds], arms played
    [seeds, rounds]); with ``seeds=1`` the regrets are floats and the arms [rounds].
    """
    c = _constants(problem, horizon)
    A, B = np.asarray(problem.A), np.asarray(problem.B)
    omega, theta, h = (np.asarray(v) for v in (problem.omega, problem.theta, problem.h))
    arms = np.asarray(problem.arms)
    (K, d), n, S = arms.shape, A.shape[0], seeds
    j_star, lam = float(problem.J_star), c["lam"]
    sigma, reward_std = float(problem.sigma), float(problem.reward_std)
    every_round = c["rho_bar"] < 1e-6  # the reference's degenerate branch
    log_inv_rho = np.log(1.0 / c["rho_bar"]) if not every_round else np.inf

    def beta(t):
        log_det = (d / 2) * np.log(1 + t * c["u_b"] ** 2 / (d * lam))
        return (c["c_a"] * np.sqrt(lam) + c["c_b"] * np.log(np.e * (t + 1)) / np.sqrt(lam)
                + np.sqrt(2 * c["sigma2"] * (np.log(1 / c["delta"]) + log_det)))

    def epoch_len(m):
        return 1 if every_round else 1 + int(np.floor(np.log(m) / log_inv_rho))

    V = np.broadcast_to(lam * np.eye(d), (S, d, d)).copy()
    V_inv = np.linalg.inv(V)
    b, h_hat = np.zeros((S, d)), np.zeros((S, d))
    m, start, end = 1, 0, (1 if every_round else epoch_len(1) + 1)
    arm = np.zeros(S, np.int64)
    x = np.zeros((S, n))
    regret, pseudo = np.zeros(S), np.zeros(S)
    played = np.empty((S, rounds), np.int64)
    for t in range(rounds):
        if t == start:
            if t == 0:
                arm = (rng.integers(K, size=S) if first_arm is None
                       else np.full(S, int(first_arm)))
            else:
                width = np.sqrt(np.einsum("kd,sde,ke->sk", arms, V_inv, arms))
                arm = np.argmax(h_hat @ arms.T + beta(t) * width, axis=1)
        u = arms[arm]                                            # [S, d]
        if noise is None:
            eta = sigma * rng.standard_normal((S, n))
            eps = reward_std * rng.standard_normal(S)
        else:
            eta, eps = noise[0][t][None], noise[1][t]
        mean_y = x @ omega + u @ theta
        y = mean_y + eps
        x = x @ A.T + u @ B.T + eta
        regret += j_star - mean_y
        pseudo += j_star - u @ h
        if t == end - 1:  # the epoch's last round: the only reward used
            V = V + u[:, :, None] * u[:, None, :]
            b = b + y[:, None] * u
            V_inv = np.linalg.inv(V)
            h_hat = np.einsum("sde,se->sd", V_inv, b)
            m += 1
            start, end = end, end + epoch_len(m)
        played[:, t] = arm
    if seeds == 1:
        return float(regret[0]), float(pseudo[0]), played[0]
    return regret, pseudo, played
