"""Writing a prepared cache never destroys one: every failure (missing source, the cache as its own source, a full
disk, a folder that is not a cache) leaves what was at --output byte for byte, with no partial files; a damaged
cache is a one-line error naming the file."""

import errno
import hashlib
import json
import os

import numpy as np
import pytest

from dcgan_jax.data import prepare
from dcgan_jax.errors import UserError
from tests import hostile
from tests.data.image_files import data_config, load, random_images, write_folder


def _digest(path):
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        digest.update(name.encode())
        with open(os.path.join(path, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture
def cache(tmp_path):
    """(config of a folder of 6 images, the path of a cache written from it)."""
    write_folder(str(tmp_path / "folder"), random_images(6, 40, 36, seed=3))
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path / "folder"), image_size=32, num_channels=3
    )
    _write(config, tmp_path / "cache")
    return config, tmp_path / "cache"


def _write(config, output):
    return prepare.write_cache(
        config.data, config.model.image_size, config.model.num_channels, str(output)
    )


def _siblings(path):
    return sorted(p for p in os.listdir(path.parent) if p.startswith(path.name))


def _fails_and_keeps(config, output, fragment):
    before = _digest(output) if output.is_dir() else None
    with pytest.raises(UserError, match=fragment):
        _write(config, output)
    assert (_digest(output) if output.is_dir() else None) == before
    assert _siblings(output) == [output.name]  # no partial or old copies left beside it


def test_a_missing_source_leaves_the_old_cache(cache, tmp_path):
    config, output = cache
    config.data.data_path = str(tmp_path / "nope")
    _fails_and_keeps(config, output, "nope")


def test_a_full_disk_leaves_the_old_cache(cache, monkeypatch):
    config, output = cache

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        prepare.progress_bars, "bar", full
    )  # the first write into the new cache fails
    _fails_and_keeps(config, output, "No space left on device")


def test_a_folder_that_is_not_a_cache_is_refused(cache, tmp_path):
    config, _ = cache
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    _fails_and_keeps(config, precious, "is not a prepared cache")
    with pytest.raises(UserError, match="is not a prepared cache"):
        _write(config, tmp_path / "folder" / os.listdir(tmp_path / "folder")[0])


def test_a_cache_can_be_rebuilt_from_itself(cache):
    config, output = cache
    cached = data_config(dataset="prepared", data_path=str(output), image_size=32, num_channels=3)
    images = load(cached).read_many(np.arange(6))
    config.data.dataset, config.data.data_path = "prepared", str(output)
    info = _write(config, output)
    assert info["shape"] == [6, 32, 32, 3] and _siblings(output) == [output.name]
    again = load(cached).read_many(np.arange(6))
    np.testing.assert_array_equal(again, images)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda c: os.remove(c / "info.json"), "no prepared cache"),
        (lambda c: (c / "info.json").write_text("{not json"), "info.json is unreadable or damaged"),
        (
            lambda c: (c / "info.json").write_text(json.dumps({"shape": [6, 32]})),
            "info.json is unreadable or damaged",
        ),
        (lambda c: os.remove(c / "images.u8"), "images.u8 is missing, unreadable or damaged"),
        (lambda c: os.truncate(c / "images.u8", 1000), "truncated or replaced"),
    ],
)
def test_a_damaged_cache_is_one_line_naming_the_file(cache, damage, fragment):
    _, output = cache
    damage(output)
    with pytest.raises(UserError, match=fragment) as error:
        load(data_config(dataset="prepared", data_path=str(output), image_size=32, num_channels=3))
    assert "\n" not in str(error.value) and str(output) in str(error.value)


@hostile.needs_root
@pytest.mark.parametrize("kind", hostile.KINDS)
def test_a_cache_in_a_hostile_folder_is_one_line_and_changes_nothing(tmp_path, kind):
    """A full disk (the 600 images need 1.8 MB of the 256 KiB), a read-only folder, a name over 255 bytes."""
    write_folder(str(tmp_path / "folder"), random_images(600, 32, 32, seed=1))
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path / "folder"), image_size=32, num_channels=3
    )
    with hostile.hostile_folder(tmp_path, kind) as folder:
        output = os.path.join(folder, hostile.target_name(kind, "cache"))
        with pytest.raises(UserError) as raised:
            _write(config, output)
        message = str(raised.value)
        assert "\n" not in message and output in message, message
        reason = {"full": "No space left", "readonly": "Read-only", "too_long": "longer than 255"}
        assert reason[kind] in message, message
        assert hostile.unchanged(folder)
        assert sorted(os.listdir(folder)) == sorted(
            [hostile.OLD] + (["filler"] if kind == "full" else [])
        )


@hostile.needs_root
def test_a_disk_filling_up_while_writing_is_one_line_and_leaves_no_partial_cache(
    tmp_path, monkeypatch
):
    """Past the check before the work: the disk fills up with the images."""
    write_folder(str(tmp_path / "folder"), random_images(600, 32, 32, seed=1))
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path / "folder"), image_size=32, num_channels=3
    )
    monkeypatch.setattr(prepare.atomic_write, "check_writable", lambda path: None)
    with hostile.hostile_folder(tmp_path, "full") as folder:
        os.remove(
            os.path.join(folder, "filler")
        )  # room for the start of the cache, not for all of it
        output = os.path.join(folder, "cache")
        with pytest.raises(UserError, match="No space left") as raised:
            _write(config, output)
        assert "\n" not in str(raised.value) and output in str(raised.value)
        assert hostile.unchanged(folder) and sorted(os.listdir(folder)) == [hostile.OLD]
