"""Memorization check (Radford et al. 2015, Sec. 6): the training images nearest to generated
samples.

A generator that copies its training set shows samples whose nearest training image is nearly
identical. Distances are Euclidean, in pixel space and in the discriminator's feature space
(`nn.features.discriminator_features`, the paper's max-pooled D activations). Training images are
streamed in chunks, so the check scales to any dataset size.
"""

from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from dcgan_jax.analysis.figures import Picture
from dcgan_jax.analysis.sampling import images
from dcgan_jax.data import datasets
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.sources import read_batch
from dcgan_jax.errors import UserError
from dcgan_jax.nn import features

Featurize = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, H, W, C) -> (N, D) float features


def pixel_features(images: np.ndarray) -> np.ndarray:
    """uint8 or [-1, 1] images -> flattened float32 pixels in [-1, 1]."""
    return as_model_input(images).reshape(len(images), -1)


def discriminator_featurizer(
    model: ml_collections.ConfigDict, d_variables: Any, batch_size: int = 256
) -> Featurize:
    """Images -> D features (every D layer max-pooled to 4x4, concatenated), D in inference mode."""
    return lambda images: features.discriminator_features(model, d_variables, images, batch_size)


def squared_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """(N, M) squared Euclidean distances between rows, in float64 (clipped at 0 against
    rounding)."""
    q = np.asarray(queries, np.float64)
    r = np.asarray(references, np.float64)
    d = np.sum(q**2, axis=1)[:, None] - 2.0 * q @ r.T + np.sum(r**2, axis=1)[None, :]
    return np.maximum(d, 0.0)


def _merge_top_k(best_d, best_i, new_d, new_i, k):
    """Keeps the k smallest distances per row; ties go to the lower index."""
    d = np.concatenate([best_d, new_d], axis=1)
    i = np.concatenate([best_i, new_i], axis=1)
    by_index = np.argsort(i, axis=1, kind="stable")
    d, i = np.take_along_axis(d, by_index, 1), np.take_along_axis(i, by_index, 1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]  # stable: equal distances keep index order
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def nearest(
    queries: np.ndarray, references: np.ndarray, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (N, k): the k reference rows nearest to every query row, nearest
    first."""
    return nearest_streaming(queries, lambda: iter([(0, np.asarray(references))]), k)


def nearest_streaming(
    queries: np.ndarray, chunks: Callable, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Like `nearest`, over references given as an iterable of (first_index, feature rows)
    chunks."""
    n = len(queries)
    best_d = np.full((n, 0), np.inf)
    best_i = np.zeros((n, 0), np.int64)
    for first, rows in chunks():
        new_d = squared_distances(queries, rows)
        new_i = np.broadcast_to(first + np.arange(len(rows), dtype=np.int64), new_d.shape)
        best_d, best_i = _merge_top_k(best_d, best_i, new_d, new_i, k)
    if best_i.shape[1] < k:
        raise ValueError(f"asked for {k} neighbours among only {best_i.shape[1]} references")
    return best_i, np.sqrt(best_d)


def nearest_in_source(
    queries: np.ndarray,
    source: Any,
    featurize: Featurize,
    k: int = 1,
    max_images: int | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The k images of `source` (indices) nearest to the query images, both mapped through
    `featurize`."""
    query_features = featurize(np.asarray(queries))
    total = len(source) if not max_images else min(len(source), max_images)

    def chunks():
        for first in range(0, total, chunk_size):
            indices = np.arange(first, min(first + chunk_size, total))
            yield first, featurize(read_batch(source, indices))

    return nearest_streaming(query_features, chunks, k)


def nearest_figure(
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    g_variables: Any,
    d_variables: Any,
    z: np.ndarray,
    k: int = 3,
    split: str = "train",
    max_train_images: int = 0,
    batch_size: int = 256,
) -> Picture:
    """Per z: its sample (G: `g_variables`) | the k nearest images of the `split` of `data`
    (config.data) in pixel space | the k nearest in the feature space of D (`d_variables`). `model`:
    config.model."""
    if k < 1:
        raise UserError(f"k={k} must be >= 1")
    samples = images(model, g_variables, z, batch_size)
    source = datasets.load_source(data, model.image_size, model.num_channels, split)
    searched = min(len(source), max_train_images or len(source))
    if k > searched:
        raise UserError(f"k={k} is more than the {searched} images searched")
    spaces = {
        "pixels": pixel_features,
        "D features": discriminator_featurizer(model, d_variables, batch_size),
    }
    found = {name: nearest_in_source(samples, source, f, k, searched) for name, f in spaces.items()}
    blank = np.full_like(samples[:1], 255)
    rows = [
        np.concatenate(
            [
                samples[r : r + 1],
                blank,
                read_batch(source, found["pixels"][0][r]),
                blank,
                read_batch(source, found["D features"][0][r]),
            ]
        )
        for r in range(len(samples))
    ]
    notes = [
        f"nearest in {name}: mean distance {dist[:, 0].mean():.4g}; indices {idx[:, 0].tolist()}"
        for name, (idx, dist) in found.items()
    ]
    return Picture(rows, notes=notes)
