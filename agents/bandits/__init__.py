"""Bandit agents: a shared pure-function API (:mod:`.policy`), one runner (:mod:`.bandit_runner`),
DynLin-UCB and the DLB baselines (:mod:`.dlb_baselines`; runs and regrets: :mod:`.dlb_runs`).

>>> from hystax.agents.bandits import ALGORITHMS, run_seeds
>>> out = run_seeds(ALGORITHMS["dynlin-ucb-logT"](), problem, seeds=8, horizon=20_000)
"""

from functools import partial

from hystax.agents.bandits.dlb_baselines import (
    SETTINGS,
    batch_exp3,
    clairvoyant,
    d_lin_ucb,
    exp3,
    expert,
    lin_ucb,
    reference_eigenvalue,
    ucb1,
)
from hystax.agents.bandits.dlb_runs import RunResult, round_noise, run, run_seeds
from hystax.agents.bandits.dynlin_ucb import dynlin_ucb, epoch_schedule
from hystax.agents.bandits.policy import Policy, ProblemInfo, make_info

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_SETS",
    "SETTINGS",
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
    "make_policy",
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
    "d-lin-ucb-logT": partial(d_lin_ucb, lam="logT"),
    "exp3": exp3,
    "batch-exp3": batch_exp3,
    "ucb1": ucb1,
    "expert": expert,
    # the DLB authors' constants, row by row (hystax.agents.bandits.dlb_baselines, "reference")
    "lin-ucb-1-ref": partial(lin_ucb, lam=1.0, settings="reference"),
    "lin-ucb-logT-ref": partial(lin_ucb, lam="logT", settings="reference"),
    "d-lin-ucb-1-ref": partial(d_lin_ucb, lam=1.0, settings="reference"),
    "d-lin-ucb-logT-ref": partial(d_lin_ucb, lam="logT", settings="reference"),
    "exp3-ref": partial(exp3, settings="reference"),
    "batch-exp3-ref": partial(batch_exp3, settings="reference"),
}
"""Name -> constructor (call it with no arguments; ``d-lin-ucb`` is lam = 1). The ``-ref``
entries use the reference settings; :func:`make_policy` adds the problem's eigenvalue that the
reference's Exp3 constants use."""

ALGORITHM_SETS = {
    "textbook": ["clairvoyant", "dynlin-ucb-logT", "dynlin-ucb-1", "lin-ucb-logT", "lin-ucb-1",
                 "d-lin-ucb-logT", "d-lin-ucb", "exp3", "batch-exp3", "ucb1", "expert"],
    "reference": ["clairvoyant", "dynlin-ucb-logT", "dynlin-ucb-1", "lin-ucb-logT-ref",
                  "lin-ucb-1-ref", "d-lin-ucb-logT-ref", "d-lin-ucb-1-ref", "exp3-ref",
                  "batch-exp3-ref", "expert"],
}
"""The algorithms of each settings (:data:`SETTINGS`): "reference" is the paper's comparison
(AR2 is not implemented; UCB1 is not in the paper's runs); DynLin-UCB has one setting."""

_EIGENVALUE_QUIRK = ("exp3-ref", "batch-exp3-ref")


def make_policy(name: str, problem=None) -> Policy:
    """``ALGORITHMS[name]()``, given the DLB ``problem``'s largest eigenvalue (numpy's order,
    no abs) where the reference's constants use it (``exp3-ref``, ``batch-exp3-ref``)."""
    if name in _EIGENVALUE_QUIRK and problem is not None:
        return ALGORITHMS[name](eigenvalue=reference_eigenvalue(problem.A))
    return ALGORITHMS[name]()
