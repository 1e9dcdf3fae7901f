"""Latent-space functions against direct numpy formulas, eagerly, under jit and under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.nn import latent


def _pair(seed, dim=20):
    z = np.asarray(latent.sample_z(jax.random.PRNGKey(seed), 2, dim))
    return z[0], z[1]


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_endpoints_are_exact(method):
    fn = jax.jit(latent.interpolate, static_argnames=("num_steps", "method"))
    for seed in range(20):
        z0, z1 = _pair(seed, 100)
        for f in (latent.interpolate, fn):
            path = np.asarray(f(z0, z1, num_steps=7, method=method))
            assert path.shape == (7, 100)
            np.testing.assert_array_equal(path[0], z0)
            np.testing.assert_array_equal(path[-1], z1)


def test_slerp_keeps_norm_between_equal_norm_endpoints():
    z0, z1 = _pair(1)
    z1 = z1 * (np.linalg.norm(z0) / np.linalg.norm(z1))
    path = np.asarray(latent.interpolate(z0, z1, 11, method="slerp", start=-0.5, stop=1.5))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-5)
    midpoint = np.asarray(latent.interpolate(z0, z1, 3, method="linear"))[1]
    assert np.linalg.norm(midpoint) < 0.95 * np.linalg.norm(
        z0
    )  # linear cuts inside the sphere, slerp does not


def test_slerp_of_parallel_vectors_falls_back_to_linear():
    z0, _ = _pair(2)
    path = np.asarray(latent.interpolate(z0, 2 * z0, 5, method="slerp"))
    np.testing.assert_allclose(path, np.asarray(latent.interpolate(z0, 2 * z0, 5)), rtol=1e-6)


def test_linear_extrapolation_matches_formula():
    z0, z1 = _pair(3)
    path = np.asarray(
        latent.interpolate(z0, z1, 5, start=-0.5, stop=1.5)
    )  # alphas -0.5, 0, 0.5, 1, 1.5
    for alpha, point in zip((-0.5, 0.0, 0.5, 1.0, 1.5), path):
        np.testing.assert_allclose(point, (1 - alpha) * z0 + alpha * z1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(path[0], z0 - 0.5 * (z1 - z0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(path[-1], z1 + 0.5 * (z1 - z0), rtol=1e-6, atol=1e-6)


def test_bad_method_is_rejected():
    z0, z1 = _pair(0)
    with pytest.raises(ValueError, match="slerp"):
        latent.interpolate(z0, z1, 3, method="cubic")


def test_walk_passes_through_every_point():
    points = np.asarray(latent.sample_z(jax.random.PRNGKey(4), 4, 6))
    path = np.asarray(latent.walk(points, 5))
    assert path.shape == (3 * 5 + 1, 6)
    for k in range(4):
        np.testing.assert_array_equal(path[5 * k], points[k])
    np.testing.assert_allclose(
        path[7], points[1] + 0.4 * (points[2] - points[1]), rtol=1e-6, atol=1e-6
    )


def test_vary_dimension_changes_only_that_coordinate():
    z, _ = _pair(5)
    values = np.linspace(-0.05, 0.05, 6, dtype=np.float32)
    out = np.asarray(latent.vary_dimension(jnp.asarray(z), 3, values))
    assert out.shape == (6, 20)
    np.testing.assert_array_equal(out[:, 3], values)
    np.testing.assert_array_equal(
        np.delete(out, 3, axis=1), np.broadcast_to(np.delete(z, 3), (6, 19))
    )
    traced = jax.jit(latent.vary_dimension)(jnp.asarray(z), 3, values)  # dim traced
    np.testing.assert_array_equal(np.asarray(traced), out)


def test_vary_all_sweeps_each_coordinate():
    z, _ = _pair(6, 5)
    values = np.array([-1.0, 0.0, 1.0], np.float32)
    out = np.asarray(latent.vary_all(jnp.asarray(z), values))
    assert out.shape == (5, 3, 5)
    for dim in range(5):
        expected = np.tile(z, (3, 1))
        expected[:, dim] = values
        np.testing.assert_array_equal(out[dim], expected)


def test_vector_arithmetic_matches_numpy():
    rng = np.random.default_rng(0)
    a, b, c = (rng.uniform(-1, 1, (3, 100)).astype(np.float32) for _ in range(3))
    expected = a.mean(0) - b.mean(0) + c.mean(0)
    np.testing.assert_allclose(
        np.asarray(latent.vector_arithmetic(a, b, c)), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(jax.jit(latent.vector_arithmetic)(a, b, c)), expected, rtol=1e-5, atol=1e-6
    )


def test_add_noise_stays_within_scale():
    z, _ = _pair(7)
    noisy = np.asarray(latent.add_noise(jax.random.PRNGKey(0), jnp.asarray(z), 8, 0.25))
    assert noisy.shape == (8, 20)
    delta = noisy - z
    assert np.abs(delta).max() <= 0.25 + 1e-6 and np.abs(delta).max() > 0.1
    assert len(np.unique(noisy[:, 0])) == 8


def test_direction_and_move_along():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 10)), rng.normal(size=(4, 10))
    vector = np.asarray(latent.direction(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    np.testing.assert_allclose(vector, a.mean(0) - b.mean(0), rtol=1e-5, atol=1e-6)
    z = rng.normal(size=10).astype(np.float32)
    moved = np.asarray(
        latent.move_along(jnp.asarray(z), jnp.asarray(vector), jnp.array([0.0, 0.5, 2.0]))
    )
    np.testing.assert_allclose(
        moved, z + np.array([0.0, 0.5, 2.0])[:, None] * vector, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(moved[0], z)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_under_vmap_and_jit_matches_a_loop(method):
    z = np.asarray(latent.sample_z(jax.random.PRNGKey(8), 8, 12)).reshape(4, 2, 12)
    batched = jax.jit(
        jax.vmap(lambda a, b: latent.interpolate(a, b, 6, method=method, start=-0.5, stop=1.5))
    )
    out = np.asarray(batched(z[:, 0], z[:, 1]))
    assert out.shape == (4, 6, 12)
    for i in range(4):
        np.testing.assert_allclose(
            out[i],
            latent.interpolate(z[i, 0], z[i, 1], 6, method=method, start=-0.5, stop=1.5),
            rtol=1e-5,
            atol=1e-6,
        )


def test_other_functions_under_vmap_and_jit():
    rng = np.random.default_rng(2)
    batch = rng.uniform(-1, 1, (5, 3, 3, 8)).astype(
        np.float32
    )  # 5 problems x 3 groups x 3 exemplars
    out = jax.jit(jax.vmap(lambda g: latent.vector_arithmetic(g[0], g[1], g[2])))(batch)
    np.testing.assert_allclose(
        out, batch[:, 0].mean(1) - batch[:, 1].mean(1) + batch[:, 2].mean(1), rtol=1e-5, atol=1e-6
    )
    zs = jnp.asarray(batch[:, 0, 0])
    values = jnp.linspace(-1, 1, 4)
    swept = jax.jit(jax.vmap(lambda z: latent.vary_dimension(z, 2, values)))(zs)
    for i in range(5):
        np.testing.assert_array_equal(swept[i], latent.vary_dimension(zs[i], 2, values))
    walks = jax.jit(jax.vmap(lambda p: latent.walk(p, 3)))(jnp.asarray(batch[:, 0]))
    assert walks.shape == (5, 7, 8)
    np.testing.assert_allclose(walks[2], latent.walk(batch[2, 0], 3), rtol=1e-6)
    dirs = jax.jit(jax.vmap(latent.direction))(jnp.asarray(batch[:, 0]), jnp.asarray(batch[:, 1]))
    np.testing.assert_allclose(
        dirs, batch[:, 0].mean(1) - batch[:, 1].mean(1), rtol=1e-5, atol=1e-6
    )
    all_swept = jax.jit(jax.vmap(lambda z: latent.vary_all(z, values)))(zs)
    assert all_swept.shape == (5, 8, 4, 8)
