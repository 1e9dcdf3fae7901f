"""The embedded default dataset: scikit-learn's 1,797 bundled 8x8 handwritten digits, offline, with
labels."""

import numpy as np
from PIL import Image

from dcgan_jax.data.images import resize_and_center_crop
from dcgan_jax.errors import UserError

SPLITS = ("train", "test", "all")


def digits_with_labels(
    image_size: int, num_channels: int, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x S x S x C, int32 labels); split 'train' (4/5 of the scans), 'test' (every
    5th) or 'all'."""
    from sklearn.datasets import (
        load_digits,  # scikit-learn: imported only where the digits are read
    )

    if split not in SPLITS:
        raise UserError(f"split={split!r} is not a digits split; use one of {', '.join(SPLITS)}")
    digits = load_digits()
    index = np.arange(len(digits.images))
    keep = {"train": index % 5 != 0, "test": index % 5 == 0, "all": np.ones_like(index, bool)}[
        split
    ]
    pixels = np.round(digits.images[keep] * (255.0 / 16.0)).astype(np.uint8)
    images = np.stack(
        [resize_and_center_crop(Image.fromarray(p, "L"), image_size, num_channels) for p in pixels]
    )
    return images, digits.target[keep].astype(np.int32)


def digits_images(image_size: int, num_channels: int, split: str = "train") -> np.ndarray:
    """The images of `digits_with_labels`."""
    return digits_with_labels(image_size, num_channels, split)[0]
