"""ISI-CombUCB1 and CombUCB1 (Laforgue et al., AISTATS 2022), generalised to signed LSD states.

Both learners play the horizon in blocks of D rounds. Before every block they pick the length-D
arm sequence whose *block value* under optimistic estimates is largest, play it, and learn from
its pulls. The estimates live on **base arms** (arm i, state z): tables ``counts`` / ``sums``
``[K, S]`` (S = play_cap + idle_cap) indexed by :func:`hystax.envs.lsd.state_index`. The UCB
index of a base arm is ``mean + sqrt(1.5 ln t / n)`` with t the global 1-based round number
(the number of the block's first round); a base arm never learnt from gets
``D sqrt(1.5 ln(K D))``, the value of the authors' code.

Block value of a sequence: its pulls are walked through the block, tracking for every arm its
in-block state and whether that state is *known*. A pull whose state is known is **valued**: it
contributes U[i, state] to the block value, and its reward is later learnt into that base arm.
Any other pull contributes 0 and is not learnt from (it still earns its real reward).

- **ISI-CombUCB1** ("initial-state independent", block D = d + 1): every arm starts the block in
  an unknown state; a state becomes known only through the block's own switches. At position p,
  for arm i:

  * played: valued iff known; afterwards known iff it was known, or play_cap == 1 (a play always
    leads to -1), or p > 0 and i was not played at p - 1 (a switch-in inside the block). The new
    state is advance-on-play of the known state (-1 after a switch-in);
  * not played: afterwards known iff it was known, or p > 0 and i was played at p - 1 (a
    switch-out inside the block). The new state is advance-on-idle of the known state (+1 after a
    switch-out).

  Caps are the problem's (``info.idle_cap``, ``info.play_cap``). On recharging problems
  (play_cap = 1) this is the paper's rule: an arm's first pull in the block is worth 0 and not
  learnt; its later pulls are keyed by the in-block delay tau (state tau - 1, or -1 for tau = 1).
- **CombUCB1** (block D = d): every arm starts the block known, at its real state (the policy
  tracks the real states from ``info.init_state`` with :func:`hystax.envs.lsd.advance`, since they
  move with the arms played only). Every pull is valued and learnt, at its real state clipped to
  the block: idle side min(b, D - 1), play side max(z, -(D - 1)) (with D - 1 read as 1 when
  D = 1, and within the problem's caps). So all long delays share one base arm: misspecified on
  purpose, as in the paper's code ("delays >= D share one base arm").

Differences from the paper and its code, on purpose:

- the paper solves an LP relaxation over the block and rounds it greedily (re-solving the LP for
  every candidate prefix); we **enumerate all K^D sequences exactly** (precomputed with numpy once
  K is known in ``init``; at most 2**17 of them) and take the argmax (first in lexicographic order
  on ties), so the oracle is exact;
- the code refreshes U only for each arm's current state after each pull; we recompute the whole
  U table at each block start from the counts, with the t of the block's first round;
- the plan for a block is made in ``update`` at the last round of the previous block (``init``
  makes the first one), because ``act`` cannot change the state. The predicate ``(t + 1) % D == 0``
  does not depend on the seed, so ``jax.lax.cond`` stays a real branch under ``vmap``.

>>> out = run_seeds(isi_comb_ucb1(block=4), preset("laforgue-main"), seeds=4, horizon=3600)
>>> out.reward[:, -1]                 # total expected reward per seed

Shapes: K arms, S = play_cap + idle_cap states per arm, D block length, N = K^D sequences.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.policy import Policy
from hystax.core.errors import require
from hystax.envs.lsd import advance, state_index

__all__ = [
    "MAX_SEQUENCES",
    "CombUCBState",
    "block_base_arms",
    "block_values",
    "comb_ucb1",
    "isi_comb_ucb1",
    "sequences",
    "ucb_table",
    "unseen_value",
]

MAX_SEQUENCES = 2 ** 17
"""The largest number of block sequences K^D the exact oracle enumerates."""


@struct.dataclass
class CombUCBState:
    """State of (ISI-)CombUCB1.

    counts [K, S], sums [K, S] (reward sums) per base arm (arm, state_index(z));
    z [K] int32 the real arm states (tracked by both; only CombUCB1 plans with them);
    seq [D] int32 the current block's arms; base [D] int32 the flat base arm i * S + s each pull
    of the block is learnt into, or -1 when the pull is not valued. Static: the problem's caps
    (so ``advance(state, z, arm)`` works).
    """

    counts: jax.Array
    sums: jax.Array
    z: jax.Array
    seq: jax.Array
    base: jax.Array
    idle_cap: int = struct.field(pytree_node=False, default=1)
    play_cap: int = struct.field(pytree_node=False, default=1)


def sequences(num_arms: int, block: int, who: str = "CombUCB1") -> np.ndarray:
    """All K^D arm sequences of a block, in lexicographic order: [K^D, D] int32 (numpy).

    Raises HystaxError (its message starts with ``who``) when block is not an int >= 1 or
    K^D > :data:`MAX_SEQUENCES`."""
    require(isinstance(block, (int, np.integer)) and not isinstance(block, bool) and block >= 1,
            f"{who}: block must be an int >= 1, got {block!r}")
    require(num_arms >= 1, f"{who}: need at least one arm, got {num_arms}")
    count = num_arms ** block
    require(count <= MAX_SEQUENCES,
            f"{who}: the exact block oracle would enumerate K^D = {num_arms}^{block} = "
            f"{count:,} sequences, above the limit {MAX_SEQUENCES:,} (2**17); use a shorter block")
    radix = num_arms ** np.arange(block - 1, -1, -1, dtype=np.int64)
    return ((np.arange(count, dtype=np.int64)[:, None] // radix[None]) % num_arms).astype(np.int32)


def unseen_value(num_arms: int, block: int) -> float:
    """UCB index of a base arm never learnt from: D sqrt(1.5 ln(K D)) (the authors' code)."""
    return block * math.sqrt(1.5 * math.log(num_arms * block))


def ucb_table(counts: jax.Array, sums: jax.Array, t: jax.Array, init: float) -> jax.Array:
    """U [K, S] = sums / n + sqrt(1.5 ln t / n) where n > 0, else ``init``; t is 1-based."""
    n = jnp.maximum(counts, 1)
    log_t = jnp.log(jnp.maximum(t, 1).astype(sums.dtype))
    return jnp.where(counts > 0, sums / n + jnp.sqrt(1.5 * log_t / n), init)


def block_base_arms(seqs: jax.Array, z_start: jax.Array, known: bool, idle_cap: int,
                    play_cap: int, clip: int | None = None) -> jax.Array:
    """The base arm of every pull of every sequence (see the module doc), vectorised.

    Args:
      seqs: [N, D] int arm sequences.
      z_start: [K] int arm states at the block start (ignored when ``known`` is False).
      known: True (CombUCB1: every arm starts at its known state ``z_start``) or False (ISI:
        every arm starts unknown).
      idle_cap, play_cap: the problem's caps (in-block states move as ``advance``).
      clip: clip a valued state to [-clip, clip] before the lookup (CombUCB1: max(D - 1, 1)).
    Returns:
      [N, D] int32: flat base arm ``i * S + state_index(z, play_cap)`` (S = play_cap + idle_cap)
      of the pull at each position, or -1 where the pull's state is unknown (not valued).
    """
    seqs = jnp.asarray(seqs, jnp.int32)
    n, d = seqs.shape
    # per pull position p: the state of the arm played at p, walked forward position by position
    z = jnp.asarray(z_start, jnp.int32)[seqs] if known else jnp.ones((n, d), jnp.int32)
    is_known = jnp.full((n, d), bool(known))
    at_z, at_known = [], []
    prev = jnp.zeros((n, d), bool)  # arm of pull p played at position q - 1
    for q in range(d):
        at_z.append(z[:, q])
        at_known.append(is_known[:, q])
        played = seqs[:, q:q + 1] == seqs  # [N, D]: arm of pull p played at position q
        on = jnp.where(z > 0, -1, jnp.maximum(z - 1, -play_cap))
        off = jnp.where(z < 0, 1, jnp.minimum(z + 1, idle_cap))
        switch = (q > 0) & (played != prev)  # a switch in or out inside the block
        known_on = is_known | (play_cap == 1) | switch
        z = jnp.where(played, jnp.where(is_known, on, -1), jnp.where(is_known, off, 1))
        is_known = jnp.where(played, known_on, is_known | switch)
        prev = played
    z = jnp.stack(at_z, axis=1)
    valued = jnp.stack(at_known, axis=1)
    if clip is not None:
        z = jnp.where(z > 0, jnp.minimum(z, min(clip, idle_cap)),
                      jnp.maximum(z, -min(clip, play_cap)))
    flat = seqs * (play_cap + idle_cap) + state_index(z, play_cap)
    return jnp.where(valued, flat, -1).astype(jnp.int32)


def block_values(ucb: jax.Array, base: jax.Array) -> jax.Array:
    """Block value of every sequence: sum of U over its valued pulls. ucb [K, S], base [N, D]
    (from :func:`block_base_arms`) -> [N]."""
    flat = ucb.reshape(-1)
    return jnp.sum(jnp.where(base >= 0, flat[jnp.maximum(base, 0)], 0.0), axis=1)


def _make(block: int, isi: bool, who: str) -> Policy:
    sequences(1, block, who)  # validates block now (K is only known in init)
    clip = None if isi else max(block - 1, 1)

    def plan(state: CombUCBState, t_start) -> tuple[jax.Array, jax.Array]:
        """Best sequence for the block starting at 0-based round t_start: seq [D], base [D]."""
        k = state.counts.shape[0]
        seqs = jnp.asarray(sequences(k, block))  # [N, D], a constant (K is static)
        ucb = ucb_table(state.counts, state.sums, t_start + 1, unseen_value(k, block))
        base = block_base_arms(seqs, state.z, not isi, state.idle_cap, state.play_cap, clip)
        best = jnp.argmax(block_values(ucb, base))
        return seqs[best], base[best]

    def init(key, info) -> CombUCBState:
        k, s = info.num_arms, info.play_cap + info.idle_cap
        sequences(k, block, who)  # HystaxError when K^D is too large
        dtype = jnp.result_type(float)
        state = CombUCBState(counts=jnp.zeros((k, s), dtype), sums=jnp.zeros((k, s), dtype),
                             z=jnp.asarray(info.init_state, jnp.int32),
                             seq=jnp.zeros((block,), jnp.int32),
                             base=jnp.full((block,), -1, jnp.int32),
                             idle_cap=info.idle_cap, play_cap=info.play_cap)
        seq, base = plan(state, 0)
        return state.replace(seq=seq, base=base)

    def act(state: CombUCBState, key, t) -> jax.Array:
        return state.seq[t % block].astype(jnp.int32)

    def update(state: CombUCBState, arm, reward, t) -> CombUCBState:
        s = state.counts.shape[1]
        b = state.base[t % block]
        hit = b >= 0
        row, col = jnp.maximum(b, 0) // s, jnp.maximum(b, 0) % s
        counts = state.counts.at[row, col].add(jnp.where(hit, 1, 0).astype(state.counts.dtype))
        sums = state.sums.at[row, col].add(
            jnp.where(hit, reward, 0.0).astype(state.sums.dtype))
        state = state.replace(counts=counts, sums=sums, z=advance(state, state.z, arm))
        # t + 1 starts a new block: plan it now (the predicate does not depend on the seed)
        seq, base = jax.lax.cond((t + 1) % block == 0, lambda: plan(state, t + 1),
                                 lambda: (state.seq, state.base))
        return state.replace(seq=seq, base=base)

    return Policy(init=init, act=act, update=update, name=f"{who} (D={block})")


def isi_comb_ucb1(block: int) -> Policy:
    """ISI-CombUCB1 with blocks of D = ``block`` rounds (the paper: D = d + 1, i.e. 4 on
    laforgue-main and 11 on laforgue-supp). See the module doc."""
    return _make(block, True, "ISI-CombUCB1")


def comb_ucb1(block: int) -> Policy:
    """CombUCB1 with blocks of D = ``block`` rounds (the paper: D = d, i.e. 3 on laforgue-main
    and 10 on laforgue-supp). See the module doc."""
    return _make(block, False, "CombUCB1")
