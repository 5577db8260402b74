"""Metric sinks beside metrics.csv (hystax/loggers.py): TensorBoard and W&B (offline) log the
seed-mean and per-seed values of every metric per update, a resume replaces the re-logged
updates (TensorBoard's purge step) and continues the same W&B run, bad input is one line."""

import json
import struct
import sys
import warnings

import numpy as np
import pytest

from hystax import loggers, rundir
from hystax.cli import main
from hystax.core.errors import HystaxError
from hystax.runner import train

pytest.importorskip("tensorboardX")
pytest.importorskip("wandb")

SMALL = {"total_timesteps": 4 * 16 * 6, "num_envs": 4, "num_steps": 16, "num_minibatches": 2,
         "update_epochs": 2, "hidden_sizes": (16,)}  # 6 updates
QUIET = {"progress": False, "plots": False}
METRICS = ("env_steps", "episode_return", "value_loss")


def _wandb_env(mp, root):
    """W&B offline with every file it writes under ``root``: nothing in ~, no network."""
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_PROJECT", "WANDB_ENTITY"):
        mp.delenv(name, raising=False)
    for name in ("HOME", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR",
                 "WANDB_ARTIFACT_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        mp.setenv(name, str(root / name.lower()))
    mp.setenv("NETRC", str(root / "no-netrc"))
    mp.setenv("WANDB_MODE", "offline")


def _crashed_and_resumed(root):
    """A 6-update run that crashed after update 3 (its checkpoint is at 2: update 3 is logged
    twice), resumed to the end with the loggers; ``(run_dir, W&B id before the resume)``."""
    def crash(done, metrics):
        if done == 3:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        train("ppo", "CartPole-v1", seeds=2, out_dir=root, name="run", chunk_updates=1,
              checkpoint_every=2, callback=crash, loggers="csv,tensorboard,wandb", **QUIET,
              **SMALL)
    run = root / "run"
    first_id = (run / loggers.WANDB_ID_FILE).read_text().strip()
    train(resume=run, loggers=["tensorboard", "wandb"], **QUIET)
    return run, first_id


def _expected(run):
    """metrics.csv as ``{tag: {step: value}}`` (finite values; step = update + 1)."""
    saved = rundir.read_metrics(run)
    steps = [int(u) + 1 for u in saved["update"]]
    out = {}
    for k in METRICS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no episode ended: all NaN
            columns = {"mean": np.nanmean(saved[k], axis=0),
                       **{f"seed_{s}": saved[k][i] for i, s in enumerate(saved["seed"])}}
        for name, values in columns.items():
            out[f"{k}/{name}"] = {s: float(v) for s, v in zip(steps, values) if np.isfinite(v)}
    return out


def _check(logged: dict, expected: dict):
    for tag, want in expected.items():
        got = logged.get(tag, {})
        assert sorted(got) == sorted(want), (tag, sorted(got), sorted(want))
        np.testing.assert_allclose([got[s] for s in sorted(want)],
                                   [want[s] for s in sorted(want)], rtol=1e-5, err_msg=tag)


# --- TensorBoard: a TFRecord reader (8-byte length, 4-byte crc, payload, 4-byte crc) --------

def _tensorboard_scalars(logdir):
    """``[(step, tag, value)]`` as TensorBoard shows them: files in name order, and a session
    start at step s (``purge_step``) hides what earlier files logged at steps >= s."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    scalars = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            if event.session_log.status == SessionLog.START:
                scalars = [x for x in scalars if x[0] < event.step]
            scalars += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
    return scalars


# --- W&B: a .wandb reader (7-byte header, then LevelDB-log records in 32 KiB blocks) ---------

def _wandb_flush():
    """``run.finish()`` returns before wandb-core has written all of the run's ``.wandb`` file
    (the stream closes in the background); ``wandb.teardown()`` waits for that."""
    import wandb

    wandb.teardown()


def _wandb_records(path):
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, payload = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's zero-padded tail
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk  # full, first / middle, last
        if kind in (1, 4):
            yield Record.FromString(payload)


def _wandb_history(folder):
    """``{tag: {step: value}}`` of one offline run folder."""
    history = {}
    for record in _wandb_records(next(folder.glob("run-*.wandb"))):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                     for item in record.history.item}
            for tag, value in items.items():
                history.setdefault(tag, {})[items["_step"]] = value
    return history


def test_a_crashed_run_resumed_logs_every_update_once(tmp_path, monkeypatch):
    _wandb_env(monkeypatch, tmp_path)
    run, first_id = _crashed_and_resumed(tmp_path)
    expected = _expected(run)
    assert sorted(expected["env_steps/mean"]) == list(range(1, 7))

    # TensorBoard: both sessions' files, update 3 shown once (the resumed session's)
    files = sorted((run / loggers.TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    assert len(files) == 2
    scalars = _tensorboard_scalars(run / loggers.TENSORBOARD_DIR)
    keys = [(step, tag) for step, tag, _ in scalars]
    assert len(keys) == len(set(keys))
    logged = {}
    for step, tag, value in scalars:
        logged.setdefault(tag, {})[step] = value
    _check(logged, expected)
    assert {"episode_return/seed_0", "episode_return/seed_1", "entropy/mean"} <= set(logged)

    # W&B: one offline run id, persisted in the run folder and continued by the resume
    _wandb_flush()
    assert (run / loggers.WANDB_ID_FILE).read_text().strip() == first_id
    folders = sorted((run / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all(f.name.endswith(f"-{first_id}") for f in folders)
    before, after = (_wandb_history(f) for f in folders)
    assert sorted(before["_step"]) == [1, 2, 3]  # crashed after update 3
    assert sorted(after["_step"]) == [3, 4, 5, 6]  # resumed from the checkpoint at 2
    _check({tag: {**before.get(tag, {}), **after.get(tag, {})} for tag in {*before, *after}},
           expected)
    config = {item.key: json.loads(item.value_json)
              for record in _wandb_records(next(folders[1].glob("run-*.wandb")))
              if record.WhichOneof("record_type") == "run" for item in record.run.config.update}
    assert config["agent"] == "ppo" and config["config"]["num_envs"] == 4  # config.json's


def test_wandb_without_an_api_key_logs_offline_and_says_how_to_sync(tmp_path, monkeypatch,
                                                                    capsys):
    _wandb_env(monkeypatch, tmp_path)
    monkeypatch.delenv("WANDB_MODE")
    sink = loggers.WandbLogger(tmp_path, {"agent": "ppo"})
    sink.write([0, 1], 0, {"env_steps": np.array([[4, 8], [4, 8]]),
                           "episode_return": np.array([[np.nan, 2.0], [np.nan, 4.0]])})
    sink.close()
    _wandb_flush()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "offline" in err[0] and "wandb sync" in err[0]
    history = _wandb_history(next((tmp_path / "wandb").glob("offline-run-*")))
    assert history["episode_return/mean"] == {2: 3.0}  # NaN (no episode ended) left out
    assert history["env_steps/seed_1"] == {1: 4, 2: 8}


# --- bad input: one line, before anything is written ----------------------------------------

def test_parse_loggers():
    assert loggers.parse_loggers("tensorboard") == ("csv", "tensorboard")  # csv always
    assert loggers.parse_loggers(["wandb", "csv", "tensorboard"]) == loggers.LOGGERS
    with pytest.raises(HystaxError, match=r"unknown logger 'tb'; choose from csv, tensorboard"):
        loggers.parse_loggers("csv,tb")
    with pytest.raises(HystaxError, match="comma-separated string or a list"):
        loggers.parse_loggers(3)


@pytest.mark.parametrize("name, package", [("tensorboard", "tensorboardX"), ("wandb", "wandb")])
def test_a_missing_package_is_one_line_before_anything_is_written(tmp_path, monkeypatch, name,
                                                                   package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails
    message = f"the {name} logger needs {package}: pip install 'hystax\\[{name}\\]'$"
    with pytest.raises(HystaxError, match=message):
        train("ppo", "CartPole-v1", out_dir=tmp_path, loggers=f"csv,{name}", **QUIET, **SMALL)
    assert not any(tmp_path.iterdir())


def test_loggers_need_a_run_folder():
    with pytest.raises(HystaxError, match="loggers need a run folder"):
        train("ppo", "CartPole-v1", out_dir=None, loggers="tensorboard", **QUIET, **SMALL)


def test_cli_unknown_logger_exits_2_with_one_line(tmp_path, capsys):
    code = main(["train", "ppo", "--logger", "nope", "--out-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown logger 'nope'" in err[0], err
    assert not any(tmp_path.iterdir())
