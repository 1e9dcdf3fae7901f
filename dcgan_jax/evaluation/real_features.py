"""The published FID protocols (config.eval.protocol) and the features of real images, computed
once and cached beside the run.

Protocols set how many samples are scored against which split:

    test10k   10,000 samples against the 10,000 test images (Lucic et al. 2018: MNIST,
              Fashion-MNIST)
    train50k  50,000 samples against the train split (CIFAR-10 papers)

The real images' features (from which FID's mean and covariance and KID's subsets come) are kept
in workdir/real_features/<key>.npz; the key hashes the data (dataset, data_path, data_dir, split),
the size (image_size, num_channels, the number of images and the seed that picks them, or none
when they are the whole split) and the
extractor (its name, and the SHA-1 of the Inception weights or the classifier's folder and
meta.json). A later evaluation with the same key reads the file instead of the images; a damaged
file is recomputed.
"""

import hashlib
import io
import json
import os
import zipfile

import jax
import ml_collections
import numpy as np

from dcgan_jax import atomic_write, run_files
from dcgan_jax.evaluation import classifier, inception, inception_weights

# name: (num_samples, split)
PROTOCOLS = {"test10k": (10_000, "test"), "train50k": (50_000, "train")}


def apply_protocol(ev: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `ev` (config.eval) with ev.protocol's num_samples and split; they replace the
    config's own (a protocol is a named pair of them). ev.protocol='' keeps them."""
    ev = ev.copy_and_resolve_references()
    if ev.protocol:
        ev.num_samples, ev.split = PROTOCOLS[ev.protocol]
    return ev


def extractor_identity(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
) -> dict:
    """What decides the features of ev.feature_extractor (call once it exists): the SHA-1 of the
    Inception weights, or the classifier's folder and its meta.json."""
    if ev.feature_extractor == "inception":
        return {
            "inception_sha1": inception_weights.file_sha1(
                inception.check_weights(ev.inception_weights)
            )
        }
    folder = classifier.classifier_dir(
        ev.classifier, data.dataset, model.image_size, model.num_channels, data.data_path
    )
    with open(os.path.join(folder, classifier.META)) as f:
        return {"classifier_dir": os.path.abspath(folder), "meta": json.load(f)}


def cache_file(workdir: str, key: dict) -> str:
    """workdir/real_features/<SHA-1 of the key>.npz."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return os.path.join(run_files.path(workdir, run_files.REAL_FEATURES), f"{digest[:20]}.npz")


def _read(path: str, key: dict) -> np.ndarray | None:
    """The cached features, or None when the file is missing, damaged or of another key."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if json.loads(str(saved["key"])) != json.loads(json.dumps(key, default=str)):
                return None
            features = saved["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return features if features.ndim == 2 and np.isfinite(features).all() else None


def read(workdir: str, key: dict) -> np.ndarray | None:
    """The features cached in the workdir under `key`, or None (no workdir, no file, a damaged
    file or one of another key)."""
    if not workdir:
        return None
    path = cache_file(workdir, key)
    features = _read(path, key)
    if features is not None:
        print(f"read the real images' features from {path}", flush=True)
    return features


def write(workdir: str, key: dict, features: np.ndarray) -> None:
    """Caches `features` in the workdir under `key` (by the first host only, as every workdir file);
    nothing without a workdir."""
    if not workdir or jax.process_index() != 0:
        return
    path = cache_file(workdir, key)
    buffer = io.BytesIO()
    np.savez(
        buffer, features=np.asarray(features), key=json.dumps(key, sort_keys=True, default=str)
    )
    atomic_write.write_bytes(path, buffer.getvalue())
    print(f"cached the real images' features in {path}", flush=True)


def key(
    ev: ml_collections.ConfigDict,
    model: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    split: str,
    num: int,
    seed: int | None,
    seed_offset: int = 0,
) -> dict:
    """The cache key of `num` real images of `split` (fid.real_images' choice) under ev's
    extractor; seed None: the whole split (num at least its size), which no seed changes."""
    return {
        "dataset": data.dataset,
        "data_path": os.path.abspath(data.data_path) if data.data_path else "",
        "data_dir": data.get("data_dir", ""),
        "split": split,
        "image_size": model.image_size,
        "num_channels": model.num_channels,
        "num": int(num),
        "seed": "whole split" if seed is None else [int(seed), int(seed_offset)],
        "extractor": ev.feature_extractor,
        **extractor_identity(ev, model, data),
    }
