"""Fidelity tests of the POPGym card games against the numpy reference ``popgym``.

Each episode is aligned: the reference is reset with a seed, its shuffled deck(s) are copied
into the port's state (``reset_with_deck``), and both are stepped with the same random,
oracle and half-oracle action sequences; observations, rewards, terminated and truncated must
agree at every step. The oracle (it reads the deck) must reach the reference's best return.
"""

from __future__ import annotations

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

popgym = pytest.importorskip("popgym")
gym = pytest.importorskip("gymnasium")

from hystax.envs import check_env, make  # hystax first: conftest imports it
from hystax.envs.popgym import LEVELS, env_class
from hystax.envs.popgym import cards as C

from hystax.core.errors import HystaxError

NAMES = {"Autoencode": "autoencode", "Concentration": "concentration",
         "CountRecall": "count_recall", "HigherLower": "higher_lower",
         "RepeatFirst": "repeat_first", "RepeatPrevious": "repeat_previous"}
CASES = [(name, level) for name in NAMES for level in LEVELS]
IDS = [f"{name}{level.capitalize()}" for name, level in CASES]
SEEDS = (3, 11)


def reference(name: str, level: str):
    module = importlib.import_module(f"popgym.envs.{NAMES[name]}")
    return getattr(module, f"{name}{level.capitalize()}")()


@functools.cache
def port(name: str, level: str):
    """(env, params, rollout) -- one instance per case so jit caches are reused.

    ``rollout(decks, actions, keys)`` is jitted and vmapped over a batch of episodes: it
    resets with the given deck(s) and steps through ``actions``, returning the reset obs and
    per step the pre-reset obs (``final_observation``), reward, terminated, truncated.
    """
    env = env_class(name)(level)
    params = env.default_params

    def rollout(decks, actions, key):
        obs0, state = env.reset_with_deck(*decks)

        def body(state, xs):
            action, step_key = xs
            _, state, reward, term, trunc, info = env.step(step_key, state, action, params)
            return state, (info["final_observation"], reward, term, trunc)
        keys = jax.random.split(key, actions.shape[0])
        return obs0, jax.lax.scan(body, state, (actions, keys))[1]

    return env, params, jax.jit(jax.vmap(rollout))


# --- card encodings ------------------------------------------------------------------------


def test_card_encodings_match_popgym_deck():
    from popgym.core.deck import Deck
    deck = Deck(num_decks=3)
    ids = jnp.arange(deck.num_cards)
    np.testing.assert_array_equal(C.rank(ids), deck.ranks_idx)
    np.testing.assert_array_equal(C.suit(ids), deck.suits_idx)
    np.testing.assert_array_equal(C.colour(ids), deck.colors_idx)
    # popgym deals one card at a time from the end of Deck.idx
    deck.reset(rng=np.random.default_rng(0))
    deck.add_players("p")
    for _ in range(5):
        deck.deal("p", 1)
    np.testing.assert_array_equal([C.dealt(jnp.asarray(deck.idx), i) for i in range(5)],
                                  deck["p"])
    shuffled = np.asarray(C.shuffled_deck(jax.random.PRNGKey(0), 2))
    np.testing.assert_array_equal(np.sort(shuffled), np.arange(104))
    assert not np.array_equal(shuffled, np.arange(104))


# --- API, registry, spaces -----------------------------------------------------------------


# check_env costs ~3 s of compiling per env: the default run checks each game at one level
# (rotating, so every level is covered by some game); ``-m slow`` checks all 18.
CHECK_LEVEL = {name: LEVELS[i % 3] for i, name in enumerate(NAMES)}
CHECK_CASES = [pytest.param(name, level, id=f"{name}{level.capitalize()}",
                            marks=() if CHECK_LEVEL[name] == level else pytest.mark.slow)
               for name, level in CASES]


@pytest.mark.parametrize(("name", "level"), CHECK_CASES)
def test_check_env(name, level):
    env, params, _ = port(name, level)
    check_env(env, params, num_steps=16)


@pytest.mark.parametrize(("name", "level"), CASES, ids=IDS)
def test_api_and_spaces(name, level):
    env, params, _ = port(name, level)
    made, made_params = make(f"popgym/{name}{level.capitalize()}")
    assert type(made).__name__ == name and made.name == env.name
    assert env.name == f"popgym/{name}{level.capitalize()}"
    assert made_params == params

    ref = reference(name, level)
    flat = gym.spaces.flatten_space(ref.observation_space)
    space = env.observation_space(params)
    assert tuple(space.shape) == flat.shape
    np.testing.assert_array_equal(np.broadcast_to(space.low, space.shape), flat.low)
    np.testing.assert_array_equal(np.broadcast_to(space.high, space.shape), flat.high)
    assert isinstance(ref.action_space, gym.spaces.Discrete)
    assert env.action_space(params).n == env.num_actions == ref.action_space.n


def test_bad_level_and_time_limit():
    with pytest.raises(HystaxError, match="unknown level"):
        env_class("RepeatFirst")("impossible")
    env, params, _ = port("RepeatPrevious", "easy")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    # the game's own end is a termination, not a truncation (as in popgym) ...
    assert not env.is_truncated(state.replace(time=env.episode_length), params)
    # ... but a shorter user time limit truncates
    assert env.is_truncated(state.replace(time=5), params.replace(max_steps_in_episode=5))


# --- step-for-step alignment with the reference --------------------------------------------


def reference_decks(name, ref):
    """The reference's freshly shuffled deck(s), in popgym's ``Deck.idx`` order."""
    if name == "CountRecall":
        return ref.value_deck.idx.copy(), ref.query_deck.idx.copy()
    return (ref.deck.idx.copy(),)


def oracle_actions(name, env, decks) -> np.ndarray:
    """Best actions for one episode, read off the deck(s) (numpy, popgym's encodings)."""
    deck = decks[0]
    order = deck[::-1]  # order of dealing
    suits, ranks = order % 4, (order % 52) // 4
    n = len(deck)
    if name == "Autoencode":  # watch n-1 steps, then recite deck[0], deck[1], ...
        return np.concatenate([np.zeros(n - 1, int), deck % 4])
    if name == "Concentration":  # flip the positions of each type pairwise
        types = np.asarray(env.card_type(deck))
        return np.concatenate([np.flatnonzero(types == t) for t in range(env.num_types)])
    if name == "CountRecall":
        values = np.asarray(env.card_type(decks[0][::-1]))
        queries = np.asarray(env.card_type(decks[1][::-1]))
        return np.array([np.sum(values[:s] == queries[s - 1]) for s in range(1, n)])
    if name == "HigherLower":
        return np.where(ranks[1:] > ranks[:-1], 0, 1)
    if name == "RepeatFirst":
        return np.full(n - 1, suits[0])
    if name == "RepeatPrevious":
        return np.array([suits[s - env.k] if s >= env.k else 0 for s in range(1, n)])
    raise AssertionError(name)


def run_reference(ref, seed, actions):
    """Reset ``ref`` with ``seed`` and step it with ``actions`` until the episode ends."""
    obs, _ = ref.reset(seed=seed)
    flat = [gym.spaces.flatten(ref.observation_space, obs)]
    rewards, terms, truncs = [], [], []
    for action in actions:
        obs, reward, term, trunc, _ = ref.step(int(action))
        flat.append(gym.spaces.flatten(ref.observation_space, obs))
        rewards.append(reward)
        terms.append(term)
        truncs.append(trunc)
        if term or trunc:
            break
    return np.array(flat), np.array(rewards, float), np.array(terms), np.array(truncs)


@pytest.mark.parametrize(("name", "level"), CASES, ids=IDS)
def test_step_for_step_against_reference(name, level):
    env, _, rollout = port(name, level)
    ref = reference(name, level)
    length = env.episode_length
    fixed_length = name != "Concentration"
    episodes = []  # (seed, kind, decks, actions)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        ref.reset(seed=seed)
        decks = reference_decks(name, ref)
        oracle = oracle_actions(name, env, decks)
        assert oracle.max() < env.num_actions  # every correct answer is expressible
        oracle = np.pad(oracle, (0, 2 * length - len(oracle)))
        random = rng.integers(0, env.num_actions, 2 * length)
        mixed = np.where(rng.random(2 * length) < 0.5, oracle, random)
        episodes += [(seed, kind, decks, actions) for kind, actions in
                     (("random", random), ("oracle", oracle), ("mixed", mixed))]
    # two episodes' worth of steps each: the first is compared, the next ones auto-reset
    batch_decks = tuple(np.stack(d) for d in zip(*(e[2] for e in episodes)))
    batch_actions = np.stack([e[3] for e in episodes]).astype(np.int32)
    keys = jax.random.split(jax.random.PRNGKey(0), len(episodes))
    obs0, (obs, reward, term, trunc) = jax.tree.map(
        np.asarray, rollout(batch_decks, batch_actions, keys))

    for i, (seed, kind, decks, actions) in enumerate(episodes):
        where = f"{name}{level.capitalize()} seed {seed}, {kind} actions"
        r_obs, r_reward, r_term, r_trunc = run_reference(ref, seed, actions)
        steps = len(r_reward)
        assert r_term[-1] or r_trunc[-1], where
        if fixed_length:
            assert steps == length and r_term[-1] and not r_trunc.any(), where
        np.testing.assert_array_equal(obs0[i], r_obs[0], err_msg=where)
        np.testing.assert_array_equal(obs[i, :steps], r_obs[1:], err_msg=where)
        np.testing.assert_allclose(reward[i, :steps], r_reward, rtol=1e-5, atol=1e-7,
                                   err_msg=where)
        np.testing.assert_array_equal(term[i, :steps], r_term, err_msg=where)
        np.testing.assert_array_equal(trunc[i, :steps], r_trunc, err_msg=where)
        if kind == "oracle":
            best = 1.0
            if name == "HigherLower":  # ties score 0: best = share of rank changes
                ranks = (decks[0][::-1] % 52) // 4
                best = np.sum(np.diff(ranks) != 0) / len(ranks)
            np.testing.assert_allclose(r_reward.sum(), best, rtol=1e-6, err_msg=where)
            np.testing.assert_allclose(reward[i, :steps].sum(), best, rtol=1e-5, err_msg=where)
            if name == "Concentration":
                assert steps == env.num_cards, where
        # the auto-reset episode(s) after the aligned one keep the game's structure
        done = np.flatnonzero(term[i] | trunc[i])
        if fixed_length:
            np.testing.assert_array_equal(done + 1, [length, 2 * length], err_msg=where)
        else:
            assert np.diff(np.concatenate([[-1], done])).max() <= length, where
        starts = np.concatenate([[0], done[:-1] + 1])
        returns = np.add.reduceat(reward[i, :done[-1] + 1], starts)  # completed episodes
        assert np.all(np.abs(returns) <= 1 + 1e-5), where
