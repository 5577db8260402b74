"""The in-context bandit comparison's tables, targets, CSV and figures (from the curves of
:mod:`.incontext_bandit_eval`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hystax.core.stats import mean_and_t_interval
from hystax.experiments.experiment import markdown_table, write_summary
from hystax.experiments.incontext_bandit_eval import EVERY, LSD_LEARNERS, T_SHORT

__all__ = ["family_summary", "per_problem", "write_family"]


def per_problem(curve: np.ndarray) -> np.ndarray:
    """``[N, B]``: a baseline's curve as it is, an agent's ``[S, N, B]`` averaged over seeds."""
    curve = np.asarray(curve, np.float64)
    return curve.mean(axis=0) if curve.ndim == 3 else curve


def _stat(values: np.ndarray) -> list[float]:
    mean, half = mean_and_t_interval(np.asarray(values, np.float64))
    return [float(mean), float(half)]


def _set_rows(family: str, curves: dict, short, models) -> dict:
    """``{algorithm: {figure: [mean, 95% half-width]}}`` over the set's problems."""
    short_i = T_SHORT // EVERY - 1
    rows = {}
    if family == "dlb":
        for name, curve in curves.items():
            c = per_problem(curve)
            rows[name] = {"regret_short": _stat(c[:, short_i]), "regret": _stat(c[:, -1])}
    else:
        opt = per_problem(curves["dp-optimum"])
        for name, curve in curves.items():
            c = per_problem(curve)
            rows[name] = {"regret_short": _stat(opt[:, short_i] - c[:, short_i]),
                          "regret": _stat(opt[:, -1] - c[:, -1]),
                          "opt_fraction_short": _stat(c[:, short_i] / short),
                          "opt_fraction": _stat(c[:, -1] / opt[:, -1])}
    for model in models:  # each training seed's mean, for the spread between seeds
        final = np.asarray(curves[model])[..., -1]
        rows[model]["per_seed"] = (final.mean(axis=1) if family == "dlb" else
                                   (final / per_problem(curves["dp-optimum"])[:, -1]).mean(
                                       axis=1)).tolist()
    return rows


def _targets(family: str, held_out: dict) -> dict:
    """The issue's targets on the held-out set (only those whose models were run)."""
    out = {}
    s5, mlp = held_out.get("s5"), held_out.get("mlp")
    key = "regret" if family == "dlb" else "opt_fraction"
    better = (lambda a, b: a < b) if family == "dlb" else (lambda a, b: a > b)
    if s5 is not None and family == "dlb":
        dyn = held_out["dynlin-ucb-logT"]["regret"][0]
        out["s5_below_dynlin_ucb"] = {"s5": s5["regret"][0], "dynlin-ucb-logT": dyn,
                                      "met": s5["regret"][0] < dyn,
                                      "by": dyn - s5["regret"][0]}
    if s5 is not None and family == "lsd":
        best = max(LSD_LEARNERS, key=lambda n: held_out[n]["opt_fraction"][0])
        out["s5_at_least_best_learner"] = {
            "s5": s5["opt_fraction"][0], best: held_out[best]["opt_fraction"][0],
            "oracle-greedy": held_out["oracle-greedy"]["opt_fraction"][0],
            "met": s5["opt_fraction"][0] >= held_out[best]["opt_fraction"][0]}
    if s5 is not None and mlp is not None:
        (m5, h5), (mm, hm) = s5[key], mlp[key]
        apart = (m5 + h5 < mm - hm) if family == "dlb" else (m5 - h5 > mm + hm)
        out["mlp_worse_than_s5_ci_apart"] = {"s5": [m5, h5], "mlp": [mm, hm],
                                             "met": bool(better(m5, mm) and apart)}
    return out


def _gaps(family: str, sets: dict, models) -> dict:
    """``{model: {set: figure}}`` comparable across sets: DLB the agent's final regret over
    DynLin-UCB's on the same problems, LSD the reward as a fraction of OPT."""
    if family == "dlb":
        return {m: {name: rows[m]["regret"][0] / rows["dynlin-ucb-logT"]["regret"][0]
                    for name, rows in sets.items()} for m in models}
    return {m: {name: rows[m]["opt_fraction"][0] for name, rows in sets.items()}
            for m in models}


def family_summary(family: str, out: dict, plan) -> dict:
    """Every set's rows, the agents' in- vs out-of-distribution figures, the targets and the
    settings (JSON-able)."""
    sets = {name: _set_rows(family, curves, out["short"].get(name), plan.models)
            for name, curves in out["curves"].items()}
    return {"family": family, "horizon": out["horizon"], "problems": plan.problems,
            "seeds": plan.seeds, "total_timesteps": plan.steps, "models": list(plan.models),
            "sets": sets, "gaps": _gaps(family, sets, plan.models),
            "targets": _targets(family, sets["held-out"])}


def _cell(stat) -> str:
    mean, half = stat
    return f"{mean:.3f} ± {half:.3f}" if abs(mean) < 10 else f"{mean:,.1f} ± {half:,.1f}"


def format_table(family: str, summary: dict) -> str:
    """One table per problem set: rows the algorithms, columns the final regret at T_SHORT
    and T (LSD: also the reward as a fraction of OPT)."""
    t = summary["horizon"]
    what = ("pseudo-regret sum_t (J* - <h, u_t>)" if family == "dlb"
            else "regret DP(t) - reward(t), and reward / OPT")
    keys = ["regret_short", "regret"] + (["opt_fraction_short", "opt_fraction"]
                                         if family == "lsd" else [])
    header = ["algorithm", f"R({T_SHORT})", f"R({t:,})"] + (
        [f"reward / OPT, T = {T_SHORT}", f"reward / OPT, T = {t:,}"] if family == "lsd" else [])
    lines = [(f"meta/{family.upper()}: {what}; mean ± 95% Student-t CI over "
             f"{summary['problems']} problems (held-out, long-caps) or noise seeds (presets); "
             f"agents: {summary['seeds']} training seeds x {summary['total_timesteps']:,} env "
             "steps each, averaged over their seeds per problem; common random numbers.")]
    for name, rows in summary["sets"].items():
        kind = "in distribution" if name == "held-out" else "out of distribution"
        lines += [""] + markdown_table(f"**{name}** ({kind})", header,
                                       [[alg, *(_cell(row[k]) for k in keys)]
                                        for alg, row in rows.items()])
    gap = ("final regret / DynLin-UCB's on the same problems" if family == "dlb"
           else "reward / OPT at T")
    names = list(summary["sets"])
    lines += [""] + markdown_table(f"In distribution (held-out) vs out of distribution: {gap}",
                                   ["model", *names], [[m, *(f"{row[n]:.3f}" for n in names)]
                                                       for m, row in summary["gaps"].items()])
    lines += ["", "Targets (held-out problems): " + "; ".join(
        f"{k}: {'met' if v['met'] else 'missed'}" for k, v in summary["targets"].items())]
    return "\n".join(lines)


def _write_csv(path: Path, curves_by_set: dict) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["set", "algorithm", "seed", "problem", "round", "value"])
        for set_name, curves in curves_by_set.items():
            for alg, curve in curves.items():
                curve = np.asarray(curve)
                seeds = [(s, curve[s]) for s in range(curve.shape[0])] if curve.ndim == 3 \
                    else [("", curve)]
                for s, rows in seeds:
                    for i, row in enumerate(rows):
                        writer.writerows([set_name, alg, s, i, EVERY * (b + 1), f"{v:.6g}"]
                                         for b, v in enumerate(row))


def write_family(family: str, out: dict, summary: dict, plan) -> None:
    """``table.md`` / ``table.json``, ``curves.csv`` (DLB: pseudo-regret; LSD: cumulative
    expected reward), ``regret.png`` (held-out problems) and ``returns.png`` (training)."""
    from hystax.plots import plot_regret, plot_returns

    folder = plan.exp_dir / family
    write_summary(folder, "table", summary, format_table(family, summary))
    _write_csv(folder / "curves.csv", out["curves"])
    held_out = out["curves"]["held-out"]
    if family == "dlb":
        regret = {name: per_problem(c) for name, c in held_out.items()}
        what = "pseudo-regret sum_t (J* - <h, u_t>)"
    else:
        opt = per_problem(held_out["dp-optimum"])
        regret = {name: opt - per_problem(c) for name, c in held_out.items()
                  if name != "dp-optimum"}
        what = "regret against the exact optimum, DP(t) - reward(t)"
    rounds = EVERY * np.arange(1, next(iter(regret.values())).shape[1] + 1)
    plot_regret(regret, folder / "regret.png", rounds=rounds, interval="ci95", unit="problems",
                title=f"meta/{family.upper()} held-out problems: {what}")
    plot_returns(out["run_dirs"], folder / "returns.png", labels=list(plan.models),
                 title=f"meta/{family.upper()}: training return (train problems)")
