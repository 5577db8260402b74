"""Dynamical linear bandits (Mussi, Metelli, Restelli, ICML 2023): the problem, its constants, presets.

Model (hidden state x_t in R^n, action u_t in R^d, x_0 = 0)::

    y_t     = <omega, x_t> + <theta, u_t> + eps_t      (reward, produced before the state moves)
    x_{t+1} = A x_t + B u_t + eta_t

Steady state: a constant action u earns J(u) = <h, u> per round with
h = theta + B^T (I - A)^{-T} omega; the optimal policy is the constant u* = argmax_{u in arms} J(u).

>>> problem = preset("real")
>>> problem.h, problem.J, problem.best_arm
>>> eta, eps = sample_noise(problem, key)
>>> y, x_next = step(problem, x, problem.arms[a], eta, eps)

:class:`DLBEnv` is the same problem as a gymnax 1.0 env (Discrete(K) actions = arm index,
constant observation, reward y_t, truncation at ``max_steps_in_episode``), registered as
``dlb/<preset>`` by :func:`register_all`.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from hystax.core.errors import require, unknown_name
from hystax.envs.bandit_env import BanditEnv

__all__ = [
    "PRESETS",
    "DLBEnv",
    "DLBParams",
    "DLBProblem",
    "DLBState",
    "budget_vertices",
    "make_problem",
    "preset",
    "register_all",
    "sample_noise",
    "spectral_constants",
    "step",
]

PHI_HORIZON = 500
"""Phi(A) = sup_tau ||A^tau||_2 / rho^tau is evaluated for tau = 0 .. PHI_HORIZON - 1."""


@struct.dataclass
class DLBProblem:
    """A DLB instance (all leaves float64 numpy arrays; jax casts them on use).

    Fields: A [n, n], B [n, d], omega [n], theta [d], sigma [] (std of each state-noise
    coordinate), reward_std [] (std of eps), arms [K, d]; computed: h [d], J [K] (= arms @ h),
    best_arm [] int, u_star [d], J_star [], rho [] (spectral radius of A), phi [] (Phi(A)).
    """

    A: np.ndarray
    B: np.ndarray
    omega: np.ndarray
    theta: np.ndarray
    sigma: np.ndarray
    reward_std: np.ndarray
    arms: np.ndarray
    h: np.ndarray
    J: np.ndarray
    best_arm: np.ndarray
    u_star: np.ndarray
    J_star: np.ndarray
    rho: np.ndarray
    phi: np.ndarray

    @property
    def n(self) -> int:
        return int(np.shape(self.A)[0])

    @property
    def d(self) -> int:
        return int(np.shape(self.B)[1])

    @property
    def num_arms(self) -> int:
        return int(np.shape(self.arms)[0])

    # --- the round protocol (hystax.envs.bandit_rounds) ---

    @property
    def optimal_rate(self) -> jax.Array:
        """J* = <h, u*>: the regrets' benchmark per round."""
        return jnp.asarray(self.J_star)

    def initial_state(self) -> jax.Array:
        """x_0 = 0 [n]."""
        return jnp.zeros((self.n,), jnp.result_type(float))

    def draw_noise(self, key: jax.Array, rounds: int) -> tuple[jax.Array, jax.Array]:
        """``rounds`` rounds' noise in one call: (eta [rounds, n], eps [rounds])."""
        k_eta, k_eps = jax.random.split(key)
        dtype = jnp.result_type(float)
        return (self.sigma * jax.random.normal(k_eta, (rounds, self.n), dtype),
                self.reward_std * jax.random.normal(k_eps, (rounds,), dtype))

    def play(self, x, arm, noise):
        """One round of arm ``arm`` from state x [n]: (E[y], y, <h, u>, x')."""
        u = jnp.asarray(self.arms)[arm]
        y, x_next = step(self, x, u, *noise)
        return expected_reward(self, x, u), y, jnp.dot(self.h, u), x_next

    def with_extra_arms(self, extra) -> DLBProblem:
        """This problem with the constant actions ``extra`` [E, d] after its arms (played as
        arm K + e, e.g. the Expert's allocation); the rest (h, u*, J*) is unchanged."""
        extra = np.asarray(extra, np.float64).reshape(-1, self.d)
        if isinstance(self.arms, np.ndarray):
            return self.replace(arms=np.concatenate([self.arms, extra]))
        return self.replace(arms=jnp.concatenate([self.arms, jnp.asarray(extra, self.arms.dtype)]))


def spectral_constants(A: np.ndarray, horizon: int = PHI_HORIZON) -> tuple[float, float]:
    """(rho(A), Phi(A)) with Phi = max over tau < ``horizon`` of ||A^tau||_2 / rho^tau (numpy)."""
    A = np.asarray(A, np.float64)
    rho = float(np.max(np.abs(np.linalg.eigvals(A)))) if A.size else 0.0
    if rho == 0.0:  # nilpotent: ||A^tau|| / 0^tau is infinite unless A = 0
        return rho, 1.0 if not np.any(A) else float("inf")
    phi, power = 1.0, np.eye(A.shape[0])
    for tau in range(1, horizon):
        power = power @ A / rho  # (A / rho)^tau, stays O(Phi) instead of underflowing
        phi = max(phi, float(np.linalg.norm(power, 2)))
    return rho, phi


def budget_vertices(lo, hi, budget: float, tol: float = 1e-12) -> np.ndarray:
    """All vertices [V, d] of {u : lo <= u <= hi, sum(u) = budget}, sorted lexicographically, descending.

    A vertex has at most one coordinate strictly between its bounds: fix every other coordinate
    at lo or hi and solve the budget for the free one. Exact, no grid.
    """
    lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    require(lo.ndim == 1 and lo.size > 0, f"budget_vertices: lo/hi must be 1-D, got shape {lo.shape}")
    require(bool(np.all(lo <= hi)), "budget_vertices: need lo <= hi in every coordinate")
    d, found = lo.size, set()
    for free in range(d):
        others = [i for i in range(d) if i != free]
        for corner in itertools.product((0, 1), repeat=d - 1):
            u = np.empty(d)
            for i, c in zip(others, corner):
                u[i] = hi[i] if c else lo[i]
            u[free] = budget - u[others].sum()
            if lo[free] - tol <= u[free] <= hi[free] + tol:
                found.add(tuple(np.round(np.clip(u, lo, hi), 12)))
    require(len(found) > 0, f"budget_vertices: no u in the box sums to {budget}")
    return np.array(sorted(found, reverse=True), np.float64)


def make_problem(A, B, omega, theta, sigma, arms, reward_std=None) -> DLBProblem:
    """Validate a DLB instance and compute its constants (numpy only, nothing is compiled).

    Args:
      A: [n, n] with spectral radius < 1.  B: [n, d].  omega: [n].  theta: [d].
      sigma: std of each state-noise coordinate (>= 0).
      arms: [K, d] finite action set (K >= 1).
      reward_std: std of the reward noise eps (default ``sigma``).
    Raises:
      HystaxError naming the problem (unstable A, shapes, empty arms, negative noise).
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    omega, theta = np.asarray(omega, np.float64), np.asarray(theta, np.float64)
    arms = np.asarray(arms, np.float64)
    require(A.ndim == 2 and A.shape[0] == A.shape[1] and A.shape[0] > 0,
            f"DLB: A must be a square [n, n] matrix, got shape {A.shape}")
    n = A.shape[0]
    require(B.ndim == 2 and B.shape[0] == n,
            f"DLB: B must be [n, d] with n = {n} (from A), got shape {B.shape}")
    d = B.shape[1]
    require(omega.shape == (n,), f"DLB: omega must have shape ({n},), got {omega.shape}")
    require(theta.shape == (d,), f"DLB: theta must have shape ({d},), got {theta.shape}")
    require(arms.ndim == 2 and arms.shape[0] > 0,
            f"DLB: the action set is empty or not [K, d] (got shape {arms.shape})")
    require(arms.shape[1] == d, f"DLB: arms must be [K, {d}], got shape {arms.shape}")
    sigma = float(sigma)
    reward_std = sigma if reward_std is None else float(reward_std)
    require(sigma >= 0 and reward_std >= 0,
            f"DLB: noise stds must be >= 0, got sigma={sigma}, reward_std={reward_std}")
    for name, x in (("A", A), ("B", B), ("omega", omega), ("theta", theta), ("arms", arms)):
        require(bool(np.all(np.isfinite(x))), f"DLB: {name} has non-finite entries")
    rho, phi = spectral_constants(A)
    require(rho < 1.0, f"DLB: A is not stable: spectral radius rho(A) = {rho:.4f} >= 1")
    h = theta + B.T @ np.linalg.solve((np.eye(n) - A).T, omega)
    J = arms @ h
    best = int(np.argmax(J))
    return DLBProblem(A=A, B=B, omega=omega, theta=theta, sigma=np.float64(sigma),
                      reward_std=np.float64(reward_std), arms=arms, h=h, J=J,
                      best_arm=np.int32(best), u_star=arms[best].copy(),
                      J_star=np.float64(J[best]), rho=np.float64(rho), phi=np.float64(phi))


# --- the dynamics (pure, jit/vmap-able) ---------------------------------------------------------


def sample_noise(problem: DLBProblem, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One round's noise: (eta [n] ~ N(0, sigma^2 I), eps [] ~ N(0, reward_std^2))."""
    k_eta, k_eps = jax.random.split(key)
    dtype = jnp.result_type(float)
    eta = problem.sigma * jax.random.normal(k_eta, (problem.n,), dtype)
    eps = problem.reward_std * jax.random.normal(k_eps, (), dtype)
    return eta, eps


def expected_reward(problem: DLBProblem, x: jax.Array, u: jax.Array) -> jax.Array:
    """E[y_t | x_t, u_t] = <omega, x> + <theta, u>; x [n], u [d] -> []."""
    return jnp.dot(problem.omega, x) + jnp.dot(problem.theta, u)


def step(problem: DLBProblem, x, u, state_noise, reward_noise) -> tuple[jax.Array, jax.Array]:
    """One round: y = <omega, x> + <theta, u> + eps, then x' = A x + B u + eta.

    x [n], u [d], state_noise (eta) [n], reward_noise (eps) [] -> (y [], x' [n]).
    """
    y = expected_reward(problem, x, u) + reward_noise
    x_next = problem.A @ x + problem.B @ u + state_noise
    return y, x_next


# --- presets -----------------------------------------------------------------------------------

BUDGET_ARMS = budget_vertices(0.0, np.ones(3), 1.5)
"""The 6 budget allocations of the paper's experiments: [0, 1]^3 with total 1.5."""

_SYNTHETIC = {"A": np.diag([0.2, 0.0, 0.1]), "B": np.diag([0.45, 0.0, 0.1]),
                  "C": np.diag([1.0, 0.0, 0.1]), "D": np.diag([0.0, 0.5, 0.1])}
_REAL = {
    "A": np.array([[.38, .33, .60], [.07, .76, -.54], [.18, .34, .05]]),
    "B": np.array([[.14, .34, -.05], [-.17, .03, -.01], [.04, -.09, .17]]),
    "C": np.array([[.25, -.14, .01], [-.55, .2, -.13], [-.31, -.1, -.01]]),
    "D": np.array([[.11, .10, .01], [.01, .36, .01], [.01, -.05, 0.0]]),
}
EXPERT_ALLOCATION = np.array([0.0031, 0.4969, 1.0])
"""The human allocation of the real advertising system (the "Expert" baseline)."""


def _from_abcd(A, B, C, D, sigma: float) -> DLBProblem:
    """The reference's (A, B, C, D) form with 3 summed outputs: omega = C^T 1, theta = D^T 1,
    eps = sum of 3 N(0, sigma^2) (std sigma * sqrt(3)), eta ~ N(0, sigma^2 I)."""
    m = C.shape[0]
    return make_problem(A, B, C.T @ np.ones(m), D.T @ np.ones(m), sigma, BUDGET_ARMS,
                        reward_std=sigma * np.sqrt(m))


PRESETS = {
    "synthetic-0.001": lambda: _from_abcd(**_SYNTHETIC, sigma=0.001),
    "synthetic-0.01": lambda: _from_abcd(**_SYNTHETIC, sigma=0.01),
    "synthetic-0.1": lambda: _from_abcd(**_SYNTHETIC, sigma=0.1),
    "real": lambda: _from_abcd(**_REAL, sigma=0.01),
}
"""Preset name -> constructor of the paper's problems."""


def preset(name: str) -> DLBProblem:
    """The named DLB problem (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise unknown_name("DLB preset", name, PRESETS)
    return PRESETS[name]()


# --- gymnax env ----------------------------------------------------------------------------------


@struct.dataclass
class DLBState(environment.EnvState):
    x: jax.Array  # [n] hidden state


@struct.dataclass
class DLBParams(environment.EnvParams):
    problem: DLBProblem = None
    max_steps_in_episode: int = 1000


class DLBEnv(BanditEnv):
    """A DLB problem as a gymnax 1.0 env: action = arm index (Discrete(K)), observation the
    constant [1.0] (the state is hidden), reward y_t, truncated after ``max_steps_in_episode``."""

    def __init__(self, problem: DLBProblem | str = "real", max_steps_in_episode: int = 1000):
        super().__init__()
        self.problem = preset(problem) if isinstance(problem, str) else problem
        require(isinstance(max_steps_in_episode, int) and max_steps_in_episode > 0,
                f"DLBEnv: max_steps_in_episode must be a positive int, got {max_steps_in_episode!r}")
        self.max_steps = max_steps_in_episode

    @property
    def default_params(self) -> DLBParams:
        return DLBParams(problem=self.problem, max_steps_in_episode=self.max_steps)

    def reset_env(self, key, params):
        x = jnp.zeros((self.problem.n,), jnp.float32)
        return jnp.ones((1,), jnp.float32), DLBState(time=jnp.int32(0), x=x)

    def step_env(self, key, state, action, params):
        p = params.problem
        eta, eps = sample_noise(p, key)
        y, x_next = step(p, state.x, jnp.asarray(p.arms)[action], eta, eps)
        state = DLBState(time=state.time + 1, x=x_next.astype(jnp.float32))
        return (jnp.ones((1,), jnp.float32), state, y.astype(jnp.float32),
                jnp.array(False), {})

    @property
    def name(self) -> str:
        return "DLB"

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(1.0, 1.0, (1,), jnp.float32)


def register_all() -> None:
    """Register ``dlb/<preset>`` for every preset (idempotent)."""
    from hystax.envs.registry import is_registered, register
    for name in PRESETS:
        if not is_registered(f"dlb/{name}"):
            register(f"dlb/{name}", lambda max_steps_in_episode=1000, _n=name:
                     DLBEnv(_n, max_steps_in_episode))
