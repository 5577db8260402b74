"""ISI-CombUCB1 in numpy, enumerating all K^D block sequences exactly: the reference of
``lsd.comb_ucb.isi_comb_ucb1`` for ``hystax bench lsd`` and the tests. Given the JAX run's
Bernoulli draws it replays it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from hystax.envs.lsd import payoff_table
from hystax.experiments.reference.lsd_states import advance, draw_reward, state_index

__all__ = ["numpy_isi_comb_ucb1"]


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
    flat = seqs * (play_cap + idle_cap) + state_index(at_z, play_cap)
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
        mean = mu[arm, int(state_index(z[arm], cp))]
        y = draw_reward(problem, mean, rng, None if uniforms is None else uniforms[t])
        b = int(pulls[t % block])
        if b >= 0:
            counts[b] += 1
            sums[b] += min(max(y, 0.0), 1.0)
        z = advance(z, arm, ci, cp)
        if (t + 1) % block == 0:
            seq, pulls = plan(t + 1)
        total += mean
        cumulative[t] = total
        arm_counts[arm] += 1
    return cumulative, arm_counts
