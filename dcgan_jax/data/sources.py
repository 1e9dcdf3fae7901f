"""Random-access image sources: in-memory arrays, the official LSUN LMDB export, image folders,
prepared caches.

Every source serves uint8 images (image_size, image_size, num_channels), preprocessed like the
paper's implementations: resize the shorter side (bicubic), center-crop, grayscale -> 1 channel.
This module imports neither JAX nor TensorFlow, so the decoding worker processes
(dcgan_jax/data/workers.py) start in a fraction of a second.

Corrupt images: an entry that fails to decode is replaced by the next readable entry (index + 1, +
2, ... wrapping around), so the data order stays a function of (seed, step); each replaced entry is
recorded once per process and reported to the training loop, which counts them by kind
(skip_report.py). An image too large to decode safely (images.check_size) is refused unread, like one
that does not decode. A source with no readable entry is a UserError.
"""

import json
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from dcgan_jax.data.images import decode_image, failure_kind
from dcgan_jax.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PREPARED_INFO = "info.json"
PREPARED_IMAGES = "images.u8"
LSUN_HELP = (
    "get it with LSUN's script (https://github.com/fyu/lsun: `python download.py -c bedroom`, then "
    "`unzip bedroom_train_lmdb.zip`) and pass the unzipped directory"
)

# The dataset kinds served by this module, with what config.data.data_path must hold; 'digits' is
# embedded, any other config.data.dataset is a TFDS name (dcgan_jax/data/datasets.py dispatches).
PATH_KINDS = {
    "lsun_lmdb": "LSUN LMDB directory (e.g. bedroom_train_lmdb/)",
    "image_folder": "folder of jpg/png/webp images",
    "prepared": "directory written by `python -m dcgan_jax.prepare`",
    "idx": "folder of MNIST-format files (train-images-idx3-ubyte.gz, ...; dcgan_jax/data/idx.py)",
}
LOCAL_KINDS = ("digits",) + tuple(PATH_KINDS)

# (index, kind, "what it was (why it failed)") of entries replaced by a readable neighbour; kind:
# images.failure_kind
Skipped = list[tuple[int, str, str]]


class Source(Protocol):
    """Random access to preprocessed uint8 images (H, W, C)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


class ArraySource:
    """An in-memory uint8 array of images, N x H x W x C, with their int labels when the dataset has
    them."""

    cheap = True  # read in the training process: no worker pool needed

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None):
        self.images = images
        self.labels = None if labels is None else np.asarray(labels, np.int32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[index]

    def read_many(self, indices: np.ndarray) -> np.ndarray:
        return self.images[indices]


class EncodedSource:
    """Entries of encoded image bytes, decoded and preprocessed on read; unreadable ones replaced
    (see module doc)."""

    cheap = False

    def __init__(self, location: str, num_entries: int, image_size: int, num_channels: int):
        self.location, self.num_entries = location, num_entries
        self.image_size, self.num_channels = image_size, num_channels
        self._bad: dict[int, str] = {}  # entries found unreadable in this process
        self._unreported: Skipped = []
        if num_entries == 0:
            raise UserError(f"no images found in {location}")
        self[0]  # fails early, as a UserError, when no entry at all is readable

    def raw(self, index: int) -> bytes:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return f"{self.location} entry {index}"

    def __len__(self) -> int:
        return self.num_entries

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_bad"], state["_unreported"] = {}, []
        return state

    def __getitem__(self, index: int) -> np.ndarray:
        for offset in range(self.num_entries):
            candidate = (int(index) + offset) % self.num_entries
            if candidate in self._bad:
                continue
            try:
                return decode_image(self.raw(candidate), self.image_size, self.num_channels)
            except UserError:
                raise
            except Exception as e:  # decoders raise many types (OSError, SyntaxError, struct.error...) on bad bytes
                message = (
                    "not a decodable image"
                    if isinstance(e, Image.UnidentifiedImageError)
                    else str(e)
                )
                reason = f"{self.describe(candidate)} ({type(e).__name__}: {message})"
                self._bad[candidate] = reason
                self._unreported.append((candidate, failure_kind(e), reason))
        raise UserError(
            f"no readable image in {self.location}: all {self.num_entries} entries fail to decode "
            f"(e.g. {next(iter(self._bad.values()))})"
        )

    def read_chunk(self, indices: Sequence[int]) -> tuple[np.ndarray, Skipped]:
        """The images at `indices` and the entries newly found unreadable while reading them."""
        images = np.stack([self[int(i)] for i in indices])
        skipped, self._unreported = self._unreported, []
        return images, skipped


def _image_paths(folder: str) -> list[str]:
    """Image files under `folder`, relative and sorted. Symlinked folders are followed, but each
    real folder is read once: a symlink loop (a -> ..) or two links to one folder would otherwise
    repeat its images."""
    seen, paths = set(), []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) not in seen)
        paths.extend(
            os.path.relpath(os.path.join(root, n), folder)
            for n in names
            if n.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(paths)


class ImageFolderSource(EncodedSource):
    """Every jpg/jpeg/png/webp/bmp file under a folder (recursive, symlinks followed, each real
    folder once), in sorted path order."""

    def __init__(self, folder: str, image_size: int, num_channels: int):
        if not os.path.isdir(folder):
            raise UserError(
                f"image folder {folder!r} does not exist; set --config.data.data_path to a folder of "
                f"jpg/png/webp images (searched recursively), e.g. CelebA's img_align_celeba/"
            )
        self.folder = folder
        self.paths = _image_paths(folder)
        super().__init__(f"image folder {folder!r}", len(self.paths), image_size, num_channels)

    def raw(self, index: int) -> bytes:
        with open(os.path.join(self.folder, self.paths[index]), "rb") as f:
            return f.read()

    @property
    def class_names(self) -> list[str]:
        """The subfolders holding images, sorted: class i is the i-th (one subfolder per class)."""
        return sorted({p.split(os.sep)[0] for p in self.paths if os.sep in p})

    @property
    def labels(self) -> np.ndarray | None:
        """Each image's class: the index of its top-level subfolder in `class_names`; None if any
        image lies directly in the folder (then it is not a folder of classes)."""
        if any(os.sep not in p for p in self.paths):
            return None
        index = {name: i for i, name in enumerate(self.class_names)}
        return np.asarray([index[p.split(os.sep)[0]] for p in self.paths], np.int32)

    def describe(self, index: int) -> str:
        return os.path.join(self.folder, self.paths[index])


class LmdbSource(EncodedSource):
    """LSUN's official LMDB export (e.g. bedroom_train_lmdb/): keys are hex ids, values encoded
    webp/jpeg images.

    The environment is opened read-only without locks, readahead or meminit, and each process keeps
    one read transaction for its lifetime: random reads then cost the same at the millionth image as
    at the first (the slowdown of pytorch/examples#156 comes from OS readahead filling the page
    cache with neighbours never read). Keys are held as one bytes blob plus offsets, so sending the
    source to a worker process is one cheap copy.
    """

    def __init__(self, path: str, image_size: int, num_channels: int):
        if not os.path.exists(os.path.join(path, "data.mdb")) and not os.path.isfile(path):
            raise UserError(
                f"LSUN LMDB not found at {path!r} (no data.mdb there); {LSUN_HELP} as "
                f"--config.data.data_path"
            )
        self.path = path
        self._env = self._txn = None
        self._pid = None
        keys = list(self._transaction().cursor().iternext(keys=True, values=False))
        self.offsets = np.cumsum([0] + [len(k) for k in keys], dtype=np.int64)
        self.keys_blob = b"".join(keys)
        super().__init__(f"LMDB {path!r}", len(keys), image_size, num_channels)

    def _transaction(self):
        if (
            self._txn is None or self._pid != os.getpid()
        ):  # an LMDB environment must not cross a fork
            self._env, self._pid = _open_lmdb(self.path), os.getpid()
            self._txn = self._env.begin(buffers=False)
        return self._txn

    def __getstate__(self):
        state = super().__getstate__()
        state["_env"] = state["_txn"] = state["_pid"] = None
        return state

    def key(self, index: int) -> bytes:
        return self.keys_blob[self.offsets[index] : self.offsets[index + 1]]

    def raw(self, index: int) -> bytes:
        value = self._transaction().get(self.key(index))
        if value is None:
            raise KeyError("key vanished from the LMDB")
        return value

    def describe(self, index: int) -> str:
        return f"{self.path} key {self.key(index).decode('utf-8', 'replace')}"


_LMDB_ENVS = {}  # (pid, path) -> environment: LMDB allows one open environment per file and process


def _open_lmdb(path: str):
    key = (os.getpid(), os.path.realpath(path))
    if key not in _LMDB_ENVS:
        import lmdb

        try:
            _LMDB_ENVS[key] = lmdb.open(
                path,
                subdir=os.path.isdir(path),
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=1024,
            )
        except lmdb.Error as e:
            raise UserError(f"cannot open LMDB {path!r} ({e}); {LSUN_HELP}") from None
    return _LMDB_ENVS[key]


class PreparedSource:
    """A cache written by `python -m dcgan_jax.prepare` (dcgan_jax/data/prepare.py): raw uint8 N x H
    x W x C (images.u8) + info.json.

    Reads are memory-mapped copies of preprocessed rows (memory speed once the page cache holds the
    file).
    """

    cheap = True

    def __init__(self, path: str, image_size: int | None = None, num_channels: int | None = None):
        info_path = os.path.join(path, PREPARED_INFO)
        if not os.path.exists(info_path):
            raise UserError(
                f"no prepared cache at {path!r} (no {PREPARED_INFO}); write one with `python -m "
                f"dcgan_jax.prepare --config=... --output={path}`"
            )
        again = f"write it again with `python -m dcgan_jax.prepare --config=... --output={path}`"
        try:
            with open(info_path) as f:
                self.info = json.load(f)
            shape = tuple(int(n) for n in self.info["shape"])
            if len(shape) != 4 or min(shape) < 1:
                raise ValueError(f"shape {shape}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"prepared cache {path!r}: {PREPARED_INFO} is unreadable or damaged ({e}); {again}"
            ) from None
        if (image_size, num_channels) != (None, None) and shape[1:] != (
            image_size,
            image_size,
            num_channels,
        ):
            raise UserError(
                f"prepared cache {path!r} holds {shape[1]}x{shape[2]}x{shape[3]} images, the config "
                f"asks for {image_size}x{image_size}x{num_channels}; set "
                f"--config.model.image_size={shape[1]} --config.model.num_channels={shape[3]} or prepare "
                f"again"
            )
        data = os.path.join(path, PREPARED_IMAGES)
        expected = int(np.prod(shape))
        try:
            size = os.path.getsize(data)
            if size != expected:
                raise ValueError(
                    f"{size:,} bytes where {PREPARED_INFO} says {expected:,}: truncated or replaced"
                )
            self.images = np.memmap(data, np.uint8, "r", shape=shape)
        except (OSError, ValueError) as e:
            raise UserError(
                f"prepared cache {path!r}: {PREPARED_IMAGES} is missing, unreadable or damaged "
                f"({getattr(e, 'strerror', None) or e}); {again}"
            ) from None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array(self.images[index])

    def read_many(self, indices: np.ndarray) -> np.ndarray:
        return self.images[np.asarray(indices)]


def read_batch(source: Source, indices: Sequence[int]) -> np.ndarray:
    """The images at `indices`, stacked (uint8)."""
    if hasattr(source, "read_many"):
        return source.read_many(np.asarray(indices))
    return np.stack([source[int(i)] for i in indices])


def read_chunk(source: Source, indices: Sequence[int]) -> tuple[np.ndarray, Skipped]:
    """Images at `indices` (uint8, stacked) and the unreadable entries replaced while reading
    them."""
    if hasattr(source, "read_chunk"):
        return source.read_chunk(indices)
    if hasattr(source, "read_many"):
        return np.asarray(source.read_many(np.asarray(indices))), []
    return np.stack([source[int(i)] for i in indices]), []


def decode_chunk(
    blobs: Sequence[bytes], image_size: int, num_channels: int
) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Decodes a list of encoded images; returns the readable ones stacked and (position, kind, why)
    of those that failed (kind: images.failure_kind)."""
    images, failed = [], []
    for position, data in enumerate(blobs):
        try:
            images.append(decode_image(data, image_size, num_channels))
        except Exception as e:  # see EncodedSource.__getitem__
            failed.append((position, failure_kind(e), f"{type(e).__name__}: {e}"))
    empty = np.zeros((0, image_size, image_size, num_channels), np.uint8)
    return (np.stack(images) if images else empty), failed
