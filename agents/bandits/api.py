"""The bandit API: a policy is a NamedTuple of pure functions, run by one ``lax.scan`` over rounds.

>>> from hystax.agents.bandits import ALGORITHMS, run_seeds
>>> from hystax.envs.dlb import preset
>>> out = run_seeds(ALGORITHMS["dynlin-ucb-logT"](), preset("real"), seeds=8, horizon=20_000)
>>> out.pseudo_regret[:, -1]          # final pseudo-regret per seed

A policy::

    init(key, info: ProblemInfo) -> state
    act(state, key, t) -> arm index (int32 [], indexes info.arms, or K + e for extra_arms[e])
    update(state, arm, reward, t) -> state

``info`` holds what a learner may know: the arms, d, the horizon and the spec's bounds
(rho_bar, phi_bar, Theta, Omega, B_bar, U_bar, X_bar, sigma, delta = 1/T); ``best_arm`` is there
for the clairvoyant only. Every leaf is an array, so one compiled run serves any horizon's info.

Common random numbers: round t's noise (eta_t, eps_t) is drawn from ``fold_in(noise_key, t)``
with ``noise_key = fold_in(key, 0)``, and the policy's randomness from ``fold_in(policy_key, t)``
with ``policy_key = fold_in(key, 1)`` (``init`` gets ``fold_in(key, 2)``): the same key gives every policy the same noise sequence.

Regrets, accumulated inside the scan against the oracle (u*, J* = <h, u*>):
  - ``regret``: realised expected regret  sum_t (J* - E[y_t | x_t, u_t]) = T J* - sum_t
    (<omega, x_t> + <theta, u_t>), on the realised state path (state noise included, eps not);
  - ``pseudo_regret``: steady-state pseudo-regret  sum_t (J* - <h, u_t>).
Both are cumulative curves recorded after rounds every, 2 every, ..., T (outer scan over blocks,
inner scan of ``record_every`` rounds: device memory is flat in T).

Float64: :func:`run` and :func:`run_seeds` trace and run inside ``jax.enable_x64(True)``, so
the regression and the regret sums are float64 whatever the caller's setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from hystax.envs.dlb import DLBProblem, expected_reward, sample_noise, step

from hystax import sharding
from hystax.errors import HystaxError, require

__all__ = ["Policy", "ProblemInfo", "RunResult", "check_horizon", "compiled_runner", "make_info",
           "record_interval", "round_noise", "run", "run_seeds", "scan_rounds", "seed_list"]


class Policy(NamedTuple):
    """A bandit policy: pure ``init``, ``act``, ``update`` (see the module doc).

    ``extra_arms``: constant actions outside the arm set ([E, d] as a tuple of tuples), played by
    index K + e (e.g. the Expert's allocation); learners leave it empty.
    """

    init: Callable[[jax.Array, Any], Any]
    act: Callable[[Any, jax.Array, jax.Array], jax.Array]
    update: Callable[[Any, jax.Array, jax.Array, jax.Array], Any]
    name: str = "policy"
    extra_arms: tuple = ()


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


class RunResult(NamedTuple):
    """Output of :func:`run` (leading [S] axis from :func:`run_seeds`); numpy float64.

    rounds [B] (rounds played at each record), regret [S, B], pseudo_regret [S, B],
    arm_counts [S, K + E], x_final [S, n], policy_state (final, a pytree).
    """

    rounds: np.ndarray
    regret: np.ndarray
    pseudo_regret: np.ndarray
    arm_counts: np.ndarray
    x_final: np.ndarray
    policy_state: Any


def make_info(problem: DLBProblem, horizon: int, **bounds: float) -> ProblemInfo:
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


def round_noise(problem: DLBProblem, key: jax.Array, t) -> tuple[jax.Array, jax.Array]:
    """The noise (eta_t [n], eps_t []) of round ``t`` for run key ``key`` (the same for every policy)."""
    return sample_noise(problem, jax.random.fold_in(jax.random.fold_in(key, 0), t))


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


def _single_run(policy: Policy, problem: DLBProblem, info: ProblemInfo, key, blocks: int,
                every: int):
    """One seed: outer scan over ``blocks`` blocks of an inner scan of ``every`` rounds."""
    actions = jnp.asarray(problem.arms)
    if policy.extra_arms:
        actions = jnp.concatenate([actions, jnp.asarray(policy.extra_arms, actions.dtype)])
    noise_key, policy_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    h, j_star = jnp.asarray(problem.h), jnp.asarray(problem.J_star)

    def round_(carry, t):
        x, pstate, regret, pseudo, counts = carry
        arm = policy.act(pstate, jax.random.fold_in(policy_key, t), t)
        u = actions[arm]
        eta, eps = sample_noise(problem, jax.random.fold_in(noise_key, t))
        mean_y = expected_reward(problem, x, u)
        y, x_next = step(problem, x, u, eta, eps)
        pstate = policy.update(pstate, arm, y, t)
        carry = (x_next, pstate, regret + (j_star - mean_y), pseudo + (j_star - h @ u),
                 counts.at[arm].add(1))
        return carry, None

    pstate = policy.init(jax.random.fold_in(key, 2), info)
    zero = jnp.zeros((), jnp.result_type(float))
    carry = (jnp.zeros((problem.n,)), pstate, zero, zero,
             jnp.zeros((actions.shape[0],), jnp.int32))
    carry, (regret, pseudo) = scan_rounds(lambda c, t: round_(c, t)[0], carry, blocks, every,
                                          lambda c: (c[2], c[3]))
    return regret, pseudo, carry[4], carry[0], carry[1]


def scan_rounds(round_fn, carry, blocks: int, every: int, record):
    """``blocks * every`` rounds of ``carry = round_fn(carry, t)``: an outer scan over blocks of
    an inner scan of ``every`` rounds, the round index t in the carry (memory flat in T).
    Returns (final carry, ``record(carry)`` after each block, stacked [blocks, ...])."""

    def counted_round(carry_t, _):
        carry, t = carry_t
        return (round_fn(carry, t), t + 1), None

    def block(carry, b):
        (carry, _), _ = jax.lax.scan(counted_round, (carry, b * every), None, length=every)
        return carry, record(carry)

    return jax.lax.scan(block, carry, jnp.arange(blocks))


@functools.lru_cache(maxsize=128)
def compiled_runner(single_run, policy: Policy, blocks: int, every: int, batched: bool):
    """``jit(single_run(policy, problem, info, key, blocks=, every=))``, vmapped over keys when
    ``batched``; cached per (runner, policy, blocks, every)."""
    fn = functools.partial(single_run, policy, blocks=blocks, every=every)
    if batched:
        fn = jax.vmap(fn, in_axes=(None, None, 0))
    return jax.jit(fn)


def _prepare(policy, problem, horizon, record_every, bounds):
    require(isinstance(policy, Policy), f"policy must be a Policy, got {type(policy).__name__}")
    require(isinstance(problem, DLBProblem), f"problem must be a DLBProblem, got {type(problem).__name__}")
    info = make_info(problem, horizon, **(bounds or {}))
    every = record_interval(horizon, record_every)
    if policy.extra_arms:
        extra = np.asarray(policy.extra_arms, np.float64)
        require(extra.ndim == 2 and extra.shape[1] == problem.d,
                f"policy {policy.name!r}: extra_arms must be [E, {problem.d}], got {extra.shape}")
    return info, every


def _result(out, every: int) -> RunResult:
    regret, pseudo, counts, x, pstate = jax.device_get(out)
    rounds = every * np.arange(1, np.shape(regret)[-1] + 1)
    return RunResult(rounds, np.asarray(regret), np.asarray(pseudo), np.asarray(counts),
                     np.asarray(x), pstate)


def run(policy: Policy, problem: DLBProblem, key: jax.Array, horizon: int,
        record_every: int | None = None, bounds: dict | None = None) -> RunResult:
    """Play ``policy`` on ``problem`` for ``horizon`` rounds (one jitted scan, float64).

    record_every: regret is recorded after every this many rounds (a divisor of horizon; default
    the smallest divisor giving at most 1000 points). bounds: overrides for :func:`make_info`.
    Returns a :class:`RunResult` without the seed axis.
    """
    info, every = _prepare(policy, problem, horizon, record_every, bounds)
    with jax.enable_x64(True):
        key = jnp.asarray(key)
        return _result(compiled_runner(_single_run, policy, horizon // every, every, False)(problem, info, key), every)


def run_seeds(policy: Policy, problem: DLBProblem, seeds, horizon: int,
              record_every: int | None = None, bounds: dict | None = None) -> RunResult:
    """:func:`run` vmapped over seeds: ``seeds`` is a count S (seeds 0..S-1) or a list of ints;
    seed s uses ``PRNGKey(s)``, so every policy sees the same noise for the same seed. The seed
    axis is sharded over the most devices that divide S (:mod:`hystax.sharding`)."""
    seeds = seed_list(seeds)
    info, every = _prepare(policy, problem, horizon, record_every, bounds)
    with jax.enable_x64(True):
        # PRNGKey(seed) per seed, the seed axis sharded over the devices (hystax.sharding)
        keys = sharding.seed_keys(seeds, sharding.seed_mesh(len(seeds)))
        return _result(compiled_runner(_single_run, policy, horizon // every, every, True)(problem, info, keys), every)
