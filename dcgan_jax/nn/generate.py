"""Generator-side tools: images from z in batches, in inference mode (batchnorm running averages) by
default."""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from dcgan_jax.nn import models
from dcgan_jax.nn.batched import map_batches


@functools.partial(jax.jit, static_argnames=("generator", "batch_stats_mode"))
def _apply(
    generator: models.Generator,
    variables: Any,
    z: jax.Array,
    layer_masks: Mapping[int, Any] | None,
    batch_stats_mode: bool,
) -> jax.Array:
    if batch_stats_mode:
        images, _ = generator.apply(
            variables, z, train=True, layer_masks=layer_masks, mutable=["batch_stats"]
        )
        return images
    return generator.apply(variables, z, train=False, layer_masks=layer_masks)


def generate(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    batch_size: int = 256,
    batch_stats_mode: bool = False,
    layer_masks: Mapping[int, Any] | None = None,
) -> np.ndarray:
    """Images in [-1, 1] for every row of z.

    In inference mode each image depends on its own z only, whatever `batch_size` or the number of
    samples. `batch_stats_mode` normalizes with the statistics of each batch instead (the reference
    implementations' default, which makes an image depend on its batch-mates).
    """
    generator, _ = models.build_models(model)
    return map_batches(
        lambda chunk: _apply(generator, g_variables, chunk, layer_masks, batch_stats_mode),
        np.asarray(z, np.float32),
        batch_size,
    )


def check_layer(model: ml_collections.ConfigDict, layer: int) -> int:
    """`layer` as a non-negative index (negative counts from the top, -1 = the last hidden
    layer)."""
    count = len(models.g_layer_widths(model))
    if not -count <= layer < count:
        raise ValueError(f"G has hidden layers 0..{count - 1} (or -{count}..-1); got layer={layer}")
    return layer % count


@functools.partial(jax.jit, static_argnames=("generator", "layer"))
def _activations(
    generator: models.Generator, variables: Any, z: jax.Array, layer: int
) -> jax.Array:
    _, state = generator.apply(variables, z, train=False, mutable=["intermediates"])
    return state["intermediates"][f"layer{layer}"][0]


def activations(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    layer: int,
    batch_size: int = 256,
) -> np.ndarray:
    """(N, H, W, C) activations of G's hidden layer `layer` (after its ReLU), in inference mode."""
    generator, _ = models.build_models(model)
    layer = check_layer(model, layer)
    return map_batches(
        lambda chunk: _activations(generator, g_variables, chunk, layer),
        np.asarray(z, np.float32),
        batch_size,
    )


def feature_mask(
    model: ml_collections.ConfigDict, layer: int, dropped: Sequence[int]
) -> np.ndarray:
    """(C,) float mask of layer `layer`: 0 for the feature maps in `dropped`, 1 elsewhere."""
    width = models.g_layer_widths(model)[check_layer(model, layer)]
    dropped = np.asarray(list(dropped), np.int64)
    if dropped.size and (dropped.min() < 0 or dropped.max() >= width):
        raise ValueError(
            f"feature maps of layer {layer} are 0..{width - 1}; got {sorted(dropped.tolist())}"
        )
    mask = np.ones((width,), np.float32)
    mask[dropped] = 0.0
    return mask


def generate_without(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    layer: int,
    dropped: Sequence[int],
    batch_size: int = 256,
) -> np.ndarray:
    """Images with the feature maps `dropped` of G's hidden layer `layer` zeroed everywhere (the
    paper's Sec. 6.1)."""
    mask = feature_mask(model, layer, dropped)
    return generate(
        model, g_variables, z, batch_size, layer_masks={check_layer(model, layer): mask}
    )
