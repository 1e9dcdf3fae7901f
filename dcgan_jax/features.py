"""The paper's discriminator features (Radford et al. 2015, Sec. 5.1) and the linear L2-SVM probe on them.

Every D conv layer's activations (after LeakyReLU) are max-pooled to a 4x4 grid, flattened and concatenated: with
widths w, 2w, 4w at 32px that is 7w x 16 dimensions (7,168 for w=64, the paper's SVHN setup).
"""

import functools
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax import input_pipeline, models

GRID = 4  # each layer is max-pooled to GRID x GRID cells


def layer_widths(config: ml_collections.ConfigDict) -> Sequence[int]:
    """Channels of D's conv layers, input side first."""
    return [config.d_width * 2 ** i for i in range(models.num_resolution_changes(config.image_size))]


def feature_dim(config: ml_collections.ConfigDict) -> int:
    """Length of `discriminator_features` rows: sum of layer widths x 16 cells."""
    return sum(layer_widths(config)) * GRID * GRID


def _pool_to_grid(h: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, GRID * GRID * C) by non-overlapping max pooling."""
    window = (h.shape[1] // GRID, h.shape[2] // GRID)
    pooled = nn.max_pool(h, window, strides=window) if window != (1, 1) else h
    return pooled.reshape(h.shape[0], -1)


@functools.partial(jax.jit, static_argnames=("discriminator",))
def _features_batch(discriminator: models.Discriminator, variables: Any, images: jax.Array) -> jax.Array:
    _, state = discriminator.apply(variables, images, train=False, mutable=["intermediates"])
    layers = state["intermediates"]
    count = len(layers)
    pooled = [_pool_to_grid(layers[f"layer{i}"][0].astype(jnp.float32)) for i in range(count)]
    return jnp.concatenate(pooled, axis=-1)


def as_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] images -> float32 [-1, 1]."""
    if images.dtype == np.uint8:
        return input_pipeline.to_model_range(images)
    return np.asarray(images, np.float32)


def discriminator_features(config: ml_collections.ConfigDict, d_variables: Any, images: np.ndarray,
                           batch_size: int = 256) -> np.ndarray:
    """(N, feature_dim(config)) float32 features of images (uint8, or float in [-1, 1]), D in inference mode."""
    _, discriminator = models.build_models(config)
    variables = {"params": d_variables["params"], "batch_stats": d_variables["batch_stats"]}
    out = [np.zeros((0, feature_dim(config)), np.float32)]
    for start in range(0, len(images), batch_size):
        chunk = jnp.asarray(as_model_input(images[start:start + batch_size]))
        out.append(np.asarray(_features_batch(discriminator, variables, chunk)))
    return np.concatenate(out)


@functools.partial(jax.jit, static_argnames=("discriminator",))
def _batch_moments(discriminator: models.Discriminator, variables: Any, images: jax.Array):
    """Per-layer batch mean and biased variance that batchnorm sees (a momentum-0 D stores exactly those)."""
    _, updates = discriminator.apply(variables, images, train=True, mutable=["batch_stats"])
    return updates["batch_stats"]


def recompute_batch_stats(config: ml_collections.ConfigDict, d_variables: Any, images: np.ndarray,
                          batch_size: int = 256) -> Dict[str, Any]:
    """D variables whose batchnorm population statistics are those of `images` (the paper's SVHN script).

    Each layer is normalized with its batch statistics while they are gathered, as in training; the population
    mean and (biased) variance are pooled exactly over all batches.
    """
    _, discriminator = models.build_models(config)
    discriminator = discriminator.clone(bn_momentum=0.0)  # running stats := the current batch's stats
    variables = {"params": d_variables["params"], "batch_stats": d_variables["batch_stats"]}
    sums: Optional[Any] = None
    total = 0
    for start in range(0, len(images), batch_size):
        chunk = as_model_input(images[start:start + batch_size])
        stats = _batch_moments(discriminator, variables, jnp.asarray(chunk))
        n = len(chunk)
        moments = jax.tree.map(lambda s: np.asarray(s, np.float64), stats)
        # Per layer: accumulate n * mean and n * E[x^2] = n * (var + mean^2).
        contrib = {layer: {"mean": n * v["mean"], "var": n * (v["var"] + v["mean"] ** 2)}
                   for layer, v in moments.items()}
        sums = contrib if sums is None else jax.tree.map(np.add, sums, contrib)
        total += n
    if sums is None:
        raise ValueError("recompute_batch_stats needs at least one image")
    new_stats = {}
    for layer, v in sums.items():
        mean = v["mean"] / total
        new_stats[layer] = {"mean": jnp.asarray(mean, jnp.float32),
                            "var": jnp.asarray(np.maximum(v["var"] / total - mean ** 2, 0.0), jnp.float32)}
    return {"params": d_variables["params"], "batch_stats": new_stats}
