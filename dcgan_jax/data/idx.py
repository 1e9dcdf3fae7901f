"""MNIST-format (idx) files as a dataset: MNIST, Fashion-MNIST, KMNIST and EMNIST as users hold
them on disk, with their labels and their train/test splits (`--config.data.dataset=idx
--config.data.data_path=DIR`).

Why a source of its own: these four datasets ship as idx files, and that is how they sit on a disk
(Debian's dataset-fashion-mnist package, torchvision's `MNIST/raw/`, a download of the originals);
reading them directly needs neither TFDS nor a network, and trains on exactly the published train
and test images.

The format (http://yann.lecun.com/exdb/mnist/): a big-endian header, two zero bytes, a type byte
(0x08: uint8, the only one these datasets use), the number of dimensions, then each dimension as a
uint32; then the data, row-major. Images are 0x00000803 (N x rows x cols), labels 0x00000801 (N).
Files may be gzipped (told by their first bytes, not by their name).

Where the files are found, for data.split 'train' (names `train-...`) or 'test' (`t10k-...`, or
EMNIST's `test-...`): in data_path, in data_path/raw (torchvision's layout, data_path = its MNIST/
folder) or in data_path/*/raw (data_path = torchvision's root), named `train-images-idx3-ubyte` or
`train-images.idx3-ubyte` (both styles are in use), gzipped (`.gz`) or not, with any prefix
(`emnist-letters-train-images-idx3-ubyte`). A folder holding several sets (EMNIST's six) is chosen
from by ending data_path with the prefix: `DIR/emnist-letters`. EMNIST's images are stored
transposed; they are read upright here (as torchvision's EMNIST users transpose them).

Every image goes through the preprocessing of the other in-memory sources (images.preprocess_array):
the 28x28 greys are resized to model.image_size, as 1 channel or repeated into 3.
"""

import gzip
import os
import re
import zlib

import numpy as np

from dcgan_jax.data.images import preprocess_array
from dcgan_jax.errors import UserError

SPLIT_WORDS = {"train": ("train",), "test": ("t10k", "test")}  # data.split -> file name words
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
_NAME = re.compile(
    r"(?P<prefix>.*?)(?P<word>train|t10k|test)-(?P<kind>images|labels)[-.]idx[13]-ubyte(\.gz)?"
)
HELP = (
    "pass the folder holding MNIST-format files (train-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz, ...) as --config.data.data_path"
)


def read_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array an idx file holds, gzipped or not; a file that is not what `magic` names
    (IMAGES_MAGIC, LABELS_MAGIC), truncated or damaged is a one-line UserError naming it."""
    what = "idx3 images" if magic == IMAGES_MAGIC else "idx1 labels"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f"cannot read idx file {path} ({e.strerror or e}); {HELP}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise UserError(
                f"idx file {path} is truncated (its gzip stream ends early); download it again"
            ) from None
        except (OSError, zlib.error) as e:
            raise UserError(
                f"idx file {path} is a damaged gzip file ({e}); download it again"
            ) from None
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        shown = "none (shorter than 4 bytes)" if found is None else f"0x{found:08x}"
        raise UserError(
            f"idx file {path} has magic number {shown}, not the 0x{magic:08x} of {what}: not an "
            f"MNIST-format {what.split()[1]} file; {HELP}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"idx file {path} is truncated (its header ends early); download it again")
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise UserError(
            f"idx file {path} is {state}: its header declares {' x '.join(map(str, shape))} bytes "
            f"({expected:,} with the header), the file holds {len(raw):,}; download it again"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _matches(folder: str, split: str, prefix: str | None) -> dict[tuple[str, str], str]:
    """{(folder, prefix): images file} of the idx sets of `split` in `folder` (with `prefix` only,
    when given); an uncompressed file is preferred to its .gz (torchvision keeps both)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    found = {}
    for name in names:
        match = _NAME.fullmatch(name)
        if not match or match["kind"] != "images" or match["word"] not in SPLIT_WORDS[split]:
            continue
        if prefix is not None and match["prefix"].rstrip("-_.") != prefix:
            continue
        key = (folder, match["prefix"])
        if key not in found or found[key].endswith(".gz"):
            found[key] = os.path.join(folder, name)
    return found


def find_files(data_path: str, split: str) -> tuple[str, str]:
    """(images file, labels file) of `split` ('train' or 'test') under data_path (module doc)."""
    if split not in SPLIT_WORDS:
        raise UserError(
            f"data.split={split!r} is not a split of idx files; use 'train' or 'test' (the t10k-* "
            f"files)"
        )
    path, prefix = os.path.expanduser(data_path), None
    if os.path.isfile(path):  # one of the files: the set it belongs to
        match = _NAME.fullmatch(os.path.basename(path))
        path, prefix = os.path.dirname(path) or ".", match and match["prefix"].rstrip("-_.")
    elif not os.path.isdir(path):  # DIR/emnist-letters: the set of that prefix in DIR
        path, prefix = os.path.dirname(path) or ".", os.path.basename(path)
        if not os.path.isdir(path):
            raise UserError(f"idx folder {data_path!r} does not exist; {HELP}")
    try:
        raws = sorted(os.path.join(path, d, "raw") for d in os.listdir(path))
    except OSError as e:
        raise UserError(f"cannot list idx folder {path!r} ({e.strerror or e}); {HELP}") from None
    found = {}
    for level in ([path], [os.path.join(path, "raw")], raws):
        for folder in level:
            found.update(_matches(folder, split, prefix))
        if found:
            break
    if not found:
        words = SPLIT_WORDS[split]
        looked = ", ".join(f"{w}-images{s}idx3-ubyte" for w in words for s in "-.")
        raise UserError(
            f"no idx {split} images under {path!r}{f' with prefix {prefix!r}' if prefix else ''}: "
            f"looked for {looked} (each also .gz, with any prefix such as emnist-letters-) in it, "
            f"in its raw/ and in its */raw/; {HELP}"
        )
    if len(found) > 1:
        sets = ", ".join(os.path.join(folder, p.rstrip("-_.")) for folder, p in found)
        raise UserError(
            f"several idx sets under {path!r}: pick one by passing it as --config.data.data_path "
            f"(one of {sets})"
        )
    images_path = next(iter(found.values()))
    return images_path, _labels_beside(images_path)


def _labels_beside(images_path: str) -> str:
    """The labels file of an images file: the same name with labels-idx1, either naming style,
    gzipped or not."""
    folder, name = os.path.split(images_path)
    match = _NAME.fullmatch(name)
    stem = f"{match['prefix']}{match['word']}-labels"
    names = [f"{stem}{s}idx1-ubyte{gz}" for s in "-." for gz in ("", ".gz")]
    for candidate in names:
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    raise UserError(
        f"idx images {images_path} have no labels file beside them: looked for "
        f"{', '.join(names)} in {folder}; put the labels file there"
    )


def read_split(data_path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x rows x cols as stored, upright; int32 labels) of `split` under
    data_path."""
    images_path, labels_path = find_files(data_path, split)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise UserError(
            f"idx images {images_path} hold {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels: the two files are of different sets; put the matching pair "
            f"side by side"
        )
    if os.path.basename(images_path).lower().startswith("emnist"):
        images = images.transpose(0, 2, 1)  # EMNIST is stored column-major
    return images, labels.astype(np.int32)


class IdxSource:
    """The images of an idx split, held as stored (28x28 grey: 784 bytes each) and preprocessed as
    they are read: EMNIST's 700,000 images at 64 px RGB would take 8.6 GB preprocessed, and a
    batch costs ~50 us per image to preprocess, next to nothing beside a training step. `labels`:
    int32, one per image."""

    cheap = True  # read in the training process: no worker pool needed

    def __init__(self, data_path: str, split: str, image_size: int, num_channels: int):
        self.stored, self.labels = read_split(data_path, split)
        self.image_size, self.num_channels = image_size, num_channels

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, index: int) -> np.ndarray:
        return preprocess_array(self.stored[index], self.image_size, self.num_channels)

    def read_many(self, indices: np.ndarray) -> np.ndarray:
        size, channels = self.image_size, self.num_channels
        if self.stored.shape[1:] == (size, size) and channels == 1:  # as preprocessing leaves them
            return self.stored[np.asarray(indices)][..., None]
        empty = np.zeros((0, size, size, channels), np.uint8)
        return np.stack([self[int(i)] for i in indices]) if len(indices) else empty


def load_idx(
    data_path: str, split: str, image_size: int, num_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x image_size x image_size x num_channels, int32 labels) of `split` under
    data_path, all preprocessed (for the evaluations' labelled data)."""
    source = IdxSource(data_path, split, image_size, num_channels)
    return source.read_many(np.arange(len(source))), source.labels
