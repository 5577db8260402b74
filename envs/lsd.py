"""Last-switch-dependent (LSD) bandits (Laforgue et al., AISTATS 2022): problems, dynamics, presets.

Each of K arms has a state z (an int, never 0), capped on both sides:

- ``z = b > 0``: the arm has been idle for b rounds since it was last played (b <= idle_cap);
- ``z = -m < 0``: the arm was played in each of the last m rounds (m <= play_cap).

Playing arm i in state z pays a reward with mean mu_i(z) (Bernoulli or Gaussian noise):
``idle_payoff[i, b - 1] = f_i(b)`` is the first play after b idle rounds (deprivation side),
``play_payoff[i, m - 1] = g_i(m + 1)`` the (m + 1)-th consecutive play (satiation side).
After the round the played arm moves to -1 (or one step further down, to -play_cap at most)
and every other arm to +1 (or one step further up, to +idle_cap at most). The states depend
only on the arms played, never on the rewards, so with known payoffs a plan is a fixed schedule.

Recharging (delay-dependent) bandits are the special case play_cap = 1 and
mu_i(-1) = f_rech_i(1): :func:`recharging` maps delay tables f(tau), tau = rounds since the last
pull (tau = 1: pulled in the previous round), to this form (tau = b + 1).

>>> problem = preset("laforgue-main")
>>> z = problem.init_state                       # [K] int32
>>> mean = mean_payoff(problem, z, arm)          # []
>>> z = advance(problem, z, arm)                 # [K]
>>> reward = sample_reward(problem, key, mean)

:class:`LSDEnv` is a problem as a gymnax 1.0 env (registered ``lsd/<preset>``) for RL agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from hystax.core.errors import require, unknown_name
from hystax.envs.bandit_env import BanditEnv

__all__ = [
    "NOISES",
    "PRESETS",
    "LSDEnv",
    "LSDParams",
    "LSDPreset",
    "LSDProblem",
    "LSDState",
    "advance",
    "is_monotone",
    "make_problem",
    "mean_payoff",
    "monotone_lsd",
    "payoff_table",
    "preset",
    "random_monotone",
    "recharging",
    "register_all",
    "sample_reward",
    "state_index",
]

NOISES = ("bernoulli", "gaussian")


@struct.dataclass
class LSDProblem:
    """An LSD instance (numpy leaves; jax casts them on use).

    idle_payoff [K, Ci] (f_i(b), b = 1..Ci), play_payoff [K, Cp] (mu_i(-m), m = 1..Cp),
    init_state [K] int32 (z at round 0), sigma [] (Gaussian noise std). Static: ``noise``.
    """

    idle_payoff: np.ndarray
    play_payoff: np.ndarray
    init_state: np.ndarray
    sigma: np.ndarray
    noise: str = struct.field(pytree_node=False, default="bernoulli")

    @property
    def num_arms(self) -> int:
        return int(np.shape(self.idle_payoff)[0])

    @property
    def idle_cap(self) -> int:
        return int(np.shape(self.idle_payoff)[1])

    @property
    def play_cap(self) -> int:
        return int(np.shape(self.play_payoff)[1])

    @property
    def states_per_arm(self) -> int:
        return self.idle_cap + self.play_cap

    # --- the round protocol (hystax.envs.bandit_rounds) ---

    optimal_rate = None  # regrets are taken against a planner's rate, given after the run

    def initial_state(self) -> jax.Array:
        """z at round 0 [K] int32."""
        return jnp.asarray(self.init_state, jnp.int32)

    def draw_noise(self, key: jax.Array, rounds: int) -> jax.Array:
        """``rounds`` rounds' noise in one call [rounds]: uniforms (Bernoulli) or N(0, 1)."""
        dtype = jnp.result_type(float)
        if self.noise == "bernoulli":
            return jax.random.uniform(key, (rounds,), dtype)
        return jax.random.normal(key, (rounds,), dtype)

    def play(self, z, arm, noise):
        """One round of arm ``arm`` from states z [K]: (mu, reward, mu, z')."""
        mean = mean_payoff(self, z, arm)
        if self.noise == "bernoulli":
            y = (noise < mean).astype(jnp.result_type(float))
        else:
            y = mean + self.sigma * noise
        return mean, y, mean, advance(self, z, arm)

    def with_extra_arms(self, extra) -> LSDProblem:
        require(len(extra) == 0, "LSD problems have no actions beyond their arms")
        return self


def make_problem(idle_payoff, play_payoff, init_state="recharged", noise: str = "bernoulli",
                 sigma: float = 0.1) -> LSDProblem:
    """Validate an LSD instance (numpy only, nothing is compiled).

    Args:
      idle_payoff: [K, Ci] mean payoff of the first play after b = 1..Ci idle rounds.
      play_payoff: [K, Cp] mean payoff of a play after m = 1..Cp consecutive plays.
      init_state: "recharged" (every arm idle for Ci rounds), "played" (every arm at -1), or
        a [K] array of states z in [-Cp, -1] U [1, Ci].
      noise: "bernoulli" (payoffs must lie in [0, 1]) or "gaussian" (mean + sigma N(0, 1)).
    Raises:
      HystaxError naming the problem (shapes, caps, non-finite or out-of-range payoffs, states).
    """
    idle = np.asarray(idle_payoff, np.float64)
    play = np.asarray(play_payoff, np.float64)
    require(idle.ndim == 2 and idle.shape[0] > 0 and idle.shape[1] > 0,
            f"LSD: idle_payoff must be [K, idle_cap] with K, idle_cap >= 1, got shape {idle.shape}")
    k = idle.shape[0]
    require(play.ndim == 2 and play.shape[0] == k and play.shape[1] > 0,
            f"LSD: play_payoff must be [{k}, play_cap] with play_cap >= 1 (K = {k} from "
            f"idle_payoff), got shape {play.shape}")
    require(bool(np.all(np.isfinite(idle)) and np.all(np.isfinite(play))),
            "LSD: payoff tables have non-finite entries")
    if noise not in NOISES:
        raise unknown_name("LSD noise", noise, NOISES)
    if noise == "bernoulli":
        bad = [n for n, x in (("idle_payoff", idle), ("play_payoff", play))
               if x.min() < 0.0 or x.max() > 1.0]
        require(not bad, f"LSD: Bernoulli noise needs payoffs in [0, 1], but {' and '.join(bad)} "
                f"range over [{min(idle.min(), play.min()):.4g}, {max(idle.max(), play.max()):.4g}]")
    sigma = float(sigma)
    require(np.isfinite(sigma) and sigma >= 0, f"LSD: sigma must be >= 0, got {sigma}")
    if isinstance(init_state, str):
        starts = {"recharged": idle.shape[1], "played": -1}
        if init_state not in starts:
            raise unknown_name("LSD init_state", init_state, starts)
        z0 = np.full((k,), starts[init_state], np.int32)
    else:
        z0 = np.asarray(init_state)
        require(z0.shape == (k,) and np.issubdtype(z0.dtype, np.integer),
                f"LSD: init_state must be 'recharged', 'played' or [{k}] ints, got {init_state!r}")
        ok = ((z0 >= 1) & (z0 <= idle.shape[1])) | ((z0 <= -1) & (z0 >= -play.shape[1]))
        require(bool(ok.all()), f"LSD: init_state entries must lie in [-{play.shape[1]}, -1] U "
                f"[1, {idle.shape[1]}], got {z0.tolist()}")
        z0 = z0.astype(np.int32)
    return LSDProblem(idle_payoff=idle, play_payoff=play, init_state=z0,
                      sigma=np.float64(sigma), noise=noise)


def recharging(delay_payoff, init_state="recharged", noise: str = "bernoulli",
               sigma: float = 0.1) -> LSDProblem:
    """A recharging bandit from delay tables ``delay_payoff [K, D]``: f_i(tau), tau = 1..D rounds
    since the last pull (capped at D >= 2). "played" starts every arm at delay 1."""
    f = np.asarray(delay_payoff, np.float64)
    require(f.ndim == 2 and f.shape[1] >= 2,
            f"LSD: recharging delay_payoff must be [K, D] with D >= 2 delays, got shape {f.shape}")
    return make_problem(f[:, 1:], f[:, :1], init_state, noise, sigma)


def monotone_lsd(p, q, s, cap: int, init_state="recharged", noise: str = "bernoulli",
                 sigma: float = 0.1) -> LSDProblem:
    """The spec's parametric monotone LSD family: f_i(b) = p_i (1 - (1 - q_i)^b) (deprivation)
    and g_i(j) = p_i s_i^(j - 1) (satiation), both sides capped at ``cap``."""
    p, q, s = (np.asarray(v, np.float64)[:, None] for v in (p, q, s))
    steps = np.arange(1, cap + 1)[None]
    return make_problem(p * (1 - (1 - q) ** steps), p * s ** steps, init_state, noise, sigma)


def random_monotone(seed: int, num_arms: int, idle_cap: int = 6, play_cap: int = 6,
                    kind: str = "lsd", noise: str = "bernoulli") -> LSDProblem:
    """A random monotone instance: each arm's idle side is a random concave, ramp or threshold
    curve p_i * c(b) (non-decreasing), its play side p_i * s_i^m (non-increasing; s_i = 1 for
    ``kind="recharging"``, which also forces play_cap = 1). Starts recharged."""
    require(kind in ("lsd", "recharging"), f"random_monotone: kind must be 'lsd' or "
            f"'recharging', got {kind!r}")
    require(num_arms >= 1 and idle_cap >= 1 and play_cap >= 1,
            f"random_monotone: need num_arms, idle_cap, play_cap >= 1, got "
            f"{num_arms}, {idle_cap}, {play_cap}")
    rng = np.random.default_rng(seed)
    b = np.arange(1, idle_cap + 1)
    p = rng.uniform(0.2, 1.0, num_arms)
    curves = []
    for i in range(num_arms):
        shape = rng.integers(3)
        if shape == 0:  # concave recovery
            curve = 1 - (1 - rng.uniform(0.1, 0.9)) ** b
        elif shape == 1:  # linear ramp to full payoff after d rounds
            curve = np.minimum(1.0, b / rng.integers(1, idle_cap + 1))
        else:  # blocking: 0 before d idle rounds, a floor after
            floor = rng.uniform(0.0, 0.3)
            curve = np.where(b >= rng.integers(1, idle_cap + 1), 1.0, floor)
        curves.append(curve)
    idle = p[:, None] * np.stack(curves)
    if kind == "recharging":
        first = idle[:, :1] * rng.uniform(0.0, 1.0, (num_arms, 1))  # f(tau=1) <= f(tau=2)
        return make_problem(idle, first, "recharged", noise)
    decay = rng.uniform(0.3, 1.0, num_arms)
    play = idle[:, :1] * decay[:, None] ** np.arange(1, play_cap + 1)[None]
    return make_problem(idle, play, "recharged", noise)


def is_monotone(problem: LSDProblem, strict: bool = False, tol: float = 1e-12) -> bool:
    """Deprivation (idle side non-decreasing in b) and satiation (play side non-increasing in m);
    ``strict`` also asks f(1) >= g(2), so that mu is non-decreasing along the whole order
    -Cp < ... < -1 < 1 < ... < Ci (what the LP-rounding guarantee needs)."""
    ok = bool(np.all(np.diff(problem.idle_payoff, axis=1) >= -tol)
              and np.all(np.diff(problem.play_payoff, axis=1) <= tol))
    if strict:
        ok = ok and bool(np.all(problem.idle_payoff[:, 0] >= problem.play_payoff[:, 0] - tol))
    return ok


# --- the dynamics (pure, jit/vmap-able) ---------------------------------------------------------


def state_index(z, play_cap: int):
    """Index of state z in a per-arm table of ``play_cap + idle_cap`` states:
    -m -> m - 1 (0..Cp-1), +b -> Cp + b - 1."""
    return jnp.where(z < 0, -z - 1, play_cap + z - 1)


def payoff_table(problem: LSDProblem) -> np.ndarray:
    """mu [K, Cp + Ci] indexed by :func:`state_index` (numpy for a numpy problem, jax under jit)."""
    xp = np if isinstance(problem.idle_payoff, np.ndarray) else jnp
    return xp.concatenate([problem.play_payoff, problem.idle_payoff], axis=1)


def mean_payoff(problem: LSDProblem, z: jax.Array, arm: jax.Array) -> jax.Array:
    """mu_arm(z[arm]): z [K] int, arm [] int -> []."""
    zi = z[arm]
    return jnp.where(zi > 0, jnp.asarray(problem.idle_payoff)[arm, jnp.maximum(zi, 1) - 1],
                     jnp.asarray(problem.play_payoff)[arm, jnp.maximum(-zi, 1) - 1])


def advance(problem, z: jax.Array, arm: jax.Array) -> jax.Array:
    """The states after playing ``arm``: z [K] -> [K] (see the module doc). ``problem`` may be
    anything with ``idle_cap`` and ``play_cap`` (a learner passes its info)."""
    played = jnp.arange(z.shape[0]) == arm
    on = jnp.where(z > 0, -1, jnp.maximum(z - 1, -problem.play_cap))
    off = jnp.where(z < 0, 1, jnp.minimum(z + 1, problem.idle_cap))
    return jnp.where(played, on, off).astype(z.dtype)


def sample_reward(problem: LSDProblem, key: jax.Array, mean: jax.Array) -> jax.Array:
    """One noisy reward with mean ``mean``: Bernoulli(mean) or mean + sigma * N(0, 1)."""
    dtype = jnp.result_type(float)
    if problem.noise == "bernoulli":
        return (jax.random.uniform(key, (), dtype) < mean).astype(dtype)
    return mean + problem.sigma * jax.random.normal(key, (), dtype)


# --- presets -----------------------------------------------------------------------------------


class LSDPreset(NamedTuple):
    """A named instance: its constructor, horizon T, the exact optimum OPT over T rounds (from
    the spec, by DP), and the block length d of (ISI-)CombUCB1 in the paper's experiments."""

    build: Callable[[], LSDProblem]
    horizon: int
    opt: float
    block: int


def _laforgue_main() -> LSDProblem:
    f = np.full((5, 10), 0.15)
    f[1] = 0.0
    f[1, 2] = 0.95  # 0.95 exactly at delay 3
    f[2] = 0.14
    f[2, 5] = 0.16  # delay 6
    f[2, 8:] = 0.96  # delay >= 9
    return recharging(f, init_state="played")


def _laforgue_supp() -> LSDProblem:
    f = np.zeros((2, 11))
    f[0] = 0.05
    f[1] = 0.95
    f[1, 0] = 0.06  # delay 1
    return recharging(f, init_state="played")


_TAU = np.arange(1, 11)


def _r1() -> LSDProblem:
    p, d = np.array([.9, .7, .5, .3]), np.array([4, 3, 2, 1])
    return recharging(p[:, None] * (_TAU[None] >= d[:, None]))


def _r2() -> LSDProblem:
    p, q = np.array([1, .8, .6, .4]), np.array([.2, .3, .5, .9])
    return recharging(p[:, None] * (1 - (1 - q[:, None]) ** _TAU[None]))


def _r3() -> LSDProblem:
    p, d = np.array([1, .9, .8, .7]), np.array([8, 6, 4, 2])
    return recharging(p[:, None] * np.minimum(1.0, _TAU[None] / d[:, None]))


def _l1() -> LSDProblem:
    return monotone_lsd(p=[1, .8, .6], q=[.3, .5, .9], s=[.5, .8, .95], cap=6)


PRESETS: dict[str, LSDPreset] = {
    "laforgue-main": LSDPreset(_laforgue_main, 3600, 1823.2, 3),
    "laforgue-supp": LSDPreset(_laforgue_supp, 3300, 1650.0, 10),
    "R1": LSDPreset(_r1, 2000, 0.6501 * 2000, 3),
    "R2": LSDPreset(_r2, 2000, 0.5497 * 2000, 3),
    "R3": LSDPreset(_r3, 2000, 0.7876 * 2000, 3),
    "L1": LSDPreset(_l1, 1000, 0.6566 * 1000, 3),
}
"""Preset name -> the spec's instances (Laforgue et al.'s two experiments, recharging R1-R3,
monotone LSD L1). ``opt`` is the spec's optimum (R1-R3, L1 rounded to 4 digits of OPT/T)."""


def preset(name: str) -> LSDProblem:
    """The named LSD problem (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise unknown_name("LSD preset", name, PRESETS)
    return PRESETS[name].build()


# --- gymnax env ----------------------------------------------------------------------------------


@struct.dataclass
class LSDState(environment.EnvState):
    z: jax.Array  # [K] arm states
    last_action: jax.Array  # [] int32, -1 before the first play
    last_reward: jax.Array  # []


@struct.dataclass
class LSDParams(environment.EnvParams):
    problem: LSDProblem = None
    max_steps_in_episode: int = 500


class LSDEnv(BanditEnv):
    """An LSD problem as a gymnax 1.0 env: action = arm (Discrete(K)), reward the noisy payoff.

    Observation [K + 1]: one-hot of the previous action and the previous reward (zeros at the
    start), so the arm states are hidden and a memory agent must infer them; with
    ``observe_state=True`` the states scaled to [-1, 1] (z / cap) are appended ([2K + 1]);
    with ``observe_action=False`` the one-hot is left out (registered as
    ``lsd/<preset>-no-action``): the agent must remember what it played.
    Every episode starts from ``problem.init_state`` and is truncated after
    ``max_steps_in_episode`` rounds.
    """

    def __init__(self, problem: LSDProblem | str = "laforgue-main",
                 max_steps_in_episode: int = 500, observe_state: bool = False,
                 observe_action: bool = True):
        super().__init__()
        self.problem = preset(problem) if isinstance(problem, str) else problem
        require(isinstance(self.problem, LSDProblem),
                f"LSDEnv: problem must be an LSDProblem or preset name, got {type(problem).__name__}")
        require(isinstance(max_steps_in_episode, int) and max_steps_in_episode > 0,
                f"LSDEnv: max_steps_in_episode must be a positive int, got {max_steps_in_episode!r}")
        self.max_steps = max_steps_in_episode
        self.observe_state = bool(observe_state)
        self.observe_action = bool(observe_action)

    @property
    def default_params(self) -> LSDParams:
        return LSDParams(problem=self.problem, max_steps_in_episode=self.max_steps)

    def _obs(self, state: LSDState, problem: LSDProblem) -> jax.Array:
        k = problem.num_arms
        parts = [jax.nn.one_hot(state.last_action, k)] if self.observe_action else []
        parts.append(state.last_reward[None])
        if self.observe_state:
            z = state.z.astype(jnp.float32)
            parts.append(jnp.where(z > 0, z / problem.idle_cap, z / problem.play_cap))
        return jnp.concatenate(parts).astype(jnp.float32)

    def reset_env(self, key, params):
        p = params.problem
        state = LSDState(time=jnp.int32(0), z=jnp.asarray(p.init_state, jnp.int32),
                         last_action=jnp.int32(-1), last_reward=jnp.float32(0.0))
        return self._obs(state, p), state

    def step_env(self, key, state, action, params):
        p = params.problem
        action = jnp.asarray(action, jnp.int32)
        reward = sample_reward(p, key, mean_payoff(p, state.z, action)).astype(jnp.float32)
        state = LSDState(time=state.time + 1, z=advance(p, state.z, action),
                         last_action=action, last_reward=reward)
        return self._obs(state, p), state, reward, jnp.array(False), {}

    @property
    def name(self) -> str:
        return "LSD"

    def observation_space(self, params=None) -> spaces.Box:
        k = self.problem.num_arms
        size = k * (self.observe_state + self.observe_action) + 1
        bound = 1.0 if self.problem.noise == "bernoulli" else jnp.inf  # Gaussian rewards: any value
        return spaces.Box(-bound, bound, (size,), jnp.float32)


def register_all() -> None:
    """Register ``lsd/<preset>`` and ``lsd/<preset>-no-action`` (the previous action left out
    of the observation) for every preset (idempotent)."""
    from hystax.envs.registry import is_registered, register
    for name in PRESETS:
        for suffix, action in (("", True), ("-no-action", False)):
            if not is_registered(f"lsd/{name}{suffix}"):
                register(f"lsd/{name}{suffix}",
                         lambda max_steps_in_episode=500, observe_state=False, _n=name,
                         _a=action: LSDEnv(_n, max_steps_in_episode, observe_state, _a))
