"""Evaluates a trained DCGAN: `python -m dcgan_jax.evaluate --workdir=DIR --task=classify|fid|train_classifier`.

classify: the paper's D-feature linear L2-SVM (Sec. 5.1) against raw pixels and the same D at random init.
fid: FID/KID of the trained generator, the untrained one, and real training images, against the held-out split.
Both print a table and write it to DIR/eval_<task>.json. `make_training_evaluator` gives the in-training hook.
"""

import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import ml_collections
import numpy as np
from absl import app, flags

from dcgan_jax import cli
from dcgan_jax.errors import UserError

Table = List[Dict[str, Any]]


# ------------------------------------------------------------------------------------ the paper's linear probe
def linear_svm(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
               config: ml_collections.ConfigDict, seed: int = 0) -> Dict[str, float]:
    """L2-regularized squared-hinge linear SVM; C chosen on a validation split, then refit on all training rows.

    Features are standardized with training statistics (one C grid then suits every feature set). liblinear's
    dual solver: the primal one is far slower at large C.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from dcgan_jax.classifier import validation_split

    def fit(x, y, c):
        svm = LinearSVC(C=c, loss="squared_hinge", penalty="l2", dual=True, max_iter=config.eval_svm_max_iter)
        return make_pipeline(StandardScaler(), svm).fit(x, y)

    fit_idx, val_idx = validation_split(len(train_x), config.eval_validation_fraction, seed)
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the small-C end converges slowly; it is only scored
        scores = {c: fit(train_x[fit_idx], train_y[fit_idx], c).score(train_x[val_idx], train_y[val_idx])
                  for c in config.eval_svm_c_values}
        best_c = max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger regularization
        accuracy = fit(train_x, train_y, best_c).score(test_x, test_y)
    return {"test_accuracy": float(accuracy), "val_accuracy": float(scores[best_c]), "C": float(best_c)}


def classify(config: ml_collections.ConfigDict, d_trained: Any, d_init: Any, dataset: str,
             labels_per_class: int) -> Table:
    """The paper's probe on D features (trained and random-init D) and on raw pixels, one row each."""
    from dcgan_jax import classifier, features
    size, channels = config.image_size, config.num_channels
    train_images, train_labels = classifier.load_labelled(dataset, "train", size, channels, config.data_dir)
    test_images, test_labels = classifier.load_labelled(dataset, "test", size, channels, config.data_dir)
    keep = classifier.select_per_class(train_labels, labels_per_class, config.seed)
    train_images, train_labels = train_images[keep], train_labels[keep]

    def d_features(d_vars):
        if config.eval_recompute_batch_stats:
            d_vars = features.recompute_batch_stats(config, d_vars, train_images, config.eval_batch_size)
        return (features.discriminator_features(config, d_vars, train_images, config.eval_batch_size),
                features.discriminator_features(config, d_vars, test_images, config.eval_batch_size))

    pixels = lambda x: features.as_model_input(x).reshape(len(x), -1)
    feature_sets = {"D features (trained)": lambda: d_features(d_trained),
                    "D features (random init)": lambda: d_features(d_init),
                    "raw pixels": lambda: (pixels(train_images), pixels(test_images))}
    rows = []
    for name, make in feature_sets.items():
        start = time.time()
        train_x, test_x = make()
        result = linear_svm(train_x, train_labels, test_x, test_labels, config, config.seed)
        rows.append({"features": name, "dim": int(train_x.shape[1]), **result, "train_examples": len(train_x),
                     "test_examples": len(test_x), "seconds": round(time.time() - start, 1)})
    return rows


# ------------------------------------------------------------------------------------------------- FID / KID
def make_feature_extractor(config: ml_collections.ConfigDict) -> Tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(images -> features, description) for config.eval_feature_extractor."""
    if config.eval_feature_extractor == "classifier":
        from dcgan_jax import classifier
        model, params, meta = classifier.load_classifier(config)
        describe = (f"classifier {meta['dataset']} {meta['image_size']}px (test acc {meta['test_accuracy']:.3f}, "
                    f"{meta['feature_dim']}-d)")
        return (lambda images: classifier.predict(model, params, images, config.eval_batch_size)[1]), describe
    if config.eval_feature_extractor == "inception":
        from dcgan_jax import inception
        return inception.make_extractor(config.eval_inception_weights, config.eval_batch_size), "InceptionV3 pool3"
    raise UserError(f"eval_feature_extractor={config.eval_feature_extractor!r}; use 'classifier' or 'inception'")


def real_images(config: ml_collections.ConfigDict, split: str, num: int, seed_offset: int = 0) -> np.ndarray:
    """`num` (or all, if fewer) uint8 images of the run's dataset split, in a fixed seeded order."""
    from dcgan_jax import input_pipeline
    source = input_pipeline.load_source(config, split)
    order = np.random.default_rng([config.seed, 0xE7A1 + seed_offset]).permutation(len(source))[:num]
    return input_pipeline.read_batch(source, np.sort(order))


def eval_z(config: ml_collections.ConfigDict, num: int) -> np.ndarray:
    """The fixed z of FID samples: the same for every evaluation of a run."""
    from dcgan_jax import latent
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xF1D)
    return np.asarray(latent.sample_z(rng, num, config.latent_dim, config.z_distribution))


def generator_scores(config: ml_collections.ConfigDict, g_variables: Any, extractor: Callable,
                     real_features: np.ndarray, z: np.ndarray) -> Dict[str, float]:
    """FID/KID of G's images for `z` against precomputed real features."""
    from dcgan_jax import generate, metrics
    fake = generate.generate(config, g_variables, z, config.eval_batch_size)
    return metrics.fid_and_kid(real_features, extractor(fake), config.eval_kid_subsets,
                               config.eval_kid_subset_size, config.seed)


def make_training_evaluator(config: ml_collections.ConfigDict, workdir: str
                            ) -> Optional[Callable[[int, Any], Dict[str, float]]]:
    """`(step, g_variables) -> {'fid', 'kid', 'kid_std'}` for the training loop, or None if eval_every_steps == 0.

    Real features (config.eval_split, at most eval_num_samples images) and the fake z are fixed when this is built,
    so values from different steps are comparable. `workdir` is only named in messages.
    """
    if not config.eval_every_steps:
        return None
    extractor, describe = make_feature_extractor(config)
    reals = real_images(config, config.eval_split, config.eval_num_samples)
    if len(reals) < 2:
        raise UserError(f"eval_split={config.eval_split!r} has {len(reals)} images; FID needs at least 2")
    real_features = extractor(reals)
    z = eval_z(config, config.eval_num_samples)
    print(f"{workdir}: FID/KID every {config.eval_every_steps} steps, {len(z)} samples vs {len(reals)} "
          f"{config.eval_split} images, features: {describe}", flush=True)

    def evaluate(step: int, g_variables: Any) -> Dict[str, float]:
        del step  # the same z and real features at every step
        return generator_scores(config, jax.device_get(g_variables), extractor, real_features, z)

    return evaluate


def fid_table(config: ml_collections.ConfigDict, g_trained: Any, g_init: Any, step: int) -> Tuple[Table, str]:
    """FID/KID of the trained G, the untrained G and real training images, against the eval split."""
    extractor, describe = make_feature_extractor(config)
    reals = real_images(config, config.eval_split, config.eval_num_samples)
    real_features = extractor(reals)
    z = eval_z(config, config.eval_num_samples)
    train_reals = real_images(config, config.split, config.eval_num_samples, seed_offset=1)
    from dcgan_jax import metrics
    rows = [{"images": f"generator (step {step})", **generator_scores(config, g_trained, extractor,
                                                                     real_features, z)},
            {"images": "generator (untrained)", **generator_scores(config, g_init, extractor, real_features, z)},
            {"images": f"real '{config.split}' images (floor)",
             **metrics.fid_and_kid(real_features, extractor(train_reals), config.eval_kid_subsets,
                                   config.eval_kid_subset_size, config.seed)}]
    for row, n in zip(rows, (len(z), len(z), len(train_reals))):
        row.update(num_images=n, num_real=len(reals))
    return rows, describe


# ------------------------------------------------------------------------------------------------------- CLI
def _define_flags() -> None:
    """The CLI's flags; defined only when run as a program, so train.py can import this module beside main's."""
    flags.DEFINE_string("workdir", "workdir", "A training workdir (holds checkpoints/).")
    flags.DEFINE_enum("task", "fid", ["classify", "fid", "train_classifier"], "What to evaluate.")
    flags.DEFINE_string("dataset", "", "classify: labelled dataset ('digits', 'mnist', 'cifar10', 'svhn_cropped', "
                        "...); fid/train_classifier: the classifier's dataset. Default: the run's dataset.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
    flags.DEFINE_integer("num_samples", None, "fid: generated images (default: eval_num_samples).")
    flags.DEFINE_integer("labels_per_class", None, "classify: labelled examples per class "
                         "(default: eval_labels_per_class; 0 = all).")
    flags.DEFINE_enum("extractor", None, ["classifier", "inception"], "fid: feature extractor.")
    flags.DEFINE_string("inception_weights", None, "fid: InceptionV3 .npz (extractor=inception).")
    flags.DEFINE_string("classifier_dir", None, "Where the FID classifier is kept.")
    flags.DEFINE_string("data_dir", None, "TFDS data_dir for the labelled dataset.")


def with_eval_defaults(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A checkpoint's config on top of today's base config, so runs saved before new eval fields still evaluate."""
    from configs import base
    config = base.get_config()
    for key, value in saved.items():
        config[key] = value
    return config


def load_run(workdir: str, step: Optional[int]):
    """(config, step, trained state, the run's step-0 state) of a workdir checkpoint."""
    from dcgan_jax import checkpointing, train
    manager, saved = checkpointing.open_workdir(workdir)
    step = manager.latest_step() if step is None else step
    if step not in manager.all_steps():
        raise UserError(f"no checkpoint at step {step} in {workdir}; available: {sorted(manager.all_steps())}")
    config = with_eval_defaults(saved)
    initial = train.create_train_state(config)  # the run's own random init: the paper's untrained baselines
    return config, step, checkpointing.restore_state(manager, initial, step), initial


def format_table(rows: Table) -> str:
    """Rows of dicts as aligned text columns; floats with 4 significant digits."""
    columns = list(rows[0])
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    widths = [max(len(c), *(len(cell(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def _apply_flags(config: ml_collections.ConfigDict, f: flags.FlagValues) -> ml_collections.ConfigDict:
    overrides = {"eval_num_samples": f.num_samples, "eval_labels_per_class": f.labels_per_class,
                 "eval_feature_extractor": f.extractor, "eval_inception_weights": f.inception_weights,
                 "eval_classifier_dir": f.classifier_dir, "data_dir": f.data_dir}
    for key, value in overrides.items():
        if value is not None:
            config[key] = value
    if f.dataset and f.task != "classify":
        config.eval_classifier_dataset = f.dataset
    if config.eval_num_samples < 2:
        raise UserError(f"--num_samples={config.eval_num_samples} must be at least 2")
    return config


@cli.run_main
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    cli.quiet_tensorflow()
    f = flags.FLAGS
    config, step, state, initial = load_run(f.workdir, f.step)
    config = _apply_flags(config, f)
    task = f.task
    if task == "train_classifier":
        from dcgan_jax import classifier
        meta = classifier.train_and_save(config)
        print(f"saved the FID classifier to {classifier.classifier_dir(config)}: {json.dumps(meta)}")
        return
    if task == "classify":
        dataset = f.dataset or config.dataset
        rows = classify(config, {"params": state.d_params, "batch_stats": state.d_batch_stats},
                        {"params": initial.d_params, "batch_stats": initial.d_batch_stats}, dataset,
                        config.eval_labels_per_class)
        header = (f"linear L2-SVM on {dataset} ({rows[0]['train_examples']} labelled train, "
                  f"{rows[0]['test_examples']} test), D at step {step}")
    else:
        rows, describe = fid_table(config, {"params": state.g_params, "batch_stats": state.g_batch_stats},
                                   {"params": initial.g_params, "batch_stats": initial.g_batch_stats}, step)
        header = f"FID/KID vs {rows[0]['num_real']} '{config.eval_split}' images of {config.dataset}; {describe}"
    print(header)
    print(format_table(rows))
    path = os.path.join(f.workdir, f"eval_{task}.json")
    with open(path, "w") as f:
        json.dump({"task": task, "step": step, "header": header, "rows": rows}, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    _define_flags()
    cli.parse_flags_or_exit(sys.argv)
    app.run(main, argv=sys.argv[:1])
