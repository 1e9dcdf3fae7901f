"""The prepared cache: the readable images of a source, in source order, written once and memory-mapped."""

import numpy as np
import pytest

from dcgan_jax.data import prepare
from dcgan_jax.errors import UserError
from tests.data.image_files import data_config, load, random_images, write_folder
from tests.helpers import one_line_error, run_cli


def test_prepared_cache_holds_the_readable_images_in_source_order(tmp_path):
    images = random_images(9, 40, 36, seed=5)
    write_folder(str(tmp_path / "folder"), images)
    (tmp_path / "folder" / "broken.png").write_bytes(b"\x89PNG broken")
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path / "folder"), image_size=32, num_channels=3
    )
    folder = load(config)
    info = prepare.write_cache(config.data, 32, 3, str(tmp_path / "cache"))
    assert info["shape"] == [9, 32, 32, 3] and info["left_out_unreadable"] == 1
    readable = [i for i in range(10) if folder.paths[i] != "broken.png"]
    config.data.dataset, config.data.data_path = "prepared", str(tmp_path / "cache")
    cache = load(config)
    np.testing.assert_array_equal(
        cache.read_many(np.arange(9)), np.stack([folder[i] for i in readable])
    )
    with pytest.raises(UserError, match="holds 32x32x3 images"):
        load(data_config(dataset="prepared", data_path=str(tmp_path / "cache"), image_size=64))
    with pytest.raises(UserError, match="no prepared cache"):
        load(data_config(dataset="prepared", data_path=str(tmp_path / "folder")))


@pytest.mark.slow
def test_prepare_command_writes_the_cache_and_reports_errors_in_one_line(tmp_path):
    write_folder(str(tmp_path / "faces"), random_images(12, 72, 64, seed=8), fmt="JPEG", ext=".jpg")
    common = [
        "--config=configs/celeba.py",
        "--config.model.image_size=32",
        "--config.data.dataset=image_folder",
    ]
    result = run_cli(
        "dcgan_jax.prepare",
        *common,
        f"--config.data.data_path={tmp_path / 'faces'}",
        f"--output={tmp_path / 'cache'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 12 images of 32x32x3" in result.stdout
    faces = load(
        data_config(
            dataset="image_folder", data_path=str(tmp_path / "faces"), image_size=32, num_channels=3
        )
    )
    cache = load(
        data_config(
            dataset="prepared", data_path=str(tmp_path / "cache"), image_size=32, num_channels=3
        )
    )
    np.testing.assert_array_equal(cache.read_many(np.arange(12)), faces.read_chunk(range(12))[0])
    missing = run_cli(
        "dcgan_jax.prepare",
        *common,
        f"--config.data.data_path={tmp_path / 'nowhere'}",
        f"--output={tmp_path / 'x'}",
    )
    assert missing.returncode == 1
    assert one_line_error(missing).startswith("error: image folder")
