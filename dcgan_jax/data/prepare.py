"""Writes a prepared cache once, so training reads preprocessed images at memory speed instead of decoding them.

  python -m dcgan_jax.prepare --config=configs/lsun.py --config.dataset=lsun_lmdb \\
      --config.data_path=/data/bedroom_train_lmdb --output=/data/lsun_bedroom_64
  python -m dcgan_jax.main --config=configs/lsun.py --config.dataset=prepared --config.data_path=/data/lsun_bedroom_64

The cache is raw uint8 N x H x W x C (images.u8, read with np.memmap) and info.json (its shape and provenance),
written last, so an interrupted run never leaves a cache that looks complete. Why this format: training draws
random rows, and a fixed-size row at offset index * H*W*C is the cheapest random read there is (no decoding, no
index, no dependency); at 64 px it is 12 KiB per image (3M LSUN bedrooms: 37 GB). Images that do not decode are
left out and counted.
"""

import json
import os
import sys
import time
from typing import Iterator, Tuple

import ml_collections
import numpy as np

from dcgan_jax import progress_bars
from dcgan_jax.data import datasets, sources, tfds_source, workers
from dcgan_jax.data.sources import PREPARED_IMAGES, PREPARED_INFO
from dcgan_jax.errors import UserError

CHUNK = 256  # images per decoding task


def _source_chunks(config: ml_collections.ConfigDict) -> Tuple[int, Iterator[Tuple[np.ndarray, int]]]:
    """(number of entries, iterator of (readable preprocessed images, number left out)) in source order."""
    if datasets.is_tfds(config.dataset):
        opened = tfds_source.open_tfds(config, in_memory=False)
        if not isinstance(opened, sources.EncodedSource):  # a TFRecord split: stream it in file order
            num = tfds_source.num_examples(opened, config.split) or 0
            return num, tfds_source.stream_decoded(config, opened)
        source = opened
    else:
        source = datasets.open_local(config)
    count = 1 if getattr(source, "cheap", False) else workers.num_workers(config.num_data_workers)
    chunks = [np.arange(i, min(i + CHUNK, len(source))) for i in range(0, len(source), CHUNK)]

    def readable() -> Iterator[Tuple[np.ndarray, int]]:
        bad = set()  # an entry is reported no later than in its own chunk, and chunks come back in order
        for indices, (images, skipped) in zip(chunks, workers.read_source(source, chunks, count, 2 * count)):
            bad.update(index for index, _ in skipped)
            for _, reason in skipped:
                print(f"left out unreadable image {reason}", file=sys.stderr, flush=True)
            keep = np.array([int(i) not in bad for i in indices])
            yield images[keep], int((~keep).sum())
    return len(source), readable()


def write_cache(config: ml_collections.ConfigDict, output: str) -> dict:
    """Preprocesses every image of the configured source into `output`; returns the info written."""
    try:
        os.makedirs(output, exist_ok=True)
        if os.path.exists(os.path.join(output, PREPARED_INFO)):
            os.remove(os.path.join(output, PREPARED_INFO))
    except OSError as e:
        raise UserError(f"cannot write the cache to {output!r} ({e.strerror}); pass a writable --output") from None
    total, chunks = _source_chunks(config)
    partial = os.path.join(output, PREPARED_IMAGES + ".partial")
    written = left_out = 0
    start = last_print = time.time()
    with open(partial, "wb") as f, progress_bars.bar(total=total or None, desc="prepare", unit="img") as bar:
        for images, dropped in chunks:
            f.write(np.ascontiguousarray(images, np.uint8).tobytes())
            written, left_out = written + len(images), left_out + dropped
            bar.update(len(images) + dropped)
            if not progress_bars.enabled() and time.time() - last_print > 10:  # logs: a line every 10 s instead
                last_print = time.time()
                rate = written / (last_print - start)
                of = f"/{total:,}" if total else ""
                print(f"prepared {written:,}{of} images ({rate:,.0f} images/s)", flush=True)
    if written == 0:
        raise UserError(f"no readable image in {config.dataset} ({config.data_path or config.data_dir})")
    os.replace(partial, os.path.join(output, PREPARED_IMAGES))
    info = {"shape": [written, config.image_size, config.image_size, config.num_channels], "dtype": "uint8",
            "dataset": config.dataset, "data_path": config.data_path, "data_dir": config.data_dir,
            "split": config.split, "left_out_unreadable": left_out,
            "preprocessing": "shorter side resized to image_size (bicubic), center crop, L or RGB"}
    with open(os.path.join(output, PREPARED_INFO), "w") as f:
        json.dump(info, f, indent=2)
    return info
