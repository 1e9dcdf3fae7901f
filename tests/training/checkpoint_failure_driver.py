"""Runs `python -m dcgan_jax.main` in a process whose checkpoint writes fail:
`python -m tests.training.checkpoint_failure_driver MODE WORKDIR FLAGS...` (tests/helpers.run_cli).

MODE 'file_size': files over 100 kB cannot be written (RLIMIT_FSIZE; Python ignores SIGXFSZ, so the write fails
with EFBIG inside orbax's writer threads, as on a full disk). MODE 'disk_full': the disk reports 1 kB free."""

import collections
import resource
import shutil
import sys

from dcgan_jax.cli import main as cli_main

mode, workdir, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "file_size":
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
elif mode == "disk_full":
    usage = collections.namedtuple("usage", "total used free")
    shutil.disk_usage = lambda path: usage(10**9, 10**9 - 1000, 1000)
else:
    raise SystemExit(f"unknown mode {mode}")
sys.argv = ["main", f"--workdir={workdir}", *flags]
cli_main.run()
