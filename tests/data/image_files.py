"""Images written the way each local source expects them (folders, LSUN LMDBs), and configs that read them."""

import io
import os

import lmdb
import numpy as np
from PIL import Image

from dcgan_jax import defaults
from dcgan_jax.data import datasets

MODEL_FIELDS = (
    "image_size",
    "num_channels",
)  # the model's fields the data tests set; the rest: config.data's
TOP_FIELDS = ("batch_size", "seed")


def data_config(**overrides):
    """The base config, decoding in this process unless a test asks for the worker pool. `overrides` by leaf name:
    image_size / num_channels go to config.model, batch_size / seed to the top, every other to config.data."""
    config = defaults.get_config()
    config.data.num_data_workers = 1
    for key, value in overrides.items():
        group = (
            config.model if key in MODEL_FIELDS else config if key in TOP_FIELDS else config.data
        )
        if key not in group:  # setting it would add it silently
            raise KeyError(f"data_config: no config field {key!r}")
        group[key] = value
    return config


def load(config, split=""):
    """datasets.load_source with the parts of `config` it takes."""
    return datasets.load_source(
        config.data, config.model.image_size, config.model.num_channels, split
    )


def random_images(count, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def write_folder(folder, images, fmt="PNG", ext=".png"):
    os.makedirs(os.path.join(folder, "nested"), exist_ok=True)
    for i, pixels in enumerate(
        images
    ):  # half of them one level down: the folder is searched recursively
        sub = "nested" if i % 2 else ""
        Image.fromarray(pixels).save(os.path.join(folder, sub, f"img{i:03d}{ext}"), fmt)


def write_lsun_lmdb(path, values):
    """LSUN's layout: 40-hex-digit keys -> encoded images. Returns the keys in LMDB (sorted) order."""
    keys = sorted(f"{(i * 7919 + 13) % 100003:040x}".encode() for i in range(len(values)))
    env = lmdb.open(path, map_size=1 << 28)
    with env.begin(write=True) as txn:
        for key, value in zip(keys, values):
            txn.put(key, value)
    env.close()
    return keys


def webp(pixels, lossless=True):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "WEBP", lossless=lossless)
    return buffer.getvalue()


def pixel_values(batch):
    """Model-range batches back to integer pixel values (int64, so differences do not wrap)."""
    return np.round((batch + 1.0) * 127.5).astype(np.int64)
