"""Every file the project writes goes to a temporary name beside its target and is renamed into place
when complete, so a kill, a full disk or a read-only folder never leaves a target half-written or
emptied: the old file (if any) stays until the new one is whole.

    with atomic_write.target(path) as tmp:   # write tmp (any writer: PIL, numpy, json, ...)
        image.save(tmp, format="PNG")

A failed write is one UserError naming the file, the reason (no space left, read-only file system,
name too long, ...) and the fix; the temporary file is removed.
"""

import contextlib
import errno
import itertools
import os
from collections.abc import Iterator

from dcgan_jax.errors import UserError

# Temporary names: `.partial-<pid>-<n><the target's extension>` beside the target (short, so any target
# name that fits fits; the extension kept for writers that read it, such as PIL and numpy).
PARTIAL = ".partial-"
_COUNTER = itertools.count()

_FIXES = {
    errno.ENOSPC: "free space and rerun",
    errno.EDQUOT: "free space (disk quota) and rerun",
    errno.EROFS: "write to a writable folder",
    errno.EACCES: "fix the folder's permissions or write elsewhere",
    errno.EPERM: "fix the folder's permissions or write elsewhere",
    errno.ENAMETOOLONG: "use a shorter file name",
    errno.EFBIG: "raise the file size limit or write a smaller file",
}


def partial_name(path: str) -> str:
    """A fresh temporary name for `path`, in its folder, to write before renaming into place."""
    folder, name = os.path.split(path)
    extension = os.path.splitext(name)[1]
    return os.path.join(folder, f"{PARTIAL}{os.getpid()}-{next(_COUNTER)}{extension}")


def is_partial(name: str) -> bool:
    """Whether the file name `name` is a temporary file of some writer (a kill leaves them behind)."""
    return name.startswith(PARTIAL)


def failure(path: str, error: OSError) -> UserError:
    """One line for a write of `path` that failed with `error`."""
    reason = error.strerror or type(error).__name__
    fix = _FIXES.get(error.errno, "check the path and rerun")
    return UserError(f"cannot write {path} ({reason}); {fix}")


@contextlib.contextmanager
def target(path: str) -> Iterator[str]:
    """Yields a temporary path to write; on success it replaces `path` (atomically, on the same
    file system), on any failure it is removed and an OSError becomes one UserError."""
    tmp = partial_name(path)
    try:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise failure(path, e) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    """`data` into `path`, atomically."""
    with target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    """`text` into `path`, atomically."""
    write_bytes(path, text.encode())


def check_writable(path: str) -> None:
    """Refuses, before any work, a file that cannot be written: a name longer than its folder's file
    system allows, a folder that cannot be created or written (read-only, full). The target itself
    is not touched. (A disk with a little room passes: the write itself is atomic, so the worst is a
    one-line failure later with nothing lost.)"""
    folder = os.path.dirname(os.path.abspath(path))
    probe = partial_name(path)
    try:
        os.makedirs(folder, exist_ok=True)
        limit = os.pathconf(folder, "PC_NAME_MAX")
        if len(os.path.basename(path).encode()) > limit:
            raise OSError(errno.ENAMETOOLONG, f"File name longer than {limit} bytes")
        with open(probe, "wb") as f:  # one byte: a full disk still creates empty files
            f.write(b"\0")
    except OSError as e:
        raise failure(path, e) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
