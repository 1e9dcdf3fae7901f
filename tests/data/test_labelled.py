"""Labelled images for the evaluations: the digits, supervised TFDS datasets (mocked), seeded subsets and splits."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.data import labelled
from dcgan_jax.errors import UserError


def test_select_per_class_and_validation_split():
    labels = np.repeat(np.arange(4), [5, 6, 7, 8])
    chosen = labelled.select_per_class(labels, 3, seed=0)
    assert np.array_equal(np.bincount(labels[chosen]), [3, 3, 3, 3]) and len(set(chosen)) == 12
    assert np.array_equal(chosen, labelled.select_per_class(labels, 3, seed=0))
    assert np.array_equal(labelled.select_per_class(labels, 0, seed=0), np.arange(26))
    with pytest.raises(UserError, match="only 5 examples"):
        labelled.select_per_class(labels, 6, seed=0)
    fit, val = labelled.validation_split(50, 0.2, seed=1)
    assert len(val) == 10 and len(fit) == 40 and not set(fit) & set(val)
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(50))
    assert (
        len(labelled.validation_split(5, 0.01, seed=1)[1]) == 1
    )  # at least one validation example


def test_load_labelled_digits():
    images, labels = labelled.load_labelled("digits", "test", 32, 3)
    assert images.shape == (360, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and sorted(set(labels.tolist())) == list(range(10))
    train_images, _ = labelled.load_labelled("digits", "train", 32, 3)
    assert len(train_images) == 1797 - 360


def test_load_labelled_tfds_resizes_and_reports_errors(monkeypatch):
    tfds = pytest.importorskip(
        "tensorflow_datasets", reason="TFDS is the optional tfds extra: pip install -e .[tfds]"
    )
    rng = np.random.default_rng(0)
    fake = (rng.integers(0, 256, (3, 28, 28, 1)).astype(np.uint8), np.array([3, 1, 4]))
    calls = {}

    def fake_load(name, **kwargs):
        calls.update(kwargs, name=name)
        if name != "mnist":
            raise ValueError("Dataset celeb_a has no supervised keys")
        return fake

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda data: data)
    images, labels = labelled.load_labelled("mnist", "train", 32, 1, data_dir="/data/tfds")
    assert (
        images.shape == (3, 32, 32, 1) and images.dtype == np.uint8 and labels.tolist() == [3, 1, 4]
    )
    assert (
        calls["as_supervised"] and calls["data_dir"] == "/data/tfds" and calls["split"] == "train"
    )
    expected = np.asarray(Image.fromarray(fake[0][1, ..., 0]).resize((32, 32), Image.BICUBIC))
    np.testing.assert_array_equal(images[1, ..., 0], expected)
    with pytest.raises(UserError, match="no supervised keys.*labelled dataset"):
        labelled.load_labelled("celeb_a", "train", 32, 1)
