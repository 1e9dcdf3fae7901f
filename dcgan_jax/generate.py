"""Generator-side tools: images from z in batches, in inference mode (batchnorm running averages) by default."""

import functools
from typing import Any, Mapping, Optional

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
