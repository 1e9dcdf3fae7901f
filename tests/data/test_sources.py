"""Local sources: image folders and LSUN LMDBs, their corrupt entries, and missing or empty data."""

import os
import pickle

import numpy as np
import pytest

from dcgan_jax.data import pipeline
from dcgan_jax.errors import UserError
from tests.data.image_files import (
    data_config,
    load,
    random_images,
    webp,
    write_folder,
    write_lsun_lmdb,
)


def test_corrupt_images_in_a_folder_are_skipped_and_counted(tmp_path, capsys):
    images = random_images(5, 32, 32)
    write_folder(str(tmp_path), images)
    with open(tmp_path / "img000.png", "rb") as f:
        truncated = f.read()[:100]
    (tmp_path / "aa_truncated.png").write_bytes(truncated)  # sorts first
    (tmp_path / "zz_garbage.jpg").write_bytes(b"not an image at all")  # sorts last
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path), image_size=32, num_channels=3, batch_size=7
    )
    source = load(config)
    assert len(source) == 7
    paths = source.paths
    images_read, skipped = source.read_chunk(range(7))
    assert sorted((os.path.basename(source.describe(i)), kind) for i, kind, _ in skipped) == [
        ("aa_truncated.png", "truncated file"),
        ("zz_garbage.jpg", "not a decodable image"),
    ]
    # A bad entry is replaced by the next readable one (wrapping around).
    np.testing.assert_array_equal(images_read[0], images_read[1])
    np.testing.assert_array_equal(images_read[paths.index("zz_garbage.jpg")], images_read[1])
    fresh = load(config)
    capsys.readouterr()
    batches = pipeline.train_batches(config.data, fresh, 7, config.seed, 0, 1)
    next(batches)  # one batch = the whole folder: one line per kind of failure, at once
    lines = sorted(capsys.readouterr().err.strip().splitlines())
    assert len(lines) == 2, lines
    assert lines[0].startswith("skipped 1 unreadable image: not a decodable image; first: ")
    assert "zz_garbage.jpg" in lines[0]
    assert lines[1].startswith("skipped 1 unreadable image: truncated file; first: ")
    assert "aa_truncated.png" in lines[1]
    next(batches)  # found again in every epoch, reported once
    batches.close()
    assert capsys.readouterr().err == ""


def test_a_source_without_readable_images_is_a_user_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"xx")
    (tmp_path / "bad" / "b.png").write_bytes(b"yy")
    (tmp_path / "empty").mkdir()
    for folder, message in [
        ("bad", "no readable image"),
        ("empty", "no images found"),
        ("missing", "does not exist"),
    ]:
        config = data_config(
            dataset="image_folder", data_path=str(tmp_path / folder), image_size=32
        )
        with pytest.raises(UserError, match=message):
            load(config)
    with pytest.raises(UserError, match=r"--config\.data\.data_path"):
        load(data_config(dataset="image_folder"))


def test_lsun_lmdb_source_reads_every_key_and_skips_corrupt_values(tmp_path):
    images = random_images(6, 32, 32, seed=3)
    values = [webp(p) for p in images] + [b"corrupt webp"]
    keys = write_lsun_lmdb(str(tmp_path / "bedroom_train_lmdb"), values)
    config = data_config(
        dataset="lsun_lmdb",
        data_path=str(tmp_path / "bedroom_train_lmdb"),
        image_size=32,
        num_channels=3,
    )
    source = load(config)
    assert len(source) == 7 and [source.key(i) for i in range(7)] == keys
    by_key = dict(zip(keys, values))
    for i in range(7):
        if by_key[keys[i]] != b"corrupt webp":
            np.testing.assert_array_equal(
                source[i], images[values.index(by_key[keys[i]])]
            )  # lossless webp
    _, skipped = source.read_chunk(range(7))
    assert [source.key(i) for i, _, _ in skipped] == [
        k for k in keys if by_key[k] == b"corrupt webp"
    ]
    clone = pickle.loads(
        pickle.dumps(source)
    )  # what a worker process receives: reopens the LMDB itself
    np.testing.assert_array_equal(clone.read_chunk([5, 0, 3])[0], source.read_chunk([5, 0, 3])[0])


def test_missing_lmdb_says_how_to_get_it(tmp_path):
    config = data_config(dataset="lsun_lmdb", data_path=str(tmp_path / "bedroom_train_lmdb"))
    with pytest.raises(UserError, match=r"bedroom_train_lmdb.*download\.py"):
        load(config)
