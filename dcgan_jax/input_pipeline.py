"""Training batches: random-access image sources read in an order that is a function of (seed, step).

Every source serves uint8 images already shaped (image_size, image_size, num_channels). The global batch of step s
holds examples s*B .. s*B+B-1 of an endless sequence of per-epoch permutations, so a resumed run reads exactly what
an uninterrupted one would, and each host reads only its own slice of every global batch.
"""

from typing import Iterator, Optional, Protocol

import jax
import ml_collections
import numpy as np
from PIL import Image

from dcgan_jax.errors import UserError


class Source(Protocol):
    """Random access to preprocessed uint8 images (H, W, C)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


class ArraySource:
    """An in-memory uint8 array of images, N x H x W x C."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[index]

    def read_many(self, indices: np.ndarray) -> np.ndarray:
        return self.images[indices]


def resize_and_center_crop(image: Image.Image, size: int, num_channels: int) -> np.ndarray:
    """The reference preprocessing: resize the shorter side to `size` (bicubic), center-crop, convert channels."""
    image = image.convert("L" if num_channels == 1 else "RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), np.uint8)
    return array.reshape(size, size, num_channels)


def digits_images(image_size: int, num_channels: int, split: str = "train") -> np.ndarray:
    """scikit-learn's bundled 8x8 digits (1,797 scans) as uint8 images; split 'train' (4/5), 'test' (1/5) or 'all'."""
    images, _ = digits_with_labels(image_size, num_channels, split)
    return images


def digits_with_labels(image_size: int, num_channels: int, split: str = "train"):
    from sklearn.datasets import load_digits  # imported lazily: only the digits source needs scikit-learn here

    digits = load_digits()
    index = np.arange(len(digits.images))
    keep = {"train": index % 5 != 0, "test": index % 5 == 0, "all": np.ones_like(index, bool)}
    if split not in keep:
        raise UserError(f"split={split!r} is not a digits split; use 'train', 'test' or 'all'")
    pixels = np.round(digits.images[keep[split]] * (255.0 / 16.0)).astype(np.uint8)
    images = np.stack([resize_and_center_crop(Image.fromarray(p, "L"), image_size, num_channels) for p in pixels])
    return images, digits.target[keep[split]].astype(np.int32)


def load_source(config: ml_collections.ConfigDict, split: str = "") -> Source:
    """The source `config.dataset` names, preprocessed to config.image_size / config.num_channels."""
    split = split or config.split
    if config.dataset == "digits":
        return ArraySource(digits_images(config.image_size, config.num_channels, split))
    raise UserError(f"dataset={config.dataset!r} is not available in this version; use dataset='digits'")


def global_batch_indices(step: int, batch_size: int, num_examples: int, seed: int) -> np.ndarray:
    """Dataset indices of the global batch of `step`: consecutive positions in a stream of per-epoch permutations."""
    positions = step * batch_size + np.arange(batch_size, dtype=np.int64)
    epochs, offsets = np.divmod(positions, num_examples)
    indices = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        permutation = np.random.default_rng([seed, int(epoch)]).permutation(num_examples)
        indices[epochs == epoch] = permutation[offsets[epochs == epoch]]
    return indices


def host_slice(batch_size: int, process_index: int, process_count: int) -> slice:
    """The rows of the global batch this host feeds to its local devices (process-major device order)."""
    per_host = batch_size // process_count
    return slice(process_index * per_host, (process_index + 1) * per_host)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], the range of G's tanh."""
    return images.astype(np.float32) * (2.0 / 255.0) - 1.0


def read_batch(source: Source, indices: np.ndarray) -> np.ndarray:
    if hasattr(source, "read_many"):
        return source.read_many(indices)
    return np.stack([source[int(i)] for i in indices])


def train_batches(config: ml_collections.ConfigDict, source: Source, start_step: int = 0,
                  num_local_devices: Optional[int] = None) -> Iterator[np.ndarray]:
    """Endless host batches [local_devices, per_device_batch, H, W, C] in [-1, 1], starting at `start_step`."""
    local_devices = num_local_devices or jax.local_device_count()
    rows = host_slice(config.batch_size, jax.process_index(), jax.process_count())
    seed = config.seed + config.shuffle_seed_offset
    step = start_step
    while True:
        indices = global_batch_indices(step, config.batch_size, len(source), seed)[rows]
        images = to_model_range(read_batch(source, indices))
        yield images.reshape((local_devices, -1) + images.shape[1:])
        step += 1
