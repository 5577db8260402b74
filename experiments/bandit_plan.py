"""What the two bandit experiments (:mod:`.dlb`, :mod:`.lsd`) share: the validated plan, the
check of the learners' names, and running each learner over the seeds (one jitted
``run_seeds`` each, common random numbers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from hystax.core.errors import require, unknown_name


class BanditPlan(NamedTuple):
    """A bandit experiment's validated settings and its (new, empty) output folder; ``extra``
    holds the experiment's own (dlb: the baselines' ``settings``; lsd: ``planning``)."""

    preset: str
    problem: object
    algorithms: list[str]
    seeds: int
    horizon: int
    record_every: int
    out_dir: Path
    progress: bool
    extra: dict


def check_algorithms(algorithms, known: Mapping, kind: str) -> list[str]:
    """``algorithms`` (a name or several) as a list: at least one, each a key of ``known``
    (else "unknown KIND ..." with suggestions), none repeated."""
    algorithms = [algorithms] if isinstance(algorithms, str) else list(algorithms)
    require(len(algorithms) > 0, "no algorithms given")
    for name in algorithms:
        if name not in known:
            raise unknown_name(kind, str(name), known)
    require(len(set(algorithms)) == len(algorithms), f"algorithms repeated: {algorithms}")
    return algorithms


def run_learners(plan: BanditPlan, make_policy: Callable[[str], object],
                 run_seeds: Callable, desc: str) -> dict[str, tuple[str, object, float]]:
    """``{algorithm: (label, run_seeds' output, wall seconds)}``: each learner
    ``make_policy(name)`` run by ``run_seeds(policy, problem, seeds, horizon, record_every)``
    (compile and run of all seeds), a progress bar over them."""
    from tqdm.auto import tqdm

    results = {}
    bar = tqdm(plan.algorithms, desc=desc, unit="alg", disable=not plan.progress)
    for name in bar:
        bar.set_postfix_str(f"{name} ({plan.seeds} seeds x {plan.horizon:,} rounds)")
        policy = make_policy(name)
        start = time.perf_counter()
        out = run_seeds(policy, plan.problem, plan.seeds, plan.horizon, plan.record_every)
        results[name] = (policy.name, out, time.perf_counter() - start)
    bar.close()
    return results
