"""A prepare run that stops early leaves nothing behind: SIGTERM and SIGINT mid-way remove the partial cache and keep
the old one; what a killed run left (CACHE.partial-<pid>, CACHE.old-<pid>) is cleaned up by the next run once that
pid is dead, and an old cache renamed aside is put back; unreadable images are reported by kind."""

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from dcgan_jax.data import prepare
from dcgan_jax.errors import UserError
from tests.data.image_files import data_config, random_images, write_folder
from tests.helpers import tree_digest


def _folder_config(folder, count=6, seed=3):
    write_folder(str(folder), random_images(count, 40, 36, seed=seed))
    return data_config(dataset="image_folder", data_path=str(folder), image_size=32, num_channels=3)


def _write(config, output):
    return prepare.write_cache(config.data, 32, 3, str(output))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_way_removes_the_partial_cache_and_keeps_the_old_one(
    tmp_path, monkeypatch, signum, status
):
    output = tmp_path / "cache"
    _write(_folder_config(tmp_path / "old"), output)
    before = tree_digest(str(output))
    config = _folder_config(tmp_path / "new", count=600, seed=4)  # 3 chunks of 256

    class Bar:  # the progress bar: a signal arrives after the first chunk is written
        def update(self, n):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(prepare.progress_bars, "bar", lambda **kw: contextlib.nullcontext(Bar()))
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(prepare.Stopped) as stopped:
        _write(config, output)
    message = str(stopped.value)
    assert message.startswith(f"stopped by {signal.Signals(signum).name} before the cache")
    assert f"the cache at {output} is unchanged" in message and "\n" not in message
    assert stopped.value.exit_status == status
    assert tree_digest(str(output)) == before and sorted(os.listdir(tmp_path)) == [
        "cache",
        "new",
        "old",
    ]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers


def test_leftovers_of_dead_runs_are_removed_and_a_live_runs_kept(tmp_path, capsys):
    output = tmp_path / "cache"
    config = _folder_config(tmp_path / "folder")
    _write(config, output)
    dead, live = _dead_pid(), subprocess.Popen(["sleep", "60"])
    try:
        for name in (f"cache.partial-{dead}", f"cache.old-{dead}", f"cache.partial-{live.pid}"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "images.u8").write_bytes(b"x" * 1000)
        capsys.readouterr()
        _write(config, output)
        lines = capsys.readouterr().err.strip().splitlines()
        assert sorted(os.listdir(tmp_path)) == ["cache", f"cache.partial-{live.pid}", "folder"]
        assert lines == [
            f"cleaned up after an interrupted prepare in {tmp_path}: removed cache.old-{dead}, "
            f"cache.partial-{dead}"
        ]
    finally:
        live.kill()
        live.wait()


def test_an_old_cache_renamed_aside_by_a_killed_run_is_put_back(tmp_path, capsys):
    """A kill between _swap's two renames leaves no cache at --output, the old one at CACHE.old-<pid> and the complete
    new one at CACHE.partial-<pid>: the old one is the user's, and comes back even if this run then fails."""
    config = _folder_config(tmp_path / "folder")
    dead = _dead_pid()
    _write(config, tmp_path / f"cache.old-{dead}")
    before = tree_digest(str(tmp_path / f"cache.old-{dead}"))
    _write(config, tmp_path / f"cache.partial-{dead}")
    config.data.data_path = str(tmp_path / "missing")
    capsys.readouterr()
    with pytest.raises(UserError, match="missing"):
        _write(config, tmp_path / "cache")
    assert sorted(os.listdir(tmp_path)) == ["cache", "folder"]
    assert tree_digest(str(tmp_path / "cache")) == before
    assert f"removed cache.partial-{dead}; put back the cache cache.old-{dead} as cache" in (
        capsys.readouterr().err
    )


def test_info_and_duplicates_are_written_atomically(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(
        prepare.atomic_write,
        "write_text",
        lambda path, text: written.append(os.path.basename(path)),
    )
    config = _folder_config(tmp_path / "folder")
    prepare.write_cache(config.data, 32, 3, str(tmp_path / "cache"), dedup=lambda images: {})
    assert written == ["duplicates.json", "info.json"]
