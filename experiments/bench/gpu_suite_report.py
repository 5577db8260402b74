"""The report of ``hystax bench gpu`` (:mod:`.gpu_suite`): the issue's four targets, each met
or missed with its figure, and a table per part, from the JSON-lines records of the parts.

A record is ``{"part": "a", "name": ..., ...}``: a ``start`` record per part (machine,
device), one per measured item (or its ``error``), and the ``status`` record the suite adds
when the part's process ended (ok / failed / timeout). Targets are judged on a full run on a
GPU only; a quick or CPU run shows its figures as "not measured".
"""

from __future__ import annotations

STATUS_NAMES = ("start", "status")
ANCHORS_PPO = {"gru-1": (5_733, 23), "s5-1": (233_242, 63), "s5-4": (80_399, 201)}
"""popjaxrl at the paper config on one H100: env-steps/s, compile s."""
ANCHORS_LAYER = {("s5", 128): 0.45, ("s5", 1024): 1.9, ("s5", 4096): 6.1,
                 ("gru", 128): 7.1, ("gru", 1024): 51, ("gru", 4096): 202}
"""One layer's forward + backward ms (B 64, H 256, P 128) on one H100."""
ANCHORS_RANDOM = {1024: 4.5e7, 16384: 8.5e8}
"""gymnax CartPole, random policy, env-steps/s."""


def by_part(records: list[dict]) -> dict[str, dict[str, dict]]:
    """``{part: {name: record}}`` (a later record of the same name wins)."""
    parts: dict[str, dict[str, dict]] = {}
    for record in records:
        parts.setdefault(record["part"], {})[record["name"]] = record
    return parts


def _items(parts, part) -> dict[str, dict]:
    return {k: v for k, v in parts.get(part, {}).items()
            if k not in STATUS_NAMES and "error" not in v}


def _layer_ratio(parts) -> tuple[float | None, int | None]:
    """GRU / S5 fwd+bwd time at L = 1024, else at the longest length measured."""
    best = None
    for record in _items(parts, "b").values():
        if "length" not in record:
            continue
        ms = {r["model"]: r["fwd_bwd_ms"] for r in record["rows"]}
        if "s5" in ms and "gru" in ms:
            key = (record["length"] == 1024, record["length"])
            if best is None or key > best[0]:
                best = (key, ms["gru"] / ms["s5"], record["length"])
    return (None, None) if best is None else best[1:]


def _cartpole(parts) -> dict | None:
    """Part (c)'s record at 16k envs, else at the most envs measured."""
    rows = sorted(_items(parts, "c").values(), key=lambda r: (r["num_envs"] == 16384,
                                                              r["num_envs"]))
    return rows[-1] if rows else None


def targets(parts: dict, quick: bool) -> list[dict]:
    """The four targets: ``{"target", "figure", "met"}`` (met None where not measured) and
    ``verdict``."""
    a = _items(parts, "a")
    s5, gru = a.get("s5-4"), a.get("gru-1")
    rows = []
    if s5:
        rows.append(("4-layer S5-PPO ≥ 120k env-steps/s with compile ≤ 50 s",
                     f"{s5['env_steps_per_s']:,.0f} env-steps/s, compile {s5['compile_s']:.0f} s",
                     s5["env_steps_per_s"] >= 120_000 and s5["compile_s"] <= 50, "a"))
    else:
        rows.append(("4-layer S5-PPO ≥ 120k env-steps/s with compile ≤ 50 s", "—", None, "a"))
    ratio, length = _layer_ratio(parts)
    rows.append(("S5 layer ≥ 20× GRU at L = 1024",
                 "—" if ratio is None else f"{ratio:.1f}× (L = {length})",
                 None if ratio is None or length != 1024 else ratio >= 20, "b"))
    ppo_ratio = s5["env_steps_per_s"] / gru["env_steps_per_s"] if s5 and gru else None
    rows.append(("S5-PPO ≥ 5× GRU-PPO at the paper config (S5 4 layers / GRU)",
                 "—" if ppo_ratio is None else f"{ppo_ratio:.1f}×",
                 None if ppo_ratio is None else ppo_ratio >= 5, "a"))
    c = _cartpole(parts)
    rows.append(("PPO-MLP within 2× of the random-policy ceiling at 16k envs",
                 "—" if c is None else f"{1 / c['ppo_over_random']:.1f}× slower "
                 f"({c['num_envs']:,} envs)",
                 None if c is None or c["num_envs"] != 16384 else c["ppo_over_random"] >= 0.5,
                 "c"))
    platform = next((r["platform"] for p in parts.values() for r in p.values()
                     if r["name"] == "start"), None)
    out = []
    for target, figure, met, part in rows:
        status = parts.get(part, {}).get("status", {}).get("status", "not run")
        if quick:
            verdict = "not measured (quick run)"
        elif platform != "gpu":
            verdict = f"not measured ({platform or 'no device'})"
        elif met is None:
            verdict = f"not measured (part ({part}): {'no figure' if status == 'ok' else status})"
        else:
            verdict = "met" if met else "missed"
        out.append({"target": target, "figure": figure, "met": None if quick else met,
                    "verdict": verdict})
    return out


def _fmt(x, spec=",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _part_tables(parts) -> list[str]:
    lines = ["", "(a) recurrent PPO at the POPGym paper config (popgym/RepeatPreviousEasy)", "",
             "| model | env-steps/s | compile s | × GRU | popjaxrl H100 env-steps/s | compile s |",
             "|---|---:|---:|---:|---:|---:|"]
    a = _items(parts, "a")
    gru = a.get("gru-1", {}).get("env_steps_per_s")
    for name, r in a.items():
        anchor = ANCHORS_PPO.get(name, (None, None))
        lines.append(f"| {name.replace('-', ' ×')} | {r['env_steps_per_s']:,.0f} | "
                     f"{r['compile_s']:.1f} | {_fmt(gru and r['env_steps_per_s'] / gru, '.1f')}"
                     f" | {_fmt(anchor[0])} | {_fmt(anchor[1])} |")
    lines += ["", ("(b) one memory layer, forward + backward ms (B 64, H 256, P 256 of which "
                   "S5 keeps 128; S4D, S6: N 16), and bench memory's PPO at 64 × 1024"), "",
              "| model | L | ms | × S5 | H100 anchor ms |", "|---|---:|---:|---:|---:|"]
    b = _items(parts, "b")
    for record in b.values():
        for r in record["rows"]:
            if "length" in r:
                lines.append(f"| {r['model']} | {r['length']} | {r['fwd_bwd_ms']:.2f} | "
                             f"{r['ratio_to_s5']:.2f} | "
                             f"{_fmt(ANCHORS_LAYER.get((r['model'], r['length'])), '.2f')} |")
            else:
                lines.append(f"| PPO {r['memory']} | {r['num_envs']} × {r['num_steps']} | "
                             f"{r['env_steps_per_s']:,.0f} env-steps/s | "
                             f"{r['ratio_to_gru']:.2f} × GRU | |")
    lines += ["", "(c) PPO-MLP on CartPole-v1 against a random policy (same envs, same run)", "",
              "| envs | PPO env-steps/s | random env-steps/s | PPO / random | gymnax H100 random |",
              "|---:|---:|---:|---:|---:|"]
    for r in _items(parts, "c").values():
        lines.append(f"| {r['num_envs']:,} | {r['ppo']['env_steps_per_s']:,.0f} | "
                     f"{r['random']['env_steps_per_s']:,.0f} | {r['ppo_over_random']:.2f} | "
                     f"{_fmt(ANCHORS_RANDOM.get(r['num_envs']), '.1e')} |")
    for r in _items(parts, "d").values():
        lines += ["", (f"(d) DynLin-UCB: {r['rounds_per_s']:,.0f} rounds/s ({r['seeds']:,} "
                       f"seeds × {r['rounds_per_seed']:,} rounds, run {r['run_s']:.2f} s, "
                       f"compile {r['compile_s']:.1f} s)")]
    for r in _items(parts, "e").values():
        times = ", ".join(f"D = {row['num_features']:,}: {row['us_per_transition']:,.0f} µs"
                          for row in r["rows"])
        lines += ["", f"(e) Losse-FTL sparse update per transition: {times}"]
    return lines


def format_report(records: list[dict], quick: bool, commit: str | None) -> str:
    """The markdown: the header line, the targets, each part's table, each part's status."""
    parts = by_part(records)
    start = next((r for p in parts.values() for r in p.values() if r["name"] == "start"), None)
    device = start["device_kind"] if start else "no part started"
    jax_version = start["machine"]["jax"] if start else "?"
    date = start["machine"]["date"] if start else "?"
    lines = [(f"GPU suite{' (quick)' if quick else ''}: {device}, jax {jax_version}, "
              f"commit {commit or 'unknown'}, {date}"), "",
             "| target | figure | verdict |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['figure']} | {t['verdict']} |"
              for t in targets(parts, quick)]
    lines += _part_tables(parts)
    lines += ["", "| part | status | s | failed items |", "|---|---|---:|---|"]
    for name, records_ in sorted(parts.items()):
        status = records_.get("status", {})
        failed = ", ".join(k for k, v in records_.items() if "error" in v) or "—"
        lines.append(f"| ({name}) | {status.get('status', '?')} | "
                     f"{_fmt(status.get('seconds'), '.0f')} | {failed} |")
    return "\n".join(lines) + "\n"
