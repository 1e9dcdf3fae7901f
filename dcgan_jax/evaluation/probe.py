"""The paper's D-feature linear probe (Radford et al. 2015, Sec. 5.1): an L2-regularized squared-hinge linear SVM
on discriminator features, against raw pixels and the same D at its random init."""

import time
import warnings
from typing import Any, Dict, List, Optional

import ml_collections
import numpy as np

from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.labelled import load_labelled, select_per_class, validation_split
from dcgan_jax.nn import features

Table = List[Dict[str, Any]]


def linear_svm(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
               probe: ml_collections.ConfigDict, seed: int = 0) -> Dict[str, float]:
    """L2-regularized squared-hinge linear SVM; C chosen on a validation split, then refit on all training rows.

    `probe` is config.eval.probe. Features are standardized with training statistics (one C grid then suits every
    feature set). liblinear's dual solver: the primal one is far slower at large C.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    def fit(x, y, c):
        svm = LinearSVC(C=c, loss="squared_hinge", penalty="l2", dual=True, max_iter=probe.svm_max_iter)
        return make_pipeline(StandardScaler(), svm).fit(x, y)

    fit_idx, val_idx = validation_split(len(train_x), probe.validation_fraction, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the small-C end converges slowly; it is only scored
        scores = {c: fit(train_x[fit_idx], train_y[fit_idx], c).score(train_x[val_idx], train_y[val_idx])
                  for c in probe.svm_c_values}
        best_c = max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger regularization
        accuracy = fit(train_x, train_y, best_c).score(test_x, test_y)
    return {"test_accuracy": float(accuracy), "val_accuracy": float(scores[best_c]), "C": float(best_c)}


def classify(config: ml_collections.ConfigDict, d_trained: Any, d_init: Any, dataset: str = "",
             labels_per_class: Optional[int] = None) -> Table:
    """The probe on D features (trained and random-init D) and on raw pixels, one row each.

    `dataset` (default: the run's) must be labelled; `labels_per_class` (default: config.eval.probe's; 0 = all)
    picks a seeded subset of the training split.
    """
    dataset = dataset or config.dataset
    per_class = config.eval.probe.labels_per_class if labels_per_class is None else labels_per_class
    size, channels = config.image_size, config.num_channels
    train_images, train_labels = load_labelled(dataset, "train", size, channels, config.data_dir)
    test_images, test_labels = load_labelled(dataset, "test", size, channels, config.data_dir)
    keep = select_per_class(train_labels, per_class, config.seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    batch = config.eval.batch_size

    def d_features(d_vars):
        if config.eval.probe.recompute_batch_stats:
            d_vars = features.recompute_batch_stats(config, d_vars, train_images, batch)
        return (features.discriminator_features(config, d_vars, train_images, batch),
                features.discriminator_features(config, d_vars, test_images, batch))

    pixels = lambda x: as_model_input(x).reshape(len(x), -1)
    feature_sets = {"D features (trained)": lambda: d_features(d_trained),
                    "D features (random init)": lambda: d_features(d_init),
                    "raw pixels": lambda: (pixels(train_images), pixels(test_images))}
    rows = []
    for name, make in feature_sets.items():
        start = time.time()
        train_x, test_x = make()
        result = linear_svm(train_x, train_labels, test_x, test_labels, config.eval.probe, config.seed)
        rows.append({"features": name, "dim": int(train_x.shape[1]), **result, "train_examples": len(train_x),
                     "test_examples": len(test_x), "seconds": round(time.time() - start, 1)})
    return rows
