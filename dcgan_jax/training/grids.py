"""G's inputs for the sample grids saved during training: the same fixed z for the whole run, and
fresh z at each sampled step, both functions of (seed, step) so that a resumed run draws exactly
what an uninterrupted one would."""

import os
from collections.abc import Iterable, Sequence

import jax
import ml_collections
import numpy as np

from dcgan_jax import rng_tags, run_files, visualize
from dcgan_jax.nn import latent


def grid_columns(num_samples: int, num_classes: int) -> int | None:
    """Columns of the training sample grids: None (square) for an unconditional run; for a
    conditional one, one row per class with num_samples // num_classes columns (at least 1)."""
    return max(1, num_samples // num_classes) if num_classes else None


def _grid_inputs(
    model: ml_collections.ConfigDict, num_samples: int, rng: jax.Array, fresh_per_row: bool
) -> np.ndarray:
    num_classes = model.conditional.num_classes
    if not num_classes:
        return np.asarray(latent.sample_z(rng, num_samples, model.latent_dim, model.z_distribution))
    columns = grid_columns(num_samples, num_classes)
    rows = (
        num_classes if fresh_per_row else 1
    )  # fixed grids: the same z in every row, so a column holds one style
    z = np.asarray(latent.sample_z(rng, rows * columns, model.latent_dim, model.z_distribution))
    z = np.tile(z, (num_classes // rows, 1))
    return latent.with_class(z, np.repeat(np.arange(num_classes), columns), num_classes)


def fixed_z(model: ml_collections.ConfigDict, num_samples: int, seed: int) -> np.ndarray:
    """G's inputs for the fixed-z grids: the same for the whole run (and for reruns)."""
    return _grid_inputs(
        model,
        num_samples,
        jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.FIXED_GRID_Z),
        fresh_per_row=False,
    )


def random_z(
    model: ml_collections.ConfigDict, num_samples: int, seed: int, step: int
) -> np.ndarray:
    """Fresh G inputs for the random-z grid of `step`: a function of (seed, step), so reruns draw
    the same."""
    rng = jax.random.fold_in(
        jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.RANDOM_GRID_Z), step
    )
    return _grid_inputs(model, num_samples, rng, fresh_per_row=True)


def to_rewrite(
    workdir: str, kept_steps: Iterable[int], every: int, zs: Sequence[str]
) -> list[tuple[int, str]]:
    """(step, z) of the grids of the kept checkpoint steps `kept_steps` that a resumed run rewrites
    from those checkpoints: a grid of a sample step (a multiple of `every`) that is missing (a run
    killed between a checkpoint and its grids, as versions that saved the checkpoint first could
    be), and any grid that exists but is empty or unreadable (a failed write)."""
    found = []
    for step in sorted(kept_steps):
        for z in zs:
            path = run_files.grid_file(workdir, z, step)
            if os.path.exists(path):
                if visualize.read_grid(path) is None:
                    found.append((step, z))
            elif step % every == 0:
                found.append((step, z))
    return found
