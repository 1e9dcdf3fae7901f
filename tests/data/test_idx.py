"""MNIST-format (idx) files as a dataset: every layout users hold them in, read back as written;
one-line errors naming the file; the real Fashion-MNIST (Debian's dataset-fashion-mnist, which
.ci/run installs); the prepared cache, per-host shards and training runs on it."""

import gzip
import hashlib
import os

import numpy as np
import pytest

from dcgan_jax.data import datasets, idx, labelled, pipeline, prepare, sources
from dcgan_jax.data.images import preprocess_array
from dcgan_jax.errors import UserError
from tests.data.image_files import data_config, load, pixel_values
from tests.helpers import TINY_FLAGS, one_line_error, run_cli

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array, magic):
    """An idx file's bytes: big-endian magic, each dimension as a uint32, the uint8 data."""
    dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return magic.to_bytes(4, "big") + dims + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(path, array, magic):
    data = idx_bytes(array, magic)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if path.endswith(".gz") else data)
    return path


def write_set(folder, word, images, labels, style="-", gz=".gz", prefix=""):
    """`images` and `labels` as `{prefix}{word}-images{style}idx3-ubyte{gz}` and its labels file;
    returns both paths."""
    names = [
        f"{prefix}{word}-{kind}{style}idx{n}-ubyte{gz}"
        for kind, n in (("images", 3), ("labels", 1))
    ]
    return (
        write_idx(os.path.join(folder, names[0]), images, idx.IMAGES_MAGIC),
        write_idx(os.path.join(folder, names[1]), labels, idx.LABELS_MAGIC),
    )


def random_set(count, seed, size=28):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size), np.uint8), rng.integers(0, 10, count, np.uint8)


def all_images(source):
    return sources.read_batch(source, np.arange(len(source)))


def idx_config(path, size=28, channels=1, **overrides):
    return data_config(
        dataset="idx", data_path=str(path), image_size=size, num_channels=channels, **overrides
    )


# Where the files lie -> (the folder they are written to, the data_path a user passes), in tmp_path.
LAYOUTS = {
    "flat": ("fashion", "fashion"),
    "torchvision_raw": ("MNIST/raw", "MNIST/raw"),
    "torchvision_dataset_folder": ("MNIST/raw", "MNIST"),
    "torchvision_root": ("MNIST/raw", "."),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("style", ["-", "."])
@pytest.mark.parametrize("gz", [".gz", "", "both"])
def test_idx_files_read_back_as_written_in_every_layout(tmp_path, layout, style, gz):
    folder, data_path = (tmp_path / part for part in LAYOUTS[layout])
    train, test = random_set(7, seed=1), random_set(3, seed=2)
    for suffix in [".gz", ""] if gz == "both" else [gz]:  # torchvision's raw/ keeps both
        write_set(str(folder), "train", *train, style, suffix)
        write_set(str(folder), "t10k", *test, style, suffix)
    for split, (images, labels) in (("train", train), ("test", test)):
        source = load(idx_config(data_path, split=split))
        np.testing.assert_array_equal(all_images(source), images[..., None])
        np.testing.assert_array_equal(source.labels, labels)
        assert source.labels.dtype == np.int32
    assert len(load(idx_config(data_path))) == 7  # data.split's default: train


@pytest.mark.parametrize("size, channels", [(28, 1), (28, 3), (32, 1), (32, 3), (64, 3)])
def test_idx_images_are_preprocessed_like_every_in_memory_source(tmp_path, size, channels):
    images, labels = random_set(5, seed=3)
    write_set(str(tmp_path), "train", images, labels)
    source = load(idx_config(tmp_path, size, channels))
    read = all_images(source)
    assert read.shape == (5, size, size, channels) and read.dtype == np.uint8
    want = np.stack([preprocess_array(image, size, channels) for image in images])
    np.testing.assert_array_equal(read, want)
    np.testing.assert_array_equal(np.stack([source[i] for i in range(5)]), want)
    if channels == 3:  # grey repeated
        assert (read == read[..., :1]).all()
    np.testing.assert_array_equal(datasets.load_labels(source, 10, "idx"), labels)
    got, got_labels = labelled.load_labelled(
        "idx", "train", size, channels, data_path=str(tmp_path)
    )
    np.testing.assert_array_equal(got, read)
    np.testing.assert_array_equal(got_labels, labels)


def test_emnist_sets_are_chosen_by_prefix_and_read_upright(tmp_path):
    letters, digits = random_set(4, seed=4), random_set(6, seed=5)
    letters_test = random_set(2, seed=6)
    write_set(str(tmp_path), "train", *letters, prefix="emnist-letters-")
    write_set(str(tmp_path), "test", *letters_test, prefix="emnist-letters-", gz="")
    write_set(str(tmp_path), "train", *digits, prefix="emnist-digits-")
    with pytest.raises(UserError, match="several idx sets") as error:
        load(idx_config(tmp_path))
    assert str(tmp_path / "emnist-letters") in str(error.value) and "\n" not in str(error.value)
    source = load(idx_config(tmp_path / "emnist-letters"))
    np.testing.assert_array_equal(
        all_images(source)[..., 0], letters[0].transpose(0, 2, 1)
    )  # stored transposed
    np.testing.assert_array_equal(source.labels, letters[1])
    # EMNIST names its test files test-*, not t10k-*
    test = load(idx_config(tmp_path / "emnist-letters", split="test"))
    np.testing.assert_array_equal(all_images(test)[..., 0], letters_test[0].transpose(0, 2, 1))
    one_file = (
        tmp_path / "emnist-digits-train-labels-idx1-ubyte.gz"
    )  # a file: the set it belongs to
    np.testing.assert_array_equal(load(idx_config(one_file)).labels, digits[1])


def test_a_torchvision_root_holding_several_datasets_asks_which(tmp_path):
    write_set(str(tmp_path / "MNIST" / "raw"), "train", *random_set(2, seed=10))
    write_set(str(tmp_path / "FashionMNIST" / "raw"), "train", *random_set(3, seed=11))
    with pytest.raises(UserError, match="several idx sets") as error:
        load(idx_config(tmp_path))
    assert str(tmp_path / "FashionMNIST" / "raw") in str(error.value)
    assert len(load(idx_config(tmp_path / "FashionMNIST"))) == 3


def _damaged(tmp_path, case):
    """Writes a set damaged as `case` says; returns (the data_path, the file the error must name,
    what it must say)."""
    images, labels = random_set(7, seed=7)
    folder = str(tmp_path / case)
    if case == "truncated":
        images_path, _ = write_set(folder, "train", images, labels, gz="")
        with open(images_path, "r+b") as f:
            f.truncate(os.path.getsize(images_path) - 10)
        return folder, images_path, "is truncated"
    if case == "truncated_gzip":
        _, labels_path = write_set(folder, "train", images, labels)
        data = open(labels_path, "rb").read()
        open(labels_path, "wb").write(data[: len(data) // 2])
        return folder, labels_path, "is truncated (its gzip stream ends early)"
    if case == "longer_than_its_header":
        images_path, _ = write_set(folder, "train", images, labels, gz="")
        open(images_path, "ab").write(b"\0" * 28)
        return folder, images_path, "is longer than its header says"
    if case == "wrong_magic":  # a labels file where the images should be
        images_path, _ = write_set(folder, "train", images, labels, gz="")
        write_idx(images_path, labels, idx.LABELS_MAGIC)
        return folder, images_path, "magic number 0x00000801, not the 0x00000803 of idx3 images"
    if case == "not_idx_at_all":
        images_path, _ = write_set(folder, "train", images, labels)
        open(images_path, "wb").write(b"<html>Not Found</html>")
        return folder, images_path, "magic number 0x3c68746d"
    if case == "counts_differ":
        images_path, labels_path = write_set(folder, "train", images, labels[:6])
        return folder, labels_path, "hold 7 images but"
    if case == "labels_missing":
        images_path, labels_path = write_set(folder, "train", images, labels, style=".")
        os.remove(labels_path)
        return folder, images_path, "looked for train-labels-idx1-ubyte, train-labels-idx1-ubyte.gz"
    if case == "nothing_there":
        os.makedirs(os.path.join(folder, "raw"))
        return (
            folder,
            folder,
            "looked for train-images-idx3-ubyte, train-images.idx3-ubyte (each also .gz",
        )
    if case == "no_such_folder":
        return os.path.join(folder, "a", "b"), os.path.join(folder, "a", "b"), "does not exist"
    raise ValueError(case)


DAMAGES = [
    "truncated",
    "truncated_gzip",
    "longer_than_its_header",
    "wrong_magic",
    "not_idx_at_all",
    "counts_differ",
    "labels_missing",
    "nothing_there",
    "no_such_folder",
]


@pytest.mark.parametrize("case", DAMAGES)
def test_damaged_or_missing_idx_files_are_one_line_naming_the_file(tmp_path, case):
    data_path, path, says = _damaged(tmp_path, case)
    with pytest.raises(UserError) as error:
        load(idx_config(data_path))
    message = str(error.value)
    assert "\n" not in message and path in message and says in message, message


def test_a_split_idx_files_do_not_have_is_refused(tmp_path):
    write_set(str(tmp_path), "train", *random_set(2, seed=8))
    with pytest.raises(
        UserError, match="'validation' is not a split of idx files; use 'train' or 'test'"
    ):
        load(idx_config(tmp_path, split="validation"))
    with pytest.raises(UserError, match="no idx test images .* looked for t10k-images-idx3-ubyte"):
        load(idx_config(tmp_path, split="test"))


def test_the_real_fashion_mnist_loads_with_its_published_sizes_and_classes():
    expected = {  # (images, sum of all pixels, SHA-256 of the pixels as stored, of the labels)
        "train": (60_000, 3_431_114_169, "2e487a6c89124f78", "657fbd221bfc9f41"),
        "test": (10_000, 573_469_082, "c867c93ff9536059", "3d0e6c6ea990b53b"),
    }
    for split, (count, pixel_sum, images_sha, labels_sha) in expected.items():
        images, labels = idx.read_split(FASHION_MNIST, split)
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [count // 10] * 10
        # The mean pixel, 72.94 / 255 = 0.2860 (train) and 0.2868 (test), is the one every
        # Fashion-MNIST normalisation uses.
        assert int(images.sum(dtype=np.int64)) == pixel_sum
        assert hashlib.sha256(images.tobytes()).hexdigest().startswith(images_sha)
        assert hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest().startswith(labels_sha)
    assert idx.read_split(FASHION_MNIST, "train")[1][:3].tolist() == [
        9,
        0,
        0,
    ]  # ankle boot, T-shirt, T-shirt


def test_prepared_cache_and_per_host_shards_of_an_idx_set(tmp_path):
    count, batch_size = 48, 8
    # Image i is filled with the value i: a batch's pixels say which images it holds.
    images = np.repeat(np.arange(count, dtype=np.uint8), 28 * 28).reshape(count, 28, 28)
    labels = np.arange(count, dtype=np.uint8) % 10
    write_set(str(tmp_path / "set"), "train", images, labels, style=".")
    config = idx_config(tmp_path / "set", size=32, batch_size=batch_size)
    source = load(config)
    info = prepare.write_cache(config.data, 32, 1, str(tmp_path / "cache"))
    assert info["shape"] == [count, 32, 32, 1] and info["dataset"] == "idx"
    cache = load(data_config(dataset="prepared", data_path=str(tmp_path / "cache"), image_size=32))
    np.testing.assert_array_equal(cache.read_many(np.arange(count)), all_images(source))
    seen = {}
    for process in (0, 1):
        batches = pipeline.train_batches(
            config.data, source, batch_size, config.seed, 0, 2, source.labels,
            process_index=process, process_count=2,
        )  # fmt: skip
        seen[process] = []
        for step in range(count // batch_size):  # one epoch
            batch, batch_labels = next(batches)
            assert batch.shape == (2, 2, 32, 32, 1) and batch_labels.shape == (2, 2)
            rows = pixel_values(batch)[:, :, 16, 16, 0].ravel()
            global_batch = pipeline.global_batch_indices(
                step, batch_size, count, config.seed + config.data.shuffle_seed_offset
            )
            assert rows.tolist() == global_batch[process * 4 : (process + 1) * 4].tolist()
            assert (batch_labels.ravel() == rows % 10).all()
            seen[process] += rows.tolist()
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(count))


@pytest.mark.slow
def test_prepare_command_on_idx_files_and_its_one_line_errors(tmp_path):
    images, labels = random_set(9, seed=9)
    write_set(str(tmp_path / "MNIST" / "raw"), "train", images, labels, gz="")
    result = run_cli(
        "dcgan_jax.prepare",
        "--config=configs/mnist_idx.py",
        f"--config.data.data_path={tmp_path / 'MNIST'}",
        f"--output={tmp_path / 'cache'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 9 images of 32x32x1" in result.stdout
    images_path = str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte")
    with open(images_path, "r+b") as f:
        f.truncate(100)
    broken = run_cli(
        "dcgan_jax.prepare",
        "--config=configs/mnist_idx.py",
        f"--config.data.data_path={tmp_path / 'MNIST'}",
        f"--output={tmp_path / 'cache2'}",
    )
    assert broken.returncode == 1
    assert images_path in one_line_error(broken, "is truncated")


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "class_conditional"])
def test_main_trains_on_the_real_fashion_mnist(tmp_path, conditional):
    flags = ["--config.model.conditional.num_classes=10"] if conditional else []
    result = run_cli(
        "dcgan_jax.main",
        "--config=configs/fashion_mnist.py",
        *TINY_FLAGS,
        *flags,
        "--config.num_train_steps=2",
        f"--workdir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
    assert os.path.exists(tmp_path / "run" / "samples" / "step_00000002.png")
