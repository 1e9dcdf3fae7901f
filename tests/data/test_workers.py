"""Decode worker processes never outlive their parent: a `kill -9` of the reading process ends its workers and
multiprocessing's resource_tracker too."""

import os
import signal
import subprocess
import sys

from tests.data.image_files import random_images, write_folder
from tests.data.processes import children, command_line, wait_gone
from tests.helpers import REPO

# Reads an image folder on 2 worker processes for ever, saying so after the first chunk.
READER = """
import sys
from dcgan_jax.data import sources, workers
source = sources.ImageFolderSource(sys.argv[1], 32, 3)
chunks = ([i % len(source)] for i in range(10**9))
for n, _ in enumerate(workers.read_source(source, chunks, 2, 4)):
    if n == 0:
        print("reading", flush=True)
"""


def test_kill_9_of_the_reader_ends_its_workers_and_the_resource_tracker(tmp_path):
    write_folder(str(tmp_path / "images"), random_images(8, 40, 40))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path / "images")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        started = children(reader.pid)
        names = [command_line(pid) for pid in started]
        assert sum("spawn_main" in n for n in names) == 2, names
        assert any("resource_tracker" in n for n in names), names
        os.kill(reader.pid, signal.SIGKILL)
        reader.wait(timeout=30)
        assert wait_gone(started, timeout=30) == []
    finally:
        if reader.poll() is None:
            reader.kill()


def test_a_map_stopped_early_leaves_no_pool_thread_or_worker_behind():
    # A manager thread still running at exit races the interpreter's exit hook for its wake-up pipe
    # (CPython 3.11): an OSError traceback after prepare's one-line "stopped by SIGTERM".
    import math
    import threading

    from dcgan_jax.data import workers

    before = set(threading.enumerate())
    mapped = workers.ordered_map(math.sqrt, [float(i) for i in range(1000)], 2, 4)
    assert [next(mapped) for _ in range(3)] == [0.0, 1.0, math.sqrt(2.0)]
    started = children(os.getpid())
    assert sum("spawn_main" in command_line(pid) for pid in started) == 2
    mapped.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
    assert wait_gone([p for p in started if "spawn_main" in command_line(p)], timeout=30) == []
