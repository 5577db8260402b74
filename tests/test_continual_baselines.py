"""Continual baselines on two synthetic linear-dynamics tasks (same inputs, different A_t):
every method learns a task; fine-tuning forgets task 0; replay, the joint bound and EWC keep it,
SI and the multi-head network keep part of it (measured, with margins); EWC's Fisher and SI's
importance behave as defined; state shapes never change; bad input is a HystaxError."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.world_models.continual_api import fit, one_step_mse
from hystax.world_models.continual_methods import METHODS
from hystax.world_models.regularisers import make_ewc, make_si
from hystax.world_models.replay import make_coreset, make_multitask
from hystax.world_models.dynamics import Transitions

from hystax.core.errors import HystaxError

NAMES = ("finetune", "multihead", "coreset", "multitask", "ewc", "si")
DT = 0.1
A = (2.0 * np.array([[0.0, 1.0], [-1.0, 0.0]]), 2.0 * np.array([[-1.0, 0.0], [0.0, 1.0]]))
B = np.array([[0.0], [1.0]])
STEPS, BATCH = 500, 64


def task_data(task: int, n: int, seed: int) -> Transitions:
    """next = obs + dt · A_t obs + dt · B action, obs ~ U[-1, 1]², action ~ U[-1, 1]."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 2))
    action = rng.uniform(-1, 1, (n, 1))
    next_obs = obs + DT * obs @ A[task].T + DT * action @ B.T
    return Transitions(*(jnp.asarray(x, jnp.float32) for x in (obs, action, next_obs)))


TRAIN = [task_data(t, 1000, t) for t in range(2)]
TEST = [task_data(t, 500, 10 + t) for t in range(2)]


def mean_predictor_mse(data: Transitions) -> float:
    """The error of predicting next = obs + mean Δ: what 'learned' is measured against."""
    delta = data.next_obs - data.obs
    return float(jnp.mean((delta - delta.mean(axis=0)) ** 2))


def shapes(state):
    return jax.tree.map(lambda x: (x.shape, x.dtype), state)


def options(name):
    return {"max_points": 1000} if name == "multitask" else {}


@pytest.fixture(scope="module")
def runs():
    """Each method through task 0 then task 1: errors on both tasks' test data after each task,
    and the states at init, after training task 0 (before end_task), after end_task 0 and 1."""
    out = {}
    for name in NAMES:
        method = METHODS[name](2, 1, 2, **options(name))
        state = method.init(jax.random.key(0))
        states, errors = {"init": state}, []
        for t in range(2):
            state = method.begin_task(state, t, TRAIN[t])
            state, metrics = fit(method, state, TRAIN[t], t, STEPS, BATCH, jax.random.key(t + 1))
            assert np.all(np.isfinite(metrics["loss"]))
            states[f"trained{t}"] = state
            state = method.end_task(state, t, TRAIN[t])
            states[f"end{t}"] = state
            errors.append([one_step_mse(method, state, TEST[j], j) for j in range(2)])
        out[name] = {"method": method, "states": states, "own0": errors[0][0],
                     "after0": errors[1][0], "own1": errors[1][1]}
    return out


def test_all_baselines_are_registered():
    assert set(NAMES) <= set(METHODS)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_learns_both_tasks(runs, name):
    r = runs[name]
    assert r["own0"] < 0.01 * mean_predictor_mse(TEST[0])  # measured ~1e-5 vs 0.015
    assert r["own1"] < 0.1 * mean_predictor_mse(TEST[1])  # measured <= 3e-4 (EWC) vs 0.015


def test_finetuning_forgets_task_0(runs):
    r = runs["finetune"]
    assert r["after0"] > 100 * r["own0"]  # measured x1200-x2800 over seeds


@pytest.mark.parametrize("name", ["coreset", "multitask", "ewc"])
def test_replay_joint_and_ewc_keep_task_0(runs, name):
    r = runs[name]
    assert r["after0"] < 2 * r["own0"]  # measured x0.4-x1.0
    assert r["after0"] < runs["finetune"]["after0"] / 100


def test_si_and_multihead_keep_task_0_in_part(runs):
    own, ft = runs["multihead"]["own0"], runs["finetune"]["after0"]
    mh, si = runs["multihead"]["after0"], runs["si"]["after0"]
    # old heads are frozen but the shared trunk drifts: measured x74-x108 its own error, yet
    # 17-36x below fine-tuning; SI's importance-weighted pull on the trunk halves that again
    # (measured 2.6-3.2x below multihead, x23-x34 its own error)
    assert 5 * own < mh < ft / 5
    assert si < mh / 1.5
    assert si > 2 * runs["si"]["own0"]


def test_ewc_pays_with_plasticity(runs):
    # λ = 1e4 with the model Fisher nearly freezes the trunk: task 1 is learned by its head on
    # task 0's features, measured ~30x worse than fine-tuning's task-1 error
    assert runs["ewc"]["own1"] > 3 * runs["finetune"]["own1"]


def test_multihead_old_heads_do_not_move(runs):
    states = runs["multihead"]["states"]
    head = "Dense_2"
    before, after = states["end0"].weights[head], states["end1"].weights[head]
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(b[0], a[0])  # task 0's head
        assert not np.allclose(b[1], a[1])  # task 1's head trained
    trunk_moved = [not np.allclose(states["end0"].weights[k]["kernel"],
                                   states["end1"].weights[k]["kernel"]) for k in ("Dense_0",)]
    assert all(trunk_moved)


@pytest.mark.parametrize("name", NAMES)
def test_state_shapes_never_change(runs, name):
    states = runs[name]["states"]
    reference = shapes(states["init"])
    for stage, state in states.items():
        assert shapes(state) == reference, stage
    assert states["end1"].norms.obs_mean.shape == (2, 2)
    np.testing.assert_array_equal(states["end1"].seen, [True, True])
    np.testing.assert_array_equal(states["end0"].seen, [True, False])


def test_ewc_fisher_is_zero_before_any_task_and_accumulates(runs):
    states = runs["ewc"]["states"]
    leaves = lambda s: jax.tree.leaves(s.fisher)
    assert all(np.all(f == 0) for f in leaves(states["init"]))
    assert all(np.all(f == 0) for f in leaves(states["trained0"]))
    f0, f1 = leaves(states["end0"]), leaves(states["end1"])
    assert all(np.all(f >= 0) for f in f0) and sum(float(f.sum()) for f in f0) > 0
    assert all(np.all(b >= a) for a, b in zip(f0, f1, strict=True))  # online sum, γ = 1
    head = states["end0"].fisher["Dense_2"]["kernel"]
    assert np.all(head[1] == 0) and np.any(head[0] > 0)  # task 1's head is not used by task 0
    for a, w in zip(jax.tree.leaves(states["end1"].anchor), jax.tree.leaves(states["end1"].weights),
                    strict=True):
        np.testing.assert_array_equal(a, w)


def test_si_importance_is_zero_until_the_first_end_task(runs):
    states = runs["si"]["states"]
    big = lambda s: jax.tree.leaves(s.big_omega)
    small = lambda s: jax.tree.leaves(s.omega)
    assert all(np.all(o == 0) for o in big(states["init"]) + big(states["trained0"]))
    assert sum(float(o.sum()) for o in small(states["trained0"])) > 0  # path integral running
    after = big(states["end0"])
    assert all(np.all(o >= 0) for o in after)
    trunk = np.asarray(states["end0"].big_omega["Dense_0"]["kernel"])
    assert trunk.sum() > 0 and np.mean(trunk > 0) > 0.5
    assert all(np.all(o == 0) for o in small(states["end0"]))  # reset for the next task
    assert all(np.all(b >= a) for a, b in zip(after, big(states["end1"]), strict=True))


def test_coreset_memory_holds_m_points_of_each_task(runs):
    state = runs["coreset"]["states"]["end0"]
    np.testing.assert_array_equal(state.mask.sum(axis=1), [100, 0])
    stored = np.asarray(state.memory.obs[0])
    train = np.asarray(TRAIN[0].obs)
    assert all(np.any(np.all(train == row, axis=1)) for row in stored)  # rows of the task's data
    assert len(np.unique(stored, axis=0)) == 100  # drawn without replacement
    assert np.all(np.asarray(state.memory.obs[1]) == 0)


def test_multitask_keeps_everything_up_to_capacity(runs):
    state = runs["multitask"]["states"]["end0"]
    np.testing.assert_array_equal(state.mask.sum(axis=1), [1000, 0])
    np.testing.assert_array_equal(state.memory.next_obs[0], TRAIN[0].next_obs)
    small = make_multitask(2, 1, 2, max_points=10)
    state = small.begin_task(small.init(jax.random.key(0)), 0, TRAIN[0])
    with pytest.warns(UserWarning, match="keeping a random 10"):
        state = small.end_task(state, 0, TRAIN[0])
    assert int(state.mask.sum()) == 10


def test_fisher_variants_are_non_negative_and_informative():
    for method in (make_ewc(2, 1, 2, gaussian=True), make_ewc(2, 1, 2, fisher="empirical")):
        state = method.begin_task(method.init(jax.random.key(0)), 0, TRAIN[0])
        fisher = jax.tree.leaves(method.end_task(state, 0, TRAIN[0]).fisher)
        assert all(np.all(f >= 0) and np.all(np.isfinite(f)) for f in fisher)
        assert sum(float(f.sum()) for f in fisher) > 0


def test_gaussian_replay_runs_through_two_tasks():
    method = make_coreset(2, 1, 2, gaussian=True, memory_size=8, replay_batch=4)
    state = method.init(jax.random.key(0))
    for t in range(2):
        state = method.begin_task(state, t, TRAIN[t])
        state, metrics = fit(method, state, TRAIN[t], t, 20, 16, jax.random.key(t))
        state = method.end_task(state, t, TRAIN[t])
    assert np.all(np.isfinite(metrics["replay_loss"])) and float(metrics["replay_loss"][-1]) != 0  # replayed
    assert np.isfinite(one_step_mse(method, state, TEST[0], 0))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_hystax_error(runs, name):
    method, state = runs[name]["method"], runs[name]["states"]["init"]
    with pytest.raises(HystaxError, match="out of range"):
        method.begin_task(state, 2, TRAIN[0])
    with pytest.raises(HystaxError, match="task id must be an int"):
        method.begin_task(state, 0.0, TRAIN[0])
    wide = Transitions(jnp.zeros((5, 3)), jnp.zeros((5, 1)), jnp.zeros((5, 3)))
    with pytest.raises(HystaxError, match="state dimension 3"):
        method.begin_task(state, 0, wide)
    two_actions = Transitions(jnp.zeros((5, 2)), jnp.zeros((5, 2)), jnp.zeros((5, 2)))
    with pytest.raises(HystaxError, match="action dimension 2"):
        method.begin_task(state, 0, two_actions)
    with pytest.raises(HystaxError, match="before begin_task"):
        method.end_task(state, 0, TRAIN[0])
    state = method.begin_task(state, 0, TRAIN[0])
    with pytest.raises(HystaxError, match="state dimension 3"):
        method.end_task(state, 0, wide)
    with pytest.raises(HystaxError, match="out of range"):
        method.end_task(state, -1, TRAIN[0])
    with pytest.raises(HystaxError, match="unknown option"):
        METHODS[name](2, 1, 2, hiden=(8,))


@pytest.mark.parametrize("make, bad", [
    (make_coreset, {"memory_size": 0}),
    (make_multitask, {"max_points": 2.5}),
    (make_coreset, {"replay_batch": -1}),
    (make_ewc, {"fisher": "exact"}),
    (make_ewc, {"lam": -1.0}),
    (make_si, {"xi": 0.0}),
    (make_si, {"hidden": ()}),
    (make_si, {"lr": 0.0}),
])
def test_bad_options_are_hystax_errors(make, bad):
    with pytest.raises(HystaxError):
        make(2, 1, 2, **bad)
