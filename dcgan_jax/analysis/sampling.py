"""Samples of a trained generator, and the z pool every analysis picks its latent points from.

Sample i uses the i-th z of `latent.z_for_seed(seed, ...)`, and inference-mode batchnorm makes each
image a function of its own z alone: the same seed gives the same images whatever the number of
samples or the batch size (`batch_stats=True` normalizes with each batch's statistics instead, as
the reference implementations do).
"""

import os
import zipfile
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from dcgan_jax import atomic_write, memory, progress_bars, visualize
from dcgan_jax.data.images import as_uint8
from dcgan_jax.errors import UserError
from dcgan_jax.nn import generate, latent, models


def images(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    batch_size: int = 256,
    batch_stats: bool = False,
) -> np.ndarray:
    """uint8 images (N, H, W, C) of the generator `g_variables` (of `model`, config.model) for G
    inputs (N, models.g_input_dim): z, followed by the class code for a class-conditional G
    (`g_inputs`)."""
    z = np.asarray(z, np.float32).reshape(-1, models.g_input_dim(model))
    return as_uint8(generate.generate(model, g_variables, z, batch_size, batch_stats))


def g_inputs(
    model: ml_collections.ConfigDict,
    z: np.ndarray,
    rows: Sequence[int] | None = None,
    label: int | None = None,
) -> np.ndarray:
    """G's inputs for z of pool rows `rows` (default 0, 1, ...): z itself for an unconditional G;
    for a conditional one, z with the class code of `label`, or (no label) of class i % num_classes
    for row i, so sample i of `sample` and index i of `explore` show the same class. Rows that
    already hold a class code keep it unless a label is given."""
    z = np.asarray(z, np.float32)
    num_classes = model.conditional.num_classes
    if not num_classes:
        if label is not None:
            raise UserError(
                f"--class={label}: this run is unconditional (model.conditional.num_classes=0); leave "
                f"--class out, or train a conditional run (e.g. --config=configs/digits_conditional.py)"
            )
        return z
    if label is not None and not 0 <= label < num_classes:
        raise UserError(
            f"--class={label} must be in 0..{num_classes - 1} (this run has {num_classes} classes)"
        )
    if z.shape[-1] == models.g_input_dim(model):
        if label is None:
            return z
        z = z[..., : model.latent_dim]
    rows = np.arange(len(z)) if rows is None else np.asarray(rows)
    return latent.with_class(z, rows % num_classes if label is None else label, num_classes)


def sample(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    num_samples: int,
    seed: int = 0,
    batch_size: int = 256,
    batch_stats: bool = False,
    label: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, G inputs) of `num_samples` samples of the generator `g_variables` drawn from
    `seed`; for a class-conditional G all of class `label`, or (None) sample i of class i %
    num_classes."""
    if num_samples <= 0 or batch_size <= 0:
        raise UserError(
            f"--num_samples={num_samples} and --batch_size={batch_size} must be positive"
        )
    size, channels = model.image_size, model.num_channels
    memory.check_fits(
        num_samples,
        2 * size * size * channels + 4 * model.latent_dim,
        f"{num_samples:,} samples",
        "ask for fewer with --num_samples and write several files (--seed) for more",
    )
    z = g_inputs(
        model,
        latent.z_for_seed(seed, num_samples, model.latent_dim, model.z_distribution),
        label=label,
    )
    chunk = (
        16 * batch_size
    )  # whole batches, so batch_stats mode sees the same batches; a progress bar per chunk
    parts = []
    with progress_bars.bar(total=num_samples, desc="sampling", unit="img") as bar:
        for start in range(0, num_samples, chunk):
            parts.append(
                images(model, g_variables, z[start : start + chunk], batch_size, batch_stats)
            )
            bar.update(len(parts[-1]))
    return np.concatenate(parts), z


def check_samples_output(output: str) -> str:
    """The lower-case extension of a samples file (a str or a pathlib.Path), which must be .png (a
    grid) or .npz (arrays)."""
    output = os.fspath(output)
    extension = os.path.splitext(output)[1].lower()
    if extension not in (".png", ".npz"):
        raise UserError(f"--output={output!r} must end in .png (grid) or .npz (arrays)")
    return extension


def save_samples(
    output: str, images_: np.ndarray, z: np.ndarray, num_cols: int | None = None
) -> None:
    """`.png`: a grid (`num_cols` columns, default square); `.npz`: `images` (uint8, N x H x W x C)
    and `z`. Atomic: a kill or a full disk leaves the old file whole (a failure is one UserError)."""
    if check_samples_output(output) == ".png":
        visualize.save_grid(output, images_, num_cols)
    else:  # a file object: np.savez would add ".npz" to a name ending in ".NPZ"
        with atomic_write.target(output) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=images_, z=z)


def load_z_file(path: str, latent_dim: int, input_dim: int | None = None) -> np.ndarray:
    """The `z` array of an .npz (e.g. written by `sample --output=x.npz`), checked against the
    generator: rows of latent_dim, or of input_dim (z with a class code, a conditional G's
    input)."""
    try:
        if os.path.isfile(path) and not zipfile.is_zipfile(path):  # np.load: .npy, or a pickle
            raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as data:
            z = data["z"]
    except (OSError, KeyError, ValueError) as e:
        reason = " ".join(str(e).split())[:200]
        raise UserError(
            f"z file {path!r} is not an .npz with a `z` array ({reason}); write one with "
            f"`python -m dcgan_jax.sample --output=z.npz`"
        ) from None
    widths = sorted({latent_dim, input_dim or latent_dim})
    if z.ndim != 2 or z.shape[1] not in widths:
        raise UserError(
            f"z file {path!r} holds z of shape {z.shape}; this generator needs (N, "
            f"{' or '.join(map(str, widths))})"
        )
    if not np.issubdtype(z.dtype, np.number) or not np.isfinite(z).all():
        raise UserError(
            f"z file {path!r} holds non-finite or non-numeric values (nan/inf); write it again"
        )
    return z.astype(np.float32)


def pick_z(
    model: ml_collections.ConfigDict,
    indices: Sequence[int],
    seed: int = 0,
    pool: np.ndarray | None = None,
    label: int | None = None,
) -> np.ndarray:
    """Rows `indices` of a z pool: `pool` if given, else the z of `sample --seed=seed` (row i =
    sample i), as G's inputs (`g_inputs`: for a conditional G of class `label`, or of row i's
    class)."""
    return g_inputs(model, _pick_rows(model, indices, seed, pool), [int(i) for i in indices], label)


def _pick_rows(
    model: ml_collections.ConfigDict, indices: Sequence[int], seed: int, pool: np.ndarray | None
) -> np.ndarray:
    indices = [int(i) for i in indices]
    if not indices or min(indices) < 0:
        raise UserError(f"indices {indices} must be a non-empty list of non-negative integers")
    if pool is not None:
        if max(indices) >= len(pool):
            raise UserError(f"index {max(indices)} is out of range: the z pool holds {len(pool)} z")
        return np.asarray(pool)[indices]
    memory.check_fits(
        max(indices) + 1,
        4 * model.latent_dim,
        f"a z pool up to index {max(indices):,}",
        "use smaller --indices",
    )
    return latent.z_for_seed(seed, max(indices) + 1, model.latent_dim, model.z_distribution)[
        indices
    ]
