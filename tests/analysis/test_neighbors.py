"""The memorization check: nearest training images in pixel space and in D-feature space, streamed in chunks."""

import numpy as np
import pytest

from dcgan_jax.analysis import neighbors, sampling
from dcgan_jax.data import datasets
from dcgan_jax.data.sources import read_batch
from dcgan_jax.errors import UserError
from dcgan_jax.training.run import open_run
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    refs, queries = rng.normal(size=(200, 9)), rng.normal(size=(5, 9))
    idx, dist = neighbors.nearest(queries, refs, k=4)
    brute = np.linalg.norm(queries[:, None] - refs[None], axis=-1)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :4])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :4], rtol=1e-9)
    with pytest.raises(ValueError, match="only 200 references"):
        neighbors.nearest(queries, refs, k=201)


def test_ties_go_to_the_lower_index_across_chunks():
    refs = np.zeros((6, 2))
    idx, _ = neighbors.nearest_streaming(
        np.zeros((1, 2)), lambda: iter([(3, refs[3:]), (0, refs[:3])]), k=4
    )
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])


def test_nearest_training_neighbour_of_a_training_image_is_itself():
    config = tiny_config()
    source = datasets.load_source(config.data, config.model.image_size, config.model.num_channels)
    queries = source.read_many(np.array([0, 17, 400, 1000]))
    for featurize in (neighbors.pixel_features, lambda x: neighbors.pixel_features(x)[:, ::3]):
        idx, dist = neighbors.nearest_in_source(queries, source, featurize, k=2, chunk_size=300)
        np.testing.assert_array_equal(idx[:, 0], [0, 17, 400, 1000])
        np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-4)  # sqrt of float64 cancellation error
        assert (dist[:, 1] > 0).all()


def _source(run):
    model = run.config.model
    return datasets.load_source(run.config.data, model.image_size, model.num_channels)


def test_d_feature_neighbours_of_training_images(run):
    featurize = neighbors.discriminator_featurizer(run.config.model, run.d_variables)
    source = _source(run)
    idx, dist = neighbors.nearest_in_source(
        source.read_many(np.array([3, 50])), source, featurize, k=1
    )
    np.testing.assert_array_equal(idx[:, 0], [3, 50])
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-3)


def test_nearest_figure_rows(run):
    model, g = run.config.model, run.sampling_g_variables
    z = sampling.pick_z(model, [0, 1])
    figure = lambda k, max_train_images=0: neighbors.nearest_figure(  # noqa: E731
        model, run.config.data, g, run.d_variables, z, k=k, max_train_images=max_train_images
    )
    picture = figure(2, 300)
    assert [r.shape for r in picture.rows] == [
        (7, 32, 32, 1)
    ] * 2  # sample | 2 in pixels | 2 in D features
    np.testing.assert_array_equal(
        np.stack([r[0] for r in picture.rows]), sampling.images(model, g, z)
    )
    assert (picture.rows[0][1] == 255).all() and (
        picture.rows[0][4] == 255
    ).all()  # blank separators
    source = _source(run)
    idx, _ = neighbors.nearest_in_source(
        picture.rows[1][:1], source, neighbors.pixel_features, k=2, max_images=300
    )
    np.testing.assert_array_equal(picture.rows[1][2:4], read_batch(source, idx[0]))
    assert len(picture.notes) == 2 and picture.notes[0].startswith("nearest in pixels")
    with pytest.raises(UserError, match="k=3 is more than the 2 images"):
        figure(3, 2)
    with pytest.raises(UserError, match="k=0"):
        figure(0)
