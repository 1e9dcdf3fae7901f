"""Generator-side tools: images from z in batches, in inference mode (batchnorm running averages) by default."""

import functools
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax import models


@functools.partial(jax.jit, static_argnames=("generator", "batch_stats_mode"))
def _apply(generator: models.Generator, variables: Any, z: jax.Array, layer_masks: Optional[Mapping[int, Any]],
           batch_stats_mode: bool) -> jax.Array:
    if batch_stats_mode:
        images, _ = generator.apply(variables, z, train=True, layer_masks=layer_masks, mutable=["batch_stats"])
        return images
    return generator.apply(variables, z, train=False, layer_masks=layer_masks)


def generate(config: ml_collections.ConfigDict, g_variables: Any, z: np.ndarray, batch_size: int = 256,
             batch_stats_mode: bool = False, layer_masks: Optional[Mapping[int, Any]] = None) -> np.ndarray:
    """Images in [-1, 1] for every row of z.

    In inference mode each image depends on its own z only, whatever `batch_size` or the number of samples.
    `batch_stats_mode` normalizes with the statistics of each batch instead (the reference implementations' default,
    which makes an image depend on its batch-mates).
    """
    generator, _ = models.build_models(config)
    z = np.asarray(z, np.float32)
    out = []
    for start in range(0, len(z), batch_size):
        chunk = z[start:start + batch_size]
        out.append(np.asarray(_apply(generator, g_variables, jnp.asarray(chunk), layer_masks, batch_stats_mode)))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def layer_widths(config: ml_collections.ConfigDict) -> Sequence[int]:
    """Channels of G's hidden layers, 4x4 layer first (the layers `layer_masks` and `activations` index)."""
    n_up = models.num_resolution_changes(config.image_size)
    return [config.g_width * 2 ** (n_up - 1 - i) for i in range(n_up)]


def check_layer(config: ml_collections.ConfigDict, layer: int) -> int:
    """`layer` as a non-negative index (negative counts from the top, -1 = the last hidden layer)."""
    count = len(layer_widths(config))
    if not -count <= layer < count:
        raise ValueError(f"G has hidden layers 0..{count - 1} (or -{count}..-1); got layer={layer}")
    return layer % count


@functools.partial(jax.jit, static_argnames=("generator", "layer"))
def _activations(generator: models.Generator, variables: Any, z: jax.Array, layer: int) -> jax.Array:
    _, state = generator.apply(variables, z, train=False, mutable=["intermediates"])
    return state["intermediates"][f"layer{layer}"][0]


def activations(config: ml_collections.ConfigDict, g_variables: Any, z: np.ndarray, layer: int,
                batch_size: int = 256) -> np.ndarray:
    """(N, H, W, C) activations of G's hidden layer `layer` (after its ReLU), in inference mode."""
    generator, _ = models.build_models(config)
    layer = check_layer(config, layer)
    z = np.asarray(z, np.float32)
    out = [np.asarray(_activations(generator, g_variables, jnp.asarray(z[s:s + batch_size]), layer))
           for s in range(0, len(z), batch_size)]
    return np.concatenate(out)


def feature_mask(config: ml_collections.ConfigDict, layer: int, dropped: Sequence[int]) -> np.ndarray:
    """(C,) float mask of layer `layer`: 0 for the feature maps in `dropped`, 1 elsewhere."""
    width = layer_widths(config)[check_layer(config, layer)]
    dropped = np.asarray(list(dropped), np.int64)
    if dropped.size and (dropped.min() < 0 or dropped.max() >= width):
        raise ValueError(f"feature maps of layer {layer} are 0..{width - 1}; got {sorted(dropped.tolist())}")
    mask = np.ones((width,), np.float32)
    mask[dropped] = 0.0
    return mask


def generate_without(config: ml_collections.ConfigDict, g_variables: Any, z: np.ndarray, layer: int,
                     dropped: Sequence[int], batch_size: int = 256) -> np.ndarray:
    """Images with the feature maps `dropped` of G's hidden layer `layer` zeroed everywhere (the paper's Sec. 6.1)."""
    mask = feature_mask(config, layer, dropped)
    return generate(config, g_variables, z, batch_size, layer_masks={check_layer(config, layer): mask})


def mask_at_layer(image_masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, S, S) boolean image masks -> (N, height, width) fraction of each layer cell's pixels inside the mask."""
    n, size_h, size_w = image_masks.shape
    if size_h % height or size_w % width:
        raise ValueError(f"mask size {size_h}x{size_w} is not a multiple of the layer's {height}x{width}")
    cells = image_masks.astype(np.float32).reshape(n, height, size_h // height, width, size_w // width)
    return cells.mean(axis=(2, 4))


def maps_inside_mask(config: ml_collections.ConfigDict, g_variables: Any, z: np.ndarray, image_masks: np.ndarray,
                     layer: int, method: str = "logistic", batch_size: int = 256, seed: int = 0):
    """Feature maps of G's layer `layer` that fire inside user-given image regions, e.g. window boxes.

    `image_masks` is (S, S) or (N, S, S) boolean, in the generated images' pixels. Every spatial position of the layer
    is one example: its C activations, labelled positive when most of its cell lies inside the mask. 'logistic' fits
    an L2-regularized logistic regression on the standardized activations, as the paper did for windows (Sec. 6.1),
    and scores each map by its weight; the paper dropped every map with a positive weight. 'ratio' scores each map
    by log(mean activation inside / mean activation outside). Returns (maps sorted by decreasing score, scores).
    """
    acts = activations(config, g_variables, z, layer, batch_size)
    n, h, w, c = acts.shape
    image_masks = np.broadcast_to(np.asarray(image_masks, bool), (n,) + np.shape(image_masks)[-2:])
    inside = (mask_at_layer(image_masks, h, w) >= 0.5).reshape(-1)
    if inside.all() or not inside.any():
        raise ValueError("the mask must cover some, but not all, cells of the layer "
                         f"({h}x{w} cells of {image_masks.shape[-1] // w}px each)")
    features = acts.reshape(-1, c).astype(np.float64)
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression
        std = features.std(axis=0)
        standardized = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
        probe = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
        scores = probe.fit(standardized, inside).coef_[0]
    elif method == "ratio":
        eps = 1e-6
        scores = np.log((features[inside].mean(axis=0) + eps) / (features[~inside].mean(axis=0) + eps))
    else:
        raise ValueError(f"method {method!r} is not supported; use 'logistic' or 'ratio'")
    order = np.argsort(-scores, kind="stable")
    return order, scores
