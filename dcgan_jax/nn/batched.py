"""The one batched-apply loop: a jitted function over consecutive batches of a large host array."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def map_batches(
    fn: Callable[[jax.Array], Any],
    inputs: np.ndarray,
    batch_size: int,
    prepare: Callable[[np.ndarray], np.ndarray] = np.asarray,
) -> Any:
    """`fn` applied to `inputs[i:i + batch_size]` for consecutive i, its outputs (arrays or a pytree
    of arrays with a leading batch axis) concatenated on the host as numpy.

    `prepare` converts each host batch first (e.g. uint8 -> float), so the whole input is never
    converted at once. Only the last batch may be smaller, so `fn` compiles at most twice. Empty
    inputs give empty outputs of the right trailing shapes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    outputs = [
        jax.device_get(fn(jnp.asarray(prepare(inputs[start : start + batch_size]))))
        for start in range(0, len(inputs), batch_size)
    ]
    if not outputs:
        empty = np.asarray(prepare(inputs[:0]))
        shapes = jax.eval_shape(fn, jax.ShapeDtypeStruct(empty.shape, empty.dtype))
        return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *outputs)
