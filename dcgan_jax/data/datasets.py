"""`config.data.dataset` -> a random-access source of preprocessed uint8 images
(sources.LOCAL_KINDS, or TFDS)."""

import os

import ml_collections
import numpy as np

from dcgan_jax.data import digits, idx, tfds_source
from dcgan_jax.data.sources import (
    LOCAL_KINDS,
    PATH_KINDS,
    ArraySource,
    ImageFolderSource,
    LmdbSource,
    PreparedSource,
    Source,
)
from dcgan_jax.errors import UserError


def is_tfds(dataset: str) -> bool:
    """Whether `dataset` names a TFDS dataset (anything that is not one of LOCAL_KINDS)."""
    return dataset not in LOCAL_KINDS


def open_local(
    data: ml_collections.ConfigDict, image_size: int, num_channels: int, split: str = ""
) -> Source:
    """The source of a non-TFDS dataset kind (`data`: config.data), preprocessed to image_size /
    num_channels."""
    if data.dataset == "digits":
        return ArraySource(
            *digits.digits_with_labels(image_size, num_channels, split or data.split)
        )
    path = os.path.expanduser(data.data_path)
    if not path:
        raise UserError(
            f"data.dataset={data.dataset!r} reads from --config.data.data_path, which is empty: pass the "
            f"{PATH_KINDS[data.dataset]}"
        )
    if data.dataset == "lsun_lmdb":
        return LmdbSource(path, image_size, num_channels)
    if data.dataset == "image_folder":
        return ImageFolderSource(path, image_size, num_channels)
    if data.dataset == "idx":
        return idx.IdxSource(path, split or data.split, image_size, num_channels)
    return PreparedSource(path, image_size, num_channels)


def load_source(
    data: ml_collections.ConfigDict,
    image_size: int,
    num_channels: int,
    split: str = "",
    labelled: bool = False,
) -> Source:
    """The source data.dataset names (`data`: config.data), preprocessed to image_size /
    num_channels (the model's).

    'digits' (embedded), 'lsun_lmdb' / 'image_folder' / 'prepared' / 'idx' (at data.data_path),
    else a TFDS name. `split`: '' = data.split. labelled=True: a TFDS split read into memory keeps its labels
    too (a class-conditional run); the other sources have theirs (or none) either way.
    """
    if not is_tfds(data.dataset):
        return open_local(data, image_size, num_channels, split)
    data = data.copy_and_resolve_references()
    data.split = split or data.split
    return tfds_source.open_tfds(data, image_size, num_channels, labelled=labelled)


def load_labels(source: Source, num_classes: int, dataset: str) -> np.ndarray:
    """The int labels of `source`'s images (of `dataset`, config.data.dataset), for a
    class-conditional run with num_classes (config.model.conditional.num_classes) > 0: checked to be
    in 0..num_classes-1. Datasets without labels are a UserError naming those that have them."""
    labels = getattr(source, "labels", None)
    if labels is None:
        raise UserError(
            f"model.conditional.num_classes={num_classes} needs labelled data, and data.dataset="
            f"{dataset!r} has no labels here; use 'digits', 'idx' (MNIST-format files), a TFDS dataset "
            f"with a 'label' feature (mnist, cifar10, ...), or data.dataset='image_folder' with one "
            f"subfolder per class (no images at its top)"
        )
    labels = np.asarray(labels)
    if len(labels) != len(source) or labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(
            f"dataset {dataset!r} has labels 0..{labels.max()} ({len(np.unique(labels))} "
            f"classes), more than model.conditional.num_classes={num_classes}; set "
            f"--config.model.conditional.num_classes={labels.max() + 1}"
        )
    return labels
