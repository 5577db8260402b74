"""Per-trial returns of completed meta-episodes in a reward stream (numpy, host side)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hystax.core.errors import is_int, require

__all__ = ["trial_returns"]


def trial_returns(rewards: Any, trial_index: Any, trial_done: Any, num_trials: int,
                  done: Any = None) -> np.ndarray:
    """Per-trial returns of the completed meta-episodes in a reward stream.

    Args:
      rewards: float ``[T]`` or ``[T, B]`` (time first; ``B`` independent envs).
      trial_index: int ``[T]``/``[T, B]``, ``info["trial_index"]``.
      trial_done: bool ``[T]``/``[T, B]``, ``info["trial_done"]``.
      num_trials: trials per meta-episode.
      done: optional bool ``[T]``/``[T, B]`` meta-episode ends (``terminated | truncated``);
        needed only when a step cap can cut a meta-episode short.

    Returns:
      float64 ``[E, num_trials]``: one row per meta-episode that completed all its trials,
      in order of env column, then time. Meta-episodes cut at the stream's ends are dropped.
    """
    require(is_int(num_trials) and num_trials >= 1,
            f"trial_returns: num_trials must be a positive int, got {num_trials!r}")
    rewards = np.asarray(rewards, np.float64)
    require(rewards.ndim in (1, 2),
            f"trial_returns: rewards must be [T] or [T, B], got shape {rewards.shape}")
    arrays = [np.asarray(trial_index), np.asarray(trial_done, bool)]
    if done is not None:
        arrays.append(np.asarray(done, bool))
    for array in arrays:
        require(array.shape == rewards.shape,
                f"trial_returns: shapes differ: {array.shape} vs rewards {rewards.shape}")
    if rewards.ndim == 1:
        return _trial_returns_1d(rewards, *arrays, num_trials=num_trials)
    rows = [_trial_returns_1d(*(a[:, b] for a in (rewards, *arrays)), num_trials=num_trials)
            for b in range(rewards.shape[1])]
    return np.concatenate(rows, axis=0)


def _trial_returns_1d(rewards, trial_index, trial_done, done=None, *, num_trials):
    """float64 [E, num_trials] for one env's stream [T]."""
    if rewards.size == 0:
        return np.zeros((0, num_trials))
    end = np.logical_and(trial_done, trial_index == num_trials - 1)
    if done is not None:
        end = np.asarray(done, bool)
    start = np.ones_like(end)
    start[1:] = end[:-1] | (trial_index[1:] < trial_index[:-1])
    episode = np.cumsum(start) - 1
    out = np.zeros((episode[-1] + 1, num_trials))
    np.add.at(out, (episode, np.clip(trial_index, 0, num_trials - 1)), rewards)
    last = np.r_[start[1:], True]                  # last step of each episode
    complete = np.zeros(len(out), bool)
    complete[episode[last]] = end[last] & (trial_index[last] == num_trials - 1) \
        & trial_done[last]
    complete[0] &= trial_index[0] == 0             # stream began mid-episode
    return out[complete]
