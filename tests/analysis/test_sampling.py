"""Samples as a Python function: the same seed gives the same images whatever the count or the batch size."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import sampling
from dcgan_jax.errors import UserError
from dcgan_jax.training.run import open_run


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


def test_samples_do_not_depend_on_count_or_batch_size(run):
    small, z_small = sampling.sample(run, 5, seed=7, batch_size=2)
    large, z_large = sampling.sample(run, 12, seed=7, batch_size=12)
    assert small.dtype == np.uint8 and small.shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(z_small, z_large[:5])
    np.testing.assert_array_equal(small, large[:5])
    other, _ = sampling.sample(run, 5, seed=8)
    assert np.any(other != small)


def test_batch_statistics_make_images_depend_on_batch_mates(run):
    a, _ = sampling.sample(run, 6, batch_size=2, batch_stats=True)
    b, _ = sampling.sample(run, 6, batch_size=6, batch_stats=True)
    assert np.any(a != b)


def test_save_samples_and_z_files(run, tmp_path):
    images, z = sampling.sample(run, 4)
    sampling.save_samples(str(tmp_path / "s.npz"), images, z)
    np.testing.assert_array_equal(sampling.load_z_file(str(tmp_path / "s.npz"), run.config.latent_dim), z)
    sampling.save_samples(str(tmp_path / "s.png"), images, z)
    assert np.asarray(Image.open(tmp_path / "s.png")).shape == (2 * 34 + 2, 2 * 34 + 2)
    with pytest.raises(UserError, match=r"\.png"):
        sampling.save_samples(str(tmp_path / "s.jpg"), images, z)
    with pytest.raises(UserError, match="needs"):
        sampling.load_z_file(str(tmp_path / "s.npz"), run.config.latent_dim + 1)
    with pytest.raises(UserError, match="positive"):
        sampling.sample(run, 0)
