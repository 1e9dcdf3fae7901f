"""What a training run writes in its workdir ends as promised on hostile disks, and a resume leaves no
gaps: every writer (sample grids, config.json, metrics.jsonl, the TensorBoard event file, the workdir
itself) against a full disk, a read-only folder and a too-long name is one UserError naming the file,
with nothing saved changed; a workdir whose files are folders (or folders files) is refused before any
work; after a kill and a resume, every checkpointed step has its grids, metrics row and TensorBoard
events, once."""

import contextlib
import errno
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2

from dcgan_jax import population, run_files, train
from dcgan_jax.errors import UserError
from dcgan_jax.training import reporting, workdir
from tests import hostile
from tests.helpers import (
    TINY_FLAGS,
    one_line_error,
    run_cli,
    tiny_config,
    tree_digest,
)

METRICS = {"d_loss": 1.25, "g_loss": 0.75, "d_real": 0.5, "d_fake": 0.25, "finite": 1.0}
REASONS = {"full": "No space left on device", "readonly": "Read-only file system"}


def _images():
    return np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)


def _reporter(path, start_step=0):
    return reporting.Reporter(str(path), start_step, 10, 4)


def _event_files(path):
    folder = os.path.join(str(path), run_files.TENSORBOARD)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def _sizes(paths):
    return [os.path.getsize(p) for p in paths]


def _redirect(work, name, folder):
    """workdir/name made a link into the hostile `folder`: that part of the run's output on a
    full or read-only disk."""
    target = os.path.join(work, name)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.symlink(folder, target)


# Writers against hostile folders -----------------------------------------------------------------


@hostile.needs_root
@pytest.mark.parametrize("kind", ["full", "readonly"])
def test_a_failed_grid_write_is_one_line_and_leaves_no_file(tmp_path, kind):
    work = tmp_path / "run"
    reporter = _reporter(work)
    events = _event_files(work)
    before = _sizes(events)
    with hostile.hostile_folder(tmp_path, kind) as folder:
        _redirect(work, run_files.SAMPLES, folder)
        with pytest.raises(UserError, match=rf"cannot write .*step_00000002.png \({REASONS[kind]}"):
            reporter.samples(2, _images())
        assert hostile.unchanged(folder)
        assert not os.path.exists(os.path.join(folder, "step_00000002.png"))
    assert _sizes(events) == before  # no TensorBoard image for a grid that was not saved


@hostile.needs_root
@pytest.mark.parametrize("kind", ["full", "readonly"])
def test_a_failed_metrics_row_is_one_line_and_leaves_no_file(tmp_path, kind):
    work = tmp_path / "run"
    reporter = _reporter(work)
    with hostile.hostile_folder(tmp_path, kind) as folder:
        os.symlink(os.path.join(folder, run_files.METRICS), work / run_files.METRICS)
        with pytest.raises(UserError, match=rf"cannot write .*metrics.jsonl \({REASONS[kind]}"):
            reporter.scalars(2, METRICS)
        assert hostile.unchanged(folder)
        assert not os.path.exists(os.path.join(folder, run_files.METRICS))


@hostile.needs_root
@pytest.mark.parametrize("kind", ["full", "readonly"])
def test_a_tensorboard_folder_that_cannot_be_written_stops_the_start_in_one_line(tmp_path, kind):
    work = tmp_path / "run"
    work.mkdir()
    with hostile.hostile_folder(tmp_path, kind) as folder:
        _redirect(str(work), run_files.TENSORBOARD, folder)
        with pytest.raises(
            UserError, match=rf"cannot write .*events.out.tfevents.* \({REASONS[kind]}"
        ):
            _reporter(work)
        assert hostile.unchanged(folder)
        assert not [name for name in os.listdir(folder) if name.startswith("events")]


@hostile.needs_root
@pytest.mark.parametrize("kind", ["full", "readonly"])
def test_a_failed_config_json_write_is_one_line_and_keeps_nothing_half_written(tmp_path, kind):
    with hostile.hostile_folder(tmp_path, kind) as folder:
        with pytest.raises(UserError, match=rf"cannot write .*config.json \({REASONS[kind]}"):
            reporting.write_config(folder, tiny_config().to_json(indent=2))
        assert hostile.unchanged(folder)
        assert not os.path.exists(os.path.join(folder, run_files.CONFIG))


def test_config_json_is_replaced_whole(tmp_path):
    reporting.write_config(str(tmp_path), '{"old": 1}')
    reporting.write_config(str(tmp_path), '{"new": 2}')
    assert json.loads((tmp_path / run_files.CONFIG).read_text()) == {"new": 2}
    assert os.listdir(tmp_path) == [run_files.CONFIG]


@hostile.needs_root
@pytest.mark.parametrize("kind", hostile.KINDS)
def test_a_workdir_on_a_hostile_disk_is_refused_before_any_work(tmp_path, kind):
    with hostile.hostile_folder(tmp_path, kind) as folder:
        path = os.path.join(folder, hostile.target_name(kind, "run"))
        reason = {**REASONS, "too_long": "File name too long"}[kind]
        with pytest.raises(UserError, match=rf"is not writable \({reason}\); pass a writable"):
            workdir.prepare_workdir(path)
        assert hostile.unchanged(folder) and not os.path.exists(path)


@contextlib.contextmanager
def _disk_fills_at(monkeypatch, path, size):
    """Writes to the file `path` stop when it holds `size` bytes: the write that reaches it is cut
    short, the next one fails (EFBIG), as a disk filling up mid-write would. (os.write is wrapped
    for this file only: an RLIMIT_FSIZE would limit every file of the test process, and a library
    writing meanwhile was left with a cut-short file that later crashed the process.)"""
    inode, real_write = os.stat(path).st_ino, os.write

    def write(fd, data):
        if os.fstat(fd).st_ino != inode:
            return real_write(fd, data)
        room = size - os.fstat(fd).st_size
        if room <= 0:
            raise OSError(errno.EFBIG, "File too large")
        return real_write(fd, bytes(data[:room]))

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        yield


def test_an_append_cut_short_leaves_metrics_and_events_as_they_were(tmp_path, monkeypatch):
    reporter = _reporter(tmp_path)
    reporter.scalars(2, METRICS)
    metrics = tmp_path / run_files.METRICS
    (events,) = _event_files(tmp_path)
    saved_metrics, saved_events = metrics.read_bytes(), open(events, "rb").read()
    with _disk_fills_at(
        monkeypatch, str(metrics), len(saved_metrics) + 10
    ):  # a row starts, then the disk is "full"
        with pytest.raises(UserError, match=r"cannot write .*metrics.jsonl \(File too large\)"):
            reporting.append_line(str(metrics), json.dumps({"step": 4, **METRICS}))
    assert metrics.read_bytes() == saved_metrics
    reporter.writer.scalar("train/d_loss", 1.0, 4)
    reporter.writer.scalar("train/g_loss", 1.0, 4)
    with _disk_fills_at(monkeypatch, events, len(saved_events) + 10):
        with pytest.raises(
            UserError, match=r"cannot write .*events.out.tfevents.*\(File too large"
        ):
            reporter.writer.flush()
    assert open(events, "rb").read() == saved_events
    reporter.scalars(6, METRICS)  # the next rows follow whole rows
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [2, 6]
    accumulator = EventAccumulator(str(tmp_path / run_files.TENSORBOARD))
    accumulator.Reload()
    assert [s.step for s in accumulator.Scalars("train/d_loss")] == [2, 6]


# A workdir whose files are folders, or folders files ----------------------------------------------

LAYOUTS = [
    (run_files.TENSORBOARD, "file"),
    (run_files.SAMPLES, "file"),
    (run_files.CHECKPOINTS, "file"),
    (run_files.METRICS, "folder"),
    (run_files.CONFIG, "folder"),
    (run_files.LOSS_CURVE, "folder"),
]


def _block(work, name, kind):
    path = work / name
    if kind == "file":
        path.write_text("not a folder")
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("name, kind", LAYOUTS)
def test_a_workdir_entry_of_the_wrong_kind_is_refused_naming_it(tmp_path, name, kind):
    work = tmp_path / "run"
    work.mkdir()
    path = _block(work, name, kind)
    before = tree_digest(work)
    with pytest.raises(UserError, match=rf"{path}.*; remove or rename it"):
        workdir.prepare_workdir(str(work))
    assert tree_digest(work) == before and os.listdir(work) == [name]


@pytest.mark.parametrize(
    "name, kind", [(run_files.TENSORBOARD, "file"), (run_files.METRICS, "folder")]
)
def test_main_refuses_a_workdir_entry_of_the_wrong_kind_before_any_work(tmp_path, name, kind):
    work = tmp_path / "run"
    work.mkdir()
    path = _block(work, name, kind)
    before = tree_digest(work)
    result = run_cli(
        "dcgan_jax.main", f"--workdir={work}", *TINY_FLAGS, "--config.num_train_steps=2"
    )
    one_line_error(result, str(path), "remove or rename it")
    assert tree_digest(work) == before and os.listdir(work) == [name]


# Resume without gaps ---------------------------------------------------------------------------------

CONFIG = dict(num_train_steps=6, keep_checkpoints=5, sample_random_z=True, num_fixed_samples=4)


def _grid(work, z, step):
    with Image.open(run_files.grid_file(str(work), z, step)) as image:
        return np.asarray(image)


def _rows(work):
    with open(work / run_files.METRICS) as f:
        return [json.loads(line)["step"] for line in f]


def _tensorboard(work):
    accumulator = EventAccumulator(
        str(work / run_files.TENSORBOARD), size_guidance={"scalars": 0, "images": 0}
    )
    accumulator.Reload()
    return accumulator


def _starts(path):
    return [
        event.step
        for event in event_file_loader.EventFileLoader(path).Load()
        if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START
    ]


def test_a_run_killed_before_a_checkpoint_resumes_without_gaps_or_repeats(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train.train_and_evaluate(tiny_config(**CONFIG), str(straight))
    # A run of CONFIG killed inside step 4's writes (after its metrics row, TensorBoard scalars and
    # fixed-z grid, before its random-z grid and its checkpoint), in a forked process of its own.
    result = run_cli("tests.training.killed_run_driver", str(killed), json.dumps(CONFIG))
    assert result.returncode == 9, result.stderr[-3000:]
    assert sorted(os.listdir(killed / run_files.CHECKPOINTS)) == ["2"]
    assert _rows(killed) == [2, 4]  # step 4's row was written before the kill
    (dead_events,) = _event_files(killed)

    train.train_and_evaluate(tiny_config(**CONFIG), str(killed))

    steps = [2, 4, 6]
    assert sorted(int(s) for s in os.listdir(killed / run_files.CHECKPOINTS)) == steps
    assert _rows(killed) == steps  # each once: the dead run's row of step 4 was replaced
    for z in ("fixed", "random"):
        assert [s for s, _ in run_files.grid_files(str(killed), z)] == steps
        for step in steps:  # the replayed steps draw what the uninterrupted run drew
            np.testing.assert_array_equal(_grid(killed, z, step), _grid(straight, z, step))
    events = _tensorboard(killed)
    assert [s.step for s in events.Scalars("train/d_loss")] == steps
    assert [s.step for s in events.Images("samples")] == steps
    assert [s.step for s in events.Images("samples_random_z")] == steps
    (resumed_events,) = [p for p in _event_files(killed) if p != dead_events]
    # the first step the resumed run trains: TensorBoard drops the dead run's events from it on
    assert _starts(resumed_events) == [3] and _starts(dead_events) == []


def test_missing_or_damaged_grids_of_kept_checkpoints_are_rewritten_at_resume(tmp_path, capsys):
    config = tiny_config(**{**CONFIG, "num_train_steps": 4})
    train.train_and_evaluate(config, str(tmp_path))
    saved = {(z, s): _grid(tmp_path, z, s) for z in ("fixed", "random") for s in (2, 4)}
    # What older versions left: a run killed after checkpoint 4 before its grid, a grid whose
    # write failed (0 bytes), a grid cut short.
    os.remove(run_files.grid_file(str(tmp_path), "fixed", 4))
    open(run_files.grid_file(str(tmp_path), "random", 4), "wb").close()
    path = run_files.grid_file(str(tmp_path), "fixed", 2)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    capsys.readouterr()

    config.num_train_steps = 6
    train.train_and_evaluate(config, str(tmp_path))

    out = capsys.readouterr().out
    assert "rewrote the missing or damaged sample grids of step 2" in out
    assert "rewrote the missing or damaged sample grids of step 4" in out
    for (z, step), grid in saved.items():
        np.testing.assert_array_equal(_grid(tmp_path, z, step), grid)
    for z in ("fixed", "random"):
        assert [s for s, _ in run_files.grid_files(str(tmp_path), z)] == [2, 4, 6]


def test_a_populations_missing_member_grids_are_rewritten_at_resume(tmp_path, capsys):
    config = tiny_config(**{**CONFIG, "num_train_steps": 4})
    config.population.size, config.population.seeds = 2, "3,5"
    config.population.vary = "optim.ema_decay=0,0.9"  # member 1 draws from its moving average
    train.train_and_evaluate(config, str(tmp_path))
    folders = [population.member_dir(str(tmp_path), i) for i in range(2)]
    saved = {
        (i, z, s): _grid(folder, z, s)
        for i, folder in enumerate(folders)
        for z in ("fixed", "random")
        for s in (2, 4)
    }
    assert not np.array_equal(saved[0, "fixed", 4], saved[1, "fixed", 4])
    os.remove(run_files.grid_file(folders[1], "fixed", 4))
    open(run_files.grid_file(folders[0], "random", 2), "wb").close()
    capsys.readouterr()

    config.num_train_steps = 6
    train.train_and_evaluate(config, str(tmp_path))

    out = capsys.readouterr().out
    assert "rewrote the missing or damaged sample grids of member 0 of step 2" in out
    assert "rewrote the missing or damaged sample grids of member 1 of step 4" in out
    assert out.count("rewrote") == 2
    for (i, z, step), grid in saved.items():
        np.testing.assert_array_equal(_grid(folders[i], z, step), grid)
    for folder in folders:
        assert [s for s, _ in run_files.grid_files(folder, "fixed")] == [2, 4, 6]
