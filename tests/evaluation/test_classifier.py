"""The FID classifier: it learns, its checkpoint round-trips, and its cache lives where the config says."""

import os

import numpy as np
import pytest

from dcgan_jax.data.labelled import load_labelled
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import classifier
from tests.data.test_idx import random_set, write_set
from tests.helpers import eval_config, tiny_config


def test_classifier_learns_a_synthetic_task():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64).astype(np.int32)
    images = np.zeros((64, 16, 16, 1), np.uint8)
    for k, label in enumerate(labels):  # class 0: bright top half, class 1: bright bottom half
        images[k, 8 * label : 8 * label + 8] = 200
    settings = tiny_config().eval.classifier
    settings.update(dict(steps=60, width=4, feature_dim=8, max_shift=1))
    model, params = classifier.train_classifier(images, labels, settings)
    logits, feats = classifier.predict(model, params, images, batch_size=10)
    assert (
        np.mean(logits.argmax(-1) == labels) == 1.0
        and feats.shape == (64, 8)
        and (feats >= 0).all()
    )


def test_saved_classifier_round_trips(fid_classifier):
    config, meta = fid_classifier
    model, params, loaded_meta = classifier.load_classifier(
        config.eval.classifier, config.data, 32, 1, train_if_missing=False
    )
    assert loaded_meta == meta and meta["dataset"] == "digits" and meta["feature_dim"] == 16
    test_images, test_labels = load_labelled("digits", "test", 32, 1)
    logits, feats = classifier.predict(model, params, test_images)
    assert np.mean(logits.argmax(-1) == test_labels) == pytest.approx(meta["test_accuracy"])
    assert meta["test_accuracy"] > 0.25  # 100 steps of a 4-channel net: well above chance (0.1)
    assert feats.shape == (len(test_images), 16)
    other = eval_config(config.eval.classifier.dir, model=dict(image_size=64))
    with pytest.raises(UserError, match="is for 32px"):
        classifier.load_classifier(
            other.eval.classifier, other.data, other.model.image_size, 1, train_if_missing=False
        )
    missing = eval_config(os.path.join(config.eval.classifier.dir, "none"))
    with pytest.raises(UserError, match="no FID classifier"):
        classifier.load_classifier(
            missing.eval.classifier, missing.data, 32, 1, train_if_missing=False
        )


def test_classifier_dir_is_the_configured_one_or_a_per_dataset_user_cache(tmp_path):
    config = tiny_config()
    settings, dataset = config.eval.classifier, config.data.dataset
    assert classifier.classifier_dir(settings, dataset, 32, 1) == os.path.join(
        os.path.expanduser("~"), ".cache", "dcgan_jax", "classifiers", "digits_32px_1ch"
    )
    settings.dataset = "mnist"
    assert classifier.classifier_dir(settings, dataset, 32, 1).endswith(
        os.path.join("classifiers", "mnist_32px_1ch")
    )
    assert classifier.classifier_dir(settings, dataset, 64, 3).endswith(
        os.path.join("classifiers", "mnist_64px_3ch")
    )
    settings.dir = str(tmp_path / "clf")
    assert classifier.classifier_dir(settings, dataset, 32, 1) == str(tmp_path / "clf")


def test_an_idx_classifier_is_trained_on_its_own_files_and_cached_per_folder(tmp_path, monkeypatch):
    """'idx' names a file format, not a dataset: the classifier reads config.data.data_path's files
    (train, then the t10k test split) and is cached per folder, so MNIST's never scores
    Fashion-MNIST."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folders = [tmp_path / "fashion", tmp_path / "mnist"]
    for seed, folder in enumerate(folders):
        folder.mkdir()
        write_set(str(folder), "train", *random_set(64, seed))
        write_set(str(folder), "t10k", *random_set(32, seed + 10))
    config = eval_config(tmp_path / "unused")
    config.eval.classifier.dir = ""
    config.eval.classifier.steps = 5
    config.data.dataset, config.data.data_path = "idx", str(folders[0])
    dirs = [
        classifier.classifier_dir(config.eval.classifier, "idx", 32, 1, str(f)) for f in folders
    ]
    assert dirs[0] != dirs[1] and all(str(tmp_path / "home") in d for d in dirs)
    meta = classifier.train_and_save(config.eval.classifier, config.data, 32, 1)
    assert (meta["dataset"], meta["train_examples"], meta["num_classes"]) == ("idx", 64, 10)
    assert os.path.exists(os.path.join(dirs[0], classifier.META)) and not os.path.exists(dirs[1])
