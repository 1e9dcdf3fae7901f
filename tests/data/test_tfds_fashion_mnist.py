"""TFDS for real: TFDS's own `fashion_mnist` builder, built offline from Debian's files (which
.ci/run installs), read by the TFDS source, equals the idx source image for image, and trains.

How TFDS builds it offline: its download manager reuses a file already in its download cache, found
under the name TFDS gives it (resource.get_dl_fname: the URL and the registered SHA-256) with a
`.INFO` file beside it, without hashing it again. The manual_dir route
(`DownloadConfig(manual_dir=...)`, `tfds build --manual_dir`) hashes the file, and Debian's gzip
files do not hash as TFDS registered: their gzip headers lack the original file names (each is
exactly that many bytes shorter) while the data they hold is the same, as this test shows.
"""

import json
import os

import numpy as np
import pytest

from dcgan_jax.data import datasets, sources
from tests.data.image_files import data_config, load
from tests.helpers import TINY_FLAGS, run_cli

tfds = pytest.importorskip(
    "tensorflow_datasets", reason="TFDS is the optional tfds extra: pip install -e .[tfds]"
)
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def build_offline(data_dir: str, files: str = FASHION_MNIST):
    """Builds TFDS's fashion_mnist into data_dir from the idx files in `files`, with TFDS's own
    builder and nothing downloaded (see module doc); returns the builder."""
    from tensorflow_datasets.core.download import downloader, resource

    builder = tfds.builder("fashion_mnist", data_dir=data_dir)
    cache = os.path.join(data_dir, "downloads", builder.name)
    os.makedirs(cache, exist_ok=True)
    for url, info in builder.url_infos.items():
        path = os.path.join(cache, resource.get_dl_fname(url, info.checksum))
        os.symlink(os.path.join(files, info.filename), path)
        with open(path + ".INFO", "w") as f:
            json.dump({"urls": [url], "original_fname": info.filename}, f)

    def no_download(*args, **kwargs):
        raise AssertionError(f"TFDS tried to download {args or kwargs}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(downloader._Downloader, "download", no_download)
        builder.download_and_prepare()
    return builder


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A data_dir holding TFDS's fashion_mnist, built offline once for this file's tests (~15 s)."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = build_offline(data_dir)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "test")} == {
        "train": 60_000,
        "test": 10_000,
    }
    return data_dir


def _pairs(source):
    """(label, image bytes) of every example, sorted: TFDS shuffles the examples as it writes them,
    so the two sources hold the same examples in different orders."""
    images = sources.read_batch(source, np.arange(len(source)))
    assert images.shape == (len(source), 32, 32, 1)
    return sorted(zip(source.labels.tolist(), (image.tobytes() for image in images)))


@pytest.mark.slow
def test_tfds_fashion_mnist_built_offline_equals_the_idx_files(tfds_dir):
    for split in ("test", "train"):
        config = data_config(
            dataset="fashion_mnist", data_dir=tfds_dir, split=split, image_size=32, num_channels=1
        )
        config.data.num_data_workers = 0
        from_tfds = datasets.load_source(config.data, 32, 1, labelled=True)
        from_idx = load(data_config(dataset="idx", data_path=FASHION_MNIST, split=split))
        assert len(from_tfds) == len(from_idx) == {"train": 60_000, "test": 10_000}[split]
        assert not np.array_equal(from_tfds.labels, from_idx.labels)  # shuffled by TFDS
        assert _pairs(from_tfds) == _pairs(from_idx)


@pytest.mark.slow
def test_main_trains_on_tfds_fashion_mnist(tfds_dir, tmp_path):
    result = run_cli(
        "dcgan_jax.main",
        "--config=configs/fashion_mnist.py",
        "--config.data.dataset=fashion_mnist",
        f"--config.data.data_dir={tfds_dir}",
        "--config.model.conditional.num_classes=10",
        *TINY_FLAGS,
        "--config.num_train_steps=2",
        f"--workdir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training fashion_mnist at 32px" in result.stdout
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
