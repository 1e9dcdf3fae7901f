"""Pure functions on latent vectors z (shape (..., latent_dim)): sampling, interpolation, walks and arithmetic."""

import jax
import jax.numpy as jnp

Z_DISTRIBUTIONS = ("uniform", "normal")


def sample_z(rng: jax.Array, num: int, latent_dim: int, distribution: str = "uniform") -> jax.Array:
    """`num` latent vectors: uniform in [-1, 1] (the paper) or standard normal."""
    if distribution == "uniform":
        return jax.random.uniform(rng, (num, latent_dim), minval=-1.0, maxval=1.0)
    if distribution == "normal":
        return jax.random.normal(rng, (num, latent_dim))
    raise ValueError(f"z distribution {distribution!r} is not supported; use one of {Z_DISTRIBUTIONS}")


def sample_z_for_examples(rng: jax.Array, example_indices: jax.Array, latent_dim: int,
                          distribution: str = "uniform") -> jax.Array:
    """One z per global example index, each from `fold_in(rng, index)`.

    A device draws the z of its own slice of the global batch, so the step's result does not depend on how the
    batch is split over devices (or hosts).
    """
    return jax.vmap(lambda i: sample_z(jax.random.fold_in(rng, i), 1, latent_dim, distribution)[0])(example_indices)
