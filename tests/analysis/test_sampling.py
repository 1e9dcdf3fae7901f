"""Samples as a Python function: the same seed gives the same images whatever the count or the batch size."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import sampling
from dcgan_jax.errors import UserError
from dcgan_jax.nn import latent
from dcgan_jax.training.run import open_run


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


@pytest.fixture(scope="module")
def gen(run):
    """The first two arguments of `sample` and `images`: the run's model group and the G it samples with."""
    return run.config.model, run.sampling_g_variables


def test_samples_do_not_depend_on_count_or_batch_size(gen):
    small, z_small = sampling.sample(*gen, 5, seed=7, batch_size=2)
    large, z_large = sampling.sample(*gen, 12, seed=7, batch_size=12)
    assert small.dtype == np.uint8 and small.shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(z_small, z_large[:5])
    np.testing.assert_array_equal(small, large[:5])
    other, _ = sampling.sample(*gen, 5, seed=8)
    assert np.any(other != small)


def test_batch_statistics_make_images_depend_on_batch_mates(gen):
    a, _ = sampling.sample(*gen, 6, batch_size=2, batch_stats=True)
    b, _ = sampling.sample(*gen, 6, batch_size=6, batch_stats=True)
    assert np.any(a != b)


def test_save_samples_and_z_files(gen, tmp_path):
    images, z = sampling.sample(*gen, 4)
    sampling.save_samples(str(tmp_path / "s.npz"), images, z)
    np.testing.assert_array_equal(
        sampling.load_z_file(str(tmp_path / "s.npz"), gen[0].latent_dim), z
    )
    sampling.save_samples(str(tmp_path / "s.png"), images, z)
    assert np.asarray(Image.open(tmp_path / "s.png")).shape == (2 * 34 + 2, 2 * 34 + 2)
    with pytest.raises(UserError, match=r"\.png"):
        sampling.save_samples(str(tmp_path / "s.jpg"), images, z)
    with pytest.raises(UserError, match="positive"):
        sampling.sample(*gen, 0)
    with pytest.raises(UserError, match="positive"):
        sampling.sample(*gen, 4, batch_size=0)


def test_samples_are_the_images_of_the_seeds_z(gen):
    images, z = sampling.sample(*gen, 3, seed=4)
    np.testing.assert_array_equal(
        z, latent.z_for_seed(4, 3, gen[0].latent_dim, gen[0].z_distribution)
    )
    np.testing.assert_array_equal(images, sampling.images(*gen, z))
    np.testing.assert_array_equal(
        sampling.images(*gen, z[1]), images[1:2]
    )  # one z (d,) is a batch of one


def test_pick_z_is_the_sample_pool(gen):
    model = gen[0]
    pool = latent.z_for_seed(2, 6, model.latent_dim, model.z_distribution)
    np.testing.assert_array_equal(sampling.pick_z(model, [5, 1], seed=2), pool[[5, 1]])
    np.testing.assert_array_equal(sampling.pick_z(model, range(3), seed=2), pool[:3])
    np.testing.assert_array_equal(
        sampling.pick_z(model, [1, 0]), sampling.sample(*gen, 2)[1][[1, 0]]
    )
    np.testing.assert_array_equal(sampling.pick_z(model, [1], pool=pool * 2), pool[[1]] * 2)
    with pytest.raises(UserError, match="out of range"):
        sampling.pick_z(model, [6], pool=pool)
    with pytest.raises(UserError, match="non-negative"):
        sampling.pick_z(model, [-1])
    with pytest.raises(UserError, match="non-empty"):
        sampling.pick_z(model, [])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"z": np.zeros((3, 17))}, r"shape \(3, 17\); this generator needs \(N, 16\)"),
        ({"z": np.zeros(16)}, r"shape \(16,\)"),
        ({"z": np.zeros((2, 3, 16))}, r"shape \(2, 3, 16\)"),
        ({"images": np.zeros((3, 32, 32, 1))}, "not an .npz with a `z` array"),
    ],
)
def test_load_z_file_errors(gen, tmp_path, arrays, message):
    np.savez(tmp_path / "z.npz", **arrays)
    with pytest.raises(UserError, match=message):
        sampling.load_z_file(str(tmp_path / "z.npz"), gen[0].latent_dim)


def test_load_z_file_that_is_not_an_npz(tmp_path):
    (tmp_path / "z.npz").write_text("not numpy")
    with pytest.raises(UserError, match="not an .npz archive") as text_file:
        sampling.load_z_file(str(tmp_path / "z.npz"), 16)
    assert "pickle" not in str(text_file.value)  # np.load's guess for a text file misleads
    np.save(tmp_path / "z.npy", np.zeros((3, 16)))  # a bare .npy: np.load gives no archive
    with pytest.raises(UserError, match="not an .npz archive.*dcgan_jax.sample --output=z.npz"):
        sampling.load_z_file(str(tmp_path / "z.npy"), 16)
    np.savez(tmp_path / "objects.npz", z=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="not an .npz with a `z` array"):
        sampling.load_z_file(str(tmp_path / "objects.npz"), 16)
    with pytest.raises(UserError, match="not an .npz.*No such file"):
        sampling.load_z_file(str(tmp_path / "missing.npz"), 16)
