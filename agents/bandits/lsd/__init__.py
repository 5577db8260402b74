"""Last-switch-dependent bandits: planners (exact DP, Oracle Greedy, cycle LP, LP rounding) and
learners (LP-rounding UCB, ISI-CombUCB1, CombUCB1, state-blind UCB1 / Thompson).

>>> from hystax.envs.lsd import preset
>>> from hystax.agents.bandits.lsd import ALGORITHMS, dp_plan, run_seeds
>>> problem = preset("laforgue-main")
>>> opt, schedule = dp_plan(problem, 3600)
>>> out = run_seeds(ALGORITHMS["isi-comb-ucb1"](block=3), problem, seeds=20, horizon=3600)
"""

from hystax.agents.bandits.lsd.comb_ucb import comb_ucb1, isi_comb_ucb1
from hystax.agents.bandits.lsd.lsd_runs import LSDInfo, LSDRunResult, make_info, run, run_seeds
from hystax.agents.bandits.lsd.planning import (
    LPSolution,
    cycle_table,
    dp_plan,
    dp_value,
    greedy_schedule,
    lp_relaxation,
    schedule_value,
)
from hystax.agents.bandits.lsd.rounding import (
    NonMonotoneWarning,
    lp_rounding_schedule,
    lp_rounding_schedules,
    lp_rounding_ucb,
    lp_rounding_value,
)
from hystax.agents.bandits.lsd.simple_policies import scheduled, thompson, ucb1

__all__ = [
    "ALGORITHMS",
    "DEFAULT_BLOCK",
    "LPSolution",
    "LSDInfo",
    "LSDRunResult",
    "NonMonotoneWarning",
    "comb_ucb1",
    "cycle_table",
    "dp_plan",
    "dp_value",
    "greedy_schedule",
    "isi_comb_ucb1",
    "lp_relaxation",
    "lp_rounding_schedule",
    "lp_rounding_schedules",
    "lp_rounding_ucb",
    "lp_rounding_value",
    "make_info",
    "run",
    "run_seeds",
    "schedule_value",
    "scheduled",
    "thompson",
    "ucb1",
]

DEFAULT_BLOCK = 3  # d of Laforgue et al.'s main experiment

ALGORITHMS = {
    "lp-rounding-ucb": lambda block=DEFAULT_BLOCK: lp_rounding_ucb(),
    "isi-comb-ucb1": lambda block=DEFAULT_BLOCK: isi_comb_ucb1(block + 1),
    "comb-ucb1": lambda block=DEFAULT_BLOCK: comb_ucb1(block),
    "ucb1": lambda block=DEFAULT_BLOCK: ucb1(),
    "thompson": lambda block=DEFAULT_BLOCK: thompson(),
}
"""Learner name -> constructor taking the block length d of Laforgue et al.'s experiments
(default :data:`DEFAULT_BLOCK`; CombUCB1 plays blocks of d rounds, ISI-CombUCB1 blocks of
d + 1; the others ignore it)."""
