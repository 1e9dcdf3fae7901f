"""Training batches: random-access image sources read in an order that is a function of (seed,
step).

Every source serves uint8 images already shaped (image_size, image_size, num_channels). The global
batch of step s holds examples s*B .. s*B+B-1 of an endless sequence of per-epoch permutations, so a
resumed run reads exactly what an uninterrupted one would, and each host reads only its own slice of
every global batch.
"""

import collections
import functools
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np

from dcgan_jax.data import skip_report, workers
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.sources import Source


def global_batch_indices(step: int, batch_size: int, num_examples: int, seed: int) -> np.ndarray:
    """Dataset indices of the global batch of `step`: consecutive positions in a stream of per-epoch
    permutations."""
    positions = step * batch_size + np.arange(batch_size, dtype=np.int64)
    epochs, offsets = np.divmod(positions, num_examples)
    indices = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        permutation = _epoch_permutation(seed, int(epoch), num_examples)
        indices[epochs == epoch] = permutation[offsets[epochs == epoch]]
    return indices


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """Cached: permuting 3M LSUN indices takes ~50 ms, longer than a training step on an
    accelerator."""
    permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
    permutation.flags.writeable = False
    return permutation


def host_slice(batch_size: int, process_index: int, process_count: int) -> slice:
    """The rows of the global batch this host feeds to its local devices (process-major device
    order)."""
    per_host = batch_size // process_count
    return slice(process_index * per_host, (process_index + 1) * per_host)


def host_indices(
    batch_size: int,
    seed: int,
    num_examples: int,
    start_step: int,
    process_index: int,
    process_count: int,
) -> Iterator[np.ndarray]:
    """This host's rows of the global batch of each step from `start_step` on; `seed` is the data
    order's (the run's seed + data.shuffle_seed_offset)."""
    rows = host_slice(batch_size, process_index, process_count)
    step = start_step
    while True:
        yield global_batch_indices(step, batch_size, num_examples, seed)[rows]
        step += 1


def train_batches(
    data: ml_collections.ConfigDict,
    source: Source,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    local_devices: int = 1,
    labels: np.ndarray | None = None,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
) -> Iterator[np.ndarray]:
    """Endless host batches [local_devices, per_device_batch, H, W, C] in [-1, 1] of the global
    batch `batch_size` (`data`: config.data; `seed`: the run's), starting at `start_step`; with
    `labels` (datasets.load_labels, for a class-conditional run), (images, int32 labels
    [local_devices, per_device_batch]) with the label of the image actually read (an unreadable
    image's replacement has its own).

    The data order is a function of (seed + data.shuffle_seed_offset, step). Sources that decode
    (LMDB, folders, TFDS array_record) are read by data.num_data_workers processes (0 = all cores, 1
    = in this process), data.prefetch_batches batches ahead of the ones already decoding; the order
    of the data never depends on the number of workers. process_index / process_count: this host's
    (default: JAX's).
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    steps = host_indices(
        batch_size,
        seed + data.shuffle_seed_offset,
        len(source),
        start_step,
        process_index,
        process_count,
    )
    pending = (
        collections.deque()
    )  # the index arrays handed to the readers, in order, until their batch is back

    def recorded(index_arrays):
        for indices in index_arrays:
            pending.append(indices)
            yield indices

    count = 1 if getattr(source, "cheap", False) else workers.num_workers(data.num_data_workers)
    skipped = set()
    report = skip_report.SkipReport("skipped", "; each is replaced by the next readable one")
    try:
        for images, newly_skipped in workers.read_source(
            source, recorded(steps), count, count + data.prefetch_batches
        ):
            indices = pending.popleft()
            for index, kind, reason in newly_skipped:
                if index not in skipped:  # each worker finds it once
                    skipped.add(index)
                    report.add(kind, reason)
            report.report()
            images = as_model_input(images)
            images = images.reshape((local_devices, -1) + images.shape[1:])
            if labels is None:
                yield images
            else:
                read = [_readable(int(i), skipped, len(source)) for i in indices]
                yield images, labels[read].reshape(local_devices, -1)
    finally:
        report.report(final=True)


def _readable(index: int, skipped: set, num_examples: int) -> int:
    """The entry a source serves for `index`: the next one not found unreadable
    (sources.EncodedSource)."""
    while index in skipped:
        index = (index + 1) % num_examples
    return index
