"""How often a class-conditional G draws the class it is asked for: its samples of each class c,
labelled by the project's FID classifier (evaluation/classifier.py), are counted correct when the
classifier says c."""

from typing import Any

import jax
import ml_collections
import numpy as np

from dcgan_jax import rng_tags
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import classifier
from dcgan_jax.evaluation.tables import Table
from dcgan_jax.nn import generate, latent


def confusion(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    g_variables: Any,
    per_class: int,
    seed: int,
) -> np.ndarray:
    """(num_classes, classifier classes) counts: row c holds the classifier's labels of `per_class`
    samples of class c (the eval z, the same for every class and every evaluation of the run). `ev`
    is config.eval (its classifier: ev.classifier), `model` config.model, `data` config.data (the
    classifier's default dataset), `seed` the run's."""
    num_classes = model.conditional.num_classes
    if not num_classes:
        raise UserError(
            "class accuracy needs a class-conditional run (--config.model.conditional.num_classes > 0); "
            "this one is unconditional"
        )
    net, params, meta = classifier.load_classifier(
        ev.classifier, data, model.image_size, model.num_channels, seed
    )
    if meta["num_classes"] < num_classes:
        raise UserError(
            f"the FID classifier knows {meta['num_classes']} classes, the run {num_classes}; set "
            f"--config.eval.classifier.dataset to the run's labelled dataset"
        )
    key = jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.CLASS_ACCURACY_Z)
    z = np.asarray(latent.sample_z(key, per_class, model.latent_dim, model.z_distribution))
    counts = np.zeros((num_classes, meta["num_classes"]), np.int64)
    for c in range(num_classes):
        images = generate.generate(
            model, g_variables, latent.with_class(z, c, num_classes), ev.batch_size
        )
        predicted = classifier.predict(net, params, images, ev.batch_size)[0].argmax(-1)
        counts[c] = np.bincount(predicted, minlength=meta["num_classes"])
    return counts


def accuracy_table(counts: np.ndarray) -> Table:
    """One row per class (its accuracy and what its misses were called most), then the mean over
    classes."""
    rows: list[dict] = []
    for c, row in enumerate(counts):
        misses = row.copy()
        misses[c] = 0
        rows.append(
            {
                "class": c,
                "accuracy": float(row[c] / row.sum()),
                "samples": int(row.sum()),
                "most_confused_with": int(misses.argmax()) if misses.any() else "-",
            }
        )
    diagonal = np.diag(counts[:, : len(counts)])
    rows.append(
        {
            "class": "all",
            "accuracy": float(diagonal.sum() / counts.sum()),
            "samples": int(counts.sum()),
            "most_confused_with": "-",
        }
    )
    return rows
