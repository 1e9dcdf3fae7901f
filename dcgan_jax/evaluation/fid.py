"""FID/KID of a generator against held-out real images, with the project's classifier or InceptionV3 features:
the `evaluate --task=fid` table and the evaluator the training loop calls."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import ml_collections
import numpy as np

from dcgan_jax import progress_bars
from dcgan_jax.data import datasets
from dcgan_jax.data.sources import read_batch
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import classifier, distances, inception
from dcgan_jax.nn import generate, latent

Table = List[Dict[str, Any]]
Extractor = Callable[[np.ndarray], np.ndarray]  # images (uint8 or [-1, 1]) -> (N, D) features


def make_feature_extractor(config: ml_collections.ConfigDict) -> Tuple[Extractor, str]:
    """(images -> features, description) for config.eval.feature_extractor."""
    if config.eval.feature_extractor == "classifier":
        model, params, meta = classifier.load_classifier(config)
        describe = (f"classifier {meta['dataset']} {meta['image_size']}px (test acc {meta['test_accuracy']:.3f}, "
                    f"{meta['feature_dim']}-d)")
        return (lambda images: classifier.predict(model, params, images, config.eval.batch_size)[1]), describe
    if config.eval.feature_extractor == "inception":
        return inception.make_extractor(config.eval.inception_weights, config.eval.batch_size), "InceptionV3 pool3"
    raise UserError(f"eval.feature_extractor={config.eval.feature_extractor!r}; use 'classifier' or 'inception'")


def real_images(config: ml_collections.ConfigDict, split: str, num: int, seed_offset: int = 0) -> np.ndarray:
    """`num` (or all, if fewer) uint8 images of the run's dataset split, in a fixed seeded order."""
    source = datasets.load_source(config, split)
    order = np.random.default_rng([config.seed, 0xE7A1 + seed_offset]).permutation(len(source))[:num]
    return read_batch(source, np.sort(order))


def eval_z(config: ml_collections.ConfigDict, num: int) -> np.ndarray:
    """The fixed G inputs of FID samples: the same for every evaluation of a run (every class equally often for a
    class-conditional G)."""
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xF1D)
    z = np.asarray(latent.sample_z(rng, num, config.latent_dim, config.z_distribution))
    num_classes = config.conditional.num_classes
    return latent.with_class(z, latent.balanced_labels(num, num_classes), num_classes)


def generator_scores(config: ml_collections.ConfigDict, g_variables: Any, extractor: Extractor,
                     real_features: np.ndarray, z: np.ndarray) -> Dict[str, float]:
    """FID/KID of G's images for `z` against precomputed real features."""
    fake_features = in_chunks(lambda chunk: extractor(generate.generate(config, g_variables, chunk,
                                                                        config.eval.batch_size)),
                              z, 16 * config.eval.batch_size, "generated images")
    return distances.fid_and_kid(real_features, fake_features, config.eval.kid_subsets,
                                 config.eval.kid_subset_size, config.seed)


def in_chunks(fn: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, chunk: int, desc: str) -> np.ndarray:
    """`fn` over consecutive chunks of `inputs` (each a few device batches), concatenated, with a progress bar."""
    parts = []
    with progress_bars.bar(total=len(inputs), desc=desc, unit="img") as bar:
        for start in range(0, len(inputs), chunk):
            parts.append(fn(inputs[start:start + chunk]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else fn(inputs)


def make_training_evaluator(config: ml_collections.ConfigDict, workdir: str = ""
                            ) -> Callable[[int, Any], Dict[str, float]]:
    """`(step, g_variables) -> {'fid', 'kid', 'kid_std'}` for the training loop (`training.loop.train`).

    Real features (config.eval.split, at most eval.num_samples images) and the fake z are fixed when this is built,
    so values from different steps are comparable. `workdir` is only named in messages.
    """
    extractor, describe = make_feature_extractor(config)
    reals = real_images(config, config.eval.split, config.eval.num_samples)
    if len(reals) < 2:
        raise UserError(f"eval.split={config.eval.split!r} has {len(reals)} images; FID needs at least 2")
    real_features = extractor(reals)
    z = eval_z(config, config.eval.num_samples)
    print(f"{workdir or 'training'}: FID/KID every {config.eval.every_steps} steps, {len(z)} samples vs "
          f"{len(reals)} {config.eval.split} images, features: {describe}", flush=True)

    def evaluate(step: int, g_variables: Any) -> Dict[str, float]:
        del step  # the same z and real features at every step
        return generator_scores(config, jax.device_get(g_variables), extractor, real_features, z)

    return evaluate


def fid_table(config: ml_collections.ConfigDict, g_trained: Any, g_init: Any, step: int,
              g_without_ema: Optional[Any] = None) -> Tuple[Table, str]:
    """FID/KID of the trained G, the untrained G and real training images, against config.eval.split. With
    `g_without_ema` (a run keeping a moving average: `g_trained` is the average), the trained G itself is a row too.

    Returns (rows, a description of the feature extractor).
    """
    if config.eval.num_samples < 2:
        raise UserError(f"eval.num_samples={config.eval.num_samples} must be at least 2")
    extractor, describe = make_feature_extractor(config)
    reals = real_images(config, config.eval.split, config.eval.num_samples)
    real_features = in_chunks(extractor, reals, 16 * config.eval.batch_size, "real images")
    z = eval_z(config, config.eval.num_samples)
    train_reals = real_images(config, config.split, config.eval.num_samples, seed_offset=1)
    trained = [(f"generator (step {step})", g_trained)] if g_without_ema is None else [
        (f"generator, EMA {config.ema_decay} (step {step})", g_trained),
        (f"generator without EMA (step {step})", g_without_ema)]
    rows = [*({"images": name, **generator_scores(config, g, extractor, real_features, z)} for name, g in trained),
            {"images": "generator (untrained)", **generator_scores(config, g_init, extractor, real_features, z)},
            {"images": f"real '{config.split}' images (floor)",
             **distances.fid_and_kid(real_features, extractor(train_reals), config.eval.kid_subsets,
                                     config.eval.kid_subset_size, config.seed)}]
    for row, n in zip(rows, [len(z)] * (len(rows) - 1) + [len(train_reals)]):
        row.update(num_images=n, num_real=len(reals))
    return rows, describe
