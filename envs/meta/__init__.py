"""Meta-RL with random projections: any env family as a meta-RL task (gymnax 1.0 API).

One episode of :class:`MetaEnv` is a *meta-episode*: a task is drawn (inner env params plus
random orthogonal projections of observations and, for Box actions, of actions) and the inner
env is played for ``num_trials`` trials of that task. A trial's end does not end the episode,
so a recurrent policy keeps its hidden state across trials and can adapt in context.

>>> env = MetaEnv(CartPole(), sample_params, num_trials=4, project_obs=True,
...               project_actions=False, split="test")
>>> obs, state = env.reset(key, env.default_params)

Observation (float32 1-D), in this order::

    projected inner obs [obs_dim] | previous action [A] | previous reward [1]
    | trial-done flag [1] | first-step flag [1]

``A`` is ``n`` (one-hot) for Discrete(n) actions and ``d`` (the policy's own action, in the
projected space, clipped to the bounds) for Box actions. The previous action/reward are zero
only on the meta-episode's first step; at a trial boundary they carry the last step of the
previous trial. The trial-done flag is 1 on the first step of every trial after the first;
the first-step flag is 1 on the first step of the meta-episode.

Tasks, and held-out tasks: a task is an integer ``index``; its params and projections come from
``fold_in(PRNGKey(seed), index)``. The train split draws ``index`` from ``[0, num_tasks)``, the
test split from ``[num_tasks, 2 * num_tasks)``, so the two task sets are disjoint and
reproducible. ``sample_params(key, split)`` also sees the split, and the built-in families use
it for out-of-distribution physics: train params lie in the middle 60% of each range, test
params in the two outer 20% tails. The split and the task count live in :class:`MetaParams`
(``split`` 0 = train, 1 = test), so one compiled ``step`` serves both splits:

>>> test_params = env.params_for("test")          # held-out tasks, same env, no recompile

Registered families (see :func:`register_all`): ``meta/CartPole``,
``meta/CartPole-SameStart``, ``meta/Pendulum``, ``meta/BernoulliBandit``, and the bandit
meta-families ``meta/DLB`` and ``meta/LSD`` (:class:`BanditFamily`: a new bandit problem every
episode; :mod:`.bandit_samplers` draws them). :func:`trial_returns`
turns a reward stream into per-trial returns.

Files: :mod:`.meta_env` (the wrapper), :mod:`.families` (the registered families and their task
samplers), :mod:`.bandit_family` and :mod:`.bandit_samplers` (the bandit meta-families),
:mod:`.k_armed_bandit` (the bandit family's inner env), :mod:`.trial_returns`.
"""

from hystax.envs.meta.bandit_family import BanditFamily, bandit_observation
from hystax.envs.meta.families import (
                                       FAMILIES,
                                       bandit_family,
                                       cartpole_family,
                                       cartpole_same_start_family,
                                       dlb_family,
                                       lsd_family,
                                       pendulum_family,
                                       register_all,
                                       split_uniform,
)
from hystax.envs.meta.k_armed_bandit import BanditParams, KArmedBandit
from hystax.envs.meta.meta_env import MetaEnv, MetaParams, MetaState, orthogonal
from hystax.envs.meta.trial_returns import trial_returns

__all__ = [
    "FAMILIES",
    "BanditFamily",
    "BanditParams",
    "KArmedBandit",
    "MetaEnv",
    "MetaParams",
    "MetaState",
    "bandit_family",
    "bandit_observation",
    "cartpole_family",
    "cartpole_same_start_family",
    "dlb_family",
    "lsd_family",
    "orthogonal",
    "pendulum_family",
    "register_all",
    "split_uniform",
    "trial_returns",
]
