"""Baselines of the DLB paper, as :class:`Policy` constructors (pure, jit/vmap-able).

- :func:`clairvoyant`: plays u* (info.best_arm) every round.
- :func:`expert`: a constant allocation, possibly outside the arm set (played as an extra arm).
- :func:`lin_ucb`: OFUL on the raw reward y_t (ridge on (u_t, y_t) every round),
  beta_t = sqrt(lam) Theta + sigma sqrt(2 log(1/delta) + d log(1 + t U^2 / (d lam))).
- :func:`d_lin_ucb`: discounted Lin-UCB (Russac, Vernade, Cappe 2019) with
  gamma = 1 - (1 / (d T))^(2/3) (their tuning with one breakpoint), width ||u||_{V^-1 V~ V^-1}.
- :func:`exp3`: Exp3 over arms, exploration gamma = min(1, sqrt(K ln K / ((e - 1) T))).
- :func:`batch_exp3`: Exp3 over batches of ceil(log T / log(1/rho_bar)) rounds (M = T), fed
  the batch-mean reward.
- :func:`ucb1`: UCB1, index mean + sqrt(2 log t / n), each arm once first.

Exp3, Batch-Exp3 and UCB1 see rewards rescaled to [0, 1] by the range [-r, r] with
r = Omega X_bar + Theta U_bar (a bound on |E[y]| from the learner's info), then clipped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from hystax.agents.bandits.api import Policy, ProblemInfo

from hystax.errors import require

__all__ = ["batch_exp3", "clairvoyant", "d_lin_ucb", "exp3", "expert", "lin_ucb",
           "reward_range", "ucb1"]


def _lam(lam, info):
    if lam == "logT":
        return jnp.log(jnp.asarray(info.horizon, float))
    return jnp.asarray(lam, float)


def _check_lam(name, lam):
    require(lam == "logT" or (isinstance(lam, (int, float)) and not isinstance(lam, bool) and lam > 0),
            f"{name}: lam must be a positive number or 'logT', got {lam!r}")


def _lam_name(lam):
    return "log T" if lam == "logT" else f"{lam:g}"


def reward_range(info: ProblemInfo) -> jax.Array:
    """r = Omega X_bar + Theta U_bar: rewards are rescaled from [-r, r] to [0, 1]."""
    return info.omega_bound * info.x_bound + info.theta_bound * info.u_bound


def _unit(reward, info):
    r = reward_range(info)
    return jnp.clip((reward + r) / (2 * r), 0.0, 1.0)


# --- constant policies --------------------------------------------------------------------------


def clairvoyant() -> Policy:
    """Plays u* (the arm with the largest steady-state reward) every round."""
    return Policy(init=lambda key, info: info.best_arm.astype(jnp.int32),
                  act=lambda state, key, t: state,
                  update=lambda state, arm, reward, t: state, name="Clairvoyant")


def expert(action=(0.0031, 0.4969, 1.0)) -> Policy:
    """Plays the constant ``action`` [d] (default: the real system's human allocation)."""
    action = tuple(float(a) for a in np.ravel(action))
    require(len(action) > 0, "expert: action must be non-empty")
    return Policy(init=lambda key, info: jnp.int32(info.arms.shape[0]),  # index of the extra arm
                  act=lambda state, key, t: state,
                  update=lambda state, arm, reward, t: state, name="Expert",
                  extra_arms=(action,))


# --- linear UCBs -----------------------------------------------------------------------------------


@struct.dataclass
class RidgeState:
    """V, V_tilde, V_inv [d, d]; b, theta_hat [d]; lam; info."""

    V: jax.Array
    V_tilde: jax.Array
    V_inv: jax.Array
    b: jax.Array
    theta_hat: jax.Array
    lam: jax.Array
    gamma: jax.Array
    info: ProblemInfo


def _ridge_init(info, lam, gamma):
    d = info.arms.shape[1]
    lam = jnp.maximum(lam, 1e-12)
    eye = jnp.eye(d)
    return RidgeState(V=lam * eye, V_tilde=lam * eye, V_inv=eye / lam, b=jnp.zeros(d),
                      theta_hat=jnp.zeros(d), lam=lam, gamma=jnp.asarray(gamma, float), info=info)


def _ridge_update(state, arm, reward):
    """Discounted ridge update (gamma = 1: OFUL): V <- g V + u u^T + (1 - g) lam I,
    V~ <- g^2 V~ + u u^T + (1 - g^2) lam I, b <- g b + y u."""
    u, g, lam = state.info.arms[arm], state.gamma, state.lam
    eye = jnp.eye(u.shape[0])
    V = g * state.V + jnp.outer(u, u) + (1 - g) * lam * eye
    V_tilde = g**2 * state.V_tilde + jnp.outer(u, u) + (1 - g**2) * lam * eye
    b = g * state.b + reward * u
    V_inv = jnp.linalg.inv(V)
    return state.replace(V=V, V_tilde=V_tilde, V_inv=V_inv, b=b, theta_hat=V_inv @ b)


def _ucb_arm(state, radius, discounted):
    arms = state.info.arms
    M = state.V_inv @ state.V_tilde @ state.V_inv if discounted else state.V_inv
    width = jnp.sqrt(jnp.maximum(jnp.einsum("kd,de,ke->k", arms, M, arms), 0.0))
    return jnp.argmax(arms @ state.theta_hat + radius * width).astype(jnp.int32)


def lin_ucb(lam: float | str = 1.0) -> Policy:
    """Lin-UCB / OFUL on the raw reward y_t; ``lam`` a float > 0 or ``"logT"``."""
    _check_lam("lin_ucb", lam)

    def act(state, key, t):
        info, d = state.info, state.info.arms.shape[1]
        radius = (jnp.sqrt(state.lam) * info.theta_bound + info.sigma * jnp.sqrt(
            2 * jnp.log(1 / info.delta) + d * jnp.log(1 + t * info.u_bound**2 / (d * state.lam))))
        return _ucb_arm(state, radius, discounted=False)

    return Policy(init=lambda key, info: _ridge_init(info, _lam(lam, info), 1.0), act=act,
                  update=lambda state, arm, reward, t: _ridge_update(state, arm, reward),
                  name=f"Lin-UCB (lam={_lam_name(lam)})")


def d_lin_ucb(lam: float | str = 1.0, gamma: float | None = None) -> Policy:
    """D-Lin-UCB (Russac et al. 2019); gamma default 1 - (1 / (d T))^(2/3)."""
    _check_lam("d_lin_ucb", lam)
    require(gamma is None or 0 < gamma <= 1, f"d_lin_ucb: gamma must lie in (0, 1], got {gamma!r}")

    def init(key, info):
        d = info.arms.shape[1]
        g = 1 - (1 / (d * info.horizon)) ** (2 / 3) if gamma is None else gamma
        return _ridge_init(info, _lam(lam, info), g)

    def act(state, key, t):
        info, d, g = state.info, state.info.arms.shape[1], state.gamma
        # sum_{s<t} g^{2s}, = t when g = 1
        geom = jnp.where(g < 1, (1 - g ** (2 * t)) / jnp.maximum(1 - g**2, 1e-300), t)
        radius = (jnp.sqrt(state.lam) * info.theta_bound + info.sigma * jnp.sqrt(
            2 * jnp.log(1 / info.delta) + d * jnp.log(1 + info.u_bound**2 * geom / (d * state.lam))))
        return _ucb_arm(state, radius, discounted=True)

    return Policy(init=init, act=act,
                  update=lambda state, arm, reward, t: _ridge_update(state, arm, reward),
                  name=f"D-Lin-UCB (lam={_lam_name(lam)})")


# --- finite-armed ------------------------------------------------------------------------------------


@struct.dataclass
class Exp3State:
    """log_w [K] (log weights), gamma, arm (held in Batch-Exp3), batch length, batch reward sum."""

    log_w: jax.Array
    gamma: jax.Array
    arm: jax.Array
    batch: jax.Array
    batch_sum: jax.Array
    info: ProblemInfo


def _exp3_probs(state):
    k = state.log_w.shape[0]
    w = jnp.exp(state.log_w - jnp.max(state.log_w))
    return (1 - state.gamma) * w / jnp.sum(w) + state.gamma / k


def _exp3_gamma(k, plays):
    return jnp.minimum(1.0, jnp.sqrt(k * np.log(k) / ((np.e - 1) * plays))) if k > 1 else jnp.asarray(1.0)


def _exp3_learn(state, arm, unit_reward):
    k = state.log_w.shape[0]
    estimate = unit_reward / _exp3_probs(state)[arm]
    return state.log_w.at[arm].add(state.gamma * estimate / k)


def _batch_length(info):
    return jnp.maximum(1, jnp.ceil(jnp.log(info.horizon) / jnp.log(1 / info.rho_bar))).astype(jnp.int32)


def exp3() -> Policy:
    """Exp3 over the arms on rewards rescaled to [0, 1]."""

    def init(key, info):
        k = info.arms.shape[0]
        return Exp3State(log_w=jnp.zeros(k), gamma=_exp3_gamma(k, info.horizon), arm=jnp.int32(0),
                         batch=jnp.int32(1), batch_sum=jnp.zeros(()), info=info)

    def act(state, key, t):
        return jax.random.categorical(key, jnp.log(_exp3_probs(state))).astype(jnp.int32)

    def update(state, arm, reward, t):
        return state.replace(log_w=_exp3_learn(state, arm, _unit(reward, state.info)))

    return Policy(init, act, update, "Exp3")


def batch_exp3() -> Policy:
    """Exp3 over batches of ceil(log T / log(1/rho_bar)) rounds, fed the batch-mean reward."""

    def init(key, info):
        k, batch = info.arms.shape[0], _batch_length(info)
        return Exp3State(log_w=jnp.zeros(k), gamma=_exp3_gamma(k, jnp.ceil(info.horizon / batch)),
                         arm=jnp.int32(0), batch=batch, batch_sum=jnp.zeros(()), info=info)

    def act(state, key, t):
        new = jax.random.categorical(key, jnp.log(_exp3_probs(state))).astype(jnp.int32)
        return jnp.where(t % state.batch == 0, new, state.arm)

    def update(state, arm, reward, t):
        total = state.batch_sum + _unit(reward, state.info)
        last = t % state.batch == state.batch - 1
        log_w = jnp.where(last, _exp3_learn(state, arm, total / state.batch), state.log_w)
        return state.replace(log_w=log_w, arm=jnp.asarray(arm, jnp.int32),
                             batch_sum=jnp.where(last, 0.0, total))

    return Policy(init, act, update, "Batch-Exp3")


@struct.dataclass
class UCB1State:
    """counts [K], sums [K] of rescaled rewards."""

    counts: jax.Array
    sums: jax.Array
    info: ProblemInfo


def ucb1() -> Policy:
    """UCB1 on rewards rescaled to [0, 1]; unplayed arms first."""

    def init(key, info):
        k = info.arms.shape[0]
        return UCB1State(counts=jnp.zeros(k), sums=jnp.zeros(k), info=info)

    def act(state, key, t):
        n = jnp.maximum(state.counts, 1)
        index = state.sums / n + jnp.sqrt(2 * jnp.log(jnp.maximum(t, 1)) / n)
        return jnp.argmax(jnp.where(state.counts == 0, jnp.inf, index)).astype(jnp.int32)

    def update(state, arm, reward, t):
        return state.replace(counts=state.counts.at[arm].add(1),
                             sums=state.sums.at[arm].add(_unit(reward, state.info)))

    return Policy(init, act, update, "UCB1")
