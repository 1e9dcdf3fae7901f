"""Writes a prepared cache once, so training reads preprocessed images at memory speed instead of
decoding them.

  python -m dcgan_jax.prepare --config=configs/lsun.py --config.data.dataset=lsun_lmdb \\
      --config.data.data_path=/data/bedroom_train_lmdb --output=/data/lsun_bedroom_64
  python -m dcgan_jax.main --config=configs/lsun.py --config.data.dataset=prepared \\
      --config.data.data_path=/data/lsun_bedroom_64

The cache is raw uint8 N x H x W x C (images.u8, read with np.memmap) and info.json (its shape and
provenance), written last, so an interrupted run never leaves a cache that looks complete. Why this
format: training draws random rows, and a fixed-size row at offset index * H*W*C is the cheapest
random read there is (no decoding, no index, no dependency); at 64 px it is 12 KiB per image (3M
LSUN bedrooms: 37 GB). Images that do not decode are left out and counted (skip_report.py).

SIGTERM and SIGINT stop a run cleanly (Stopped): the partial cache is removed, the decode workers end
and an existing cache stays as it was. What a run killed outright leaves beside the cache
(CACHE.partial-<pid>, CACHE.old-<pid>) is cleaned up by the next run, once that pid is gone.
"""

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator

import ml_collections
import numpy as np

from dcgan_jax import atomic_write, progress_bars
from dcgan_jax.data import datasets, skip_report, sources, stop_signals, tfds_source, workers
from dcgan_jax.data.sources import PREPARED_IMAGES, PREPARED_INFO
from dcgan_jax.errors import UserError

CHUNK = 256  # images per decoding task


def _source_chunks(
    data: ml_collections.ConfigDict, image_size: int, num_channels: int
) -> tuple[int, Iterator[tuple[np.ndarray, list[tuple[str, str]]]]]:
    """(number of entries, iterator of (readable preprocessed images, (kind, why) of each image
    left out)) in source order."""
    if datasets.is_tfds(data.dataset):
        opened = tfds_source.open_tfds(data, image_size, num_channels, in_memory=False)
        if not isinstance(
            opened, sources.EncodedSource
        ):  # a TFRecord split: stream it in file order
            num = tfds_source.num_examples(opened, data.split) or 0
            return num, tfds_source.stream_decoded(data, opened, image_size, num_channels)
        source = opened
    else:
        source = datasets.open_local(data, image_size, num_channels)
    count = 1 if getattr(source, "cheap", False) else workers.num_workers(data.num_data_workers)
    chunks = [np.arange(i, min(i + CHUNK, len(source))) for i in range(0, len(source), CHUNK)]

    def readable() -> Iterator[tuple[np.ndarray, list[tuple[str, str]]]]:
        # An entry is reported no later than in its own chunk (chunks come back in order), maybe by
        # two workers; it is left out of its own chunk.
        bad = {}
        stream = workers.read_source(source, chunks, count, 2 * count)
        try:
            for indices, (images, skipped) in zip(chunks, stream):
                bad.update((index, (kind, why)) for index, kind, why in skipped if index not in bad)
                keep = np.array([int(i) not in bad for i in indices])
                yield images[keep], [bad[int(i)] for i in indices[~keep]]
        finally:
            stream.close()  # the worker pool ends here, also when the caller stops early

    return len(source), readable()


# (images of the cache, N x H x W x C uint8, memory-mapped) -> {removed index: the kept index it
# duplicates}
FindDuplicates = Callable[[np.ndarray], dict[int, int]]
DUPLICATES_FILE = "duplicates.json"


def write_cache(
    data: ml_collections.ConfigDict,
    image_size: int,
    num_channels: int,
    output: str,
    dedup: FindDuplicates | None = None,
    max_removed_fraction: float = 0.5,
) -> dict:
    """Preprocesses every image of the source `data` (config.data) names, at image_size /
    num_channels, into `output`; returns the info written.

    Nothing in `output` changes until the new cache is complete: the source is opened (and checked)
    first, the cache is written into a sibling directory, and only then swapped in by two renames,
    so a failed or interrupted run (missing source, full disk, Ctrl-C) leaves an existing cache as
    it was, and a cache can be rebuilt from itself. `dedup` (`prepare --dedup`) drops near
    duplicates before the swap; their list is kept in the cache. Removing more than
    max_removed_fraction (config.dedup.max_removed_fraction) of the images is a UserError, and then
    nothing is written.
    """
    output = os.path.abspath(output)
    with stop_signals.StopOnSignals() as stop:
        try:
            return _write_cache(
                data, image_size, num_channels, output, dedup, max_removed_fraction, stop
            )
        except stop_signals.Signalled as signalled:
            kept = (
                f"the cache at {output} is unchanged"
                if os.path.exists(os.path.join(output, PREPARED_INFO))
                else f"no cache was written to {output}"
            )
            raise Stopped(
                f"stopped by {signalled.name} before the cache was complete: the partial cache was "
                f"removed and {kept}; run the same command again to prepare it",
                signalled.exit_status,
            ) from None


class Stopped(UserError):
    """prepare was stopped by SIGTERM or SIGINT, cleanly; `exit_status`: 143 or 130, the shell's
    status of a process ended by that signal."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


def _write_cache(data, image_size, num_channels, output, dedup, max_removed_fraction, stop):
    """write_cache under `stop` (stop_signals.StopOnSignals), which spares the final swap."""
    if os.path.exists(output) and not (os.path.isdir(output) and _is_cache_or_empty(output)):
        raise UserError(
            f"--output {output} exists and is not a prepared cache; pass a new directory (an old cache "
            f"there is replaced only when the new one is complete)"
        )
    # A read-only folder, a full disk, a name too long: refused before any work.
    atomic_write.check_writable(output)
    _clean_leftovers(output)
    total, chunks = _source_chunks(
        data, image_size, num_channels
    )  # a missing source fails here, before any write
    partial = f"{output}.partial-{os.getpid()}"
    shape = [image_size, image_size, num_channels]
    try:
        info = _write(data, shape, partial, total, chunks, dedup, max_removed_fraction)
        with stop.too_late():
            _swap(partial, output)
    except OSError as e:
        raise UserError(
            f"cannot write the cache to {output} ({e.strerror or e}); free space or pass a writable "
            f"--output (an existing cache there is unchanged)"
        ) from None
    finally:
        chunks.close()  # the decode workers end here, whatever stopped the run
        shutil.rmtree(partial, ignore_errors=True)
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _clean_leftovers(output: str) -> None:
    """Removes what killed prepare runs left beside `output` (OUTPUT.partial-<pid>: a cache being
    written; OUTPUT.old-<pid>: the cache it replaced, renamed aside), for pids no longer running;
    an old cache without a cache at `output` (a kill between the two renames of _swap) is put back
    instead. One line says what was done."""
    parent, base = os.path.split(output)
    pattern = re.compile(re.escape(base) + r"\.(partial|old)-(\d+)")
    try:
        names = sorted(os.listdir(parent or "."))
    except OSError:
        return
    removed, restored = [], None
    for name in names:
        match = pattern.fullmatch(name)
        if not match or _pid_alive(int(match.group(2))):
            continue
        path = os.path.join(parent, name)
        if match.group(1) == "old" and not os.path.exists(output):
            try:
                os.rename(path, output)
                restored = name
            except (
                OSError
            ):  # then the new cache will not be written there either: its error says why
                pass
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    if removed or restored:
        done = [f"removed {', '.join(removed)}"] if removed else []
        done += [f"put back the cache {restored} as {base}"] if restored else []
        print(
            f"cleaned up after an interrupted prepare in {parent}: {'; '.join(done)}",
            file=sys.stderr,
            flush=True,
        )


def _is_cache_or_empty(path: str) -> bool:
    names = set(os.listdir(path))
    return (
        not names
        or PREPARED_INFO in names
        or names <= {PREPARED_IMAGES, PREPARED_IMAGES + ".partial"}
    )


def _swap(new: str, output: str) -> None:
    """Puts the complete cache `new` at `output`; an old cache there is renamed aside first, then
    deleted."""
    old = f"{output}.old-{os.getpid()}"
    if os.path.exists(output):
        os.rename(output, old)
    os.rename(new, output)
    shutil.rmtree(old, ignore_errors=True)


def _write(
    data: ml_collections.ConfigDict,
    image_shape,
    directory: str,
    total: int,
    chunks,
    dedup: FindDuplicates | None,
    limit: float,
) -> dict:
    os.makedirs(directory)
    images_path = os.path.join(directory, PREPARED_IMAGES)
    written = left_out = 0
    report = skip_report.SkipReport("left out")
    start = last_print = time.time()
    with (
        open(images_path, "wb") as f,
        progress_bars.bar(total=total or None, desc="prepare", unit="img") as bar,
    ):
        for images, dropped in chunks:
            f.write(np.ascontiguousarray(images, np.uint8).tobytes())
            written, left_out = written + len(images), left_out + len(dropped)
            for kind, why in dropped:
                report.add(kind, why)
            report.report()
            bar.update(len(images) + len(dropped))
            if (
                not progress_bars.enabled() and time.time() - last_print > 10
            ):  # logs: a line every 10 s instead
                last_print = time.time()
                rate = written / (last_print - start)
                of = f"/{total:,}" if total else ""
                print(f"prepared {written:,}{of} images ({rate:,.0f} images/s)", flush=True)
    report.report(final=True)
    if written == 0:
        raise UserError(f"no readable image in {data.dataset} ({data.data_path or data.data_dir})")
    shape = [written, *image_shape]
    info = {
        "shape": shape,
        "dtype": "uint8",
        "dataset": data.dataset,
        "data_path": data.data_path,
        "data_dir": data.data_dir,
        "split": data.split,
        "left_out_unreadable": left_out,
        "preprocessing": "shorter side resized to image_size (bicubic), center crop, L or RGB",
    }
    if dedup is not None:
        removed = dedup(np.memmap(images_path, np.uint8, "r", shape=tuple(shape)))
        if len(removed) > limit * written:  # before the swap: an existing cache stays as it was
            raise UserError(
                f"--dedup would remove {len(removed):,} of {written:,} images ({len(removed) / written:.0%}"
                f", over dedup.max_removed_fraction={limit}): the codes do not tell these images apart; "
                f"lower --config.dedup.max_hamming (0: exact collisions) or raise --config.dedup.steps, "
                f"or raise --config.dedup.max_removed_fraction if the data really is that redundant"
            )
        info["shape"][0] = _compact(images_path, shape, set(removed))
        info["removed_duplicates"], info["duplicates_file"] = len(removed), DUPLICATES_FILE
        duplicates = {
            "about": "indices in the cache before deduplication (source order, unreadable images left "
            "out): removed index -> the kept index it duplicates",
            "removed": {str(k): v for k, v in sorted(removed.items())},
        }
        atomic_write.write_text(
            os.path.join(directory, DUPLICATES_FILE), json.dumps(duplicates, indent=1)
        )
    atomic_write.write_text(os.path.join(directory, PREPARED_INFO), json.dumps(info, indent=2))
    return info


def _compact(path: str, shape, removed) -> int:
    """Drops the rows in `removed` from the raw image file, in place (each kept row moves to a lower
    or equal offset, so no row is overwritten before it is read); returns the rows kept."""
    row = int(np.prod(shape[1:]))
    kept = 0
    with open(path, "r+b") as f:
        for index in range(shape[0]):
            if index in removed:
                continue
            if kept != index:
                f.seek(index * row)
                data = f.read(row)
                f.seek(kept * row)
                f.write(data)
            kept += 1
        f.truncate(kept * row)
    return kept
