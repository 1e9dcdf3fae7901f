"""The paper's discriminator features (Radford et al. 2015, Sec. 5.1): D's activations as a fixed
image encoding.

Every D conv layer's activations (after LeakyReLU) are max-pooled to a 4x4 grid, flattened and
concatenated: with widths w, 2w, 4w at 32px that is 7w x 16 dimensions (7,168 for w=64, the paper's
SVHN setup). The linear probe on them is dcgan_jax/evaluation/probe.py; the nearest-neighbour check
in D-feature space is dcgan_jax/analysis.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax.data.images import as_model_input
from dcgan_jax.nn import models
from dcgan_jax.nn.batched import map_batches

GRID = 4  # each layer is max-pooled to GRID x GRID cells


def feature_dim(model: ml_collections.ConfigDict) -> int:
    """Length of `discriminator_features` rows: sum of layer widths x 16 cells."""
    return sum(models.d_layer_widths(model)) * GRID * GRID


def _pool_to_grid(h: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, GRID * GRID * C) by non-overlapping max pooling."""
    window = (h.shape[1] // GRID, h.shape[2] // GRID)
    pooled = nn.max_pool(h, window, strides=window) if window != (1, 1) else h
    return pooled.reshape(h.shape[0], -1)


@functools.partial(jax.jit, static_argnames=("discriminator",))
def _features_batch(
    discriminator: models.Discriminator, variables: Any, images: jax.Array
) -> jax.Array:
    _, state = discriminator.apply(variables, images, train=False, mutable=["intermediates"])
    layers = state["intermediates"]
    pooled = [_pool_to_grid(layers[f"layer{i}"][0].astype(jnp.float32)) for i in range(len(layers))]
    return jnp.concatenate(pooled, axis=-1)


def discriminator_features(
    model: ml_collections.ConfigDict, d_variables: Any, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """(N, feature_dim(model)) float32 features of images (uint8, or float in [-1, 1]), D in
    inference mode."""
    _, discriminator = models.build_models(model)
    return map_batches(
        lambda chunk: _features_batch(discriminator, d_variables, chunk),
        images,
        batch_size,
        as_model_input,
    )


@functools.partial(jax.jit, static_argnames=("discriminator",))
def _batch_moments(discriminator: models.Discriminator, variables: Any, images: jax.Array):
    """Per layer: (1, C) batch mean and E[x^2] that batchnorm sees (a momentum-0 D stores exactly
    those), and the batch size, so that batches of different sizes pool exactly."""
    _, updates = discriminator.apply(variables, images, train=True, mutable=["batch_stats"])
    moments = {
        layer: {"mean": v["mean"][None], "square": (v["var"] + v["mean"] ** 2)[None]}
        for layer, v in updates["batch_stats"].items()
    }
    return moments, jnp.full((1,), images.shape[0], jnp.float32)


def recompute_batch_stats(
    model: ml_collections.ConfigDict, d_variables: Any, images: np.ndarray, batch_size: int = 256
) -> dict[str, Any]:
    """D variables whose batchnorm population statistics are those of `images` (the paper's SVHN
    script).

    Each layer is normalized with its batch statistics while they are gathered, as in training; the
    population mean and (biased) variance are pooled exactly over all batches.
    """
    if len(images) == 0:
        raise ValueError("recompute_batch_stats needs at least one image")
    _, discriminator = models.build_models(model)
    discriminator = discriminator.clone(
        bn_momentum=0.0
    )  # running stats := the current batch's stats
    moments, counts = map_batches(
        lambda chunk: _batch_moments(discriminator, d_variables, chunk),
        images,
        batch_size,
        as_model_input,
    )
    weights = counts.astype(np.float64) / counts.sum()
    new_stats = {}
    for layer, v in moments.items():
        mean = weights @ v["mean"].astype(np.float64)
        square = weights @ v["square"].astype(np.float64)
        new_stats[layer] = {
            "mean": jnp.asarray(mean, jnp.float32),
            "var": jnp.asarray(np.maximum(square - mean**2, 0.0), jnp.float32),
        }
    return {"params": d_variables["params"], "batch_stats": new_stats}
