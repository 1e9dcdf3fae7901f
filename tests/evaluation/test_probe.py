"""The paper's D-feature linear probe: the L2-SVM and its choice of C."""

import numpy as np

from dcgan_jax.evaluation import probe
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
