"""Numpy reference learners for the bandit tests and benchmarks (one home for both).

DLB: :func:`numpy_dynlin_ucb` is DynLin-UCB (lambda = log T) as a plain numpy loop over rounds,
the environment stepped in numpy too, with the paper's epoch alignment (round 0 joins epoch 1,
updates at rounds S_m = L_1 + ... + L_m, a new arm at S_m + 1; V re-inverted per update,
float64). ``seeds`` > 1 runs the seeds side by side as arrays ([S, ...], one loop over rounds):
a fairer peer for the JAX runner than one loop per seed.

LSD (the numpy peers of ``hystax bench lsd``, one seed per loop, the environment in numpy):
:func:`numpy_lp_rounding_ucb` follows ``lsd.rounding.lp_rounding_ucb`` step by step (the same
UCB table, re-plan epoch, leave-one-out filler LP, :func:`numpy_filler_lp`, solved with scipy's
HiGHS, cycle and phase draws with numpy, and ``choose_arm``'s rule, :func:`numpy_choose_arm`):
the same rule, not the same draws. :func:`numpy_isi_comb_ucb1` is ISI-CombUCB1 enumerating all
K^D block sequences exactly; given the JAX run's Bernoulli draws it replays it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from hystax.agents.bandits.lsd.planning import cycle_table, lp_highs
from hystax.envs.lsd import payoff_table

__all__ = ["numpy_choose_arm", "numpy_dynlin_ucb", "numpy_filler_lp", "numpy_isi_comb_ucb1",
           "numpy_lp_rounding_ucb"]


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


# --- LSD: shared helpers -------------------------------------------------------------------------


def _index(z, play_cap):
    """state_index in numpy: -m -> m - 1, +b -> play_cap + b - 1."""
    return np.where(z < 0, -z - 1, play_cap + z - 1)


def _advance(z, arm, idle_cap, play_cap):
    played = np.arange(z.shape[0]) == arm
    on = np.where(z > 0, -1, np.maximum(z - 1, -play_cap))
    off = np.where(z < 0, 1, np.minimum(z + 1, idle_cap))
    return np.where(played, on, off)


def _reward(problem, mean, rng, uniform=None):
    """One noisy reward in numpy (``uniform``: a given Bernoulli draw to replay)."""
    if problem.noise == "bernoulli":
        return float((rng.random() if uniform is None else uniform) < mean)
    return mean + float(problem.sigma) * rng.standard_normal()


# --- LSD: LP-rounding UCB ------------------------------------------------------------------------


def _highs_cycle_lp(rewards: np.ndarray, plays: np.ndarray, idle: np.ndarray):
    """The cycle LP by HiGHS (:func:`~hystax.agents.bandits.lsd.planning.lp_highs`):
    rewards [K, C] -> (value, y [K, C]); no arms -> (0, empty)."""
    if rewards.shape[0] == 0:
        return 0.0, np.zeros((0, rewards.shape[1]))
    solution = lp_highs(rewards, plays, idle)
    return float(solution.value), np.asarray(solution.y)


def numpy_filler_lp(rewards: np.ndarray, plays, idle, tol: float = 1e-9):
    """``rounding.filler_lp`` with HiGHS: the cycle LP without each arm j in turn (value V_j;
    arm j's variables left out, so y[j] = 0 exactly), the filler j* = argmax_j V_j, the first
    of those within ``tol`` of the largest (the JAX argmax takes the first exact maximum; the
    two solvers' values differ in the last digits). Returns (V*, y [K, C], j*)."""
    rewards = np.asarray(rewards, np.float64)
    plays, idle = np.asarray(plays, np.float64), np.asarray(idle, np.float64)
    k = rewards.shape[0]
    values, ys = [], []
    for j in range(k):
        keep = np.arange(k) != j
        value, y_keep = _highs_cycle_lp(rewards[keep], plays, idle)
        y = np.zeros_like(rewards)
        y[keep] = y_keep
        values.append(value)
        ys.append(y)
    filler = int(np.flatnonzero(np.asarray(values) >= max(values) - tol)[0])
    return values[filler], ys[filler], filler


def _sample_plan(y, plays, idle, rng):
    """``rounding.sample_plan`` with numpy draws: (scheduled, a, b, offset), each [K]."""
    plays, idle = np.asarray(plays).astype(np.int64), np.asarray(idle).astype(np.int64)
    k, length = y.shape[0], plays + idle
    probs = np.clip(y * length, 0.0, None)
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1.0)  # float slack above 1
    none = np.clip(1.0 - probs.sum(axis=1, keepdims=True), 0.0, None)
    cum = np.cumsum(np.concatenate([probs, none], axis=1), axis=1)
    draw = rng.random(k) * cum[:, -1]
    choice = np.minimum((cum <= draw[:, None]).sum(axis=1), cum.shape[1] - 1)
    scheduled = choice < probs.shape[1]
    cycle = np.minimum(choice, probs.shape[1] - 1)
    cycle_length = np.where(scheduled, length[cycle], 1)
    offset = np.floor(rng.random(k) * cycle_length).astype(np.int64)
    return (scheduled, np.where(scheduled, plays[cycle], 0), np.where(scheduled, idle[cycle], 0),
            offset)


def numpy_choose_arm(plan, t: int, z: np.ndarray, table: np.ndarray, play_cap: int) -> int:
    """``rounding.choose_arm`` in numpy. plan (scheduled, a, b, offset) [K] each, z [K] real
    states, table [K, Cp + Ci]: the best asking arm by its payoff now; in a round nobody asks
    for, the best arm without a cycle (every arm when all have one); ties to the lowest index."""
    scheduled, plays, idle, offset = plan
    now = table[np.arange(z.shape[0]), _index(z, play_cap)]
    phase = (t + offset) % np.maximum(plays + idle, 1)
    asking = scheduled & (phase >= idle)
    free = ~scheduled
    pool = asking if asking.any() else free if free.any() else np.ones_like(free)
    return int(np.argmax(np.where(pool, now, -np.inf)))


def numpy_lp_rounding_ucb(problem, horizon: int, rng, alpha: float = 2.0,
                          epoch: int | None = None) -> tuple[float, np.ndarray]:
    """LP-rounding UCB (``lsd.rounding.lp_rounding_ucb``) as a plain numpy per-round loop: the
    UCB table (mean + sqrt(alpha ln(t + 1) / n), 1 when unseen, clipped to [0, 1]) every round;
    every ``epoch`` rounds (default max(4 (Cp + Ci + 1), ceil(sqrt(T)))) the filler LP
    (:func:`numpy_filler_lp`) on it, its cycles and phases drawn with ``rng``; the arm by
    :func:`numpy_choose_arm`; the raw reward learnt, as the JAX update does.
    Returns (total expected reward, arms played [T])."""
    mu = payoff_table(problem)
    k, s = mu.shape
    ci, cp = problem.idle_cap, problem.play_cap
    if epoch is None:
        epoch = int(max(4 * (s + 1), math.ceil(math.sqrt(horizon))))
    counts, sums = np.zeros((k, s)), np.zeros((k, s))
    z = np.asarray(problem.init_state, np.int64).copy()

    def ucb(t):
        n = np.maximum(counts, 1)
        bonus = np.sqrt(alpha * np.log(max(t + 1.0, 2.0)) / n)
        return np.where(counts > 0, np.clip(sums / n + bonus, 0.0, 1.0), 1.0)

    def replan(t):
        u = ucb(t)
        rewards, plays, idle = cycle_table(u[:, cp:], u[:, :cp])
        return _sample_plan(numpy_filler_lp(rewards, plays, idle)[1], plays, idle, rng)

    plan = replan(0)
    total = 0.0
    played = np.empty(horizon, np.int64)
    for t in range(horizon):
        arm = numpy_choose_arm(plan, t, z, ucb(t), cp)
        column = int(_index(z[arm], cp))
        mean = mu[arm, column]
        total += mean
        counts[arm, column] += 1
        sums[arm, column] += _reward(problem, mean, rng)
        z = _advance(z, arm, ci, cp)
        if (t + 1) % epoch == 0:
            plan = replan(t + 1)
        played[t] = arm
    return total, played


# --- LSD: ISI-CombUCB1 ---------------------------------------------------------------------------


def _block_sequences(num_arms: int, block: int) -> np.ndarray:
    """All num_arms^block sequences in lexicographic order: [N, D]."""
    radix = num_arms ** np.arange(block - 1, -1, -1, dtype=np.int64)
    return (np.arange(num_arms ** block, dtype=np.int64)[:, None] // radix) % num_arms


def _isi_base_arms(seqs: np.ndarray, idle_cap: int, play_cap: int) -> np.ndarray:
    """ISI-CombUCB1's valued base arm of every pull (every arm starts the block unknown; a state
    becomes known through the block's own switches): [N, D] flat i * S + index, or -1."""
    n, d = seqs.shape
    z = np.ones((n, d), np.int64)
    known = np.zeros((n, d), bool)
    prev = np.zeros((n, d), bool)
    at_z, at_known = np.empty((n, d), np.int64), np.empty((n, d), bool)
    for q in range(d):
        at_z[:, q], at_known[:, q] = z[:, q], known[:, q]
        played = seqs[:, q:q + 1] == seqs
        on = np.where(z > 0, -1, np.maximum(z - 1, -play_cap))
        off = np.where(z < 0, 1, np.minimum(z + 1, idle_cap))
        switch = (q > 0) & (played != prev)
        known_on = known | (play_cap == 1) | switch
        z = np.where(played, np.where(known, on, -1), np.where(known, off, 1))
        known = np.where(played, known_on, known | switch)
        prev = played
    flat = seqs * (play_cap + idle_cap) + _index(at_z, play_cap)
    return np.where(at_known, flat, -1)


def numpy_isi_comb_ucb1(problem, horizon: int, block: int, rng=None,
                        uniforms=None) -> tuple[np.ndarray, np.ndarray]:
    """ISI-CombUCB1 (blocks of D = ``block`` rounds) as a plain numpy per-round loop: before every
    block the UCB table U[K, S] (mean + sqrt(1.5 ln t / n), t the block's first 1-based round;
    D sqrt(1.5 ln(K D)) for unseen base arms), every one of the K^D sequences valued exactly
    and the first best played. ``uniforms`` [T]: Bernoulli draws to replay (else from ``rng``).
    Returns (cumulative expected reward per round [T], arm counts [K])."""
    mu = payoff_table(problem)
    k, s = mu.shape
    ci, cp = problem.idle_cap, problem.play_cap
    seqs = _block_sequences(k, block)
    base = _isi_base_arms(seqs, ci, cp)  # does not depend on the state: computed once
    valued = base >= 0
    safe = np.maximum(base, 0)
    unseen = block * math.sqrt(1.5 * math.log(k * block))
    counts, sums = np.zeros(k * s), np.zeros(k * s)
    z = np.asarray(problem.init_state, np.int64).copy()

    def plan(t_start):
        n = np.maximum(counts, 1)
        u = np.where(counts > 0, sums / n + np.sqrt(1.5 * np.log(max(t_start + 1, 1)) / n), unseen)
        best = int(np.argmax(np.where(valued, u[safe], 0.0).sum(axis=1)))
        return seqs[best], base[best]

    seq, pulls = plan(0)
    cumulative = np.empty(horizon)
    arm_counts = np.zeros(k, np.int64)
    total = 0.0
    for t in range(horizon):
        arm = int(seq[t % block])
        mean = mu[arm, int(_index(z[arm], cp))]
        y = _reward(problem, mean, rng, None if uniforms is None else uniforms[t])
        b = int(pulls[t % block])
        if b >= 0:
            counts[b] += 1
            sums[b] += min(max(y, 0.0), 1.0)
        z = _advance(z, arm, ci, cp)
        if (t + 1) % block == 0:
            seq, pulls = plan(t + 1)
        total += mean
        cumulative[t] = total
        arm_counts[arm] += 1
    return cumulative, arm_counts
