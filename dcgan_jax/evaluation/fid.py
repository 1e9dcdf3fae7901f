"""FID/KID of a generator against held-out real images, with the project's classifier or InceptionV3
features: the `evaluate --task=fid` table and the evaluator the training loop calls."""

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax
import ml_collections
import numpy as np

from dcgan_jax import progress_bars, rng_tags
from dcgan_jax.data import datasets
from dcgan_jax.data.images import as_uint8
from dcgan_jax.data.sources import read_batch
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import classifier, distances, inception, real_features
from dcgan_jax.nn import generate, latent

Table = list[dict[str, Any]]
Extractor = Callable[[np.ndarray], np.ndarray]  # uint8 images -> (N, D) features

# Every function takes its parts of the run's config: `ev` (config.eval), `model` (config.model),
# `data` (config.data), and the run's `seed` (config.seed).


def make_feature_extractor(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    seed: int,
) -> tuple[Extractor, str]:
    """(images -> features, description) for ev.feature_extractor. The classifier is trained (with
    `seed`, on ev.classifier.dataset or data.dataset) if it does not exist yet."""
    if ev.feature_extractor == "classifier":
        net, params, meta = classifier.load_classifier(
            ev.classifier, data, model.image_size, model.num_channels, seed
        )
        describe = (
            f"classifier {meta['dataset']} {meta['image_size']}px (test acc {meta['test_accuracy']:.3f}, "
            f"{meta['feature_dim']}-d)"
        )
        return (
            lambda images: classifier.predict(
                net, params, inception.require_pixels(images), ev.batch_size
            )[1]
        ), describe
    if ev.feature_extractor == "inception":
        weights = inception.check_weights(ev.inception_weights)
        extractor = inception.make_extractor(weights, ev.inception_batch_size)
        return extractor, f"InceptionV3 pool3 ({weights})"
    raise UserError(
        f"--config.eval.feature_extractor={ev.feature_extractor!r}; use 'classifier' or 'inception'"
    )


def as_pixels(samples: np.ndarray) -> np.ndarray:
    """G's samples, floats in [-1, 1], as the uint8 pixels a saved PNG holds (as_uint8's
    rounding): FID is scored on those, as pytorch-fid and clean-fid users score saved PNGs, and
    extractors take only uint8 (inception.require_pixels). Floats outside [-1, 1] are refused:
    they are not G's tanh output (e.g. [0, 255] floats), and clipping them would hide that."""
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        return samples
    if samples.dtype.kind not in "fV":  # V: ml_dtypes' bfloat16 (a mixed-precision G)
        raise UserError(f"samples of dtype {samples.dtype}: give floats in [-1, 1] or uint8")
    samples = samples.astype(np.float32)
    low, high = (float(samples.min()), float(samples.max())) if samples.size else (0.0, 0.0)
    if not (-1.0 <= low and high <= 1.0):  # also refuses NaN
        raise UserError(
            f"samples span [{low:.4g}, {high:.4g}], outside [-1, 1] (G's tanh range); "
            "rescale them to [-1, 1], or pass uint8 pixels"
        )
    return as_uint8(samples)


def real_images(
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    split: str,
    num: int,
    seed: int,
    seed_offset: int = 0,
) -> np.ndarray:
    """`num` (or all, if fewer) uint8 images of the run's dataset split, in a fixed seeded order."""
    return _real_choice(model, data, split, num, seed, seed_offset)[0]


def _real_choice(model, data, split, num, seed, seed_offset) -> tuple[np.ndarray, bool]:
    """(real_images' images, whether they are the whole split: then no seed changes them)."""
    source = datasets.load_source(data, model.image_size, model.num_channels, split)
    rng = np.random.default_rng([seed, rng_tags.EVAL_REAL_ORDER + seed_offset])
    return read_batch(source, np.sort(rng.permutation(len(source))[:num])), num >= len(source)


def real_image_features(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    extractor: Extractor,
    split: str,
    seed: int,
    workdir: str = "",
    seed_offset: int = 0,
) -> np.ndarray:
    """The features of real_images(split, ev.num_samples), read from workdir/real_features/ when a
    run with the same data, size and extractor computed them before (evaluation/real_features.py);
    computed (and cached there) otherwise. At least 2 images, or a UserError. When ev.num_samples
    covers the whole split (the test10k protocol), the images do not depend on the seed, so every
    seed (e.g. each member of a population) shares one cached file."""
    whole = real_features.key(ev, model, data, split, ev.num_samples, None)
    seeded = real_features.key(ev, model, data, split, ev.num_samples, seed, seed_offset)
    for key in (whole, seeded):
        found = real_features.read(workdir, key)
        if found is not None:
            return found
    reals, is_whole = _real_choice(model, data, split, ev.num_samples, seed, seed_offset)
    if len(reals) < 2:
        raise UserError(f"the {split!r} split has {len(reals)} images; FID needs at least 2")
    features = in_chunks(extractor, reals, 16 * ev.batch_size, f"real {split} images")
    real_features.write(workdir, whole if is_whole else seeded, features)
    return features


def eval_z(model: ml_collections.ConfigDict, num: int, seed: int) -> np.ndarray:
    """The fixed G inputs of FID samples: the same for every evaluation of a run (every class
    equally often for a class-conditional G)."""
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.EVAL_Z)
    z = np.asarray(latent.sample_z(rng, num, model.latent_dim, model.z_distribution))
    num_classes = model.conditional.num_classes
    return latent.with_class(z, latent.balanced_labels(num, num_classes), num_classes)


def generator_scores(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    g_variables: Any,
    extractor: Extractor,
    real_features: np.ndarray,
    z: np.ndarray,
    seed: int,
) -> dict[str, float]:
    """FID/KID of G's images for `z` against precomputed real features; the images are quantised to
    uint8 first (as_pixels), as a saved PNG is."""
    fake_features = in_chunks(
        lambda chunk: extractor(
            as_pixels(generate.generate(model, g_variables, chunk, ev.batch_size))
        ),
        z,
        16 * ev.batch_size,
        "generated images",
    )
    return distances.fid_and_kid(
        real_features, fake_features, ev.kid_subsets, ev.kid_subset_size, seed
    )


def in_chunks(
    fn: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, chunk: int, desc: str
) -> np.ndarray:
    """`fn` over consecutive chunks of `inputs` (each a few device batches), concatenated, with a
    progress bar."""
    parts = []
    with progress_bars.bar(total=len(inputs), desc=desc, unit="img") as bar:
        for start in range(0, len(inputs), chunk):
            parts.append(fn(inputs[start : start + chunk]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else fn(inputs)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingEvaluator:
    """`(step, g_variables) -> {'fid', 'kid', 'kid_std'}` for the training loop, with its schedule:
    the loop calls it at steps that are multiples of `every_steps` and keeps the checkpoint of the
    lowest `best_metric`."""

    ev: ml_collections.ConfigDict
    model: ml_collections.ConfigDict
    seed: int
    extractor: Extractor
    real_features: np.ndarray
    z: np.ndarray
    every_steps: int
    best_metric: str = "fid"  # lower is better

    def __call__(self, step: int, g_variables: Any) -> dict[str, float]:
        del step  # the same z and real features at every step
        return generator_scores(
            self.ev,
            self.model,
            jax.device_get(g_variables),
            self.extractor,
            self.real_features,
            self.z,
            self.seed,
        )


def make_training_evaluator(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    seed: int,
    workdir: str = "",
) -> TrainingEvaluator:
    """The evaluator of the training loop (`dcgan_jax.train`): FID/KID every ev.every_steps
    steps.

    Real features (ev.split, at most ev.num_samples images; ev.protocol's when set) and the fake z
    are fixed when this is built, so values from different steps are comparable. With a `workdir`
    the real features are cached in it (real_image_features).
    """
    return make_population_evaluator(ev, model, data, [seed], workdir).members[0]


@dataclasses.dataclass(frozen=True, eq=False)
class PopulationEvaluator:
    """`(step, [each member's G]) -> [each member's scores]` for a population's training loop:
    member i is scored as its single run's TrainingEvaluator scores it (its seed's z and real
    images), one feature extractor serving all. The loop keeps the checkpoint of the lowest mean
    of `best_metric` over the members."""

    members: tuple[TrainingEvaluator, ...]
    every_steps: int
    best_metric: str = "fid"  # lower is better

    def __call__(self, step: int, g_variables: list[Any]) -> list[dict[str, float]]:
        return [member(step, g) for member, g in zip(self.members, g_variables, strict=True)]


def make_population_evaluator(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    seeds: list[int],
    workdir: str = "",
) -> PopulationEvaluator:
    """make_training_evaluator for each of `seeds` (a population's members'), sharing one
    extractor (the classifier trained with the first seed if it is missing, as member_rows does)
    and, when they cover the whole split (test10k), one set of real features."""
    ev = real_features.apply_protocol(ev)
    extractor, describe = make_feature_extractor(ev, model, data, seeds[0])
    evaluators = []
    for seed in seeds:
        reals = real_image_features(ev, model, data, extractor, ev.split, seed, workdir)
        z = eval_z(model, ev.num_samples, seed)
        evaluators.append(
            TrainingEvaluator(ev, model, seed, extractor, reals, z, int(ev.every_steps))
        )
    whom = f" of each of {len(seeds)} members" if len(seeds) > 1 else ""
    print(
        f"{workdir or 'training'}: FID/KID{whom} every {ev.every_steps} steps, "
        f"{len(evaluators[0].z)} samples vs {len(evaluators[0].real_features)} {ev.split} images, "
        f"features: {describe}",
        flush=True,
    )
    return PopulationEvaluator(tuple(evaluators), int(ev.every_steps))


def fid_table(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    seed: int,
    g_trained: Any,
    g_init: Any,
    step: int,
    g_without_ema: Any | None = None,
    ema_decay: float = 0.0,
    workdir: str = "",
) -> tuple[Table, str]:
    """FID/KID of the trained G, the untrained G and real training images (data.split), against
    ev.split. With `g_without_ema` (a run keeping a moving average with `ema_decay`: `g_trained` is
    the average), the trained G itself is a row too. ev.num_samples and ev.split are used as they
    are (the caller applies ev.protocol: real_features.apply_protocol); with a `workdir` the real
    images' features are cached in it.

    Returns (rows, a description of the feature extractor).
    """
    if ev.num_samples < 2:
        raise UserError(f"--config.eval.num_samples={ev.num_samples} must be at least 2")
    extractor, describe = make_feature_extractor(ev, model, data, seed)
    reals = real_image_features(ev, model, data, extractor, ev.split, seed, workdir)
    z = eval_z(model, ev.num_samples, seed)
    train_reals = real_image_features(ev, model, data, extractor, data.split, seed, workdir, 1)
    trained = (
        [(f"generator (step {step})", g_trained)]
        if g_without_ema is None
        else [
            (f"generator, EMA {ema_decay} (step {step})", g_trained),
            (f"generator without EMA (step {step})", g_without_ema),
        ]
    )

    def score(g):
        return generator_scores(ev, model, g, extractor, reals, z, seed)

    rows = [
        *({"images": name, **score(g)} for name, g in trained),
        {"images": "generator (untrained)", **score(g_init)},
        {
            "images": f"real '{data.split}' images (floor)",
            **distances.fid_and_kid(reals, train_reals, ev.kid_subsets, ev.kid_subset_size, seed),
        },
    ]
    for row, n in zip(rows, [len(z)] * (len(rows) - 1) + [len(train_reals)]):
        row.update(num_images=n, num_real=len(reals))
    return rows, describe


def member_rows(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    members: Iterable[tuple[dict[str, Any], int, Any]],
    workdir: str = "",
) -> tuple[Table, str]:
    """One row per member of a population: {**its label, fid, kid, kid_std, num_images,
    num_real}, from `members` ((label, seed, sampling G) each, read one at a time: a population's
    Gs need not all fit in memory at once). A member is scored as fid_table's first row scores its
    single run (its seed's z and real images), so a row equals `evaluate --member=I`'s; one
    extractor serves every member, and with a `workdir` the real features are cached in it once
    per seed, or once for all when they are the whole split (test10k): a member of the same seed,
    or any member then, reads them, as does a later evaluation.

    Returns (rows, a description of the feature extractor)."""
    if ev.num_samples < 2:
        raise UserError(f"--config.eval.num_samples={ev.num_samples} must be at least 2")
    extractor, describe, rows = None, "", []
    for label, seed, g in members:
        if extractor is None:  # the classifier, trained with the first seed if it is missing
            extractor, describe = make_feature_extractor(ev, model, data, seed)
        reals = real_image_features(ev, model, data, extractor, ev.split, seed, workdir)
        z = eval_z(model, ev.num_samples, seed)
        scores = generator_scores(ev, model, g, extractor, reals, z, seed)
        rows.append({**label, **scores, "num_images": len(z), "num_real": len(reals)})
    return rows, describe


def summarize(rows: Table, metric: str = "fid") -> dict[str, Any]:
    """{mean, std (n - 1; 0 for one member), min, best_member} of `metric` over member_rows' rows
    (each with a 'member'); best = lowest, as for FID and KID."""
    values = np.asarray([row[metric] for row in rows], np.float64)
    best = int(np.argmin(values))
    return {
        "metric": metric,
        "members": len(rows),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values[best]),
        "best_member": int(rows[best]["member"]),
    }


def group_rows(rows: Table, fields: list[str], metric: str = "fid") -> Table:
    """member_rows' rows grouped by their values of `fields` (a population's varied
    hyperparameters: a study's variants, its seeds the replicas), in order of first appearance:
    one row per group, {**its values, members, mean, std, min, best_member} as summarize gives
    them for the group's members."""
    groups: dict[tuple, Table] = {}
    for row in rows:
        groups.setdefault(tuple(row[f] for f in fields), []).append(row)
    out = []
    for values, members in groups.items():
        summary = summarize(members, metric)
        del summary["metric"]
        out.append({**dict(zip(fields, values)), **summary})
    return out
