"""The paper's D-feature linear probe: the L2-SVM and its choice of C."""

import jax
import numpy as np
import pytest

from dcgan_jax.data import idx
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.labelled import load_labelled, select_per_class
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import probe, svm
from dcgan_jax.nn import models
from tests.data.test_idx import write_idx
from tests.helpers import tiny_config


def test_linear_svm_chooses_c_and_classifies_separable_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 20))
    labels = rng.integers(0, 3, 600)
    x = centers[labels] + rng.normal(size=(600, 20))
    settings = tiny_config().eval.probe
    result = probe.linear_svm(x[:400], labels[:400], x[400:], labels[400:], settings)
    assert result["test_accuracy"] > 0.97 and result["C"] in settings.svm_c_values
    assert 0.0 <= result["val_accuracy"] <= 1.0


def test_linear_svm_breaks_ties_toward_the_smaller_c():
    """Every C separates these blobs perfectly on validation: the strongest regularization is chosen."""
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 100)
    x = np.where(labels[:, None] == 1, 10.0, -10.0) + rng.normal(size=(200, 4))
    settings = tiny_config().eval.probe
    result = probe.linear_svm(x[::2], labels[::2], x[1::2], labels[1::2], settings)
    assert result["val_accuracy"] == 1.0 and result["test_accuracy"] == 1.0
    assert result["C"] == min(settings.svm_c_values)


def test_extract_blocks_holds_the_extractors_rows_in_padded_device_blocks():
    images = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2, 1)
    blocks = probe.extract_blocks(lambda x: x.reshape(len(x), -1) * 2, images, 4, "test")
    assert blocks.rows == 10 and len(blocks.blocks) == 3 and blocks.blocks[-1].shape == (4, 4)
    np.testing.assert_array_equal(svm.blocks_to_host(blocks), images.reshape(10, -1) * 2)
    np.testing.assert_array_equal(np.asarray(blocks.blocks[-1])[2:], 0)


def test_an_unknown_solver_is_a_user_error():
    settings = tiny_config().eval.probe
    settings.solver = "newton"
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(UserError, match="'jax' or 'liblinear'"):
        probe.linear_svm(x, np.arange(20) % 2, x, np.arange(20) % 2, settings)


def test_bad_idx_folders_are_user_errors(tmp_path):
    """--dataset=idx:DIR with no folder, or a folder whose images have no labels file beside them."""
    config = tiny_config()
    d_vars = models.init_variables(jax.random.PRNGKey(0), config.model)[1]

    def classify(dataset):
        probe.classify(config.eval.probe, config.model, config.data, d_vars, d_vars, 0, 32, dataset)

    with pytest.raises(UserError, match="names no folder.*--dataset=idx:DIR"):
        classify("idx:")
    images = np.zeros((10, 28, 28), np.uint8)
    write_idx(str(tmp_path / "train-images-idx3-ubyte"), images, idx.IMAGES_MAGIC)
    with pytest.raises(UserError, match="no labels file beside them"):
        classify(f"idx:{tmp_path}")


def test_the_feature_sets_chosen_are_the_rows_in_their_order():
    """eval.probe.features picks the table's rows; the pixels row is the SVM on the pixels
    themselves (the same fit as linear_svm on them, computed here independently)."""
    config = tiny_config()
    config.eval.probe.features = ("pixels", "trained")
    d_vars = models.init_variables(jax.random.PRNGKey(0), config.model)[1]
    m = config.model
    rows = probe.classify(config.eval.probe, m, config.data, d_vars, d_vars, 0, 32, "digits", 15)
    assert [r["features"] for r in rows] == ["raw pixels", "D features (trained)"]
    assert (
        rows[0]["dim"] == m.image_size**2 * m.num_channels and rows[1]["dim"] == (8 + 16 + 32) * 16
    )
    train_x, train_y = load_labelled("digits", "train", m.image_size, m.num_channels)
    test_x, test_y = load_labelled("digits", "test", m.image_size, m.num_channels)
    keep = select_per_class(train_y, 15, 0)

    def pixels(x):
        return as_model_input(x).reshape(len(x), -1)

    direct = probe.linear_svm(
        pixels(train_x[keep]), train_y[keep], pixels(test_x), test_y, config.eval.probe
    )
    assert rows[0]["test_accuracy"] == direct["test_accuracy"] and rows[0]["C"] == direct["C"]


@pytest.mark.parametrize("names", [(), ("pixels", "pixels"), ("trained", "random")])
def test_bad_feature_set_names_are_one_line(names):
    with pytest.raises(
        UserError, match="one or more distinct names of trained, random_init, pixels"
    ):
        probe.check_feature_names(names)
