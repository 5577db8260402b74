"""The bandit meta-families' problem samplers (pure jax, ``key -> problem``) and their
out-of-distribution sets.

``meta/DLB`` (:func:`sample_dlb_problem`): a stable dynamical linear bandit with n = m = d = 3
on the papers' 6 budget-polytope arms. The state matrix ``A = P M P⁻¹`` has spectral radius
ρ uniform in ``DLB_RHO`` (0.1–0.7): M holds either a rotation pair ``ρ R(φ)`` and a real
eigenvalue, or three real eigenvalues, the largest ``±ρ``; ``P = Q₁ diag(s) Q₂`` (Q orthogonal,
s in [0.5, 1.5], so Φ(A) <= cond(P) <= 3; the real preset has Φ = 2.78). B, C, D have normal
entries of std ``DLB_SCALES`` (the presets' magnitudes: B 0.1–0.45, C 0.1–1, D 0.01–0.5),
ω = Cᵀ1, θ = Dᵀ1, and the noise is the presets' σ = 0.01 (reward noise σ√3, as three summed
outputs). ``phi`` is left NaN under jit: :func:`dlb_on_host` recomputes every derived field
exactly (numpy, :func:`hystax.envs.dlb.make_problem`).

``meta/LSD`` (:func:`sample_lsd_problem`): a random monotone LSD instance with K arms (default
4), Bernoulli rewards, starting recharged. Each arm: a peak payoff p ~ U(0.2, 1); an idle
(deprivation) side p·c(b), c a concave (1 − (1 − q)^b), ramp (min(1, b / d)) or blocking
(1 for b >= d, else a floor in [0, 0.3]) curve, constant beyond a cap drawn in [2, ``cap``];
a play (satiation) side that is the ``recharging`` kind's constant u·f(1), u ~ U(0, 1), or the
``lsd`` kind's f(1)·s^m (s ~ U(0.3, 1), constant beyond a cap drawn in [1, ``cap``]). The kind
is drawn per problem from ``kinds``. Tables are padded to ``cap`` (payoffs constant beyond an
arm's own cap, so the process is the same); :func:`lsd_on_host` trims them back.

Out-of-distribution sets (:data:`DLB_OOD`, :data:`LSD_OOD`): the DLB presets ``real`` and
``synthetic-0.01``; for LSD, problems with caps up to 10 (``long-caps``) and the spec's K = 4
recharging presets R1 (blocking), R2 (concave), R3 (ramp), caps 10.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hystax.core.errors import require
from hystax.envs import dlb, lsd
from hystax.envs.meta.meta_env import orthogonal

__all__ = ["DLB_OOD", "DLB_RHO", "DLB_SCALES", "DLB_SIGMA", "LSD_CAP", "LSD_KINDS", "LSD_OOD",
           "check_kinds", "dlb_on_host", "lsd_on_host", "sample_dlb_problem", "sample_lsd_problem",
           "stable_matrix"]

DLB_RHO = (0.1, 0.7)
"""Range of the spectral radius ρ(A) of ``meta/DLB`` problems."""
DLB_SCALES = {"B": 0.2, "C": 0.3, "D": 0.15}
"""Std of the normal entries of B, C, D in ``meta/DLB``."""
DLB_SIGMA = 0.01
"""State-noise std of ``meta/DLB`` (reward noise: ``DLB_SIGMA * sqrt(3)``), as the presets'."""
LSD_CAP = 6
LSD_KINDS = ("recharging", "lsd")
DLB_OOD = ("real", "synthetic-0.01")
"""The DLB presets ``meta/DLB`` agents meet out of distribution."""
LSD_OOD = ("long-caps", "R1", "R2", "R3")
"""The LSD problem sets ``meta/LSD`` agents meet out of distribution."""


def stable_matrix(key: jax.Array, rho: jax.Array, n: int = 3) -> jax.Array:
    """float32 ``[n, n]`` (n >= 2) with spectral radius exactly ``rho`` (see the module)."""
    k_kind, k_angle, k_eig, k_sign, k_q1, k_q2, k_s = jax.random.split(key, 7)
    angle = jax.random.uniform(k_angle, (), jnp.float32, 0.0, jnp.pi)
    small = rho * jax.random.uniform(k_eig, (n,), jnp.float32)
    signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (n,)), 1.0, -1.0)
    real = jnp.diag(signs * small.at[0].set(rho))
    pair = rho * jnp.array([[jnp.cos(angle), -jnp.sin(angle)], [jnp.sin(angle), jnp.cos(angle)]])
    rotation = real.at[:2, :2].set(pair)
    m = jnp.where(jax.random.bernoulli(k_kind, 0.5), rotation, real)
    scale = jax.random.uniform(k_s, (n,), jnp.float32, 0.5, 1.5)
    p = orthogonal(k_q1, n, n) @ jnp.diag(scale) @ orthogonal(k_q2, n, n)
    return p @ m @ jnp.linalg.inv(p)


def sample_dlb_problem(key: jax.Array, rho_range: tuple[float, float] = DLB_RHO,
                       sigma: float = DLB_SIGMA) -> dlb.DLBProblem:
    """A ``meta/DLB`` problem with jax leaves (see the module); under jit."""
    k_rho, k_a, k_b, k_c, k_d = jax.random.split(key, 5)
    rho = jax.random.uniform(k_rho, (), jnp.float32, *rho_range)
    a = stable_matrix(k_a, rho)
    b, c, d = (DLB_SCALES[name] * jax.random.normal(k, (3, 3), jnp.float32)
               for name, k in (("B", k_b), ("C", k_c), ("D", k_d)))
    omega, theta = c.sum(axis=0), d.sum(axis=0)
    arms = jnp.asarray(dlb.BUDGET_ARMS, jnp.float32)
    h = theta + b.T @ jnp.linalg.solve((jnp.eye(3) - a).T, omega)
    values = arms @ h
    best = jnp.argmax(values).astype(jnp.int32)
    return dlb.DLBProblem(A=a, B=b, omega=omega, theta=theta, sigma=jnp.float32(sigma),
                          reward_std=jnp.float32(sigma * np.sqrt(3)), arms=arms, h=h,
                          J=values, best_arm=best, u_star=arms[best], J_star=values[best],
                          rho=rho, phi=jnp.float32(jnp.nan))


def dlb_on_host(problem: dlb.DLBProblem) -> dlb.DLBProblem:
    """The same problem with numpy float64 leaves and every derived field (h, J, u*, ρ, Φ)
    recomputed by :func:`hystax.envs.dlb.make_problem`."""
    get = lambda x: np.asarray(x, np.float64)
    return dlb.make_problem(get(problem.A), get(problem.B), get(problem.omega),
                            get(problem.theta), float(problem.sigma), get(problem.arms),
                            reward_std=float(problem.reward_std))


def _capped(steps: jax.Array, cap: jax.Array) -> jax.Array:
    return jnp.minimum(steps, cap).astype(jnp.float32)


def _idle_curve(key: jax.Array, cap: int) -> jax.Array:
    """One arm's deprivation curve c(b), b = 1..cap, in [0, 1], non-decreasing."""
    k_shape, k_cap, k_q, k_d, k_floor = jax.random.split(key, 5)
    own_cap = jax.random.randint(k_cap, (), 2, cap + 1)
    b = _capped(jnp.arange(1, cap + 1), own_cap)
    q = jax.random.uniform(k_q, (), jnp.float32, 0.1, 0.9)
    d = jax.random.randint(k_d, (), 1, own_cap + 1).astype(jnp.float32)
    floor = jax.random.uniform(k_floor, (), jnp.float32, 0.0, 0.3)
    curves = jnp.stack([1 - (1 - q) ** b, jnp.minimum(1.0, b / d), jnp.where(b >= d, 1.0, floor)])
    return curves[jax.random.randint(k_shape, (), 0, 3)]


def _arm(key: jax.Array, cap: int) -> tuple[jax.Array, jax.Array]:
    """One arm's idle payoffs [cap] and its play payoffs [2, cap] under each of
    :data:`LSD_KINDS` (``recharging``, ``lsd``)."""
    k_p, k_curve, k_u, k_s, k_cap = jax.random.split(key, 5)
    idle = jax.random.uniform(k_p, (), jnp.float32, 0.2, 1.0) * _idle_curve(k_curve, cap)
    recharging = jnp.full((cap,), idle[0] * jax.random.uniform(k_u, (), jnp.float32))
    own_cap = jax.random.randint(k_cap, (), 1, cap + 1)
    s = jax.random.uniform(k_s, (), jnp.float32, 0.3, 1.0)
    satiating = idle[0] * s ** _capped(jnp.arange(1, cap + 1), own_cap)
    return idle, jnp.stack([recharging, satiating])


def check_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    """``kinds`` as a tuple; HystaxError unless it is a non-empty subset of
    :data:`LSD_KINDS`."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    require(kinds and set(kinds) <= set(LSD_KINDS),
            f"meta/LSD: kinds must be a non-empty subset of {LSD_KINDS}, got {kinds!r}")
    return kinds


def sample_lsd_problem(key: jax.Array, num_arms: int = 4, cap: int = LSD_CAP,
                       kinds: Sequence[str] = LSD_KINDS) -> lsd.LSDProblem:
    """A ``meta/LSD`` problem with jax leaves (see the module): idle and play tables
    ``[num_arms, cap]``, starting recharged; one kind per problem, drawn from ``kinds``."""
    kinds = check_kinds(kinds)
    require(cap >= 2, f"meta/LSD: cap must be >= 2, got {cap!r}")
    k_kind, k_arms = jax.random.split(key)
    idle, plays = jax.vmap(lambda k: _arm(k, cap))(jax.random.split(k_arms, num_arms))
    kind = jnp.asarray([LSD_KINDS.index(k) for k in kinds])[
        jax.random.randint(k_kind, (), 0, len(kinds))]
    return lsd.LSDProblem(idle_payoff=idle, play_payoff=plays[:, kind],
                          init_state=jnp.full((num_arms,), cap, jnp.int32),
                          sigma=jnp.float32(0.1), noise="bernoulli")


def _trimmed_cap(table: np.ndarray) -> int:
    """The smallest cap that keeps ``table [K, C]``: columns past it repeat the last one."""
    same = np.all(table[:, 1:] == table[:, :-1], axis=0)  # [C - 1]: column j + 1 == column j
    changes = np.flatnonzero(~same)
    return 1 if changes.size == 0 else int(changes[-1]) + 2


def lsd_on_host(problem: lsd.LSDProblem, trim: bool = True) -> lsd.LSDProblem:
    """The same problem with numpy float64 tables, validated by
    :func:`hystax.envs.lsd.make_problem`, starting recharged; with ``trim`` the tables are cut
    to the smallest caps that keep the problem (payoffs are constant beyond a cap), which
    shrinks the exact DP's joint state space."""
    idle = np.asarray(problem.idle_payoff, np.float64)
    play = np.asarray(problem.play_payoff, np.float64)
    if trim:
        idle, play = idle[:, :_trimmed_cap(idle)], play[:, :_trimmed_cap(play)]
    return lsd.make_problem(idle, play, "recharged", problem.noise, float(problem.sigma))
