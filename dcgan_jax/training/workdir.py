"""The run's folder: created and checked writable before any work is done, its checkpoint folder
checked before orbax opens it, and locked while a run uses it."""

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator

import jax

from dcgan_jax import run_files
from dcgan_jax.errors import UserError

# What the run writes in its workdir, by kind: a folder where a file is found (or a file where a
# folder is) would fail at the run's first write, after the work before it.
_FOLDERS = (
    run_files.SAMPLES,
    *run_files.GRID_FOLDERS.values(),
    run_files.TENSORBOARD,
    run_files.CHECKPOINTS,
)
_FILES = (run_files.CONFIG, run_files.METRICS, run_files.LOSS_CURVE, run_files.LOCK)


def check_layout(workdir: str) -> None:
    """Refuses a workdir where a file the run writes is a folder, or a folder it writes is a file
    (e.g. `tensorboard` a file, `metrics.jsonl` a folder), naming it; touches nothing."""
    for name in _FOLDERS:
        path = run_files.path(workdir, name)
        if os.path.lexists(path) and not os.path.isdir(path):
            raise UserError(
                f"{path} is not a folder, but the run writes its {name} folder there; remove or "
                f"rename it, or pass another --workdir"
            )
    for name in _FILES:
        path = run_files.path(workdir, name)
        if os.path.isdir(path):
            raise UserError(
                f"{path} is a folder, but the run writes its {name} file there; remove or rename "
                f"it, or pass another --workdir"
            )


def prepare_workdir(workdir: str) -> None:
    """Checks workdir's layout, creates it and checks it is writable, before any work is done. A
    workdir refused here that did not exist before is not left behind."""
    check_layout(workdir)
    created = [
        folder
        for folder in (workdir, run_files.path(workdir, run_files.SAMPLES))
        if not os.path.lexists(folder)
    ]
    probe = run_files.path(
        workdir, f"{run_files.WRITE_TEST}.{jax.process_index()}"
    )  # every host checks; no two share a name
    try:
        os.makedirs(run_files.path(workdir, run_files.SAMPLES), exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(probe)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only if still empty
        raise UserError(
            f"workdir {workdir!r} is not writable ({e.strerror}); pass a writable --workdir"
        ) from None


@contextlib.contextmanager
def locked(workdir: str, say: Callable[[str], None] = print) -> Iterator[None]:
    """Holds workdir/.lock (an flock) for the run, so a second run on the same workdir stops with
    one line instead of overwriting the first's checkpoints and interleaving its metrics.

    The kernel drops an flock when its process dies, so a killed run's lock is taken over by the
    next run; the file still names the dead holder (a clean exit empties it), which the taker
    reports in one line. Only process 0 of a multi-process run locks: the others share its workdir
    by design.
    """
    if jax.process_index() != 0:
        yield
        return
    path = run_files.path(workdir, run_files.LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise UserError(
                f"workdir {workdir} is in use by {holder}; wait for that run to end (or stop it), or "
                f"pass another --workdir"
            ) from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            say(f"took over the lock of {previous}, which ended without releasing it")
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()} on host {socket.gethostname()} (since {time.ctime()})".encode(),
            0,
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean exit leaves no holder named
    finally:
        os.close(fd)  # releases the flock


def check_scores(workdir: str, metric: str | None = None) -> None:
    """Refuses, in one line, a checkpoint whose score file (orbax's `metrics`, e.g. {'fid': ...})
    is damaged: orbax reads every step's when a manager opens, to write or to read, and fails with
    a JSON traceback; a writer ranking by `metric` fails later, at its first save, on a file
    without a number for it."""
    directory = run_files.checkpoint_dir(workdir)
    names = os.listdir(directory) if os.path.isdir(directory) else []
    for step in sorted((n for n in names if n.isdigit()), key=int):
        path = os.path.join(directory, step, "metrics", "metrics")
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                scores = json.load(f)
        except (OSError, ValueError) as e:
            scores = e
        ranked = isinstance(scores, dict) and (
            metric is None or isinstance(scores.get(metric), int | float)
        )
        if not ranked:
            raise UserError(
                f"the score file {path} of checkpoint {step} is damaged; write the step's score "
                f'back (e.g. {{"fid": 12.3}}, from metrics.jsonl) or delete the file, and rerun '
                f"(the checkpoint is intact; without a score a run keeps it only among the latest)"
            )


def refuse_linked_steps(workdir: str) -> None:
    """Refuses, before a run starts, a step folder that is a symbolic link (e.g. to another run's
    checkpoint): the run deletes old steps as it saves new ones, and deleting a link fails every
    save (after the real steps before it are gone), or would reach into the other run."""
    directory = run_files.checkpoint_dir(workdir)
    names = os.listdir(directory) if os.path.isdir(directory) else []
    for link in sorted(os.path.join(directory, n) for n in names if n.isdigit()):
        if os.path.islink(link):
            target = os.path.realpath(link)
            source = f"{os.path.dirname(os.path.dirname(target))}:{os.path.basename(link)}"
            raise UserError(
                f"checkpoint step folder {link} is a symbolic link (to {target}): a step folder "
                f"must be a real folder, since the run deletes old steps; remove the link, and to "
                f"start a run from that checkpoint use --config.init_from={source}"
            )
