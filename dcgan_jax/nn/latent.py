"""Pure functions on latent vectors z (shape (..., latent_dim)): sampling, interpolation, walks and
arithmetic."""

import jax
import jax.numpy as jnp
import numpy as np

Z_DISTRIBUTIONS = ("uniform", "normal")


def sample_z(rng: jax.Array, num: int, latent_dim: int, distribution: str = "uniform") -> jax.Array:
    """`num` latent vectors: uniform in [-1, 1] (the paper) or standard normal."""
    if distribution == "uniform":
        return jax.random.uniform(rng, (num, latent_dim), minval=-1.0, maxval=1.0)
    if distribution == "normal":
        return jax.random.normal(rng, (num, latent_dim))
    raise ValueError(
        f"z distribution {distribution!r} is not supported; use one of {Z_DISTRIBUTIONS}"
    )


def sample_z_for_examples(
    rng: jax.Array, example_indices: jax.Array, latent_dim: int, distribution: str = "uniform"
) -> jax.Array:
    """One z per global example index, each from `fold_in(rng, index)`.

    A device draws the z of its own slice of the global batch, so the step's result does not depend
    on how the batch is split over devices (or hosts).
    """
    return jax.vmap(lambda i: sample_z(jax.random.fold_in(rng, i), 1, latent_dim, distribution)[0])(
        example_indices
    )


def z_for_seed(seed: int, num: int, latent_dim: int, distribution: str = "uniform") -> np.ndarray:
    """The z pool of `python -m dcgan_jax.sample --seed=seed`: z number i depends on (seed, i) only,
    so a longer pool extends a shorter one and `explore --indices` names the same z as `sample`'s
    sample i."""
    return np.asarray(
        sample_z_for_examples(jax.random.PRNGKey(seed), np.arange(num), latent_dim, distribution)
    )


def class_code(labels, num_classes: int):
    """One-hot class codes (N, num_classes) of integer labels (N,): the part of a conditional G's
    input, and D's input, that names the class."""
    return jax.nn.one_hot(jnp.asarray(labels), num_classes, dtype=jnp.float32)


def with_class(z: np.ndarray, labels, num_classes: int) -> np.ndarray:
    """G's input for a class-conditional G: each z (N, latent_dim) followed by the one-hot code of
    its label (an int for all, or one per z). Unconditional (num_classes = 0): z itself."""
    z = np.asarray(z, np.float32)
    if not num_classes:
        return z
    labels = np.broadcast_to(np.asarray(labels, np.int64), z.shape[:1])
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"class labels must be in 0..{num_classes - 1}; got {sorted(set(labels.tolist()))}"
        )
    return np.concatenate([z, np.asarray(class_code(labels, num_classes))], axis=-1)


def balanced_labels(num: int, num_classes: int) -> np.ndarray:
    """0, 1, ..., num_classes - 1, 0, 1, ...: every class equally often (samples and evaluations of
    a conditional G without a class asked for)."""
    return np.arange(num) % max(num_classes, 1)


INTERPOLATION_METHODS = ("linear", "slerp")


def _mean(group: jax.Array) -> jax.Array:
    """Mean over the exemplar axis: (k, d) -> (d,); a single (d,) vector is its own mean."""
    group = jnp.asarray(group)
    return group if group.ndim == 1 else jnp.mean(group, axis=0)


def lerp(z0: jax.Array, z1: jax.Array, alpha: jax.Array) -> jax.Array:
    """(1 - alpha) z0 + alpha z1: exactly z0 at alpha=0 and z1 at alpha=1; extrapolates outside [0,
    1]."""
    return (1.0 - alpha) * z0 + alpha * z1


def slerp(z0: jax.Array, z1: jax.Array, alpha: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Spherical interpolation along the great circle through z0 and z1 (Shoemake); lerp when they
    are (anti)parallel.

    Keeps the norm when |z0| = |z1|, so a path between two typical samples never passes the low-norm
    center, where a high-dimensional prior has almost no mass.
    """
    unit0 = z0 / jnp.maximum(jnp.linalg.norm(z0, axis=-1, keepdims=True), eps)
    unit1 = z1 / jnp.maximum(jnp.linalg.norm(z1, axis=-1, keepdims=True), eps)
    omega = jnp.arccos(jnp.clip(jnp.sum(unit0 * unit1, axis=-1, keepdims=True), -1.0, 1.0))
    sin_omega = jnp.sin(omega)
    degenerate = sin_omega < eps
    safe_sin = jnp.where(degenerate, 1.0, sin_omega)
    spherical = (jnp.sin((1.0 - alpha) * omega) * z0 + jnp.sin(alpha * omega) * z1) / safe_sin
    # sin(omega) / sin(omega) can be off by an ulp (vectorized sin), so the endpoints are returned
    # as given.
    spherical = jnp.where(alpha == 0.0, z0, jnp.where(alpha == 1.0, z1, spherical))
    return jnp.where(degenerate, lerp(z0, z1, alpha), spherical)


def _blend(method: str):
    if method not in INTERPOLATION_METHODS:
        raise ValueError(
            f"interpolation method {method!r} is not supported; use one of {INTERPOLATION_METHODS}"
        )
    return lerp if method == "linear" else slerp


def interpolation_weights(num_steps: int, start: float = 0.0, stop: float = 1.0) -> jax.Array:
    """`num_steps` evenly spaced alphas from start to stop, both included (exact 0 and 1 for the
    defaults)."""
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps} must be >= 1")
    fraction = jnp.arange(num_steps, dtype=jnp.float32) / max(num_steps - 1, 1)
    return (1.0 - fraction) * start + fraction * stop


def interpolate(
    z0: jax.Array,
    z1: jax.Array,
    num_steps: int,
    *,
    method: str = "linear",
    start: float = 0.0,
    stop: float = 1.0,
) -> jax.Array:
    """(num_steps, d) points from z0 to z1 at alphas linspace(start, stop); start/stop outside [0,
    1] extrapolate."""
    blend = _blend(method)
    alphas = interpolation_weights(num_steps, start, stop)
    return jax.vmap(lambda a: blend(z0, z1, a))(alphas)


def walk(points: jax.Array, steps_between: int, *, method: str = "linear") -> jax.Array:
    """A path through K points (K, d): ((K-1) * steps_between + 1, d), passing exactly through every
    point."""
    points = jnp.asarray(points)
    if points.shape[0] < 2 or steps_between < 1:
        raise ValueError(
            f"a walk needs >= 2 points and steps_between >= 1 (got {points.shape[0]}, {steps_between})"
        )
    blend = _blend(method)
    alphas = (
        jnp.arange(steps_between, dtype=jnp.float32) / steps_between
    )  # the next point starts the next segment

    def segment(a, b):
        return jax.vmap(lambda t: blend(a, b, t))(alphas)

    segments = jax.vmap(segment)(points[:-1], points[1:])  # (K-1, steps_between, d)
    return jnp.concatenate([segments.reshape(-1, points.shape[-1]), points[-1:]], axis=0)


def vary_dimension(z: jax.Array, dim: int, values: jax.Array) -> jax.Array:
    """(len(values), d): copies of z (d,) with coordinate `dim` set to each value; `dim` may be
    traced."""
    values = jnp.asarray(values, z.dtype)
    selected = jnp.arange(z.shape[-1]) == dim
    return jnp.where(selected[None, :], values[:, None], z[None, :])


def vary_all(z: jax.Array, values: jax.Array) -> jax.Array:
    """(d, len(values), d): row i sweeps coordinate i of z through `values`, the others fixed."""
    return jax.vmap(lambda dim: vary_dimension(z, dim, values))(jnp.arange(z.shape[-1]))


def vector_arithmetic(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """mean(a) - mean(b) + mean(c) over exemplar groups (k, d) (the paper: 3 exemplars per
    concept)."""
    return _mean(a) - _mean(b) + _mean(c)


def add_noise(rng: jax.Array, z: jax.Array, num: int, scale: float) -> jax.Array:
    """(num, d): z plus uniform noise in [-scale, scale] (the paper's Fig. 7 uses 0.25 around the
    result)."""
    return z[None, :] + jax.random.uniform(rng, (num, z.shape[-1]), z.dtype, -scale, scale)


def direction(group_a: jax.Array, group_b: jax.Array) -> jax.Array:
    """mean(a) - mean(b): e.g. the paper's "turn vector" from left-looking minus right-looking
    faces."""
    return _mean(group_a) - _mean(group_b)


def move_along(z: jax.Array, vector: jax.Array, amounts: jax.Array) -> jax.Array:
    """(len(amounts), d): z + t * vector for every t in `amounts`."""
    amounts = jnp.asarray(amounts, z.dtype)
    return z[None, :] + amounts[:, None] * vector[None, :]
