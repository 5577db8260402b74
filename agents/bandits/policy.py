"""The bandit API: a policy is a NamedTuple of pure functions; what a DLB learner may know.

A policy::

    init(key, info) -> state
    act(state, key, t) -> arm index (int32 [], indexes info.arms, or K + e for extra_arms[e])
    update(state, arm, reward, t) -> state

Policies are played by the one bandit runner (:mod:`hystax.agents.bandits.bandit_runner`) on any
problem with the round protocol (:mod:`hystax.envs.bandit_rounds`); DLB runs and regrets are in
:mod:`hystax.agents.bandits.dlb_runs`, LSD runs in :mod:`hystax.agents.bandits.lsd.lsd_runs`.

For DLB, ``info`` (:class:`ProblemInfo`) holds what a learner may know: the arms, d, the
horizon and the spec's bounds (rho_bar, phi_bar, Theta, Omega, B_bar, U_bar, X_bar, sigma,
delta = 1/T); ``best_arm`` is there for the clairvoyant only. Every leaf is an array, so one
compiled run serves any horizon's info.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import struct

from hystax.core.errors import HystaxError, require

__all__ = ["Policy", "ProblemInfo", "check_horizon", "make_info", "record_interval", "seed_list"]


class Policy(NamedTuple):
    """A bandit policy: pure ``init``, ``act``, ``update`` (see the module doc).

    ``extra_arms``: constant actions outside the arm set ([E, d] as a tuple of tuples), played by
    index K + e (e.g. the Expert's allocation); learners leave it empty.

    ``schedule``: optional ``schedule(info, horizon) -> bool [horizon]`` (numpy, on the host):
    the rounds in which ``act`` or ``update`` may change anything, the same for every seed. In
    the other rounds the runner plays the arm the state holds (``state.arm``) and leaves the
    state as it is, under a ``lax.cond`` that stays a branch under ``vmap`` (the predicate is
    not per seed), so a policy that decides rarely costs little per round.
    """

    init: Callable[[jax.Array, Any], Any]
    act: Callable[[Any, jax.Array, jax.Array], jax.Array]
    update: Callable[[Any, jax.Array, jax.Array, jax.Array], Any]
    name: str = "policy"
    extra_arms: tuple = ()
    schedule: Callable[[Any, int], np.ndarray] | None = None


@struct.dataclass
class ProblemInfo:
    """What a learner may know (all array leaves). arms [K, d]; scalars otherwise."""

    arms: jax.Array
    horizon: jax.Array
    rho_bar: jax.Array
    phi_bar: jax.Array
    theta_bound: jax.Array
    omega_bound: jax.Array
    b_bound: jax.Array
    u_bound: jax.Array
    x_bound: jax.Array
    sigma: jax.Array
    delta: jax.Array
    best_arm: jax.Array  # for the clairvoyant only

    @property
    def d(self) -> int:
        return int(np.shape(self.arms)[1])

    @property
    def num_arms(self) -> int:
        return int(np.shape(self.arms)[0])


def make_info(problem, horizon: int, **bounds: float) -> ProblemInfo:
    """The learner's info for ``problem``: bounds default to the true values (rho_bar = rho(A),
    phi_bar = Phi(A), Theta = ||theta||, Omega = ||omega||, B_bar = ||B||_2, U_bar = max ||u||,
    X_bar = U_bar / (1 - rho_bar) as in the reference), sigma = problem.sigma, delta = 1 / T.
    Overrides by keyword; a bound below the true value raises HystaxError."""
    check_horizon(horizon)
    arms = np.asarray(problem.arms)
    true = {"rho_bar": float(problem.rho), "phi_bar": float(problem.phi),
                "theta_bound": float(np.linalg.norm(problem.theta)),
                "omega_bound": float(np.linalg.norm(problem.omega)),
                "b_bound": float(np.linalg.norm(problem.B, 2)),
                "u_bound": float(np.max(np.linalg.norm(arms, axis=1)))}
    unknown = set(bounds) - set(true) - {"x_bound", "sigma", "delta"}
    require(not unknown, f"make_info: unknown bounds {sorted(unknown)} (valid: "
            f"{', '.join(sorted(true))}, x_bound, sigma, delta)")
    values = {**true, **{k: float(v) for k, v in bounds.items()}}
    for k, v in true.items():
        require(values[k] >= v - 1e-12, f"make_info: {k} = {values[k]} is below the problem's "
                f"true value {v:.6g} (it must be an upper bound)")
    require(values["rho_bar"] < 1.0, f"make_info: rho_bar = {values['rho_bar']} must be < 1")
    x_bound = bounds.get("x_bound", values["u_bound"] / (1.0 - values["rho_bar"]))
    f64 = functools.partial(np.asarray, dtype=np.float64)
    return ProblemInfo(arms=f64(arms), horizon=np.int64(horizon),
                       x_bound=f64(x_bound), sigma=f64(bounds.get("sigma", problem.sigma)),
                       delta=f64(bounds.get("delta", 1.0 / horizon)),
                       best_arm=np.int32(problem.best_arm),
                       **{k: f64(v) for k, v in values.items()})


def check_horizon(horizon: Any) -> int:
    """``horizon`` as an int; HystaxError unless it is a positive int."""
    require(isinstance(horizon, (int, np.integer)) and not isinstance(horizon, bool) and horizon > 0,
            f"horizon must be a positive int, got {horizon!r}")
    return int(horizon)


def record_interval(horizon: int, record_every: int | None = None, points: int = 1000) -> int:
    """Rounds between two records: ``record_every`` checked (a positive divisor of horizon), or
    by default the smallest divisor of ``horizon`` that gives at most ``points`` records."""
    if record_every is None:
        target = -(-horizon // points)
        return next(k for k in range(target, horizon + 1) if horizon % k == 0)
    require(isinstance(record_every, (int, np.integer)) and 0 < record_every <= horizon
            and horizon % record_every == 0,
            f"record_every must be a positive divisor of horizon {horizon}, got {record_every!r}")
    return int(record_every)


def seed_list(seeds) -> list[int]:
    """``seeds`` as a list of ints: a count S gives 0..S-1; a list is kept. HystaxError otherwise."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        require(seeds > 0, f"seeds must be positive, got {seeds}")
        seeds = range(int(seeds))
    seeds = np.asarray(list(seeds), np.int64)
    if seeds.ndim != 1 or seeds.size == 0:
        raise HystaxError(f"seeds must be a count or a non-empty list of ints, got {seeds!r}")
    return seeds.tolist()
