"""Baselines of the DLB paper, as :class:`Policy` constructors (pure, jit/vmap-able).

- :func:`clairvoyant`: plays u* (info.best_arm) every round.
- :func:`expert`: a constant allocation, possibly outside the arm set (played as an extra arm).
- :func:`lin_ucb`: OFUL on the raw reward y_t (ridge on (u_t, y_t) every round).
- :func:`d_lin_ucb`: discounted Lin-UCB (Russac, Vernade, Cappe 2019), width ||u||_{V^-1 V~ V^-1}.
- :func:`exp3`: Exp3 over the arms.  :func:`batch_exp3`: Exp3 over batches, batch-mean reward.
- :func:`ucb1`: UCB1, index mean + sqrt(2 log t / n), each arm once first (not in the paper's runs).

Two ``settings`` for the learners with tuned constants:

``"textbook"`` (the default): each method's published tuning, for any ``lam`` > 0 ::

    Lin-UCB    beta_t = sqrt(lam) Theta + sigma sqrt(2 log(1/delta) + d log(1 + t U^2 / (d lam)))
    D-Lin-UCB  gamma = 1 - (1 / (d T))^(2/3) (Russac et al., one breakpoint), V <- g V + u u^T
               + (1 - g) lam I, V~ <- g^2 V~ + u u^T + (1 - g^2) lam I, b <- g b + y u, beta_t as
               Lin-UCB with t replaced by sum_{s<t} g^(2s)
    Exp3       gamma = min(1, sqrt(K ln K / ((e - 1) T))), eta = gamma / K
    Batch-Exp3 batches of ceil(log T / log(1/rho_bar)) rounds, Exp3's gamma with ceil(T / batch) plays
    rewards rescaled from [-r, r] to [0, 1] and clipped, r = Omega X_bar + Theta U_bar

``"reference"``: the constants of the DLB authors' code (marcomussi/DLB), row by row of the
paper's comparison, defined at lam = 1 and lam = "logT" only (with c_a, sigma_bar^2 of
:func:`hystax.agents.bandits.dynlin_ucb.dynlin_constants`, L = the budget = max_k ||u_k||_1
= 1.5 for the budget arms, lam = log T in the "logT" rows)::

    Lin-UCB (log T)    beta_t = c_a sqrt(lam) + sqrt(2 sigma_bar^2 (log(1/delta)
                                + (d/2) log(1 + t U^2 / (d lam))))
    Lin-UCB (1)        beta = Theta sqrt(lam) + sqrt(2 log T + d log((d lam + T L^2) / (d lam)))
    D-Lin-UCB (log T)  Lin-UCB (log T) with the log term (d/2) log(1 + (t U^2 / (d lam))
                       (1 - g^(2t)) / (1 - g^2)), g = 0.999999; V and b NOT discounted
    D-Lin-UCB (1)      g = 0.999999999, lam_t = g^(-t) lam; V <- g V + u u^T + (1 - g) lam_t I,
                       V~ <- g^2 V~ + u u^T + (1 - g^2) lam_t I, b <- g b + y u (lam_t of the
                       update's round t); width sqrt(u' V^-1 V~ V^-1 u) and
                       beta_t = Theta sqrt(lam_t) + sigma sqrt(2 log T + d log(1 + L^2 (1 - g^(2t))
                                / (d lam_t (1 - g^2))))
    Exp3               gamma = min(1, sqrt(K ln K / ((e - 1) 2T/3))), eta = gamma / K, reward
                       (y + 2M) / (4M) not clipped, M = (Theta + Omega B_bar / (1 - lambda)) U_bar
    Batch-Exp3         batches of ceil(log M_ep / log(1/lambda)) rounds, M_ep = the number of
                       epochs of the schedule L_m = 1 + floor(log m / log(1/lambda)) up to T (8 at
                       rho = 0.2, T = 10^6), Exp3's reference gamma with T / batch plays, same M

The Lin-UCB / D-Lin-UCB rows play a uniformly random arm at round 0 and update every round
(from round 0), as the reference does. Its quirks, reproduced here only under
``"reference"``: "Lin-UCB (1)" ignores sigma (no noise scale in its radius); "D-Lin-UCB
(log T)" does not discount (only its log term sees g); lambda in the Exp3
constants is the largest eigenvalue of A as numpy orders them (by real part), taken without
abs(): pass it as ``eigenvalue`` (:func:`reference_eigenvalue`); for a complex lambda (the real
system: 0.6139 + 0.2605i) numpy keeps the real part of each complex quotient, which is what
is computed here (real system: batch 14 instead of the 27 that |lambda| = rho gives, and
Re(1/(4M)) as the reward scale). Without ``eigenvalue`` lambda = rho_bar (no quirk).
Not reproduced: the reference's Batch-Exp3 credits rounds kB+2 .. (k+1)B+1 to batch k+1's arm
(its reward window lags the action window by one round); here batch k's own rounds are credited.

Why textbook is the default: those constants are each method's own tuning and apply to any
problem and any lam; the reference set reproduces one paper's table, bugs included, and exists
at two values of lam. Run it with ``settings="reference"`` or ``hystax bandit dlb --settings
reference``. Numerics: float64, V re-inverted at every update (no Sherman-Morrison). Ties:
every UCB argmax (Lin-UCB, D-Lin-UCB, UCB1) takes the LOWEST arm index, as DynLin-UCB does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.dynlin_ucb import dynlin_constants
from hystax.agents.bandits.policy import Policy, ProblemInfo
from hystax.core.errors import require

__all__ = ["SETTINGS", "batch_exp3", "batch_exp3_reference_constants", "clairvoyant",
           "d_lin_ucb", "d_lin_ucb_beta", "exp3", "exp3_reference_scale", "expert", "lin_ucb",
           "lin_ucb_beta", "reference_eigenvalue", "reward_range", "ucb1"]

SETTINGS = ("textbook", "reference")
"""The constant sets of :func:`lin_ucb`, :func:`d_lin_ucb`, :func:`exp3`, :func:`batch_exp3`."""
REFERENCE_GAMMA = 0.999999999
"""D-Lin-UCB (lam = 1)'s discount in the reference (1 - 1e-9)."""
REFERENCE_LOG_TERM_GAMMA = 0.999999
"""The g in D-Lin-UCB (lam = log T)'s log term in the reference (1 - 1e-6; it does not discount)."""


def _lam(lam, info):
    if lam == "logT":
        return jnp.log(jnp.asarray(info.horizon, float))
    return jnp.asarray(lam, float)


def _check_lam(name, lam):
    require(lam == "logT" or (isinstance(lam, (int, float)) and not isinstance(lam, bool) and lam > 0),
            f"{name}: lam must be a positive number or 'logT', got {lam!r}")


def _check_settings(name, settings, lam=None):
    require(settings in SETTINGS, f"{name}: settings must be one of {', '.join(SETTINGS)}, "
            f"got {settings!r}")
    require(settings == "textbook" or lam is None or lam == "logT" or lam == 1,
            f"{name}: the reference settings exist for lam = 1 and lam = 'logT' only, got {lam!r}")


def _lam_name(lam, settings="textbook"):
    name = "log T" if lam == "logT" else f"{lam:g}"
    return name + (", reference" if settings == "reference" else "")


def reward_range(info: ProblemInfo) -> jax.Array:
    """r = Omega X_bar + Theta U_bar: rewards are rescaled from [-r, r] to [0, 1]."""
    return info.omega_bound * info.x_bound + info.theta_bound * info.u_bound


def _unit(reward, info):
    r = reward_range(info)
    return jnp.clip((reward + r) / (2 * r), 0.0, 1.0)


def _budget(info, budget):
    """L: ``budget`` or max_k ||u_k||_1 (the total budget of the allocation arms)."""
    return jnp.max(jnp.sum(jnp.abs(info.arms), axis=1)) if budget is None else jnp.asarray(budget, float)


def reference_eigenvalue(A) -> complex:
    """The reference's lambda for the Exp3 constants: max(eigvals(A)) in numpy's order (real part,
    then imaginary part), without abs() (the quirk; complex on the real system)."""
    return complex(max(np.linalg.eigvals(np.asarray(A, np.float64)), key=lambda z: (z.real, z.imag)))


def _top(info, eigenvalue):
    if eigenvalue is None:
        return info.rho_bar, jnp.zeros(())
    return jnp.asarray(complex(eigenvalue).real), jnp.asarray(complex(eigenvalue).imag)


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
    """V, V_tilde, V_inv [d, d]; b, theta_hat [d]; lam (the base lam), gamma (discount of the
    update; 1 = OFUL); info."""

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


def _ridge_update(state, arm, reward, reg):
    """Discounted ridge update (gamma = 1: OFUL): V <- g V + u u^T + (1 - g) reg I,
    V~ <- g^2 V~ + u u^T + (1 - g^2) reg I, b <- g b + y u; V re-inverted (float64)."""
    u, g = state.info.arms[arm], state.gamma
    eye = jnp.eye(u.shape[0])
    V = g * state.V + jnp.outer(u, u) + (1 - g) * reg * eye
    V_tilde = g**2 * state.V_tilde + jnp.outer(u, u) + (1 - g**2) * reg * eye
    b = g * state.b + reward * u
    V_inv = jnp.linalg.inv(V)
    return state.replace(V=V, V_tilde=V_tilde, V_inv=V_inv, b=b, theta_hat=V_inv @ b)


def _ucb_arm(state, radius, discounted):
    """argmax_k <theta_hat, u_k> + radius ||u_k||_M, ties to the LOWEST index k."""
    arms = state.info.arms
    M = state.V_inv @ state.V_tilde @ state.V_inv if discounted else state.V_inv
    width = jnp.sqrt(jnp.maximum(jnp.einsum("kd,de,ke->k", arms, M, arms), 0.0))
    return jnp.argmax(arms @ state.theta_hat + radius * width).astype(jnp.int32)


def _random_first(arm, key, t, info):
    """The reference's round 0: a uniformly random arm."""
    return jnp.where(t == 0, jax.random.randint(key, (), 0, info.arms.shape[0]), arm).astype(jnp.int32)


def _log_T(info):
    return jnp.log(jnp.asarray(info.horizon, float))


def lin_ucb_beta(info: ProblemInfo, lam, t, settings: str = "textbook", budget=None) -> jax.Array:
    """Lin-UCB's radius beta_t for ``lam`` (a float or "logT") in ``settings`` (module doc)."""
    d, lam_ = info.arms.shape[1], jnp.maximum(_lam(lam, info), 1e-12)
    if settings == "textbook":
        return jnp.sqrt(lam_) * info.theta_bound + info.sigma * jnp.sqrt(
            2 * jnp.log(1 / info.delta) + d * jnp.log(1 + t * info.u_bound**2 / (d * lam_)))
    if lam == "logT":
        c_a, _, sigma2 = dynlin_constants(info)
        return c_a * jnp.sqrt(lam_) + jnp.sqrt(2 * sigma2 * (
            jnp.log(1 / info.delta) + (d / 2) * jnp.log(1 + t * info.u_bound**2 / (d * lam_))))
    L, T = _budget(info, budget), jnp.asarray(info.horizon, float)
    return info.theta_bound * jnp.sqrt(lam_) + jnp.sqrt(
        2 * _log_T(info) + d * jnp.log((d * lam_ + T * L**2) / (d * lam_)))


def d_lin_ucb_beta(info: ProblemInfo, lam, t, settings: str = "textbook", gamma=None,
                   budget=None) -> jax.Array:
    """D-Lin-UCB's radius beta_t for ``lam`` in ``settings``; ``gamma`` default per settings."""
    d, lam_ = info.arms.shape[1], jnp.maximum(_lam(lam, info), 1e-12)
    g = jnp.asarray(_d_lin_gamma(info, lam, settings, gamma), float)
    geom = jnp.where(g < 1, (1 - g ** (2 * t)) / jnp.maximum(1 - g**2, 1e-300), t)  # sum_{s<t} g^2s
    if settings == "textbook":
        return jnp.sqrt(lam_) * info.theta_bound + info.sigma * jnp.sqrt(
            2 * jnp.log(1 / info.delta) + d * jnp.log(1 + info.u_bound**2 * geom / (d * lam_)))
    if lam == "logT":
        c_a, _, sigma2 = dynlin_constants(info)
        return c_a * jnp.sqrt(lam_) + jnp.sqrt(2 * sigma2 * (jnp.log(1 / info.delta) + (d / 2) * jnp.log(
            1 + (t * info.u_bound**2 / (d * lam_)) * geom)))
    L, lam_t = _budget(info, budget), g ** (-t) * lam_
    return info.theta_bound * jnp.sqrt(lam_t) + info.sigma * jnp.sqrt(
        2 * _log_T(info) + d * jnp.log(1 + L**2 * geom / (d * lam_t)))


def _d_lin_gamma(info, lam, settings, gamma):
    if gamma is not None:
        return gamma
    if settings == "reference":
        return REFERENCE_LOG_TERM_GAMMA if lam == "logT" else REFERENCE_GAMMA
    return 1 - (1 / (info.arms.shape[1] * jnp.asarray(info.horizon, float))) ** (2 / 3)


def lin_ucb(lam: float | str = 1.0, settings: str = "textbook", budget: float | None = None) -> Policy:
    """Lin-UCB / OFUL on the raw reward y_t; ``lam`` a float > 0 or ``"logT"``; ``settings``
    "textbook" or "reference" (module doc; reference: lam in {1, "logT"}, a random round 0);
    ``budget``: L of the reference's lam = 1 radius (default max_k ||u_k||_1). Ties: lowest index."""
    _check_lam("lin_ucb", lam)
    _check_settings("lin_ucb", settings, lam)
    reference = settings == "reference"

    def act(state, key, t):
        arm = _ucb_arm(state, lin_ucb_beta(state.info, lam, t, settings, budget), discounted=False)
        return _random_first(arm, key, t, state.info) if reference else arm

    return Policy(init=lambda key, info: _ridge_init(info, _lam(lam, info), 1.0), act=act,
                  update=lambda state, arm, reward, t: _ridge_update(state, arm, reward, state.lam),
                  name=f"Lin-UCB (lam={_lam_name(lam, settings)})")


def d_lin_ucb(lam: float | str = 1.0, gamma: float | None = None, settings: str = "textbook",
              budget: float | None = None) -> Policy:
    """D-Lin-UCB (Russac et al. 2019); ``gamma`` default per ``settings`` (textbook
    1 - (1 / (d T))^(2/3); reference 0.999999999 at lam = 1, and at lam = "logT" the
    non-discounting row with 0.999999 in its log term). Ties: lowest index."""
    _check_lam("d_lin_ucb", lam)
    _check_settings("d_lin_ucb", settings, lam)
    require(gamma is None or 0 < gamma <= 1, f"d_lin_ucb: gamma must lie in (0, 1], got {gamma!r}")
    reference = settings == "reference"
    plain = reference and lam == "logT"  # the reference's "D-Lin-UCB (log T)" does not discount

    def init(key, info):
        return _ridge_init(info, _lam(lam, info), 1.0 if plain else _d_lin_gamma(info, lam, settings, gamma))

    def act(state, key, t):
        radius = d_lin_ucb_beta(state.info, lam, t, settings, gamma, budget)
        arm = _ucb_arm(state, radius, discounted=not plain)
        return _random_first(arm, key, t, state.info) if reference else arm

    def update(state, arm, reward, t):
        # reference lam = 1: the regulariser grows as lam_t = g^(-t) lam (t of this update)
        reg = state.gamma ** (-t) * state.lam if reference and not plain else state.lam
        return _ridge_update(state, arm, reward, reg)

    return Policy(init=init, act=act, update=update,
                  name=f"D-Lin-UCB (lam={_lam_name(lam, settings)})")


# --- finite-armed ------------------------------------------------------------------------------------


@struct.dataclass
class Exp3State:
    """log_w [K] (log weights = eta G), gamma, arm (held in Batch-Exp3), batch length, batch
    reward sum, scale (reference: the unit reward is 1/2 + scale y), info."""

    log_w: jax.Array
    gamma: jax.Array
    arm: jax.Array
    batch: jax.Array
    batch_sum: jax.Array
    scale: jax.Array
    info: ProblemInfo


def _exp3_probs(state):
    k = state.log_w.shape[0]
    w = jnp.exp(state.log_w - jnp.max(state.log_w))
    return (1 - state.gamma) * w / jnp.sum(w) + state.gamma / k


def _exp3_gamma(k, plays):
    return jnp.minimum(1.0, jnp.sqrt(k * np.log(k) / ((np.e - 1) * plays))) if k > 1 else jnp.asarray(1.0)


def _exp3_learn(state, arm, unit_reward):
    """G_arm += r / p_arm, kept as log_w = eta G with eta = gamma / K."""
    k = state.log_w.shape[0]
    estimate = unit_reward / _exp3_probs(state)[arm]
    return state.log_w.at[arm].add(state.gamma * estimate / k)


def _batch_length(info):
    return jnp.maximum(1, jnp.ceil(jnp.log(info.horizon) / jnp.log(1 / info.rho_bar))).astype(jnp.int32)


def exp3_reference_scale(info: ProblemInfo, eigenvalue: complex | None = None) -> jax.Array:
    """Re(1 / (4M)), M = (Theta + Omega B_bar / (1 - lambda)) U_bar: the reference maps y to
    Re((y + 2M) / (4M)) = 1/2 + y Re(1 / (4M)); lambda = ``eigenvalue`` or rho_bar."""
    a, b = _top(info, eigenvalue)
    den = (1 - a) ** 2 + b**2  # 1 / (1 - lambda) = ((1 - a) + i b) / den
    re_m = info.u_bound * (info.theta_bound + info.omega_bound * info.b_bound * (1 - a) / den)
    im_m = info.u_bound * info.omega_bound * info.b_bound * b / den
    return re_m / (4 * (re_m**2 + im_m**2))


def _real_log_inverse(a, b):
    """The D with Re(x / log(1/lambda)) = x / D for real x (numpy's Smith division), lambda = a + ib."""
    p, q = -0.5 * jnp.log(a**2 + b**2), jnp.arctan2(-b, a)  # log(1/lambda) = p + iq
    q_safe = jnp.where(q == 0, 1.0, q)
    smith = jnp.where(jnp.abs(p) >= jnp.abs(q), p + q * (q / p), (p * (p / q_safe) + q) / (p / q_safe))
    return jnp.where(b == 0, jnp.log(1 / a), smith)


def batch_exp3_reference_constants(info: ProblemInfo, eigenvalue: complex | None = None):
    """(batch length B, number of epochs M_ep) of the reference's Batch-Exp3: M_ep epochs of
    lengths 1 + floor(log m / D) reach the horizon, B = max(1, ceil(log M_ep / D)), D as in
    log(1/lambda) (real part of the quotient for a complex lambda; lambda = rho_bar by default)."""
    a, b = _top(info, eigenvalue)
    den = _real_log_inverse(a, b)
    horizon = jnp.asarray(info.horizon, jnp.int64)

    def body(carry):
        m, total = carry
        m = m + 1
        return m, total + 1 + jnp.floor(jnp.log(m.astype(float)) / den).astype(jnp.int64)

    epochs, _ = jax.lax.while_loop(lambda c: c[1] < horizon, body, (jnp.int64(0), jnp.int64(0)))
    batch = jnp.maximum(1, jnp.ceil(jnp.log(epochs.astype(float)) / den)).astype(jnp.int32)
    return batch, epochs.astype(jnp.int32)


def exp3(settings: str = "textbook", eigenvalue: complex | None = None) -> Policy:
    """Exp3 over the arms (module doc); ``eigenvalue``: the reference's lambda (its quirk)."""
    _check_settings("exp3", settings)
    reference = settings == "reference"

    def init(key, info):
        k, T = info.arms.shape[0], jnp.asarray(info.horizon, float)
        return Exp3State(log_w=jnp.zeros(k), gamma=_exp3_gamma(k, 2 * T / 3 if reference else T),
                         arm=jnp.int32(0), batch=jnp.int32(1), batch_sum=jnp.zeros(()),
                         scale=exp3_reference_scale(info, eigenvalue), info=info)

    def unit(state, reward):
        return 0.5 + state.scale * reward if reference else _unit(reward, state.info)

    def act(state, key, t):
        return jax.random.categorical(key, jnp.log(_exp3_probs(state))).astype(jnp.int32)

    def update(state, arm, reward, t):
        return state.replace(log_w=_exp3_learn(state, arm, unit(state, reward)))

    return Policy(init, act, update, "Exp3" + (" (reference)" if reference else ""))


def batch_exp3(settings: str = "textbook", eigenvalue: complex | None = None) -> Policy:
    """Exp3 over batches of rounds (one arm per batch), fed the batch-mean reward (module doc)."""
    _check_settings("batch_exp3", settings)
    reference = settings == "reference"

    def init(key, info):
        k, T = info.arms.shape[0], jnp.asarray(info.horizon, float)
        if reference:
            batch = batch_exp3_reference_constants(info, eigenvalue)[0]
            gamma = _exp3_gamma(k, 2 * (T / batch) / 3)
        else:
            batch = _batch_length(info)
            gamma = _exp3_gamma(k, jnp.ceil(info.horizon / batch))
        return Exp3State(log_w=jnp.zeros(k), gamma=gamma, arm=jnp.int32(0), batch=batch,
                         batch_sum=jnp.zeros(()), scale=exp3_reference_scale(info, eigenvalue),
                         info=info)

    def act(state, key, t):
        new = jax.random.categorical(key, jnp.log(_exp3_probs(state))).astype(jnp.int32)
        return jnp.where(t % state.batch == 0, new, state.arm)

    def update(state, arm, reward, t):
        unit = 0.5 + state.scale * reward if reference else _unit(reward, state.info)
        total = state.batch_sum + unit
        last = t % state.batch == state.batch - 1
        log_w = jnp.where(last, _exp3_learn(state, arm, total / state.batch), state.log_w)
        return state.replace(log_w=log_w, arm=jnp.asarray(arm, jnp.int32),
                             batch_sum=jnp.where(last, 0.0, total))

    return Policy(init, act, update, "Batch-Exp3" + (" (reference)" if reference else ""))


@struct.dataclass
class UCB1State:
    """counts [K], sums [K] of rescaled rewards."""

    counts: jax.Array
    sums: jax.Array
    info: ProblemInfo


def ucb1() -> Policy:
    """UCB1 on rewards rescaled to [0, 1]; unplayed arms first; ties to the lowest arm index."""

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
