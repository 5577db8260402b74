"""The LSD planning table: every planner with full knowledge of the payoffs, on every preset at
its own horizon (Oracle Greedy, the LP-rounding planner over several draws, the exact optimum by
DP and the LP bound T * LP), written to ``planning.md`` / ``planning.json``."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from hystax.agents.bandits.lsd import (
    NonMonotoneWarning,
    dp_value,
    greedy_schedule,
    lp_relaxation,
    lp_rounding_value,
    schedule_value,
)
from hystax.agents.bandits.lsd.planning import DEFAULT_MAX_STATES, joint_state_count
from hystax.core.stats import mean_and_standard_error
from hystax.envs.lsd import PRESETS, is_monotone
from hystax.experiments.experiment import markdown_table

PLANNER_DRAWS = 32
"""Independent draws of the LP-rounding planner behind every mean / best figure."""


def quiet_rounding(problem, horizon, samples=PLANNER_DRAWS) -> np.ndarray:
    """The LP-rounding planner's values (the non-monotone warning is reported in the tables)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonMonotoneWarning)
        return lp_rounding_value(problem, horizon, samples=samples)


def optimum(problem, horizon: int) -> tuple[float, str]:
    """(OPT over ``horizon`` rounds, "DP"), or (T * LP, "LP bound") when the DP is too large."""
    if joint_state_count(problem) <= DEFAULT_MAX_STATES:
        return dp_value(problem, horizon), "DP"
    return float(lp_relaxation(problem).value) * horizon, "LP bound"


def planning_row(name: str) -> dict:
    """Every planner on preset ``name`` at its horizon (values are expected total rewards)."""
    spec = PRESETS[name]
    problem, horizon = spec.build(), spec.horizon
    start = time.perf_counter()
    opt, source = optimum(problem, horizon)
    rounding = quiet_rounding(problem, horizon)
    mean, se = mean_and_standard_error(rounding)
    return {"preset": name, "horizon": horizon, "arms": problem.num_arms,
            "monotone": is_monotone(problem, strict=True), "opt": opt, "opt_source": source,
            "spec_opt": spec.opt,
            "greedy": schedule_value(problem, greedy_schedule(problem, horizon)),
            "rounding_mean": mean, "rounding_se": se,
            "rounding_best": float(rounding.max()),
            "lp_bound": float(lp_relaxation(problem).value) * horizon,
            "wall_s": time.perf_counter() - start}


def format_planning(rows: list[dict]) -> str:
    caption = (f"LSD planning, every preset at its horizon T: expected total reward / OPT "
               f"(exact, by DP). LP rounding: mean ± s.e. over {PLANNER_DRAWS} draws and the "
               "best draw.")
    cells = []
    for r in rows:
        o = r["opt"]
        cells.append([r["preset"], str(r["arms"]), f"{r['horizon']:,}",
                      "yes" if r["monotone"] else "no", f"{r['greedy'] / o:.4f}",
                      f"{r['rounding_mean'] / o:.4f} ± {r['rounding_se'] / o:.4f}",
                      f"{r['rounding_best'] / o:.4f}", f"{o:,.1f} ({r['opt_source']})",
                      f"{r['lp_bound'] / o:.4f}", f"{r['spec_opt']:,.1f}"])
    lines = markdown_table(caption, ["preset", "K", "T", "monotone", "greedy", "LP rounding",
                                     "best of draws", "OPT", "LP bound T·LP", "OPT (spec)"],
                           cells, align="lrrcrrrrrr")
    lines += ["", ("monotone: idle side non-decreasing, play side non-increasing and f(1) >= g(2) "
                   "(what the LP-rounding guarantee needs).")]
    return "\n".join(lines)


def write_planning(out_dir: Path, presets=None, progress: bool = True) -> list[dict]:
    """The planning table over ``presets`` (default: all) -> ``planning.md`` / ``planning.json``
    (a tqdm bar over the presets: the DP and LP take about 25 s in all)."""
    from tqdm.auto import tqdm

    rows = [planning_row(name) for name in tqdm(list(presets or PRESETS), desc="lsd planning",
                                                unit="preset", disable=not progress)]
    out_dir.mkdir(parents=True, exist_ok=True)
    table = format_planning(rows)
    (out_dir / "planning.md").write_text(table + "\n")
    (out_dir / "planning.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table)
    return rows
