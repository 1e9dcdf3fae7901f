"""Labelled images for the evaluations: the embedded digits, MNIST-format (idx) files or a supervised
TFDS dataset, and seeded subsets of them."""

import numpy as np

from dcgan_jax import rng_tags
from dcgan_jax.data import digits, idx, tfds_source
from dcgan_jax.data.images import preprocess_array
from dcgan_jax.errors import UserError

IDX_PREFIX = "idx:"  # `--dataset=idx:DIR`: the idx files in DIR, whatever data the run trained on
IDX_HELP = (
    "name the folder holding MNIST-format files (train-images-idx3-ubyte.gz, t10k-labels-idx1-"
    "ubyte.gz, ...) as --dataset=idx:DIR"
)


def resolve_dataset(dataset: str, data_path: str) -> tuple[str, str]:
    """(dataset, data_path) that `load_labelled` reads for a dataset name: 'idx:DIR' names an idx
    folder explicitly (so a run trained on other data can be probed on Fashion-MNIST); any other
    name keeps the run's data_path (a run trained on 'idx' is probed on its own folder)."""
    if not dataset.startswith(IDX_PREFIX):
        return dataset, data_path
    folder = dataset[len(IDX_PREFIX) :]
    if not folder:
        raise UserError(f"--dataset={dataset!r} names no folder; {IDX_HELP}")
    return "idx", folder


def load_labelled(
    dataset: str,
    split: str,
    image_size: int,
    num_channels: int,
    data_dir: str = "",
    data_path: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x S x S x C, int32 labels) of 'digits', 'idx' (the MNIST-format files in
    data_path, config.data.data_path) or a supervised TFDS dataset (mnist, cifar10, ...; in
    data_dir)."""
    if dataset == "digits":
        return digits.digits_with_labels(image_size, num_channels, split)
    if dataset == "idx":
        if not data_path:
            raise UserError(
                "labelled dataset 'idx' reads MNIST-format files from --config.data.data_path, "
                f"which is empty: pass the folder holding them (to evaluate: {IDX_HELP})"
            )
        return idx.load_idx(data_path, split, image_size, num_channels)
    tfds_source.require_tfds(f"labelled dataset {dataset!r}")
    import tensorflow_datasets as tfds

    try:
        data = tfds.load(
            dataset, split=split, data_dir=data_dir or None, as_supervised=True, batch_size=-1
        )
    except Exception as e:  # unknown name, missing split or not downloaded: all fixed by the user
        raise UserError(
            f"cannot load labelled TFDS dataset {dataset!r} split {split!r} (data_dir="
            f"{data_dir or 'default'}): {str(e).splitlines()[0] if str(e) else type(e).__name__}. "
            "Labelled data is needed here: pass a labelled dataset (--config.data.dataset=mnist, cifar10, "
            "...; for FID: --config.eval.classifier.dataset) or use "
            "--config.eval.feature_extractor=inception"
        ) from None
    images, labels = tfds.as_numpy(data)
    resized = np.stack([preprocess_array(image, image_size, num_channels) for image in images])
    return resized, np.asarray(labels, np.int32)


def validation_split(
    num_examples: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): a seeded random `fraction` held out for model
    selection."""
    permutation = np.random.default_rng([seed, rng_tags.PROBE_SPLIT]).permutation(num_examples)
    num_val = max(1, int(round(num_examples * fraction)))
    return np.sort(permutation[num_val:]), np.sort(permutation[:num_val])


def select_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` random examples of every class (all examples when per_class <= 0)."""
    if per_class <= 0:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, rng_tags.PROBE_LABELLED])
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise UserError(
                f"class {label} has only {len(members)} examples; lower labels_per_class={per_class}"
            )
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))
