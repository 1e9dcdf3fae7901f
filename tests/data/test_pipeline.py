"""Training batches: shapes, ranges and pixels, an order that is a function of (seed, step) whatever the number of
decoding workers, and disjoint per-host shards."""

import os

import numpy as np
import pytest

from dcgan_jax.data import pipeline, sources
from tests.data.image_files import (
    data_config,
    load,
    pixel_values,
    random_images,
    webp,
    write_folder,
    write_lsun_lmdb,
)
from tests.helpers import run_cli


def _gray(rgb):
    """ITU-R 601-2 luma, as an independent formula for PIL's 'L' conversion."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_batches_have_the_right_shape_dtype_range_and_pixels(tmp_path, size, channels):
    # Landscape images already size pixels high: no resize, the center crop is columns size/2 .. 3*size/2.
    images = random_images(6, size, 2 * size, seed=size)
    write_folder(str(tmp_path), images)
    config = data_config(
        dataset="image_folder",
        data_path=str(tmp_path),
        image_size=size,
        num_channels=channels,
        batch_size=4,
    )
    source = load(config)
    order = sorted(
        range(6),
        key=lambda i: os.path.join("nested", f"img{i:03d}.png") if i % 2 else f"img{i:03d}.png",
    )
    crops = images[order][:, :, size // 2 : size // 2 + size]
    expected = crops if channels == 3 else _gray(crops)[..., None]
    batch = next(
        pipeline.train_batches(
            config.data, source, 4, config.seed, 0, 2, process_index=0, process_count=1
        )
    )
    assert batch.shape == (2, 2, size, size, channels) and batch.dtype == np.float32
    assert -1.0 <= batch.min() < -0.9 and 0.9 < batch.max() <= 1.0
    indices = pipeline.global_batch_indices(0, 4, 6, config.seed + config.data.shuffle_seed_offset)
    np.testing.assert_allclose(
        pixel_values(batch.reshape(4, size, size, channels)), expected[indices], atol=1
    )


def test_data_order_is_deterministic_resumable_and_independent_of_workers(tmp_path):
    write_folder(str(tmp_path), random_images(10, 40, 48))
    config = data_config(
        dataset="image_folder", data_path=str(tmp_path), image_size=32, num_channels=3, batch_size=4
    )
    source = load(config)
    serial = pipeline.train_batches(config.data, source, 4, config.seed, 0, 1)
    expected = [next(serial) for _ in range(6)]
    config.data.num_data_workers = 2  # a spawned process pool, batches prefetched
    pooled = pipeline.train_batches(config.data, source, 4, config.seed, 0, 1)
    for want in expected:
        np.testing.assert_array_equal(next(pooled), want)
    pooled.close()
    resumed = pipeline.train_batches(config.data, source, 4, config.seed, 3, 1)
    np.testing.assert_array_equal(next(resumed), expected[3])
    resumed.close()


def test_two_processes_read_disjoint_shards_that_cover_the_data():
    num_examples, batch_size = 48, 8
    source = sources.ArraySource(np.arange(num_examples, dtype=np.uint8).reshape(-1, 1, 1, 1))
    config = data_config(batch_size=batch_size)
    seen = {}
    for process in (0, 1):
        batches = pipeline.train_batches(
            config.data,
            source,
            batch_size,
            config.seed,
            0,
            2,
            process_index=process,
            process_count=2,
        )
        seen[process] = []
        for step in range(num_examples // batch_size):  # one epoch
            batch = next(batches)
            assert batch.shape == (2, 2, 1, 1, 1)
            rows = pixel_values(batch).ravel().tolist()
            global_batch = pipeline.global_batch_indices(
                step, batch_size, num_examples, config.seed + config.data.shuffle_seed_offset
            )
            assert rows == global_batch[process * 4 : (process + 1) * 4].tolist()
            seen[process] += rows
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(num_examples))


@pytest.mark.slow
def test_main_trains_on_an_lsun_lmdb(tmp_path):
    pixels = random_images(16, 64, 86, seed=7)
    write_lsun_lmdb(str(tmp_path / "bedroom_train_lmdb"), [webp(p, lossless=False) for p in pixels])
    result = run_cli(
        "dcgan_jax.main",
        "--config=configs/lsun.py",
        "--config.data.dataset=lsun_lmdb",
        f"--config.data.data_path={tmp_path / 'bedroom_train_lmdb'}",
        "--config.num_train_steps=2",
        "--config.batch_size=8",
        "--config.model.g_width=8",
        "--config.model.d_width=8",
        "--config.num_fixed_samples=4",
        "--config.data.num_data_workers=2",
        f"--workdir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
    assert os.path.exists(tmp_path / "run" / "samples" / "step_00000002.png")
