"""Parallel decoding: an order-preserving map over a pool of worker processes.

Why processes (concurrent.futures + 'spawn') rather than threads, tf.data or grain: decoding a 64 px
training image is ~2-3 ms of Pillow work plus Python glue that holds the GIL, so only processes
scale it to all cores; 'spawn' because forking a process that already runs JAX's threads can
deadlock; the standard library because the order of the results must be exactly the order of the
requests (data order = f(seed, step), for bit-exact resume), which a bounded window of futures gives
directly, with no extra dependency and no TensorFlow in the workers. The source is sent to each
worker once (pool initializer), never with every task.

No worker outlives its parent: each one watches its parent's pid (a daemon thread) and ends itself
when the parent is gone, kill -9 included, which no handler in the parent could cover; and each
ignores SIGINT (a Ctrl-C reaches the whole process group), leaving it to the parent, which stops the
pool. Once the workers are gone, multiprocessing's resource_tracker, whose pipe they held too, ends.
"""

import collections
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

from dcgan_jax.data import sources

_WORKER_SOURCE = None  # the source of this worker process, set once by the pool initializer
PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent still lives


def num_workers(requested: int) -> int:
    """config.data.num_data_workers resolved: 0 means every core this process may run on."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _set_worker_source(source: Any) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _watch_parent(parent_pid: int) -> None:
    """Ends this worker at once when its parent is gone (the parent's pid is no longer ours: the
    orphan was adopted by init or a subreaper)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _start_worker(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    """The pool initializer of every worker: the parent watch and SIGINT left to the parent, then
    the caller's own initializer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _read_from_worker_source(indices):
    return sources.read_chunk(_WORKER_SOURCE, indices)


def ordered_map(
    fn: Callable,
    items: Iterable,
    workers: int,
    ahead: int,
    initializer: Callable | None = None,
    initargs: tuple = (),
) -> Iterator:
    """fn(item) for each item, in order; with workers > 1, up to `ahead` items run ahead in a
    process pool.

    fn (and initializer) must be importable module-level functions; with workers <= 1 everything
    runs here.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)
        return
    pool = futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    pending = collections.deque()
    finished = False
    try:
        iterator = iter(items)
        for item in iterator:
            pending.append(pool.submit(fn, item))
            if len(pending) >= max(ahead, 1):
                break
        while pending:
            result = pending.popleft().result()
            for item in iterator:
                pending.append(pool.submit(fn, item))
                break
            yield result
        finished = True
    finally:
        # Stopped early (an error, a signal, the consumer done): nobody will read the results of the
        # tasks already handed to the workers (up to workers + 1 of them, seconds each for 256 large
        # images), so the workers are ended now rather than after those. ProcessPoolExecutor has no
        # public way to do so before Python 3.14 (terminate_workers). They are ended first, then the
        # pool is shut down waiting for its manager thread: one left running closes its wake-up
        # pipe while the interpreter's exit hook writes to it (CPython 3.11), which prints an
        # OSError traceback after prepare's one-line "stopped by SIGTERM".
        if not finished:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def read_source(source: Any, index_chunks: Iterable, workers: int, ahead: int) -> Iterator:
    """sources.read_chunk(source, chunk) for each chunk of indices, in order, decoded on `workers`
    processes."""
    if workers <= 1:
        return (sources.read_chunk(source, chunk) for chunk in index_chunks)
    return ordered_map(
        _read_from_worker_source,
        index_chunks,
        workers,
        ahead,
        initializer=_set_worker_source,
        initargs=(source,),
    )
