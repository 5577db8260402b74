"""The `hystax` command line: fast help, list, train/plot end to end, one-line errors."""

import os
import subprocess
import sys

import pytest

from hystax.cli import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hystax.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("args, heavy", [
    (["--help"], ("jax", "distrax", "tensorflow_probability", "optax", "orbax")),
    (["list"], ("distrax", "tensorflow_probability", "optax", "orbax")),
    (["train", "--help"], ("jax", "distrax", "tensorflow_probability", "optax", "orbax")),
    (["train", "ppo", "--help"], ("distrax", "tensorflow_probability", "orbax")),
])
def test_help_and_list_do_not_import_heavy_modules(args, heavy):
    code = ("import sys; from hystax.cli import main\n"
            "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in %r if m in sys.modules]\nprint('HEAVY', heavy)" % (args, heavy))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_list_names_agents_and_envs(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "ppo" in text and "CartPole-v1" in text and "Pendulum-v1" in text
    assert "dynlin-ucb-logT" in text and "dlb/real" in text and "popgym/RepeatFirstHard" in text


def test_train_help_lists_config_fields(capsys):
    assert main(["train", "ppo", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--lr", "--num-envs", "--hidden-sizes", "--anneal-lr", "--env", "--resume"):
        assert flag in text


@pytest.mark.parametrize("args, message", [
    (["train", "ppo", "--env", "cartpole"], "unknown env 'cartpole'; did you mean 'CartPole-v1'"),
    (["train", "ppoo"], "unknown agent 'ppoo'; did you mean 'ppo'"),
    (["train", "ppo", "--total-timesteps", "-5"], "total_timesteps must be a positive integer"),
    (["train", "ppo", "--num-minibatches", "3"], "not divisible by num_minibatches"),
    (["train", "ppo", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
    (["train", "ppo", "--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["train", "ppo", "--seeds", "x"], "argument --seeds: not an integer: 'x'"),
    (["train", "ppo", "--distributed"], "jax.distributed.initialize failed"),
    (["train", "ppo", "--env-param", "gravty=3"], "gravty"),
    (["train", "--resume", "nowhere"], "not a hystax run directory"),
    (["train", "ppo", "--env", "Acrobot-v1", "--preset"], "no preset for 'Acrobot-v1'"),
    (["icrl", "popgym", "--models", "s7"], "unknown memory model 's7'"),
    (["icrl", "atari"], "invalid choice: 'atari'"),
    (["plot", "nowhere"], "nowhere"),
    (["train", "ppo", "--memory", "s7"], "unknown memory model 's7'"),
    (["train", "ppo", "--memory", "foo"], "(valid: gru, lru, lstm, mingru, mlp, s4d, s5, s6)"),
    (["train", "dyna", "--model", "foo"], "unknown Dyna model 'foo'"),
    (["train", "ppo", "--process-id", "1"], "--process-id need --distributed"),
    (["train", "dyna", "--steps-per-update", "7"], "must be a multiple of steps_per_update (7)"),
    (["train", "dyna", "--env", "Pendulum-v1"], "Dyna-DQN needs a discrete action space"),
    (["train", "mbrl", "--suite", "pendulum-gravty"], "unknown task suite 'pendulum-gravty'"),
    (["train", "mbrl", "--method", "hypernet"], "unknown continual method 'hypernet'"),
    (["train", "mbrl", "--method", "ewc", "--beta", "0.1"], "method 'ewc' has none"),
    (["train", "mbrl", "--mpc-steps", "250"], "must be a multiple of episode_steps"),
    (["train", "mbrl", "--env-param", "g=3"], "do not apply to mbrl"),
    (["bandit"], "name an experiment: dlb, lsd"),
    (["train", "ppo", "--total-timesteps", "1e30"], "total_timesteps must be at most 2**31 - 1"),
    (["train", "ppo", "--env-param", "max_steps_in_episode=-5"],
     "max_steps_in_episode must be positive, got -5"),
    (["train", "ppo", "--name", "../x"], "name must be a folder name"),
    (["train", "ppo", "--env", "popgym/RepeatPreviousExtreme"],
     "unknown env 'popgym/RepeatPreviousExtreme'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    out = (_run(*args, "--out-dir", str(tmp_path / "runs")) if args[0] in ("train", "icrl")
           else _run(*args))
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], out.stderr[-2000:]
    assert lines[0].split(": error: ")[0] in ("hystax", f"hystax {' '.join(args[:2])}")
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()


def test_train_into_an_unwritable_out_dir_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = _run("train", "dyna", "--out-dir", str(blocker / "runs"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"hystax: error: cannot write to the output folder {blocker / 'runs'}: Not a directory"]


@pytest.mark.parametrize("group", ["bandit", "losse", "icrl"])
def test_experiment_group_help_exits_0(group):
    out = _run(group, "--help")
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    assert f"hystax {group} EXPERIMENT --help" in " ".join(out.stdout.split())


def test_list_into_a_closed_pipe_ends_quietly():
    """`hystax list | head -1`: the reader is gone before the first write; no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    out = subprocess.run([sys.executable, "-m", "hystax.cli", "list"], stdout=write_end,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert out.returncode == 1 and out.stderr == "", out.stderr[-2000:]


def test_list_names_the_memory_models(capsys):
    from hystax.agents.memory import MODELS

    assert main(["list"]) == 0
    text = capsys.readouterr().out
    section = text.split("memory models")[1].split(":", 1)[1]
    assert all(f"  {m}\n" in section for m in MODELS)


def test_train_then_plot_end_to_end(tmp_path):
    out = _run("train", "ppo", "--env", "CartPole-v1", "--seeds", "2", "--total-timesteps", "2048",
               "--num-steps", "64", "--name", "t", "--out-dir", str(tmp_path), "--no-progress",
               "--lr", "1e-3", "--hidden-sizes", "32,32")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "final return" in out.stdout
    run = tmp_path / "t"
    assert (run / "metrics.csv").is_file() and (run / "returns.png").stat().st_size > 5000
    config = (run / "config.json").read_text()
    assert '"lr": 0.001' in config and '"num_steps": 64' in config
    (run / "returns.png").unlink()
    out = _run("plot", str(run))
    assert out.returncode == 0 and (run / "returns.png").is_file()


def test_demo_trains_cartpole_and_writes_csv_and_png(tmp_path):
    out = _run("demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert f"wrote runs/{run.name}/" in out.stdout
    assert {"config.json", "metrics.csv", "returns.png", "checkpoints"} <= {p.name for p in run.iterdir()}
    final = float(out.stdout.split("mean over 4 seeds:")[1].split()[0])
    assert final >= 475, out.stdout


@pytest.mark.slow  # the default run starts two real processes: tests/test_multihost.py
def test_distributed_single_process_run(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run("train", "ppo", "--distributed", "--coordinator", f"127.0.0.1:{port}",
               "--num-processes", "1", "--process-id", "0", "--total-timesteps", "1024",
               "--num-steps", "64", "--out-dir", str(tmp_path), "--name", "d", "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "d" / "metrics.csv").is_file()


@pytest.mark.slow  # the preset's resolution: test_runner, in the default run
def test_train_recurrent_ppo_on_popgym_starts_from_its_preset(tmp_path, capsys):
    assert main(["train", "ppo", "--memory", "gru", "--env", "popgym/RepeatPreviousEasy",
                 "--seeds", "2", "--total-timesteps", "4096", "--d-model", "16",
                 "--name", "rp", "--out-dir", str(tmp_path), "--no-progress"]) == 0
    config = (tmp_path / "rp" / "config.json").read_text()
    assert '"model": "gru"' in config and '"num_envs": 16' in config  # preset + override
    assert (tmp_path / "rp" / "returns.png").is_file()
    assert "MMER" in capsys.readouterr().out


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    """SIGTERM (a scheduler's stop) is Ctrl-C: finish the chunk, save, exit 128 + 15."""
    import signal
    import time

    cmd = [sys.executable, "-m", "hystax.cli", "train", "ppo", "--total-timesteps", "1e6",
           "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2", "--chunk-updates",
           "1", "--checkpoint-every", "1000", "--out-dir", str(tmp_path), "--name", "r",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (tmp_path / "r" / "metrics.csv").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines() == ["hystax: stopping after this chunk and saving a "
                                        "checkpoint (SIGTERM again to exit at once)"]
    assert f"resume with `hystax train --resume {tmp_path / 'r'}`" in out
    steps = [p.name for p in (tmp_path / "r" / "checkpoints").iterdir()]
    assert len(steps) == 1 and steps[0].isdigit()
    # a resume with changed settings is one line (it was a wall of orbax tracebacks)
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    again = _run("train", "--resume", str(tmp_path / "r"), "--seeds", "3")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        "hystax: error: resume takes its settings from the run's config.json (only a "
        "larger total_timesteps may be given); drop seeds"]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == files


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_second_signal_exits_at_once_with_one_line(signum):
    code = ("import os, signal, time\nfrom hystax.stopping import StopRequests\n"
            "with StopRequests() as stop:\n"
            f"    os.kill(os.getpid(), signal.{signum})\n    assert stop.requested\n"
            f"    os.kill(os.getpid(), signal.{signum})\n    time.sleep(5)\n"
            "print('not reached')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    import signal

    assert out.returncode == 128 + getattr(signal, signum) and out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if line]
    assert len(lines) == 2 and lines[1].startswith(f"hystax: {signum} again: exiting now")


def test_an_unexpected_error_is_one_line_and_exit_1_unless_debug(monkeypatch, capsys):
    import hystax.cli as cli

    def broken(args, rest):
        raise RuntimeError("orbax says no\n  and a long story")

    monkeypatch.setattr(cli, "_list", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hystax: internal error: RuntimeError: orbax says no (run again with --debug "
                   "for the traceback)"]
    with pytest.raises(RuntimeError, match="orbax says no"):
        main(["list", "--debug"])
