"""Hostile places to write, shared by the tests of every writer: a full disk (a small tmpfs), a read-only
folder (a tmpfs remounted read-only, since root ignores permission bits) and a name longer than the file
system allows. Each yields a folder holding `old.bin`, a file written before the folder turned hostile, so a
test can check that a failed write leaves what was saved unchanged.

Mounting needs root, which CI (and the development machine) have; elsewhere these tests are skipped with that
reason."""

import contextlib
import os
import subprocess

import pytest

KINDS = ("full", "readonly", "too_long")
OLD = "old.bin"
OLD_BYTES = b"saved before" * 100
NAME_MAX = 255


def can_mount() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")


def _mount(folder: str, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], check=True)


def _fill(folder: str) -> None:
    """Writes until the tmpfs is full (tmpfs counts whole pages, so a few bytes may stay free)."""
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


@contextlib.contextmanager
def hostile_folder(base, kind: str):
    """A folder under `base` (e.g. pytest's tmp_path) of the given kind ('full', 'readonly', 'too_long'),
    holding OLD; for 'too_long' a normal folder (the hostility is in the name: see `target_name`)."""
    folder = os.path.join(str(base), f"hostile_{kind}")
    os.makedirs(folder, exist_ok=True)
    if kind == "too_long":
        with open(os.path.join(folder, OLD), "wb") as f:
            f.write(OLD_BYTES)
        yield folder
        return
    _mount(folder, "256k")
    try:
        with open(os.path.join(folder, OLD), "wb") as f:
            f.write(OLD_BYTES)
        if kind == "full":
            _fill(folder)
        elif kind == "readonly":
            subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
        else:
            raise ValueError(kind)
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


def target_name(kind: str, name: str) -> str:
    """The file name a writer is given in a hostile folder: `name` itself, or for 'too_long' `name` padded
    past NAME_MAX (extension kept)."""
    if kind != "too_long":
        return name
    stem, ext = os.path.splitext(name)
    return stem + "x" * (NAME_MAX + 1 - len(name)) + ext


def unchanged(folder: str) -> bool:
    """Whether OLD is still whole and no temporary file was left beside it."""
    with open(os.path.join(folder, OLD), "rb") as f:
        whole = f.read() == OLD_BYTES
    leftovers = [n for n in os.listdir(folder) if ".partial-" in n]
    return whole and not leftovers
