"""The paper's latent-space figures on a trained generator (Radford et al. 2015, Sec. 6):
interpolations, walks, coordinate sweeps, vector arithmetic and "turn" vectors. Each takes the model
(config.model), a generator's variables and latent points, and returns a Picture.

    run = training.run.open_run("runs/digits")
    model, g = run.config.model, run.sampling_g_variables
    z = sampling.pick_z(model, [0, 1])
    figures.write_picture(latent_space.interpolate(model, g, z, num_steps=8, method="slerp"), "interp.png")
"""

from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from dcgan_jax.analysis.figures import Picture
from dcgan_jax.analysis.sampling import images
from dcgan_jax.errors import UserError
from dcgan_jax.nn import latent, models


def sweep(num_steps: int, start: float, stop: float) -> np.ndarray:
    """`num_steps` evenly spaced values from start to stop (both finite), both included."""
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise UserError(f"start={start} and stop={stop} must be finite numbers")
    try:
        return np.asarray(latent.interpolation_weights(num_steps, start, stop))
    except ValueError as e:
        raise UserError(str(e)) from None


def interpolate(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    num_steps: int = 10,
    method: str = "linear",
    start: float = 0.0,
    stop: float = 1.0,
    batch_size: int = 256,
) -> Picture:
    """One row per consecutive pair of z (2K, d): G along the line (or great circle) between them;
    alphas from `start` to `stop` (outside [0, 1] extrapolates)."""
    if len(z) < 2 or len(z) % 2:
        raise UserError(
            f"interpolate needs pairs of latent points (got {len(z)}), e.g. indices 0,1,2,3"
        )
    alphas = sweep(num_steps, start, stop)
    try:
        rows = [
            images(
                model,
                g_variables,
                latent.interpolate(
                    z[i], z[i + 1], num_steps, method=method, start=alphas[0], stop=alphas[-1]
                ),
                batch_size,
            )
            for i in range(0, len(z), 2)
        ]
    except ValueError as e:
        raise UserError(str(e)) from None
    return Picture(rows)


def walk(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    steps_between: int = 8,
    method: str = "linear",
    batch_size: int = 256,
) -> Picture:
    """A path through all z (K, d); the grid has one row per segment, the GIF plays the whole
    path."""
    if len(z) < 2 or steps_between < 1:
        raise UserError(
            f"a walk needs at least 2 latent points and steps_between >= 1 "
            f"(got {len(z)}, {steps_between})"
        )
    path = images(model, g_variables, latent.walk(z, steps_between, method=method), batch_size)
    rows = [path[i * steps_between : (i + 1) * steps_between + 1] for i in range(len(z) - 1)]
    return Picture(rows, frames=list(path))


def vary_dim(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    dim: int,
    values: Sequence[float],
    batch_size: int = 256,
) -> Picture:
    """One row per z: coordinate `dim` set to each of `values`."""
    if not 0 <= dim < model.latent_dim:
        raise UserError(f"dim={dim} must be in [0, {model.latent_dim})")
    return Picture(
        [
            images(
                model, g_variables, latent.vary_dimension(row, dim, np.asarray(values)), batch_size
            )
            for row in z
        ]
    )


def vary_all(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    values: Sequence[float],
    max_dims: int = 0,
    batch_size: int = 256,
) -> Picture:
    """One row per coordinate of one z (d,) (the first `max_dims`, 0 = all), each swept through
    `values`."""
    z = np.asarray(z, np.float32)
    width = models.g_input_dim(model)
    if z.shape != (width,):
        raise UserError(f"vary_all sweeps one latent point of shape ({width},), got {z.shape}")
    grid = np.asarray(latent.vary_all(z, np.asarray(values)))
    grid = grid[
        : min(max_dims or model.latent_dim, model.latent_dim)
    ]  # (dims, len(values), d): z's dims
    pictures = images(model, g_variables, grid.reshape(-1, grid.shape[-1]), batch_size)
    return Picture(list(pictures.reshape(grid.shape[:2] + pictures.shape[1:])))


def arithmetic(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    num_noise: int = 8,
    noise_scale: float = 0.25,
    seed: int = 0,
    batch_size: int = 256,
) -> Picture:
    """Rows a, b, c (exemplars, then G(mean z)), then G(mean a - mean b + mean c) and noisy variants
    around it (the paper's Fig. 7: uniform noise of half-width 0.25)."""
    groups = [np.asarray(g).reshape(-1, models.g_input_dim(model)) for g in (a, b, c)]
    if not all(len(g) for g in groups):
        raise UserError("vector arithmetic needs three non-empty groups of latent points")
    draw = lambda z: images(model, g_variables, z, batch_size)  # noqa: E731
    rows = [np.concatenate([draw(g), draw(g.mean(axis=0))]) for g in groups]
    result = np.asarray(latent.vector_arithmetic(*groups))
    noisy = np.array(latent.add_noise(jax.random.PRNGKey(seed), result, num_noise, noise_scale))
    noisy[..., model.latent_dim :] = result[
        model.latent_dim :
    ]  # a conditional G: noise on z, not the class
    rows.append(np.concatenate([draw(result), draw(noisy)]))
    return Picture(rows)


def turn(
    model: ml_collections.ConfigDict,
    g_variables: Any,
    z: np.ndarray,
    group_a: np.ndarray,
    group_b: np.ndarray,
    amounts: Sequence[float],
    batch_size: int = 256,
) -> Picture:
    """One row per z: z + t (mean a - mean b) for each t in `amounts` (the paper's turn vector, Fig.
    8)."""
    vector = latent.direction(np.asarray(group_a), np.asarray(group_b))
    return Picture(
        [
            images(
                model, g_variables, latent.move_along(row, vector, np.asarray(amounts)), batch_size
            )
            for row in z
        ]
    )
