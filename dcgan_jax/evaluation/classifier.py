"""A small CNN classifier the project trains itself: its penultimate layer is FID's feature space.

The classifier is trained once per (dataset, image size, channels) and kept as an orbax checkpoint
plus meta.json, by default under ~/.cache/dcgan_jax/classifiers/, so FID/KID work offline with no
downloaded weights. Numbers made with it compare only with numbers made with the same classifier
(its meta.json records how it was trained).
"""

import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dcgan_jax import atomic_write, progress_bars
from dcgan_jax.data.images import as_model_input
from dcgan_jax.data.labelled import load_labelled
from dcgan_jax.errors import UserError
from dcgan_jax.nn.batched import map_batches

# The classifier's folder: the orbax checkpoint of its params and meta.json (how it was trained).
PARAMS = "params"
META = "meta.json"
_META_KEYS = ("image_size", "num_channels", "num_classes", "width", "feature_dim")


# -------------------------------------------------------------------------------------------------
# the model
class SmallCNN(nn.Module):
    """Three conv blocks (3x3, then 3x3 stride 2), global average pooling, a ReLU feature layer,
    logits."""

    num_classes: int
    width: int = 32
    feature_dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(logits, features) of images in [-1, 1]."""
        for i in range(3):
            x = nn.relu(nn.Conv(self.width * 2**i, (3, 3), name=f"conv{i}a")(x))
            x = nn.relu(nn.Conv(self.width * 2**i, (3, 3), strides=(2, 2), name=f"conv{i}b")(x))
        features = nn.relu(nn.Dense(self.feature_dim, name="features")(x.mean(axis=(1, 2))))
        return nn.Dense(self.num_classes, name="logits")(features), features


@functools.partial(jax.jit, static_argnames=("model",))
def _apply(model: SmallCNN, params: Any, images: jax.Array):
    return model.apply({"params": params}, images)


def predict(
    model: SmallCNN, params: Any, images: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, ...]:
    """(logits, features) of uint8 or [-1, 1] float images, batched."""
    return map_batches(
        lambda chunk: _apply(model, params, chunk), images, batch_size, as_model_input
    )


def _shift_batch(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Random translations by up to max_shift pixels (background-padded): the only augmentation."""
    if max_shift <= 0:
        return images
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = np.pad(images, pad, constant_values=-1.0)
    size = images.shape[1]
    out = np.empty_like(images)
    for k, (dy, dx) in enumerate(rng.integers(0, 2 * max_shift + 1, (len(images), 2))):
        out[k] = padded[k, dy : dy + size, dx : dx + size]
    return out


def make_train_step(model: SmallCNN, tx: optax.GradientTransformation) -> Callable:
    """The jitted `(params, opt_state, images, labels) -> (params, opt_state, loss)` of softmax
    cross-entropy; a function of its own so that tests lower it for GPU and TPU."""

    @jax.jit
    def step(params, opt_state, batch, batch_labels):
        def loss_fn(p):
            logits, _ = model.apply({"params": p}, batch)
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch_labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def train_classifier(
    images: np.ndarray, labels: np.ndarray, classifier: ml_collections.ConfigDict, seed: int = 0
) -> tuple[SmallCNN, Any]:
    """Adam on softmax cross-entropy for classifier.steps steps (`classifier`:
    config.eval.classifier); returns (model, params)."""
    model = SmallCNN(int(labels.max()) + 1, classifier.width, classifier.feature_dim)
    x = as_model_input(images)
    params = model.init(jax.random.PRNGKey(seed), jnp.asarray(x[:1]))["params"]
    tx = optax.adam(classifier.learning_rate)
    opt_state = tx.init(params)
    step = make_train_step(model, tx)
    rng = np.random.default_rng(seed)
    batch_size = min(classifier.batch_size, len(x))
    with progress_bars.bar(total=classifier.steps, desc="FID classifier", unit="step") as bar:
        for i in range(classifier.steps):
            idx = rng.choice(len(x), batch_size, replace=False)
            batch = _shift_batch(x[idx], rng, classifier.max_shift)
            params, opt_state, loss = step(
                params, opt_state, jnp.asarray(batch), jnp.asarray(labels[idx])
            )
            bar.update(1)
            if (
                bar.disable is False and i % 50 == 0
            ):  # fetching the loss waits for the step: only now and then
                bar.set_postfix(loss=f"{float(loss):.3f}")
    return model, params


# ------------------------------------------------------------------------------------------
# checkpoint on disk `classifier` is config.eval.classifier; `dataset` the run's
# (config.data.dataset), the default of classifier.dataset; image_size and num_channels the run's
# images' (config.model); `data` (config.data) where labelled data is loaded.
def classifier_dir(
    classifier: ml_collections.ConfigDict,
    dataset: str,
    image_size: int,
    num_channels: int,
    data_path: str = "",
) -> str:
    """Where the FID classifier lives: classifier.dir, or the per-user cache of its dataset, size
    and channels. 'idx' names files, not a dataset: its cache is also keyed by their folder
    (data_path, config.data.data_path), so MNIST's classifier never scores Fashion-MNIST."""
    if classifier.dir:
        return os.path.abspath(os.path.expanduser(classifier.dir))
    name = classifier_dataset(classifier, dataset)
    if name == "idx":
        folder = os.path.abspath(os.path.expanduser(data_path))
        digest = hashlib.sha1(folder.encode()).hexdigest()[:8]
        name = f"idx-{os.path.basename(folder)}-{digest}"
    name = f"{name}_{image_size}px_{num_channels}ch"
    return os.path.join(os.path.expanduser("~"), ".cache", "dcgan_jax", "classifiers", name)


def classifier_dataset(classifier: ml_collections.ConfigDict, dataset: str) -> str:
    """The classifier's labelled dataset: classifier.dataset, or the run's `dataset`."""
    return classifier.dataset or dataset


def train_and_save(
    classifier: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    image_size: int,
    num_channels: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Trains the FID classifier on the labelled train split, measures test accuracy, saves it;
    returns meta. A folder it cannot write is refused before training."""
    path = classifier_dir(classifier, data.dataset, image_size, num_channels, data.data_path)
    atomic_write.check_writable(path)
    dataset = classifier_dataset(classifier, data.dataset)
    where = dict(data_dir=data.data_dir, data_path=data.data_path)
    images, labels = load_labelled(dataset, "train", image_size, num_channels, **where)
    model, params = train_classifier(images, labels, classifier, seed=seed)
    test_images, test_labels = load_labelled(dataset, "test", image_size, num_channels, **where)
    accuracy = float(np.mean(predict(model, params, test_images)[0].argmax(-1) == test_labels))
    meta = {
        "dataset": dataset,
        "image_size": image_size,
        "num_channels": num_channels,
        "num_classes": model.num_classes,
        "width": model.width,
        "feature_dim": model.feature_dim,
        "steps": classifier.steps,
        "train_examples": len(images),
        "test_accuracy": accuracy,
    }
    save_classifier(path, params, meta)
    return meta


def save_classifier(path: str, params: Any, meta: dict[str, Any]) -> None:
    """Writes the classifier folder `path` (params and meta.json) as one swap: everything goes to a
    sibling temporary folder, which replaces `path` once whole (the old folder renamed aside, then
    deleted), so a kill or a failed write leaves the old classifier whole, never a folder without
    params. A failed write is one UserError naming `path`."""
    import orbax.checkpoint as ocp

    atomic_write.check_writable(path)
    staging = os.path.abspath(atomic_write.partial_name(path))  # orbax wants absolute paths
    try:
        try:
            checkpointer = ocp.StandardCheckpointer()
            checkpointer.save(os.path.join(staging, PARAMS), params)
            checkpointer.wait_until_finished()
        except OSError:
            raise
        except Exception as e:  # orbax/tensorstore wrap I/O failures (a full disk) in their own
            raise _save_failure(path, e) from None
        atomic_write.write_text(os.path.join(staging, META), json.dumps(meta, indent=2))
        _swap_into_place(staging, path)
    except OSError as e:
        raise atomic_write.failure(path, e) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save_failure(path: str, error: Exception) -> UserError:
    """One line for orbax's failure to save: tensorstore reports the OS error as
    `[os_error_code='28']` inside a long message."""
    code = re.search(r"os_error_code='(\d+)'", str(error))
    if code:
        return atomic_write.failure(path, OSError(int(code[1]), os.strerror(int(code[1]))))
    return UserError(
        f"cannot write the FID classifier to {path} ({' '.join(str(error).split())[:300]}); "
        "check the folder (or write elsewhere: --classifier_dir) and rerun"
    )


def _swap_into_place(staging: str, path: str) -> None:
    """Renames the folder `staging` to `path`, the old `path` (if any) renamed aside first and
    deleted after: a directory cannot be replaced by one rename."""
    if not os.path.lexists(path):
        os.rename(staging, path)
        return
    aside = atomic_write.partial_name(path)
    os.rename(path, aside)
    try:
        os.rename(staging, path)
    except OSError:
        os.rename(aside, path)  # the old classifier back in place
        raise
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.remove(aside)


def _damaged(path: str, reason: str) -> UserError:
    return UserError(
        f"the FID classifier in {path} is damaged ({reason}); rerun `python -m dcgan_jax.evaluate "
        "--task=train_classifier --workdir=...` to train it again, or delete the folder"
    )


def load_classifier(
    classifier: ml_collections.ConfigDict,
    data: ml_collections.ConfigDict,
    image_size: int,
    num_channels: int,
    seed: int = 0,
    train_if_missing: bool = True,
):
    """(model, params, meta) of the FID classifier, trained (with `seed`) and saved first if it does
    not exist yet."""
    import orbax.checkpoint as ocp

    path = classifier_dir(classifier, data.dataset, image_size, num_channels, data.data_path)
    meta_path = os.path.join(path, META)
    if not os.path.exists(meta_path):
        if not train_if_missing:
            raise UserError(
                f"no FID classifier in {path}; train it with "
                f"`python -m dcgan_jax.evaluate --task=train_classifier --workdir=...`"
            )
        print(
            f"training the FID feature classifier on {classifier_dataset(classifier, data.dataset)} (once; saved "
            f"to {path})",
            flush=True,
        )
        train_and_save(classifier, data, image_size, num_channels, seed)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        missing = [key for key in _META_KEYS if not isinstance(meta.get(key), int)]
    except (OSError, ValueError, AttributeError) as e:  # AttributeError: JSON but not an object
        raise _damaged(path, f"{META}: {' '.join(str(e).split())}") from None
    if missing:
        raise _damaged(path, f"{META} lacks integer {', '.join(missing)}")
    if (meta["image_size"], meta["num_channels"]) != (image_size, num_channels):
        raise UserError(
            f"the classifier in {path} is for {meta['image_size']}px x {meta['num_channels']} "
            f"channels, not {image_size}px x {num_channels}; set --config.eval.classifier.dir "
            "(evaluate: --classifier_dir)"
        )
    model = SmallCNN(meta["num_classes"], meta["width"], meta["feature_dim"])
    template = jax.eval_shape(  # shapes only: a real init compiled each initializer (10 s on CPU)
        model.init, jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, num_channels))
    )["params"]
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    try:
        params = ocp.StandardCheckpointer().restore(os.path.join(path, PARAMS), abstract)
    except Exception as e:  # missing, truncated or of other shapes: orbax raises many kinds
        raise _damaged(path, f"{PARAMS}/: {' '.join(str(e).split())[:300]}") from None
    return model, params, meta
