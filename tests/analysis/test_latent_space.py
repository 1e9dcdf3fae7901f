"""The paper's latent-space figures as Python functions of an opened run (no flags)."""

import numpy as np
import pytest

from dcgan_jax.analysis import latent_space, sampling
from dcgan_jax.errors import UserError
from dcgan_jax.nn import latent
from dcgan_jax.training.run import open_run


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


@pytest.fixture(scope="module")
def z(run):
    return sampling.pick_z(run.config, range(9))


def _shapes(picture):
    return [r.shape for r in picture.rows]


def test_interpolate_rows_start_and_end_at_the_endpoints(run, z):
    picture = latent_space.interpolate(run, z[:4], num_steps=5, method="slerp")
    assert _shapes(picture) == [(5, 32, 32, 1)] * 2
    for row, (a, b) in zip(picture.rows, ((0, 1), (2, 3))):
        np.testing.assert_array_equal(row[0], sampling.images(run, z[a])[0])
        np.testing.assert_array_equal(row[-1], sampling.images(run, z[b])[0])
    with pytest.raises(UserError, match="pairs"):
        latent_space.interpolate(run, z[:3])
    with pytest.raises(UserError, match="finite"):
        latent_space.interpolate(run, z[:2], start=float("nan"))


def test_walk_passes_through_every_point(run, z):
    picture = latent_space.walk(run, z[:3], steps_between=3)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 2 and len(picture.frames) == 7
    for k in range(3):
        np.testing.assert_array_equal(picture.frames[3 * k], sampling.images(run, z[k])[0])
    with pytest.raises(UserError, match="at least 2"):
        latent_space.walk(run, z[:1])


def test_vary_dim_and_vary_all_sweep_coordinates(run, z):
    values = latent_space.sweep(4, -1.0, 1.0)
    picture = latent_space.vary_dim(run, z[:2], dim=3, values=values)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 2
    swept = z[1].copy()
    swept[3] = values[2]
    np.testing.assert_array_equal(picture.rows[1][2], sampling.images(run, swept)[0])
    with pytest.raises(UserError, match="dim="):
        latent_space.vary_dim(run, z[:1], dim=run.config.latent_dim, values=values)
    assert _shapes(latent_space.vary_all(run, z[0], values, max_dims=5)) == [(4, 32, 32, 1)] * 5
    assert len(latent_space.vary_all(run, z[0], values).rows) == run.config.latent_dim


def test_arithmetic_draws_mean_a_minus_mean_b_plus_mean_c(run, z):
    picture = latent_space.arithmetic(run, z[0:3], z[3:6], z[6:9], num_noise=4, noise_scale=0.25)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 3 + [(5, 32, 32, 1)]
    result = z[0:3].mean(0) - z[3:6].mean(0) + z[6:9].mean(0)
    np.testing.assert_array_equal(picture.rows[3][0], sampling.images(run, result)[0])
    np.testing.assert_array_equal(picture.rows[0][3], sampling.images(run, z[0:3].mean(0))[0])
    with pytest.raises(UserError, match="non-empty"):
        latent_space.arithmetic(run, z[0:3], z[:0], z[6:9])


def test_turn_moves_along_the_group_direction(run, z):
    amounts = latent_space.sweep(3, 0.0, 1.0)
    picture = latent_space.turn(run, z[4:6], z[0:2], z[2:4], amounts)
    assert _shapes(picture) == [(3, 32, 32, 1)] * 2
    moved = z[5] + (z[0:2].mean(0) - z[2:4].mean(0))
    np.testing.assert_array_equal(picture.rows[1][2], sampling.images(run, moved)[0])
    np.testing.assert_array_equal(picture.rows[1][0], sampling.images(run, z[5])[0])


def test_pick_z_is_the_sample_pool(run):
    pool = latent.z_for_seed(2, 6, run.config.latent_dim, run.config.z_distribution)
    np.testing.assert_array_equal(sampling.pick_z(run.config, [5, 1], seed=2), pool[[5, 1]])
    np.testing.assert_array_equal(sampling.pick_z(run.config, [1], pool=pool * 2), pool[[1]] * 2)
    with pytest.raises(UserError, match="out of range"):
        sampling.pick_z(run.config, [6], pool=pool)
    with pytest.raises(UserError, match="non-negative"):
        sampling.pick_z(run.config, [-1])
