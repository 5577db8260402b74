"""Bandit agents: a shared pure-function API (:mod:`.api`), DynLin-UCB and the DLB baselines.

>>> from hystax.agents.bandits import ALGORITHMS, run_seeds
>>> out = run_seeds(ALGORITHMS["dynlin-ucb-logT"](), problem, seeds=8, horizon=20_000)
"""

from functools import partial

from hystax.agents.bandits.api import (
    Policy,
    ProblemInfo,
    RunResult,
    make_info,
    round_noise,
    run,
    run_seeds,
)
from hystax.agents.bandits.baselines import (
    batch_exp3,
    clairvoyant,
    d_lin_ucb,
    exp3,
    expert,
    lin_ucb,
    ucb1,
)
from hystax.agents.bandits.dynlin_ucb import dynlin_ucb, epoch_schedule

__all__ = [
    "ALGORITHMS",
    "Policy",
    "ProblemInfo",
    "RunResult",
    "batch_exp3",
    "clairvoyant",
    "d_lin_ucb",
    "dynlin_ucb",
    "epoch_schedule",
    "exp3",
    "expert",
    "lin_ucb",
    "make_info",
    "round_noise",
    "run",
    "run_seeds",
    "ucb1",
]

ALGORITHMS = {
    "clairvoyant": clairvoyant,
    "dynlin-ucb-1": partial(dynlin_ucb, lam=1.0),
    "dynlin-ucb-logT": partial(dynlin_ucb, lam="logT"),
    "lin-ucb-1": partial(lin_ucb, lam=1.0),
    "lin-ucb-logT": partial(lin_ucb, lam="logT"),
    "d-lin-ucb": d_lin_ucb,
    "exp3": exp3,
    "batch-exp3": batch_exp3,
    "ucb1": ucb1,
    "expert": expert,
}
"""Name -> constructor (call it with no arguments for the paper's settings)."""
