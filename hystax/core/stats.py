"""Summary statistics for learning curves, multi-task scores and regret (pure numpy).

Every function that draws random numbers takes an explicit ``seed`` (an int or a
``np.random.Generator``), so a plot made twice from the same data is identical.

- :func:`mean_and_bootstrap_ci`: mean over seeds with a percentile-bootstrap band (return curves).
- :func:`mean_and_standard_error`: mean ± standard error over seeds (regret curves).
- :func:`iqm` and :func:`stratified_bootstrap_ci`: the interquartile mean with stratified bootstrap
  confidence intervals (Agarwal et al., 2021, "Deep RL at the edge of the statistical precipice"),
  written here because ``rliable`` does not install with current pandas.
- :func:`forward_fill`: carry the last finished episode's return across updates that ended none.
- :func:`loglog_slope`: growth exponent of a curve (``regret ~ t**slope``; below 1 means sublinear).
- :func:`max_mean_episodic_return`, :func:`normalized_scores`, :func:`running_mean` and
  :func:`steps_to_threshold`: POPGym's MMER, scores normalized between a baseline and the best
  return, and how soon a learning curve reaches a level.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from hystax.core.errors import HystaxError

__all__ = [
    "mean_and_bootstrap_ci",
    "mean_and_standard_error",
    "mean_and_t_interval",
    "iqm",
    "stratified_bootstrap_ci",
    "forward_fill",
    "nanmean_over_seeds",
    "loglog_slope",
    "max_mean_episodic_return",
    "normalized_scores",
    "running_mean",
    "steps_to_threshold",
]

# Bootstrap means are computed as [n_boot, seeds] @ [seeds, columns]; columns are processed in
# chunks so that the [n_boot, columns] intermediate stays around this many floats.
_CHUNK_FLOATS = 4_000_000


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_confidence(confidence: float, n_boot: int) -> None:
    if not 0.0 < float(confidence) < 1.0:
        raise HystaxError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if int(n_boot) < 1:
        raise HystaxError(f"n_boot must be a positive integer, got {n_boot}")


def _as_seeds_by_time(x, name: str = "x") -> tuple[np.ndarray, bool]:
    """Return ``x`` as float [seeds, T] and whether it was 1-D (a single column)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[:, None], True
    if x.ndim != 2:
        raise HystaxError(f"{name} must have shape [seeds, T] (or [seeds]), got shape {x.shape}")
    if x.shape[0] == 0:
        raise HystaxError(f"{name} has no seeds (shape {x.shape})")
    return x, False


def nanmean_over_seeds(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; all-NaN columns give NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def mean_and_bootstrap_ci(x, confidence: float = 0.95, n_boot: int = 2000,
                          seed: int | np.random.Generator | None = 0):
    """Mean over seeds with a percentile-bootstrap confidence interval, column by column.

    Args:
      x: array [seeds, T] (a 1-D [seeds] array gives scalar results). NaN entries are ignored.
      confidence: coverage of the interval, e.g. 0.95.
      n_boot: number of bootstrap resamples of the seeds (axis 0, drawn with replacement;
        the same resampled seeds are used for every column, so bands are coherent over time).
      seed: int or ``np.random.Generator`` for the resampling.

    Returns:
      ``(mean, lo, hi)``, each [T]. Columns with no finite entry give NaN; with one seed
      (or constant data) the interval collapses onto the mean.
    """
    _check_confidence(confidence, n_boot)
    x, squeeze = _as_seeds_by_time(x)
    n_seeds, n_cols = x.shape
    mean = nanmean_over_seeds(x)
    rng = _rng(seed)
    # Resampling seeds with replacement == multinomial counts over seeds.
    counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=int(n_boot)).astype(np.float64)
    finite = np.isfinite(x)
    values = np.where(finite, x, 0.0)
    weights = finite.astype(np.float64)
    alpha = (1.0 - confidence) / 2.0
    lo = np.full(n_cols, np.nan)
    hi = np.full(n_cols, np.nan)
    step = max(1, _CHUNK_FLOATS // max(1, int(n_boot)))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for start in range(0, n_cols, step):
            cols = slice(start, start + step)
            boot = (counts @ values[:, cols]) / (counts @ weights[:, cols])  # [n_boot, chunk]
            lo[cols], hi[cols] = np.nanquantile(boot, [alpha, 1.0 - alpha], axis=0)
    # Guard against floating-point round-off putting the mean a hair outside a degenerate band.
    lo = np.fmin(lo, mean)
    hi = np.fmax(hi, mean)
    if squeeze:
        return float(mean[0]), float(lo[0]), float(hi[0])
    return mean, lo, hi


def mean_and_standard_error(x):
    """Mean and standard error of the mean over seeds (axis 0), ignoring NaN.

    ``se = std(x, ddof=1) / sqrt(n)`` with ``n`` the number of finite entries in the column;
    ``se = 0`` where only one seed is finite, NaN where none is.

    Args:
      x: array [seeds, T] (a 1-D [seeds] array gives scalar results).

    Returns:
      ``(mean, se)``, each [T].
    """
    x, squeeze = _as_seeds_by_time(x)
    n = np.isfinite(x).sum(axis=0)
    mean = nanmean_over_seeds(x)
    centred = np.where(np.isfinite(x), x - mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (centred**2).sum(axis=0) / (n - 1)
        se = np.sqrt(var / n)
    se = np.where(n == 1, 0.0, se)
    se = np.where(n == 0, np.nan, se)
    if squeeze:
        return float(mean[0]), float(se[0])
    return mean, se


def mean_and_t_interval(x, confidence: float = 0.95):
    """Mean over seeds (axis 0) and the half-width of its Student-t confidence interval.

    ``half = t_{(1 + confidence) / 2, n - 1} * se`` with ``se`` from
    :func:`mean_and_standard_error`; with few seeds (3 is common) this is the honest interval,
    where a bootstrap over 3 values is too narrow. One finite seed gives ``half = inf``.

    Returns:
      ``(mean, half)``, scalars for a 1-D ``x``, else ``[T]`` each.
    """
    from scipy.stats import t as student_t

    _check_confidence(confidence, 1)
    mean, se = mean_and_standard_error(x)
    arr, _ = _as_seeds_by_time(x)
    n = np.isfinite(arr).sum(axis=0)
    with np.errstate(invalid="ignore"):
        quantile = student_t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
    half = np.where(n > 1, quantile * np.atleast_1d(se), np.inf)
    half = np.where(n == 0, np.nan, half)
    if np.ndim(mean) == 0:
        return float(mean), float(half[0])
    return mean, half


def iqm(x, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50% of the values.

    ``int(0.25 * n)`` values are cut from each end of the sorted data (as
    ``scipy.stats.trim_mean(x, 0.25)`` does), so ``iqm(np.arange(8)) == mean([2, 3, 4, 5])``.

    Args:
      x: array of scores; must be finite.
      axis: axis to reduce; ``None`` flattens (the convention for a [runs, tasks] score matrix).
    """
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        raise HystaxError("iqm of an empty array")
    if not np.all(np.isfinite(x)):
        raise HystaxError("iqm needs finite scores (found NaN or inf)")
    cut = int(0.25 * n)
    x = np.sort(x, axis=axis)
    kept = np.take(x, np.arange(cut, n - cut), axis=axis)
    return np.mean(kept, axis=axis)


def stratified_bootstrap_ci(scores, statistic: Callable = iqm, confidence: float = 0.95,
                            n_boot: int = 2000, seed: int | np.random.Generator | None = 0):
    """Point estimate and stratified percentile-bootstrap CI of an aggregate over runs and tasks.

    Each resample draws, independently within every task (column), ``runs`` runs with
    replacement; ``statistic`` is then applied to the whole resampled [runs, tasks] matrix.

    Args:
      scores: array [runs, tasks] of (normalized) scores; a 1-D array is one task.
      statistic: function of a [runs, tasks] matrix returning a scalar (default :func:`iqm`).
      confidence: coverage of the interval.
      n_boot: number of bootstrap resamples.
      seed: int or ``np.random.Generator``.

    Returns:
      ``(point, lo, hi)`` as floats, ``point = statistic(scores)``.
    """
    _check_confidence(confidence, n_boot)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2 or scores.size == 0:
        raise HystaxError(f"scores must have shape [runs, tasks], got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise HystaxError("scores must be finite (found NaN or inf)")
    runs, tasks = scores.shape
    rng = _rng(seed)
    idx = rng.integers(0, runs, size=(int(n_boot), runs, tasks))
    resampled = scores[idx, np.arange(tasks)]  # [n_boot, runs, tasks]
    if statistic is iqm:  # vectorised fast path, identical to the loop below
        boot = iqm(resampled.reshape(int(n_boot), -1), axis=1)
    else:
        boot = np.array([float(statistic(r)) for r in resampled])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    point = float(statistic(scores))
    return point, float(min(lo, point)), float(max(hi, point))


def forward_fill(y):
    """Forward-fill NaNs along the last axis; leading NaNs (before any value) stay NaN.

    Used for return curves, where an update in which no episode ended logs NaN.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0:
        return y.copy()
    n = y.shape[-1]
    positions = np.where(np.isnan(y), 0, np.arange(n))
    last_valid = np.maximum.accumulate(positions, axis=-1)
    return np.take_along_axis(y, last_valid, axis=-1)


def loglog_slope(t, y) -> float:
    """Least-squares slope of ``log y`` against ``log t`` over the entries where both are > 0.

    A cumulative regret growing like ``t**a`` gives ``a``: 0.5 for sqrt(t), 1 for linear regret.
    """
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if t.shape != y.shape:
        raise HystaxError(f"loglog_slope needs t and y of equal length, got {t.size} and {y.size}")
    keep = np.isfinite(t) & np.isfinite(y) & (t > 0) & (y > 0)
    lt, ly = np.log(t[keep]), np.log(y[keep])
    if lt.size < 2 or np.ptp(lt) == 0:
        raise HystaxError("loglog_slope needs at least two distinct positive (t, y) points")
    lt_c = lt - lt.mean()
    return float(np.dot(lt_c, ly - ly.mean()) / np.dot(lt_c, lt_c))


def max_mean_episodic_return(returns) -> np.ndarray:
    """POPGym's MMER per seed: the mean episodic return of each update, maximised over
    training (updates where no episode ended, NaN, are skipped).

    Args:
      returns: ``[seeds, updates]`` mean episodic return per update (the runner's
        ``episode_return`` metric).

    Returns:
      ``[seeds]``; average it over seeds for a run's MMER.
    """
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2:
        raise HystaxError(f"returns must be [seeds, updates], got shape {x.shape}")
    if not np.isfinite(x).any(axis=1).all():
        raise HystaxError("a seed finished no episode, so its MMER is undefined")
    return np.nanmax(np.where(np.isfinite(x), x, np.nan), axis=1)


def normalized_scores(scores, baseline, best=1.0):
    """``(scores - baseline) / (best - baseline)``: 0 at the baseline, 1 at the best return.

    Used to aggregate tasks with different return scales, e.g. POPGym MMERs normalized by the
    memoryless MLP's MMER, so that a tie at the memoryless level scores 0, not a win.

    Args:
      scores: array ``[..., tasks]``.
      baseline: ``[tasks]`` (or broadcastable), each strictly below ``best``.
      best: the best achievable return, scalar or ``[tasks]``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    gap = np.asarray(best, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if not np.all(gap > 0):
        raise HystaxError("normalized_scores needs baseline < best for every task "
                          f"(got best - baseline = {np.round(gap, 4).tolist()})")
    return (scores - baseline) / gap


def running_mean(y, window: int):
    """Trailing mean over ``window`` points along the last axis, ignoring NaN; ``[..., T]``.

    The first ``window - 1`` points average what exists so far; a window holding no finite
    value gives NaN.
    """
    if int(window) < 1:
        raise HystaxError(f"window must be a positive integer, got {window}")
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    sums = np.cumsum(np.where(finite, y, 0.0), axis=-1)
    counts = np.cumsum(finite, axis=-1).astype(np.float64)
    pad = [(0, 0)] * (y.ndim - 1) + [(int(window), 0)]
    sums = np.pad(sums, pad)
    counts = np.pad(counts, pad)
    window_sum = sums[..., window:] - sums[..., :-window]
    window_count = counts[..., window:] - counts[..., :-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(window_count > 0, window_sum / np.maximum(window_count, 1), np.nan)


def steps_to_threshold(curve, steps, threshold: float, window: int = 10) -> float:
    """The first ``steps`` value at which the ``window``-point running mean of ``curve``
    reaches ``threshold`` (NaN if it never does).

    Args:
      curve: ``[T]`` returns, e.g. the mean over seeds of each update's episode return.
      steps: ``[T]`` environment steps at each point.
      threshold: the level to reach.
      window: points in the trailing running mean.
    """
    curve = np.asarray(curve, dtype=np.float64).reshape(-1)
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    if curve.shape != steps.shape:
        raise HystaxError(f"curve and steps must have equal lengths, got {curve.size} and "
                          f"{steps.size}")
    smooth = running_mean(curve, window)
    reached = np.flatnonzero(np.nan_to_num(smooth, nan=-np.inf) >= threshold)
    return float(steps[reached[0]]) if reached.size else float("nan")
