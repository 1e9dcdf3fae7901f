"""The paper's D-feature linear probe (Radford et al. 2015, Sec. 5.1): an L2-regularized
squared-hinge linear SVM on discriminator features, against raw pixels and the same D at its random
init.

The default solver is dcgan_jax/evaluation/svm.py (JAX, on the run's backend, features extracted
straight into device blocks); probe.solver='liblinear' (config.eval.probe) uses scikit-learn's
LinearSVC on host arrays instead.
"""

import time
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax import progress_bars
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.labelled import (
    load_labelled,
    resolve_dataset,
    select_per_class,
    validation_split,
)
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import nystrom, svm
from dcgan_jax.nn import features

Table = list[dict[str, Any]]


def linear_svm(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    probe: ml_collections.ConfigDict,
    seed: int = 0,
) -> dict[str, float]:
    """L2-regularized squared-hinge linear SVM on host arrays; C chosen on a validation split, then
    refit on all training rows. `probe` is config.eval.probe; its `solver` picks the JAX solver or
    liblinear."""
    if probe.solver == "liblinear":
        return _liblinear_svm(train_x, train_y, test_x, test_y, probe, seed)
    return block_svm(
        svm.blocks_from_host(train_x, probe.block_rows),
        train_y,
        svm.blocks_from_host(test_x, probe.block_rows),
        test_y,
        probe,
        seed,
    )


def block_svm(
    train: svm.Blocks,
    train_y: np.ndarray,
    test: svm.Blocks,
    test_y: np.ndarray,
    probe: ml_collections.ConfigDict,
    seed: int = 0,
    desc: str = "SVM",
) -> dict[str, float]:
    """`linear_svm` with the JAX solver on device blocks (consumed: standardized in place, block by
    block).

    Features are standardized with training statistics (one C grid then suits every feature set);
    the C path is solved on the fit rows, increasing and warm-started; the refit on all rows starts
    from the chosen C's solution. CG is preconditioned by a rank-`probe.svm_preconditioner_rank`
    Nystrom approximation of the fit rows' Gram (nystrom.py; 0: none), used for the refit too.
    """
    if probe.solver != "jax":
        raise UserError(f"--config.eval.probe.solver={probe.solver!r}; use 'jax' or 'liblinear'")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    train, mean, scale = svm.standardize(train)
    test, _, _ = svm.standardize(test, mean, scale)
    fit_idx, val_idx = validation_split(train.rows, probe.validation_fraction, seed)
    fit_weights = np.zeros(train.padded_rows, np.float32)
    fit_weights[fit_idx] = 1.0
    pre = None
    if probe.svm_preconditioner_rank:
        rank = probe.svm_preconditioner_rank
        pre = nystrom.sketch(train.blocks, jnp.asarray(fit_weights), rank, seed)
    settings = dict(
        tol=probe.svm_tol, max_newton=probe.svm_max_newton, max_cg=probe.svm_max_cg, pre=pre
    )
    with progress_bars.bar(total=len(probe.svm_c_values) + 1, desc=desc, unit="C") as bar:

        def on_fit(c, solution):
            bar.set_postfix(C=f"{c:g}", newton=solution.newton_steps, cg=solution.cg_steps)
            bar.update(1)

        path = svm.fit_c_path(
            train, train_y, num_classes, fit_idx, probe.svm_c_values, on_fit=on_fit, **settings
        )
        scores = {
            c: float(np.mean(np.asarray(sol.margins[val_idx]).argmax(1) == train_y[val_idx]))
            for c, sol in path.items()
        }
        best_c = max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger regularization
        start = path[best_c]
        y = svm.one_vs_rest_targets(train_y, num_classes, train.padded_rows)
        weights = (np.arange(train.padded_rows) < train.rows).astype(np.float32)
        final = svm.newton_solve(
            train, y, jnp.asarray(weights), best_c, start.w, start.b, **settings
        )
        on_fit(best_c, final)
    accuracy = float(np.mean(svm.predict(test, final.w, final.b) == test_y))
    return {"test_accuracy": accuracy, "val_accuracy": scores[best_c], "C": float(best_c)}


def _liblinear_svm(train_x, train_y, test_x, test_y, probe, seed):
    """scikit-learn's LinearSVC (liblinear's dual coordinate descent) over the same C grid: the
    reference solver."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    def fit(x, y, c):
        svc = LinearSVC(
            C=c, loss="squared_hinge", penalty="l2", dual=True, max_iter=probe.svm_max_iter
        )
        return make_pipeline(StandardScaler(), svc).fit(x, y)

    fit_idx, val_idx = validation_split(len(train_x), probe.validation_fraction, seed)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", ConvergenceWarning
        )  # the small-C end converges slowly; it is only scored
        scores = {
            c: fit(train_x[fit_idx], train_y[fit_idx], c).score(train_x[val_idx], train_y[val_idx])
            for c in progress_bars.bar(probe.svm_c_values, desc="SVM (liblinear)", unit="C")
        }
        best_c = max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger regularization
        accuracy = fit(train_x, train_y, best_c).score(test_x, test_y)
    return {
        "test_accuracy": float(accuracy),
        "val_accuracy": float(scores[best_c]),
        "C": float(best_c),
    }


def extract_blocks(
    extract: Callable[[np.ndarray], np.ndarray], images: np.ndarray, block_rows: int, desc: str
) -> svm.Blocks:
    """Features of `images` straight into device blocks, one block of images at a time (the host
    never holds the whole feature matrix), with a progress bar in images."""
    block_rows = max(1, min(block_rows, len(images)))
    blocks = []
    with progress_bars.bar(total=len(images), desc=desc, unit="img") as bar:
        for start in range(0, len(images), block_rows):
            chunk = np.asarray(extract(images[start : start + block_rows]), np.float32)
            if len(chunk) < block_rows:
                chunk = np.concatenate(
                    [chunk, np.zeros((block_rows - len(chunk), chunk.shape[1]), np.float32)]
                )
            blocks.append(jax.device_put(chunk))
            bar.update(min(block_rows, len(images) - start))
    return svm.Blocks(blocks, len(images))


# The probe's rows (config.eval.probe.features): key -> the name its table row shows.
FEATURE_SETS = {
    "trained": "D features (trained)",
    "random_init": "D features (random init)",
    "pixels": "raw pixels",
}


def check_feature_names(names) -> None:
    """One line unless `names` is a non-empty list of distinct FEATURE_SETS keys."""
    names = [names] if isinstance(names, str) else list(names)
    bad = [n for n in names if n not in FEATURE_SETS]
    if bad or not names or len(set(names)) < len(names):
        raise UserError(
            f"eval.probe.features={','.join(names) or '(empty)'}: give one or more distinct "
            f"names of {', '.join(FEATURE_SETS)} (e.g. --probe_features=trained,pixels)"
        )


def classify(
    probe: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    d_trained: Any,
    d_init: Any,
    seed: int,
    batch_size: int = 256,
    dataset: str = "",
    labels_per_class: int | None = None,
) -> Table:
    """The probe on D features (trained and random-init D) and on raw pixels, one row each.

    `probe` is config.eval.probe, `model` config.model (D and its image size), `data` config.data
    (the default dataset and its data_dir); `seed` the run's; `batch_size` D's inference batch
    (config.eval.batch_size). `dataset` (default: data.dataset, with data.data_path: a run trained
    on idx files is probed on them) must be labelled, 'idx:DIR' names an idx folder;
    `labels_per_class` (default: probe.labels_per_class; 0 = all) picks a seeded subset of the
    training split.
    """
    dataset, data_path = resolve_dataset(dataset or data.dataset, data.data_path)
    per_class = probe.labels_per_class if labels_per_class is None else labels_per_class
    size, channels = model.image_size, model.num_channels
    where = dict(data_dir=data.data_dir, data_path=data_path)
    train_images, train_labels = load_labelled(dataset, "train", size, channels, **where)
    test_images, test_labels = load_labelled(dataset, "test", size, channels, **where)
    keep = select_per_class(train_labels, per_class, seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    if probe.solver not in ("jax", "liblinear"):
        raise UserError(f"--config.eval.probe.solver={probe.solver!r}; use 'jax' or 'liblinear'")
    check_feature_names(probe.features)

    def feature_sets(name, extract):
        if probe.solver == "liblinear":
            return extract(train_images), extract(test_images)
        return (
            extract_blocks(extract, train_images, probe.block_rows, f"{name}: train features"),
            extract_blocks(extract, test_images, probe.block_rows, f"{name}: test features"),
        )

    def d_features(name, d_vars):
        if probe.recompute_batch_stats:
            d_vars = features.recompute_batch_stats(model, d_vars, train_images, batch_size)
        return feature_sets(
            name, lambda x: features.discriminator_features(model, d_vars, x, batch_size)
        )

    def pixels(x):
        return as_model_input(x).reshape(len(x), -1)

    makers = {
        "trained": lambda name: d_features(name, d_trained),
        "random_init": lambda name: d_features(name, d_init),
        "pixels": lambda name: feature_sets(name, pixels),
    }
    rows = []
    for key in probe.features:
        name, make = FEATURE_SETS[key], makers[key]
        start = time.time()
        train_x, test_x = make(name)
        dim = train_x.dim if isinstance(train_x, svm.Blocks) else int(train_x.shape[1])
        if probe.solver == "liblinear":
            result = linear_svm(train_x, train_labels, test_x, test_labels, probe, seed)
        else:
            result = block_svm(
                train_x, train_labels, test_x, test_labels, probe, seed, f"{name}: SVM"
            )
        del train_x, test_x  # the device blocks go before the next feature set is extracted
        rows.append(
            {
                "features": name,
                "dim": dim,
                **result,
                "train_examples": len(train_labels),
                "test_examples": len(test_labels),
                "seconds": round(time.time() - start, 1),
            }
        )
    return rows
