"""The one bandit runner: any :class:`~hystax.envs.bandit_rounds.BanditProblem`, any
:class:`~hystax.agents.bandits.policy.Policy`, one jitted scan over rounds, vmapped over seeds.

>>> out = play_seeds(policy, problem, info, seeds=8, horizon=20_000)
>>> out.reward[:, -1]                 # cumulative expected reward per seed

The rounds are a scan over record blocks, of noise chunks, of rounds (device memory flat in
T); after each block the cumulative expected, realised and steady rewards are recorded. DLB and LSD wrap it (:func:`hystax.agents.bandits.run_seeds`,
:func:`hystax.agents.bandits.lsd.run_seeds`) with their own results.

Common random numbers: noise is drawn for chunks of c rounds (c: the largest divisor of
``every`` up to :data:`MAX_CHUNK`, so memory stays flat in T); chunk j's noise is
``problem.draw_noise(fold_in(fold_in(key, 0), j), c)``, one random call, so for the same seed
(and ``every``) every policy meets the same noise. The policy's key for round t is
``split(fold_in(fold_in(key, 1), j), c)[t - j c]``; ``init`` gets ``fold_in(key, 2)``.
Everything runs in float64 (``jax.enable_x64``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.bandits.policy import Policy, record_interval, seed_list
from hystax.core import sharding
from hystax.core.errors import require
from hystax.envs.bandit_rounds import BanditProblem

__all__ = ["MAX_CHUNK", "Played", "busy_rounds", "chunk_keys", "chunk_noise", "collect",
           "compiled_play", "noise_chunk", "noise_of_rounds", "play", "play_instances",
           "play_rounds", "play_seeds", "policy_key"]


class Played(NamedTuple):
    """What a run records (numpy float64; the leading [S] axis from :func:`play_seeds`).

    rounds [B] (rounds played at each record); reward, realised, steady [S, B]: cumulative
    expected, realised and steady-state reward; regret, pseudo_regret [S, B]: cumulative
    optimal_rate - expected and optimal_rate - steady reward, summed round by round (so a
    policy that plays optimally has exactly 0), None when the problem has no optimal rate;
    arm_counts [S, A]; final_state (the problem's); policy_state (final).
    """

    rounds: np.ndarray
    reward: np.ndarray
    realised: np.ndarray
    steady: np.ndarray
    regret: np.ndarray | None
    pseudo_regret: np.ndarray | None
    arm_counts: np.ndarray
    final_state: Any
    policy_state: Any


MAX_CHUNK = 1024
"""Noise and policy keys are drawn for chunks of at most this many rounds (memory flat in T)."""


def noise_chunk(every: int) -> int:
    """Rounds per noise chunk in a run recording every ``every`` rounds: the largest divisor
    of ``every`` that is at most :data:`MAX_CHUNK`."""
    return next(c for c in range(min(every, MAX_CHUNK), 0, -1) if every % c == 0)


def chunk_noise(problem: BanditProblem, key: jax.Array, chunk: int, size: int):
    """Chunk ``chunk``'s noise (rounds chunk * size ..., leading axis [size]) for run key
    ``key``, as the runner draws it: one random call."""
    return problem.draw_noise(jax.random.fold_in(jax.random.fold_in(key, 0), chunk), size)


def chunk_keys(key: jax.Array, chunk: int, size: int) -> jax.Array:
    """The policy's keys [size] for the rounds of chunk ``chunk``."""
    return jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 1), chunk), size)


def noise_of_rounds(problem: BanditProblem, key: jax.Array, rounds: int, every: int):
    """The noise of rounds 0 .. rounds - 1 (leading axis [rounds]) in a run recording every
    ``every`` rounds: what every policy meets (for replays in reference loops)."""
    size = noise_chunk(every)
    chunks = [chunk_noise(problem, key, c, size) for c in range(-(-rounds // size))]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[:rounds], *chunks)


def policy_key(key: jax.Array, t: int, every: int) -> jax.Array:
    """The policy's key in round ``t`` of a run recording every ``every`` rounds."""
    size = noise_chunk(every)
    return chunk_keys(key, int(t) // size, size)[int(t) % size]


def play_rounds(policy: Policy, problem: BanditProblem, info: Any, key: jax.Array, busy,
                blocks: int, every: int):
    """One seed, ``blocks * every`` rounds; returns the records [R, blocks] (cumulative expected,
    realised, steady reward, then optimal_rate minus expected and minus steady where the
    problem has an optimal rate), arm counts, the final problem state and policy state.

    busy: the policy's schedule, bool [blocks * every] (None: it acts and learns every round).
    """
    table = problem.with_extra_arms(policy.extra_arms) if policy.extra_arms else problem
    rate = table.optimal_rate

    def learning(state, pstate, t, noise, k):
        arm = policy.act(pstate, k, t)
        mean, y, steady, state = table.play(state, arm, noise)
        return arm, (mean, y, steady), state, policy.update(pstate, arm, y, t)

    def holding(state, pstate, t, noise, k):
        mean, y, steady, state = table.play(state, pstate.arm, noise)
        return pstate.arm, (mean, y, steady), state, pstate

    def round_(carry, inputs):
        state, pstate, sums, counts = carry
        t, noise, k, now = inputs
        if busy is None:
            arm, (mean, y, steady), state, pstate = learning(state, pstate, t, noise, k)
        else:  # `now` is the same for every seed: one real branch per round under vmap
            arm, (mean, y, steady), state, pstate = jax.lax.cond(
                now, learning, holding, state, pstate, t, noise, k)
        step = [mean, y, steady] + ([] if rate is None else [rate - mean, rate - steady])
        chosen = jnp.arange(counts.shape[0]) == arm
        return (state, pstate, sums + jnp.stack(step), counts + chosen), None

    size = noise_chunk(every)

    def chunk(carry, c):  # c: the chunk's index in the run
        now = (jnp.zeros((size,), bool) if busy is None
               else jax.lax.dynamic_slice(busy, (c * size,), (size,)))
        inputs = (c * size + jnp.arange(size), chunk_noise(table, key, c, size),
                  chunk_keys(key, c, size), now)
        return jax.lax.scan(round_, carry, inputs)[0], None

    def block(carry, b):
        per_block = every // size
        carry, _ = jax.lax.scan(chunk, carry, b * per_block + jnp.arange(per_block))
        return carry, carry[2]

    carry = (table.initial_state(), policy.init(jax.random.fold_in(key, 2), info),
             jnp.zeros((3 if rate is None else 5,), jnp.result_type(float)),
             jnp.zeros((table.num_arms,), jnp.int32))
    (state, pstate, _, counts), sums = jax.lax.scan(block, carry, jnp.arange(blocks))
    return sums.T, counts, state, pstate


@functools.lru_cache(maxsize=128)
def compiled_play(policy: Policy, blocks: int, every: int, batched: bool | str):
    """``jit(play_rounds(policy, problem, info, key, busy))``, vmapped over keys when
    ``batched`` is True, over (problem, info, key) when it is ``"instances"``; cached per
    (policy, blocks, every, batched)."""
    fn = functools.partial(play_rounds, policy, blocks=blocks, every=every)
    if batched:
        fn = jax.vmap(fn, in_axes=(0, 0, 0, None) if batched == "instances" else (None, None, 0, None))
    return jax.jit(fn)


def busy_rounds(policy: Policy, info: Any, horizon: int) -> np.ndarray | None:
    """The policy's schedule (bool [horizon]) for ``info``, or None when it has none."""
    if policy.schedule is None:
        return None
    busy = np.asarray(policy.schedule(info, horizon), bool)
    require(busy.shape == (horizon,), f"policy {policy.name!r}: schedule must be bool "
            f"[{horizon}], got shape {busy.shape}")
    return busy


def _checked(policy, problem, horizon, record_every) -> int:
    require(isinstance(policy, Policy), f"policy must be a Policy, got {type(policy).__name__}")
    require(isinstance(problem, BanditProblem),
            f"problem must be a bandit problem (hystax.envs.bandit_rounds), got "
            f"{type(problem).__name__}")
    return record_interval(horizon, record_every)


def collect(out, every: int) -> Played:
    """A compiled play's raw output (:func:`compiled_play`) as numpy :class:`Played`."""
    sums, counts, state, pstate = jax.device_get(out)
    sums = np.asarray(sums)
    rounds = every * np.arange(1, sums.shape[-1] + 1)
    regrets = (None, None) if sums.shape[-2] == 3 else (sums[..., 3, :], sums[..., 4, :])
    return Played(rounds, sums[..., 0, :], sums[..., 1, :], sums[..., 2, :], *regrets,
                  np.asarray(counts), state, pstate)


def play(policy: Policy, problem: BanditProblem, info: Any, key: jax.Array, horizon: int,
         record_every: int | None = None) -> Played:
    """Play ``policy`` on ``problem`` for ``horizon`` rounds (one jitted scan, float64).

    info: what the learner may know (e.g. :func:`hystax.agents.bandits.make_info`);
    record_every: a divisor of horizon (default: the smallest giving at most 1000 records).
    """
    every = _checked(policy, problem, horizon, record_every)
    busy = busy_rounds(policy, info, horizon)
    with jax.enable_x64(True):
        out = compiled_play(policy, horizon // every, every, False)(problem, info,
                                                                    jnp.asarray(key), busy)
        return collect(out, every)


def play_seeds(policy: Policy, problem: BanditProblem, info: Any, seeds, horizon: int,
               record_every: int | None = None) -> Played:
    """:func:`play` vmapped over seeds (a count S or a list of ints; seed s uses
    ``PRNGKey(s)``), the seed axis sharded over the devices that divide S."""
    seeds = seed_list(seeds)
    every = _checked(policy, problem, horizon, record_every)
    busy = busy_rounds(policy, info, horizon)
    with jax.enable_x64(True):
        keys = sharding.seed_keys(seeds, sharding.seed_mesh(len(seeds)))
        return collect(compiled_play(policy, horizon // every, every, True)(problem, info, keys,
                                                                           busy), every)


def play_instances(policy: Policy, problems, infos, seeds, horizon: int,
                   record_every: int | None = None) -> Played:
    """:func:`play` vmapped over instances: problem ``i`` (of the list ``problems``, all of
    one shape) with ``infos[i]`` and seed ``seeds[i]`` (``PRNGKey(seed)``), one compiled run.
    Every policy given the same seeds meets the same noise on each problem. The policy's
    schedule must be the same for every instance (HystaxError otherwise)."""
    seeds = seed_list(seeds)
    require(len(problems) == len(infos) == len(seeds) > 0,
            f"play_instances: need as many problems, infos and seeds (>= 1), got "
            f"{len(problems)}, {len(infos)}, {len(seeds)}")
    every = _checked(policy, problems[0], horizon, record_every)
    busy = busy_rounds(policy, infos[0], horizon)
    require(all(np.array_equal(busy, busy_rounds(policy, info, horizon)) for info in infos[1:]),
            f"policy {policy.name!r}: its schedule differs between the instances; play them "
            "one by one (play_seeds)")
    stack = lambda trees: jax.tree.map(lambda *xs: np.stack(xs), *trees)
    with jax.enable_x64(True):
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        return collect(compiled_play(policy, horizon // every, every, "instances")(
            stack(problems), stack(infos), keys, busy), every)
