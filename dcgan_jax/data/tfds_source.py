"""TFDS image datasets by name (mnist, cifar10, celeb_a, lsun/bedroom, imagenet_resized/64x64, ...),
random access.

Data order must stay a function of (seed, step), so TFDS is read in one of two ways:
- prepared in a random-access format (`tfds build NAME --file_format=array_record`): read through
  `tfds.data_source`, decoded in the worker processes like any other source;
- prepared as TFRecords (the default, sequential only): the split is streamed once, in file order, decoded on all
  cores and held in memory as preprocessed uint8 (MNIST at 32 px: 61 MB; CelebA at 64 px: 2 GB). A split larger
  than `config.data.max_in_memory_mb` is a UserError giving the one-time command that writes a prepared cache
  instead (`python -m dcgan_jax.prepare`), which streams the split the same way.
"""

import importlib.util
import os
from collections.abc import Iterator

import ml_collections
import numpy as np

from dcgan_jax.data import skip_report, sources, workers
from dcgan_jax.errors import UserError

STREAM_CHUNK = 256  # encoded images per decoding task
TFDS_INSTALL = 'pip install "dcgan_jax[tfds]"  (in a checkout: pip install -e ".[tfds]")'


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module without a spec: an import blocked in sys.modules
        return False


def require_tfds(what: str) -> None:
    """TFDS and the TensorFlow it reads TFRecords with are the optional `tfds` extra: a one-line
    UserError naming the install command when either is absent. Also keeps TensorFlow quiet and off
    the accelerators."""
    missing = [m for m in ("tensorflow_datasets", "tensorflow") if not _installed(m)]
    if missing:
        raise UserError(
            f"{what} is read with TensorFlow Datasets and TensorFlow ({' and '.join(missing)} not "
            f"installed): {TFDS_INSTALL}. Data that needs neither: digits, MNIST-format idx files, an "
            f"image folder, an LSUN LMDB or a prepared cache"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from tensorflow import config as tf_config  # TensorFlow's device settings

        tf_config.set_visible_devices([], "GPU")
        tf_config.set_visible_devices([], "TPU")
    except ImportError as e:
        raise UserError(
            f"{what} needs TensorFlow, which fails to import ({e}); {TFDS_INSTALL}"
        ) from None
    except Exception:  # already initialized: nothing to hide
        pass


def _builder(data: ml_collections.ConfigDict):
    require_tfds(f"data.dataset={data.dataset!r}")
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(data.dataset, data_dir=data.data_dir or None)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(
            f"data.dataset={data.dataset!r} is neither a TFDS dataset nor one of "
            f"{', '.join(repr(k) for k in sources.LOCAL_KINDS)}"
        ) from None


def _image_key(builder) -> str:
    import tensorflow_datasets as tfds

    keys = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)]
    if not keys:
        raise UserError(f"TFDS dataset {builder.name!r} has no image feature")
    return "image" if "image" in keys else keys[0]


def _not_prepared(data: ml_collections.ConfigDict, builder) -> UserError:
    name, where = data.dataset, builder.data_dir_root
    hint = (
        "; its builder needs tensorflow-io, which does not load beside recent TensorFlow: use the official "
        "LMDB instead (--config.data.dataset=lsun_lmdb --config.data.data_path=.../bedroom_train_lmdb)"
        if name.startswith("lsun")
        else ""
    )
    return UserError(
        f"TFDS dataset {name!r} (split {data.split!r}) is not prepared under {where}: run "
        f"`tfds build {name} --data_dir={where}` once (a dataset needing a manual download says "
        f"where to put the files: {where}/downloads/manual), or point --config.data.data_dir at where "
        f"it is{hint}"
    )


def num_examples(builder, split: str) -> int | None:
    try:
        return int(builder.info.splits[split].num_examples)
    except Exception:  # unknown split sizes (not prepared, mocked, exotic split strings)
        return None


class TfdsRandomSource(sources.EncodedSource):
    """A TFDS split in a random-access file format (array_record), read with `tfds.data_source`."""

    def __init__(
        self,
        name: str,
        data_dir: str,
        split: str,
        image_size: int,
        num_channels: int,
        data_source=None,
    ):
        self.name, self.data_dir, self.split = name, data_dir, split
        self._data_source = data_source
        self.image_key = None
        super().__init__(
            f"TFDS {name!r} split {split!r}", len(self._records()), image_size, num_channels
        )

    def _records(self):
        if self._data_source is None:
            import tensorflow_datasets as tfds
            from tensorflow_datasets.core import decode

            builder = tfds.builder(self.name, data_dir=self.data_dir or None)
            self.image_key = _image_key(builder)
            self._data_source = builder.as_data_source(
                split=self.split, decoders={self.image_key: decode.SkipDecoding()}
            )
        return self._data_source

    def __getstate__(self):
        state = super().__getstate__()
        state["_data_source"] = None  # reopened in each worker process
        return state

    @property
    def labels(self) -> np.ndarray | None:
        """Every record's 'label' (read once, images left encoded), or None when the dataset has
        none."""
        if getattr(self, "_labels", None) is None:
            records = self._records()
            if "label" not in records[0]:
                return None
            self._labels = np.asarray(
                [int(records[i]["label"]) for i in range(len(records))], np.int32
            )
        return self._labels

    def raw(self, index: int) -> bytes:
        record = self._records()[index]
        value = record[self.image_key or "image"]
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim >= 2:
            return _encode_png(value)  # already decoded (some data sources ignore SkipDecoding)
        return bytes(value)


def _encode_png(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def stream_encoded(
    data: ml_collections.ConfigDict, builder, labels_out: list[int] | None = None
) -> Iterator[list[bytes]]:
    """The encoded images of the split data.split in file order, in chunks of STREAM_CHUNK (decoding
    is left to the workers); with `labels_out`, each image's 'label' is appended to it as the image
    is read."""
    import tensorflow_datasets as tfds

    key = _image_key(builder)
    if labels_out is not None and "label" not in builder.info.features:
        labels_out = None  # no labels: load_labels names the datasets that have them
    try:
        dataset = builder.as_dataset(
            split=data.split, shuffle_files=False, decoders={key: tfds.decode.SkipDecoding()}
        )
    except AssertionError:  # TFDS's "could not find data in ..."
        raise _not_prepared(data, builder) from None
    except ValueError as e:  # unknown split
        raise UserError(f"TFDS dataset {data.dataset!r}: {e}") from None
    chunk = []

    # Named functions, not two lambdas on one line: AutoGraph cannot tell those apart and warns.
    def image_and_label(example):
        return example[key], example["label"]

    def image_only(example):
        return example[key]

    pick = image_and_label if labels_out is not None else image_only
    for example in tfds.as_numpy(dataset.map(pick).prefetch(4 * STREAM_CHUNK)):
        if labels_out is not None:
            example, label = example
            labels_out.append(int(label))
        chunk.append(example if isinstance(example, bytes) else _encode_png(example))
        if len(chunk) == STREAM_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stream_decoded(
    data: ml_collections.ConfigDict,
    builder,
    image_size: int,
    num_channels: int,
    labels_out: list[int] | None = None,
) -> Iterator[tuple[np.ndarray, list[tuple[str, str]]]]:
    """Preprocessed uint8 chunks of the split in file order, decoded on data.num_data_workers cores,
    with each chunk's failures, (kind, "example N (why)"); with `labels_out`, the labels of the
    images yielded (those of undecodable ones left out) are appended to it."""
    import functools

    decode = functools.partial(
        sources.decode_chunk, image_size=image_size, num_channels=num_channels
    )
    count = workers.num_workers(data.num_data_workers)
    read = [] if labels_out is not None else None
    done = seen = 0
    where = f"TFDS {data.dataset} {data.split} example"
    for images, failed in workers.ordered_map(
        decode, stream_encoded(data, builder, read), count, 2 * count
    ):
        if read:
            chunk = read[done : done + len(images) + len(failed)]
            done += len(chunk)
            bad = {position for position, _, _ in failed}
            labels_out.extend(label for i, label in enumerate(chunk) if i not in bad)
        yield images, [(kind, f"{where} {seen + p} ({why})") for p, kind, why in failed]
        seen += len(images) + len(failed)


def open_tfds(
    data: ml_collections.ConfigDict,
    image_size: int,
    num_channels: int,
    labelled: bool = False,
    in_memory: bool = True,
):
    """A random-access source for the TFDS split data.split (`data`: config.data); TFRecord splits
    are loaded into memory (see module doc), with their labels when `labelled` (array_record sources
    read labels on demand).

    With in_memory=False, a TFRecord split is returned as the builder instead, for prepare.py to
    stream.
    """
    builder = _builder(data)
    from tensorflow_datasets.core import file_adapters

    if builder.info.file_format in file_adapters.FileFormat.with_random_access():
        return TfdsRandomSource(data.dataset, data.data_dir, data.split, image_size, num_channels)
    if not in_memory:
        return builder
    row_bytes = image_size**2 * num_channels
    limit = int(data.max_in_memory_mb * 2**20 // row_bytes)
    known = num_examples(builder, data.split)
    if known is not None and known > limit:
        raise _too_big(data, image_size, known * row_bytes)
    chunks, total = [], 0
    report = skip_report.SkipReport("left out")
    labels = [] if labelled else None
    for images, failed in stream_decoded(data, builder, image_size, num_channels, labels):
        chunks.append(images)
        total += len(images)
        for kind, reason in failed:
            report.add(kind, reason)
        if total > limit:
            raise _too_big(data, image_size, None)
    report.report(final=True)
    if not total:
        raise UserError(
            f"TFDS dataset {data.dataset!r} split {data.split!r} holds no readable image"
        )
    return sources.ArraySource(np.concatenate(chunks), np.asarray(labels) if labels else None)


def _too_big(data: ml_collections.ConfigDict, image_size: int, num_bytes: int | None) -> UserError:
    size = f"{num_bytes / 2**30:.1f} GiB" if num_bytes else f"more than {data.max_in_memory_mb} MB"
    return UserError(
        f"TFDS dataset {data.dataset!r} is in TFRecord format (sequential) and its split {data.split!r} is "
        f"{size} at {image_size}px, over data.max_in_memory_mb={data.max_in_memory_mb}: write a prepared cache "
        f"once with `python -m dcgan_jax.prepare --config=<this config> --output=DIR` and train with "
        f"--config.data.dataset=prepared --config.data.data_path=DIR (or rebuild it with `tfds build {data.dataset} "
        f"--file_format=array_record`, or raise --config.data.max_in_memory_mb)"
    )
