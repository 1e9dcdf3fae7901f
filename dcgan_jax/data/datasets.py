"""`config.dataset` -> a random-access source of preprocessed uint8 images (kinds: sources.LOCAL_KINDS, or TFDS)."""

import os

import ml_collections
import numpy as np

from dcgan_jax.data import digits, tfds_source
from dcgan_jax.data.sources import (LOCAL_KINDS, PATH_KINDS, ArraySource, ImageFolderSource, LmdbSource,
                                    PreparedSource, Source)
from dcgan_jax.errors import UserError


def is_tfds(dataset: str) -> bool:
    """Whether `dataset` names a TFDS dataset (anything that is not one of LOCAL_KINDS)."""
    return dataset not in LOCAL_KINDS


def open_local(config: ml_collections.ConfigDict, split: str = "") -> Source:
    """The source of a non-TFDS dataset kind."""
    size, channels = config.image_size, config.num_channels
    if config.dataset == "digits":
        return ArraySource(*digits.digits_with_labels(size, channels, split or config.split))
    path = os.path.expanduser(config.data_path)
    if not path:
        raise UserError(f"dataset={config.dataset!r} reads from --config.data_path, which is empty: pass the "
                        f"{PATH_KINDS[config.dataset]}")
    if config.dataset == "lsun_lmdb":
        return LmdbSource(path, size, channels)
    if config.dataset == "image_folder":
        return ImageFolderSource(path, size, channels)
    return PreparedSource(path, size, channels)


def load_source(config: ml_collections.ConfigDict, split: str = "") -> Source:
    """The source `config.dataset` names, preprocessed to config.image_size / config.num_channels.

    'digits' (embedded), 'lsun_lmdb' / 'image_folder' / 'prepared' (at config.data_path), else a TFDS name.
    """
    if not is_tfds(config.dataset):
        return open_local(config, split)
    config = config.copy_and_resolve_references()
    config.split = split or config.split
    return tfds_source.open_tfds(config)


def load_labels(config: ml_collections.ConfigDict, source: Source) -> np.ndarray:
    """The int labels of `source`'s images, for a class-conditional run (config.conditional.num_classes > 0):
    checked to be in 0..num_classes-1. Datasets without labels are a UserError naming those that have them."""
    labels = getattr(source, "labels", None)
    num_classes = config.conditional.num_classes
    if labels is None:
        raise UserError(f"conditional.num_classes={num_classes} needs labelled data, and dataset={config.dataset!r} "
                        f"has no labels here; use 'digits', a TFDS dataset with a 'label' feature (mnist, cifar10, "
                        f"...), or dataset='image_folder' with one subfolder per class (no images at its top)")
    labels = np.asarray(labels)
    if len(labels) != len(source) or labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(f"dataset {config.dataset!r} has labels 0..{labels.max()} ({len(np.unique(labels))} "
                        f"classes), more than conditional.num_classes={num_classes}; set "
                        f"--config.conditional.num_classes={labels.max() + 1}")
    return labels
