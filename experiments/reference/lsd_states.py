"""What the numpy LSD references share: the arms' states (``z < 0``: played ``-z`` rounds in a
row; ``z > 0``: idle ``z`` rounds), their index into the payoff table, one round's state
change and one noisy reward."""

from __future__ import annotations

import numpy as np


def state_index(z, play_cap):
    """state_index in numpy: -m -> m - 1, +b -> play_cap + b - 1."""
    return np.where(z < 0, -z - 1, play_cap + z - 1)


def advance(z, arm, idle_cap, play_cap):
    """Every arm's next state after ``arm`` is played: the played arm's play count grows (to
    -play_cap), the others' idle count (to idle_cap)."""
    played = np.arange(z.shape[0]) == arm
    on = np.where(z > 0, -1, np.maximum(z - 1, -play_cap))
    off = np.where(z < 0, 1, np.minimum(z + 1, idle_cap))
    return np.where(played, on, off)


def draw_reward(problem, mean, rng, uniform=None):
    """One noisy reward in numpy (``uniform``: a given Bernoulli draw to replay)."""
    if problem.noise == "bernoulli":
        return float((rng.random() if uniform is None else uniform) < mean)
    return mean + float(problem.sigma) * rng.standard_normal()
