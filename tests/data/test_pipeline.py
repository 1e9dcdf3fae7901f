"""Input pipeline: sources (TFDS, LSUN LMDB, image folders, prepared caches), batches, sharding, errors."""

import glob
import importlib.util
import io
import logging
import os
import pickle
import subprocess
import sys

import lmdb
import numpy as np
import pytest
from PIL import Image

from dcgan_jax import defaults
from dcgan_jax.data import datasets, pipeline, sources
from dcgan_jax.data import prepare
from dcgan_jax.data import sources
from dcgan_jax.data import tfds_source
from dcgan_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
    config = defaults.get_config()
    config.num_data_workers = 1  # in this process unless a test asks for the pool
    for key, value in overrides.items():
        config[key] = value
    return config


def _random_images(count, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _write_folder(folder, images, fmt="PNG", ext=".png"):
    os.makedirs(os.path.join(folder, "nested"), exist_ok=True)
    for i, pixels in enumerate(images):  # half of them one level down: the folder is searched recursively
        sub = "nested" if i % 2 else ""
        Image.fromarray(pixels).save(os.path.join(folder, sub, f"img{i:03d}{ext}"), fmt)


def _write_lsun_lmdb(path, values):
    """LSUN's layout: 40-hex-digit keys -> encoded images. Returns the keys in LMDB (sorted) order."""
    keys = sorted(f"{(i * 7919 + 13) % 100003:040x}".encode() for i in range(len(values)))
    env = lmdb.open(path, map_size=1 << 28)
    with env.begin(write=True) as txn:
        for key, value in zip(keys, values):
            txn.put(key, value)
    env.close()
    return keys


def _webp(pixels, lossless=True):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "WEBP", lossless=lossless)
    return buffer.getvalue()


def _to_uint8(batch):
    return np.round((batch + 1.0) * 127.5).astype(np.int64)


def _gray(rgb):
    """ITU-R 601-2 luma, as an independent formula for PIL's 'L' conversion."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


# Preprocessing and batches.

@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_batches_have_the_right_shape_dtype_range_and_pixels(tmp_path, size, channels):
    # Landscape images already size pixels high: no resize, the center crop is columns size/2 .. 3*size/2.
    images = _random_images(6, size, 2 * size, seed=size)
    _write_folder(str(tmp_path), images)
    config = _config(dataset="image_folder", data_path=str(tmp_path), image_size=size, num_channels=channels,
                     batch_size=4)
    source = datasets.load_source(config)
    order = sorted(range(6), key=lambda i: os.path.join("nested", f"img{i:03d}.png") if i % 2 else f"img{i:03d}.png")
    crops = images[order][:, :, size // 2:size // 2 + size]
    expected = crops if channels == 3 else _gray(crops)[..., None]
    batch = next(pipeline.train_batches(config, source, 0, 2, process_index=0, process_count=1))
    assert batch.shape == (2, 2, size, size, channels) and batch.dtype == np.float32
    assert -1.0 <= batch.min() < -0.9 and 0.9 < batch.max() <= 1.0
    indices = pipeline.global_batch_indices(0, 4, 6, config.seed + config.shuffle_seed_offset)
    np.testing.assert_allclose(_to_uint8(batch.reshape(4, size, size, channels)), expected[indices], atol=1)


@pytest.mark.parametrize("width,height", [(96, 32), (32, 96)])
def test_resize_shorter_side_then_center_crop(width, height):
    # Three bands along the longer side: only the middle (green) one survives the crop.
    pixels = np.zeros((height, width, 3), np.uint8)
    long_axis = 1 if width > height else 0
    thirds = np.arange(max(width, height)) * 3 // max(width, height)
    band = thirds[None, :] if long_axis else thirds[:, None]
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 255 * (band == 0), 255 * (band == 1), 255 * (band == 2)
    out = sources.resize_and_center_crop(Image.fromarray(pixels), 16, 3)
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to([0, 255, 0], (12, 12, 3)))


def test_data_order_is_deterministic_resumable_and_independent_of_workers(tmp_path):
    _write_folder(str(tmp_path), _random_images(10, 40, 48))
    config = _config(dataset="image_folder", data_path=str(tmp_path), image_size=32, num_channels=3, batch_size=4)
    source = datasets.load_source(config)
    serial = pipeline.train_batches(config, source, 0, 1)
    expected = [next(serial) for _ in range(6)]
    config.num_data_workers = 2  # a spawned process pool, batches prefetched
    pooled = pipeline.train_batches(config, source, 0, 1)
    for want in expected:
        np.testing.assert_array_equal(next(pooled), want)
    pooled.close()
    resumed = pipeline.train_batches(config, source, 3, 1)
    np.testing.assert_array_equal(next(resumed), expected[3])
    resumed.close()


def test_two_processes_read_disjoint_shards_that_cover_the_data():
    num_examples, batch_size = 48, 8
    source = sources.ArraySource(np.arange(num_examples, dtype=np.uint8).reshape(-1, 1, 1, 1))
    config = _config(batch_size=batch_size)
    seen = {}
    for process in (0, 1):
        batches = pipeline.train_batches(config, source, 0, 2, process_index=process, process_count=2)
        seen[process] = []
        for step in range(num_examples // batch_size):  # one epoch
            batch = next(batches)
            assert batch.shape == (2, 2, 1, 1, 1)
            rows = _to_uint8(batch).ravel().tolist()
            global_batch = pipeline.global_batch_indices(step, batch_size, num_examples,
                                                               config.seed + config.shuffle_seed_offset)
            assert rows == global_batch[process * 4:(process + 1) * 4].tolist()
            seen[process] += rows
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(num_examples))


# Image folders and LMDB: corrupt entries, missing data.

def test_corrupt_images_in_a_folder_are_skipped_and_counted(tmp_path, caplog):
    images = _random_images(5, 32, 32)
    _write_folder(str(tmp_path), images)
    with open(tmp_path / "img000.png", "rb") as f:
        truncated = f.read()[:100]
    (tmp_path / "aa_truncated.png").write_bytes(truncated)   # sorts first
    (tmp_path / "zz_garbage.jpg").write_bytes(b"not an image at all")  # sorts last
    config = _config(dataset="image_folder", data_path=str(tmp_path), image_size=32, num_channels=3, batch_size=7)
    source = datasets.load_source(config)
    assert len(source) == 7
    paths = source.paths
    images_read, skipped = source.read_chunk(range(7))
    assert sorted(os.path.basename(source.describe(i)) for i, _ in skipped) == ["aa_truncated.png",
                                                                               "zz_garbage.jpg"]
    # A bad entry is replaced by the next readable one (wrapping around).
    np.testing.assert_array_equal(images_read[0], images_read[1])
    np.testing.assert_array_equal(images_read[paths.index("zz_garbage.jpg")], images_read[1])
    fresh = datasets.load_source(config)
    with caplog.at_level(logging.WARNING):
        next(pipeline.train_batches(config, fresh, 0, 1))  # one batch = the whole folder
    warnings = [r.getMessage() for r in caplog.records if "skipped unreadable image" in r.getMessage()]
    assert len(warnings) == 2 and "(2 so far)" in warnings[-1]


def test_a_source_without_readable_images_is_a_user_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"xx")
    (tmp_path / "bad" / "b.png").write_bytes(b"yy")
    (tmp_path / "empty").mkdir()
    for folder, message in [("bad", "no readable image"), ("empty", "no images found"),
                            ("missing", "does not exist")]:
        config = _config(dataset="image_folder", data_path=str(tmp_path / folder), image_size=32)
        with pytest.raises(UserError, match=message):
            datasets.load_source(config)
    with pytest.raises(UserError, match="data_path"):
        datasets.load_source(_config(dataset="image_folder"))


def test_lsun_lmdb_source_reads_every_key_and_skips_corrupt_values(tmp_path):
    images = _random_images(6, 32, 32, seed=3)
    values = [_webp(p) for p in images] + [b"corrupt webp"]
    keys = _write_lsun_lmdb(str(tmp_path / "bedroom_train_lmdb"), values)
    config = _config(dataset="lsun_lmdb", data_path=str(tmp_path / "bedroom_train_lmdb"), image_size=32,
                     num_channels=3)
    source = datasets.load_source(config)
    assert len(source) == 7 and [source.key(i) for i in range(7)] == keys
    by_key = dict(zip(keys, values))
    for i in range(7):
        if by_key[keys[i]] != b"corrupt webp":
            np.testing.assert_array_equal(source[i], images[values.index(by_key[keys[i]])])  # lossless webp
    _, skipped = source.read_chunk(range(7))
    assert [source.key(i) for i, _ in skipped] == [k for k in keys if by_key[k] == b"corrupt webp"]
    clone = pickle.loads(pickle.dumps(source))  # what a worker process receives: reopens the LMDB itself
    np.testing.assert_array_equal(clone.read_chunk([5, 0, 3])[0], source.read_chunk([5, 0, 3])[0])


def test_missing_lmdb_says_how_to_get_it(tmp_path):
    config = _config(dataset="lsun_lmdb", data_path=str(tmp_path / "bedroom_train_lmdb"))
    with pytest.raises(UserError, match=r"bedroom_train_lmdb.*download\.py"):
        datasets.load_source(config)


# TFDS (mocked: nothing is downloaded).

def _tfds_configs():
    configs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
        spec = importlib.util.spec_from_file_location("config_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            continue
        config = module.get_config()
        if config.dataset not in ("digits", "lsun_lmdb", "image_folder", "prepared"):
            configs.append(pytest.param(config, id=os.path.basename(path)))
    return configs


@pytest.mark.parametrize("config", _tfds_configs())
def test_every_tfds_config_loads_through_mocked_tfds(config):
    import tensorflow as tf
    import tensorflow_datasets as tfds
    config.num_data_workers = 1
    with tfds.testing.mock_data(num_examples=6):
        source = datasets.load_source(config)
        # The stored (encoded) images, decoded by TensorFlow rather than by Pillow as the source does.
        encoded = tfds.load(config.dataset, split=config.split, shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
        reference = [tf.io.decode_image(ex["image"]).numpy() for ex in encoded]
    assert len(source) == 6
    size, channels = config.image_size, config.num_channels
    wants = [sources.preprocess_array(r, size, channels).astype(int) for r in reference]
    for i in range(6):
        image = source[i]
        assert image.shape == (size, size, channels) and image.dtype == np.uint8
        errors = [np.abs(image - want).mean() for want in wants]
        # Example i, up to the rounding of TF's and Pillow's jpeg decoders (mock images are noise: ~1 level).
        assert errors[i] < 2 and min(e for j, e in enumerate(errors) if j != i) > 10
    config.batch_size = 4
    batch = next(pipeline.train_batches(config, source, 0, 1))
    assert batch.shape == (1, 4, size, size, channels) and -1 <= batch.min() and batch.max() <= 1


@pytest.mark.parametrize("name,size,channels", [("mnist", 28, 1), ("cifar10", 32, 3)])
def test_tfds_images_at_their_native_size_are_unchanged(name, size, channels):
    import tensorflow_datasets as tfds
    config = _config(dataset=name, image_size=size, num_channels=channels)
    with tfds.testing.mock_data(num_examples=5):
        source = datasets.load_source(config)
        reference = np.stack([ex["image"] for ex in tfds.as_numpy(tfds.load(name, split="train",
                                                                            shuffle_files=False))])
    np.testing.assert_array_equal(source.read_many(np.arange(5)), reference)


def test_tfds_array_record_split_is_read_with_random_access():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=5):
        reference = tfds.data_source("cifar10", split="train")
        source = tfds_source.TfdsRandomSource("cifar10", "", "train", 32, 3)
        for i in (4, 0, 2):
            np.testing.assert_array_equal(source[i], reference[i]["image"])


def test_tfds_errors_say_what_to_do(tmp_path):
    with pytest.raises(UserError, match=r"'mnist'.*not prepared under .*tfds build mnist"):
        datasets.load_source(_config(dataset="mnist", data_dir=str(tmp_path)))
    with pytest.raises(UserError, match="neither a TFDS dataset"):
        datasets.load_source(_config(dataset="no_such_dataset_xyz", data_dir=str(tmp_path)))
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=40), pytest.raises(UserError, match="dcgan_jax.prepare"):
        datasets.load_source(_config(dataset="cifar10", image_size=32, num_channels=3,
                                           max_in_memory_mb=0))


# The prepared cache.

def test_prepared_cache_holds_the_readable_images_in_source_order(tmp_path):
    images = _random_images(9, 40, 36, seed=5)
    _write_folder(str(tmp_path / "folder"), images)
    (tmp_path / "folder" / "broken.png").write_bytes(b"\x89PNG broken")
    config = _config(dataset="image_folder", data_path=str(tmp_path / "folder"), image_size=32, num_channels=3)
    folder = datasets.load_source(config)
    info = prepare.write_cache(config, str(tmp_path / "cache"))
    assert info["shape"] == [9, 32, 32, 3] and info["left_out_unreadable"] == 1
    readable = [i for i in range(10) if folder.paths[i] != "broken.png"]
    config.dataset, config.data_path = "prepared", str(tmp_path / "cache")
    cache = datasets.load_source(config)
    np.testing.assert_array_equal(cache.read_many(np.arange(9)), np.stack([folder[i] for i in readable]))
    with pytest.raises(UserError, match="holds 32x32x3 images"):
        datasets.load_source(_config(dataset="prepared", data_path=str(tmp_path / "cache"), image_size=64))
    with pytest.raises(UserError, match="no prepared cache"):
        datasets.load_source(_config(dataset="prepared", data_path=str(tmp_path / "folder")))


# End to end, through the command lines.

def _run(*args, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_main_trains_on_an_lsun_lmdb(tmp_path):
    pixels = _random_images(16, 64, 86, seed=7)
    _write_lsun_lmdb(str(tmp_path / "bedroom_train_lmdb"), [_webp(p, lossless=False) for p in pixels])
    result = _run("dcgan_jax.main", "--config=configs/lsun.py", "--config.dataset=lsun_lmdb",
                  f"--config.data_path={tmp_path / 'bedroom_train_lmdb'}", "--config.num_train_steps=2",
                  "--config.batch_size=8", "--config.g_width=8", "--config.d_width=8",
                  "--config.num_fixed_samples=4", "--config.num_data_workers=2", f"--workdir={tmp_path / 'run'}",
                  cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
    assert os.path.exists(tmp_path / "run" / "samples" / "step_00000002.png")


@pytest.mark.slow
def test_prepare_command_writes_the_cache_and_reports_errors_in_one_line(tmp_path):
    _write_folder(str(tmp_path / "faces"), _random_images(12, 72, 64, seed=8), fmt="JPEG", ext=".jpg")
    common = ["--config=configs/celeba.py", "--config.image_size=32"]
    result = _run("dcgan_jax.prepare", *common, "--config.dataset=image_folder",
                  f"--config.data_path={tmp_path / 'faces'}", f"--output={tmp_path / 'cache'}", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 12 images of 32x32x3" in result.stdout
    faces = datasets.load_source(_config(dataset="image_folder", data_path=str(tmp_path / "faces"),
                                               image_size=32, num_channels=3))
    cache = datasets.load_source(_config(dataset="prepared", data_path=str(tmp_path / "cache"),
                                               image_size=32, num_channels=3))
    np.testing.assert_array_equal(cache.read_many(np.arange(12)), faces.read_chunk(range(12))[0])
    missing = _run("dcgan_jax.prepare", *common, "--config.dataset=image_folder",
                   f"--config.data_path={tmp_path / 'nowhere'}", f"--output={tmp_path / 'x'}", cwd=ROOT)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1].startswith("error: image folder")
