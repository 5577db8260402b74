"""The ``hystax`` command line: ``demo``, ``list``, ``train``, ``evaluate``, ``plot``, ``icrl``,
``bandit``, ``continual``, ``losse``, ``bench``.

Heavy modules (jax, the agents) are imported only by the command that needs them, so
``hystax --help`` and ``hystax list`` stay fast. Bad input prints one line
(``hystax: error: ...``) and exits with code 2.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from hystax.cli_flags import add_config_flags, env_param_overrides, integer
from hystax.core.errors import HystaxError
from hystax.experiments import experiment_registry
from hystax.experiments.experiment import OneLineParser

DEMO = dict(agent="ppo", env="CartPole-v1", seeds=4, total_timesteps=500_000)
# the one parser; hystax's own sub-commands say `hystax: error: ...`
_Parser = functools.partial(OneLineParser, error_prog="hystax")


def main(argv: list[str] | None = None) -> int:
    """Run the ``hystax`` command; returns the exit code.

    ``--debug`` (anywhere on the line) or ``HYSTAX_DEBUG=1`` shows the traceback of an
    unexpected error, which otherwise is one line and exit code 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HYSTAX_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outside a run's host loop (which saves and stops by itself)
        if debug:
            raise
        print("\nhystax: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not bad input: one line unless --debug
        if debug:
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"hystax: internal error: {type(err).__name__}: {first} (run again with --debug "
              "for the traceback)", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if rest and args.command not in ("train", *experiment_registry.COMMANDS):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args, rest)
    except HystaxError as err:
        print(f"hystax: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`hystax list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail
        return 1


def _parser() -> argparse.ArgumentParser:
    from hystax import __version__

    parser = _Parser(
        prog="hystax", description="JAX RL and bandit agents for worlds with memory.")
    parser.add_argument("--version", action="version", version=f"hystax {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error (also HYSTAX_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="train PPO on CartPole-v1 for 4 seeds; write CSV + PNG into ./runs/",
                       description="Train PPO (MLP) on CartPole-v1 for 4 seeds in one vmapped "
                                   "run and write metrics.csv, checkpoints and returns.png.")
    p.add_argument("--out-dir", default="runs", help="parent folder of the run (default: runs)")
    p.add_argument("--total-timesteps", type=integer, default=DEMO["total_timesteps"],
                   help="env steps per seed (default: %(default)s)")
    p.add_argument("--seeds", type=integer, default=DEMO["seeds"], help="number of seeds (default: 4)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("list", help="list environments and agents")
    p.set_defaults(func=_list)

    p = sub.add_parser(
        "train", help="train an agent (hystax train ppo --env CartPole-v1 --seeds 4)",
        description="Train an agent on an env for several seeds (vmapped, sharded over "
                    "devices). Agent config fields are flags too: `hystax train ppo --help` "
                    "lists them.", add_help=False,
        usage="hystax train AGENT [--env ENV] [--seeds N] [options] [config fields]\n"
              "       hystax train --resume RUN_DIR")
    p.add_argument("-h", "--help", action="store_true", help="show this help (with the agent's config fields)")
    p.add_argument("--env", "--suite", dest="env", default=None,
                   help="environment name (default: CartPole-v1); for mbrl a continual task "
                        "suite (default: pendulum-gravity; hystax list names them)")
    p.add_argument("--env-param", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the env's params (repeatable)")
    p.add_argument("--seeds", type=integer, default=1, help="number of seeds 0..N-1 (default: 1)")
    p.add_argument("--preset", action=argparse.BooleanOptionalAction, default=None,
                   help="start from the agent's tuned config for --env (default: when it has "
                        "one, e.g. every popgym/... env); --preset insists on one, "
                        "--no-preset starts from the plain Config() defaults")
    p.add_argument("--name", help="run name (default: <agent>-<env>-<time>)")
    p.add_argument("--out-dir", default="runs", help="parent folder of the run (default: runs)")
    p.add_argument("--chunk-updates", type=integer, help="updates per jitted chunk")
    p.add_argument("--checkpoint-every", type=integer, default=10, help="checkpoint every N chunks")
    p.add_argument("--devices", type=integer, help="devices to shard seeds over (default: all)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its latest checkpoint (a PPO run with "
                        "--total-timesteps N: and run it longer)")
    p.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (multi-host; run the same "
                        "command on every host; Slurm/TPU/MPI clusters are detected)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="with --distributed: process 0's address (else JAX_COORDINATOR_ADDRESS)")
    p.add_argument("--num-processes", type=integer, help="with --distributed: number of processes")
    p.add_argument("--process-id", type=integer, help="with --distributed: this process's index")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--logger", action="append", metavar="csv,tensorboard,wandb",
                   help="where metrics go besides metrics.csv (always written): tensorboard "
                        "(pip install 'hystax[tensorboard]'), wandb ('hystax[wandb]'); "
                        "comma-separated or repeated")
    p.set_defaults(func=_train, train_parser=p)

    p = sub.add_parser("plot", help="plot run directories (returns.png, losses.png)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out-dir", help="where an overlay of several runs goes (default: runs/compare)")
    p.add_argument("--smooth", type=integer, default=1,
                   help="running mean over this many updates (default: 1, none)")
    p.set_defaults(func=_plot)

    p = sub.add_parser(
        "evaluate", help="play a trained run on fresh episodes; write eval-NNN.csv into it",
        description="Load a PPO or Dyna run and play fresh episodes with every seed's policy; "
                    "writes eval-NNN.csv (seed, episode, return, length) and eval-NNN.json "
                    "(settings, mean ± 95% CI over seeds) into the run folder, never "
                    "overwriting an earlier evaluation.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--step", type=integer, help="the checkpoint, in updates done (default: newest)")
    p.add_argument("--env", help="another variant with the same spaces (default: the training "
                                 "env; for a meta-RL env its held-out tasks)")
    p.add_argument("--env-param", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the env's params (repeatable)")
    p.add_argument("--episodes", type=integer, default=10, help="episodes per seed (default: 10)")
    p.add_argument("--deterministic", action="store_true",
                   help="greedy actions (default: sample from the policy)")
    p.add_argument("--seed", type=integer, default=0, help="key of the episodes (default: 0)")
    p.add_argument("--max-steps", type=integer, help="cut episodes at this many steps (default: "
                                                  "the env's max_steps_in_episode)")
    p.add_argument("--record", type=integer, default=0, metavar="N",
                   help="save the first N episodes of each seed (.npz; a GIF for CartPole, "
                        "Pendulum, Acrobot, Battleship, Minesweeper, Labyrinth)")
    p.set_defaults(func=_evaluate)

    for command, help in experiment_registry.COMMANDS.items():
        _add_experiment_command(sub, command, help)

    p = sub.add_parser("bench", help=f"benchmarks (hystax bench "
                                     f"{' | '.join(experiment_registry.BENCHMARKS)})")
    p.add_argument("what", choices=list(experiment_registry.BENCHMARKS), help="which benchmark")
    p.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    p.add_argument("--out-dir", default="runs/bench",
                   help="parent folder; results go to <out-dir>/<name>/bench_WHAT.json "
                        "(default: %(default)s)")
    p.add_argument("--name", help="the run's folder (default: WHAT-<date>-<time>, never an "
                                  "existing one)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing <out-dir>/<name> (else it is refused)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_bench)
    return parser


def _demo(args, rest) -> int:
    import time

    from hystax.runner import train

    start = time.time()
    result = train(DEMO["agent"], DEMO["env"], seeds=args.seeds, out_dir=args.out_dir,
                   total_timesteps=args.total_timesteps)
    _report(result, time.time() - start)
    return 0


def _list(args, rest) -> int:
    from hystax import agents, envs
    from hystax.agents.bandits import ALGORITHMS
    from hystax.agents.bandits.lsd import ALGORITHMS as LSD_ALGORITHMS
    from hystax.agents.memory import MODELS
    from hystax.envs.continual_suites import suite_names
    from hystax.world_models import METHOD_NAMES, ONLINE_MODEL_NAMES

    sections = [
        ("agents", agents.names()),
        ("memory models (hystax train ppo --memory ...)", MODELS),
        ("bandit algorithms (hystax bandit dlb --algorithms ...)", ALGORITHMS),
        ("LSD bandit learners (hystax bandit lsd --algorithms ...)", LSD_ALGORITHMS),
        ("continual task suites (hystax train mbrl / hystax continual --suite ...)",
         suite_names()),
        ("continual world-model methods (hystax train mbrl / hystax continual --method ...)",
         METHOD_NAMES),
        ("Dyna world models (hystax train dyna --model ..., hystax losse dyna --models ...; "
         "none: model-free DQN)", ("none", *ONLINE_MODEL_NAMES)),
        ("environments", envs.names())]
    for title, names in sections:
        print(f"{title}:")
        for name in names:
            print(f"  {name}")
    return 0


def _train(args, rest) -> int:
    # the agent is the first word after `train`; config flags may follow it in any order
    args.agent = rest.pop(0) if rest and not rest[0].startswith("-") else None
    if args.help and not args.agent:
        args.train_parser.print_help()
        return 0
    if args.resume is None and args.agent is None:
        raise HystaxError("name an agent (hystax train ppo ...) or --resume RUN_DIR")
    if args.distributed:  # before anything touches a jax backend (importing gymnax does)
        _initialize_distributed(args)
    else:
        given = [f for f, v in (("--coordinator", args.coordinator),
                                ("--num-processes", args.num_processes),
                                ("--process-id", args.process_id)) if v is not None]
        if given:
            raise HystaxError(f"{', '.join(given)} need --distributed (else each process "
                              "would train alone)")
    from hystax import agents

    module = agents.get(args.agent) if args.agent else None
    args.env = args.env or getattr(module, "DEFAULT_ENV", "CartPole-v1")
    config_parser = _Parser(
        prog=f"hystax train {args.agent}", add_help=False,
        parents=[args.train_parser] if args.help else [],
        conflict_handler="resolve")
    group = config_parser.add_argument_group(f"{args.agent} config fields") if module else None
    fields = add_config_flags(group, module.Config) if module else []
    if module is None:  # --resume: the one setting a resume may change
        config_parser.add_argument("--total-timesteps", dest="total_timesteps", type=integer,
                                   help="run longer than the run's config.json says (PPO runs)")
        fields = ["total_timesteps"]
    if args.help:
        config_parser.print_help()
        return 0
    overrides_ns, unknown = config_parser.parse_known_args(rest)
    if unknown and module is None:
        raise HystaxError(f"a resume takes its settings from the run's config.json (only "
                          f"--total-timesteps may be given): drop {' '.join(unknown)}")
    if unknown:
        raise HystaxError(f"unrecognized arguments: {' '.join(unknown)}")
    overrides = {f: getattr(overrides_ns, f) for f in fields if getattr(overrides_ns, f) is not None}
    import time

    from hystax.runner import train
    from hystax.stopping import exit_code_of

    config = None  # the runner starts from the agent's preset for the env, if it has one
    if args.preset is not None and module is None:
        raise HystaxError(f"--{'' if args.preset else 'no-'}preset needs an agent (a resumed run "
                          "keeps its own config)")
    if args.preset is False:
        config = module.Config()
    elif args.preset:
        preset = getattr(module, "preset", lambda env, overrides: None)
        if preset(args.env, overrides) is None:
            raise HystaxError(f"{args.agent} has no preset for {args.env!r} (presets: "
                              f"{getattr(module, 'PRESET_NOTE', 'none')})")
    start = time.time()
    result = train(args.agent or "ppo", args.env, seeds=args.seeds, config=config, name=args.name,
                   out_dir=args.out_dir,
                   chunk_updates=args.chunk_updates, checkpoint_every=args.checkpoint_every,
                   devices=args.devices, resume=args.resume, progress=not args.no_progress,
                   env_params=env_param_overrides(args.env_param) or None, loggers=",".join(args.logger or ["csv"]),
                   **overrides)
    _report(result, time.time() - start)
    return exit_code_of(result)


def _initialize_distributed(args) -> None:
    import jax

    try:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes, process_id=args.process_id)
    except (ValueError, RuntimeError) as err:
        raise HystaxError(f"jax.distributed.initialize failed: {str(err).splitlines()[0]} "
                          "(outside Slurm/TPU/MPI pass --coordinator, --num-processes and "
                          "--process-id)") from None


def _report(result, seconds: float) -> None:
    import jax
    import numpy as np

    if jax.process_index() != 0:  # multi-host: process 0 reports (and writes) for all
        return
    returns = result.metrics.get("episode_return")
    if returns is not None and returns.size:
        tail = returns[:, -max(1, returns.shape[1] // 10):]
        per_seed = np.nanmean(tail, axis=1)
        seeds = f"{len(per_seed)} seed{'s' * (len(per_seed) != 1)}"
        print(f"final return (last 10% of updates), mean over {seeds}: "
              f"{np.nanmean(per_seed):.4g}  (per seed: "
              f"{', '.join(f'{x:.4g}' for x in per_seed)})")
        if np.isfinite(returns).any(axis=1).all():
            from hystax.core.stats import max_mean_episodic_return

            mmer = max_mean_episodic_return(returns)
            print(f"MMER (best per-update mean episode return), mean over seeds: "
                  f"{mmer.mean():.4g}  (per seed: {', '.join(f'{x:.4g}' for x in mmer)})")
    if result.agent is not None and not result.interrupted:
        from hystax import agents

        for line in getattr(agents.get(result.agent), "report_lines", lambda state: [])(
                result.state):
            print(line)
    if result.interrupted:
        print(f"interrupted: resume with `hystax train --resume {result.run_dir}`")
    if result.run_dir is not None:
        written = sorted(f.name + "/" * f.is_dir() for f in result.run_dir.iterdir()
                         if not f.name.startswith("."))
        print(f"wrote {result.run_dir}/ ({', '.join(written)}) in {seconds:.0f} s")


def _evaluate(args, rest) -> int:
    from hystax.run_evaluation import evaluate_run

    paths, summary = evaluate_run(
        args.run_dir, env=args.env, env_params=env_param_overrides(args.env_param) or None,
        episodes=args.episodes, deterministic=args.deterministic, step=args.step,
        seed=args.seed, record=args.record, max_steps=args.max_steps)
    print(summary)
    print(f"wrote {', '.join(p.name for p in paths)} in {paths[0].parent}/")
    return 0


def _plot(args, rest) -> int:
    from hystax.plots import plot_run_dirs

    for path in plot_run_dirs([Path(p) for p in args.run_dirs],
                              out_dir=Path(args.out_dir) if args.out_dir else None,
                              smooth=args.smooth):
        print(f"wrote {path}")
    return 0


def _add_experiment_command(sub, command: str, help: str) -> None:
    """``hystax COMMAND [EXPERIMENT] [its own flags]``: the experiment parses the rest itself
    (:mod:`hystax.experiments.experiment_registry` lists them)."""
    names = experiment_registry.names(command)
    if not names:  # one experiment: every flag is its own
        p = sub.add_parser(command, add_help=False, help=help,
                           usage=f"hystax {command} [options] (hystax {command} --help)")
        p.set_defaults(func=_experiment, group_parser=p)
        return
    p = sub.add_parser(command, add_help=False, help=help,
                       usage=f"hystax {command} {{{','.join(names)}}} [options] "
                             f"(hystax {command} {names[0]} --help)",
                       description=f"{help[0].upper()}{help[1:]}. Each experiment's own flags: "
                                   f"hystax {command} EXPERIMENT --help.")
    p.add_argument("experiment", nargs="?", choices=names, help="which experiment")
    p.set_defaults(func=_experiment, group_parser=p)


def _experiment(args, rest) -> int:
    key = args.command
    if experiment_registry.names(args.command):
        if args.experiment is None:  # `hystax icrl --help` is help; `hystax icrl` names nothing
            if {"-h", "--help"} & set(rest):
                args.group_parser.print_help()
                return 0
            args.group_parser.error(f"name an experiment: "
                                    f"{', '.join(experiment_registry.names(args.command))}")
        key = f"{args.command} {args.experiment}"
    return experiment_registry.experiment(key).cli(rest, prog=f"hystax {key}")


def _bench(args, rest) -> int:
    from hystax.rundir import create_run_dir

    run_dir = create_run_dir(args.out_dir, args.name, stem=args.what, overwrite=args.overwrite)
    experiment_registry.benchmark(args.what).main(quick=args.quick,
                                       out=str(run_dir / f"bench_{args.what}.json"),
                                       progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
