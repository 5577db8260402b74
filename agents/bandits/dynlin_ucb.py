"""DynLin-UCB (Mussi, Metelli, Restelli, ICML 2023) as in the authors' code.

Regress the reward on the current action only, after holding that action for an epoch long
enough for the hidden state to settle. Epoch m has nominal length L_m = 1 + floor(log m /
log(1/rho_bar)); with S_m = L_1 + ... + L_m, the learner updates at rounds t = S_m (0-based)
and picks a new arm at t = S_m + 1, as the paper's pseudo-code and the reference code do:
round 0 plays a uniformly random arm, held over rounds 0 and 1, and the first update uses
round 1's reward (epoch 1 holds rounds 0..S_1, epoch m >= 2 rounds S_{m-1}+1..S_m). At its
first round an epoch plays argmax_u <h_hat, u> + beta(t) ||u||_{V^-1} (ties: the LOWEST arm
index, ``jnp.argmax``); only the epoch's LAST reward updates V += u u^T, b += y u,
h_hat = V^-1 b (V re-inverted each time, float64). Constants (from :class:`ProblemInfo`)::

    c_a = Theta + Omega B_bar Phi_bar / (1 - rho_bar)
    c_b = U_bar Omega Phi_bar (U_bar B_bar / (1 - rho_bar) + X_bar)
    sigma_bar^2 = sigma^2 (1 + Omega^2 Phi_bar^2 / (1 - rho_bar^2))
    beta(t) = c_a sqrt(lam) + c_b log(e (t+1)) / sqrt(lam)
              + sqrt(2 sigma_bar^2 (log(1/delta) + (d/2) log(1 + t U_bar^2 / (d lam))))

When rho_bar < 1e-6 every round is an epoch and the updates start at round 0 (the reference's
degenerate branch). ``lam`` is a positive float or ``"logT"`` (lam = log T). DynLin-UCB has one setting: the
reference's constants are the paper's (no textbook/reference split).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.policy import Policy, ProblemInfo
from hystax.core.errors import require

RHO_BAR_EVERY_ROUND = 1e-6
"""Below this rho_bar, DynLin-UCB updates at every round from round 0 (as the reference)."""

__all__ = ["RHO_BAR_EVERY_ROUND", "DynLinUCBState", "beta", "busy_rounds", "dynlin_constants",
           "dynlin_ucb", "epoch_length", "epoch_schedule"]


def epoch_schedule(rho_bar: float, horizon: int) -> np.ndarray:
    """Nominal epoch lengths L_1, ..., L_M [M] (numpy int64) of the reference's schedule: every
    epoch m with S_{m-1} < horizon (S_m = L_1 + ... + L_m, S_0 = 0), the list of update rounds
    the reference code builds. rho_bar = 0.2: T = 10^4 -> 2,156 epochs (last L = 5);
    T = 10^5 -> 17,075 (last 7); T = 10^6 -> 137,206 (last 8).

    Epoch m's update is at round S_m (0-based, see the module doc), so the epochs played in T
    rounds are those with S_{m-1} + 1 < T (epoch 1 always), and the updates are those with
    S_m <= T - 1: at T = 10^4, S_2155 = 9,999, so all 2,155 played epochs complete and the
    schedule's 2,156th would start at round 10^4; at T = 10^5 and 10^6 the last scheduled epoch
    starts inside the horizon and is cut short (17,074 and 137,205 updates).
    """
    m = np.arange(1, int(horizon) + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_inv = np.log(np.float64(1.0) / np.float64(rho_bar))  # inf at 0: one-round epochs
        lengths = 1 + np.floor(np.log(m) / log_inv).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return lengths[starts < horizon]


def busy_rounds(info: ProblemInfo, horizon: int) -> np.ndarray:
    """The rounds in which DynLin-UCB acts or learns (bool [horizon], numpy, the same for every
    seed): round 0, each update round S_m and the round after it. The bandit runner skips
    ``act``/``update`` in the others (:class:`~hystax.agents.bandits.policy.Policy` ``schedule``).
    The epoch lengths come from :func:`epoch_length`, the very function the state's own
    bookkeeping uses (in float64), so the two agree to the last bit of the log."""
    rho_bar = float(info.rho_bar)
    if rho_bar < RHO_BAR_EVERY_ROUND:
        return np.ones(horizon, bool)
    with jax.enable_x64(True):
        m = jnp.arange(1, horizon + 1, dtype=jnp.float64)
        lengths = np.asarray(jax.jit(epoch_length)(jnp.float64(rho_bar), m), np.int64)
    ends = np.cumsum(lengths)
    ends = ends[ends < horizon]
    busy = np.zeros(horizon, bool)
    busy[0] = True
    busy[ends] = True
    busy[ends[ends + 1 < horizon] + 1] = True
    return busy


def epoch_length(rho_bar, m) -> jax.Array:
    """L_m = 1 + floor(log m / log(1/rho_bar)) (jnp; rho_bar -> 0 gives 1)."""
    return 1 + jnp.floor(jnp.log(m) / jnp.log(1.0 / rho_bar)).astype(jnp.int32)


def dynlin_constants(info: ProblemInfo) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(c_a, c_b, sigma_bar^2) of the module doc (jnp scalars)."""
    one_minus = 1.0 - info.rho_bar
    c_a = info.theta_bound + info.omega_bound * info.b_bound * info.phi_bar / one_minus
    c_b = info.u_bound * info.omega_bound * info.phi_bar * (
        info.u_bound * info.b_bound / one_minus + info.x_bound)
    sigma2 = info.sigma**2 * (1 + info.omega_bound**2 * info.phi_bar**2 / (1 - info.rho_bar**2))
    return c_a, c_b, sigma2


def beta(info: ProblemInfo, lam, t) -> jax.Array:
    """The confidence radius beta(t) (see the module doc)."""
    c_a, c_b, sigma2 = dynlin_constants(info)
    d = info.arms.shape[1]
    log_det = (d / 2) * jnp.log(1 + t * info.u_bound**2 / (d * lam))
    return (c_a * jnp.sqrt(lam) + c_b * jnp.log(jnp.e * (t + 1)) / jnp.sqrt(lam)
            + jnp.sqrt(2 * sigma2 * (jnp.log(1 / info.delta) + log_det)))


@struct.dataclass
class DynLinUCBState:
    """V, V_inv [d, d]; b, h_hat [d]; arm (held), m (epoch index, from 1), start/end (rounds of
    the current epoch, end exclusive: epoch 1 is [0, L_1 + 1), epoch m [S_{m-1} + 1, S_m + 1)),
    n_updates; lam and info for the UCB."""

    V: jax.Array
    V_inv: jax.Array
    b: jax.Array
    h_hat: jax.Array
    arm: jax.Array
    m: jax.Array
    start: jax.Array
    end: jax.Array
    n_updates: jax.Array
    lam: jax.Array
    info: ProblemInfo


def dynlin_ucb(lam: float | str = "logT") -> Policy:
    """DynLin-UCB with regularisation ``lam`` (a float > 0, or ``"logT"`` for log T)."""
    require(lam == "logT" or (isinstance(lam, (int, float)) and not isinstance(lam, bool) and lam > 0),
            f"dynlin_ucb: lam must be a positive number or 'logT', got {lam!r}")

    def init(key, info):
        d = info.arms.shape[1]
        lam_ = jnp.log(jnp.asarray(info.horizon, float)) if lam == "logT" else jnp.asarray(lam, float)
        lam_ = jnp.maximum(lam_, 1e-12)
        eye = jnp.eye(d)
        return DynLinUCBState(V=lam_ * eye, V_inv=eye / lam_, b=jnp.zeros(d), h_hat=jnp.zeros(d),
                              arm=jnp.int32(0), m=jnp.int32(1), start=jnp.int32(0),
                              # round 0 joins epoch 1: the first update is after round 1
                              # (rho_bar < 1e-6: every round from round 0, as the reference)
                              end=jnp.where(info.rho_bar < RHO_BAR_EVERY_ROUND, 1,
                                            epoch_length(info.rho_bar, 1) + 1),
                              n_updates=jnp.int32(0),
                              lam=lam_, info=info)

    def act(state, key, t):
        arms = state.info.arms
        width = jnp.sqrt(jnp.einsum("kd,de,ke->k", arms, state.V_inv, arms))
        ucb = arms @ state.h_hat + beta(state.info, state.lam, t) * width
        chosen = jnp.where(t == 0, jax.random.randint(key, (), 0, arms.shape[0]), jnp.argmax(ucb))
        return jnp.where(t == state.start, chosen, state.arm).astype(jnp.int32)

    def update(state, arm, reward, t):
        u = state.info.arms[arm]
        last = t == state.end - 1
        V = jnp.where(last, state.V + jnp.outer(u, u), state.V)
        b = jnp.where(last, state.b + reward * u, state.b)
        V_inv = jnp.where(last, jnp.linalg.inv(V), state.V_inv)
        m = state.m + last
        return state.replace(
            V=V, V_inv=V_inv, b=b, h_hat=jnp.where(last, V_inv @ b, state.h_hat),
            arm=jnp.asarray(arm, jnp.int32), m=m,
            start=jnp.where(last, state.end, state.start),
            end=jnp.where(last, state.end + epoch_length(state.info.rho_bar, m), state.end),
            n_updates=state.n_updates + last)

    name = "DynLin-UCB (lam=log T)" if lam == "logT" else f"DynLin-UCB (lam={lam:g})"
    return Policy(init, act, update, name, schedule=busy_rounds)
