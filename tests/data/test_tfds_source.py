"""TFDS datasets (the optional `tfds` extra), mocked: nothing is downloaded."""

import glob
import os

import numpy as np
import pytest

from dcgan_jax import defaults
from dcgan_jax.data import datasets, images, pipeline, tfds_source
from dcgan_jax.errors import UserError
from tests.data.image_files import data_config, load

tfds = pytest.importorskip(
    "tensorflow_datasets", reason="TFDS is the optional tfds extra: pip install -e .[tfds]"
)


def _tfds_configs():
    configs = []
    for path in sorted(glob.glob(os.path.join(defaults.CONFIGS_DIR, "*.py"))):
        try:
            config = defaults.load_config(path)
        except (AttributeError, ValueError):  # a file without get_config
            continue
        if datasets.is_tfds(config.data.dataset):
            configs.append(pytest.param(config, id=os.path.basename(path)))
    return configs


@pytest.mark.parametrize("config", _tfds_configs())
def test_every_tfds_config_loads_through_mocked_tfds(config):
    import tensorflow as tf

    config.data.num_data_workers = 1
    size, channels = config.model.image_size, config.model.num_channels
    num_classes = config.model.conditional.num_classes
    with tfds.testing.mock_data(num_examples=6):
        source = datasets.load_source(config.data, size, channels, labelled=bool(num_classes))
        # The stored (encoded) images, decoded by TensorFlow rather than by Pillow as the source does.
        encoded = tfds.load(
            config.data.dataset,
            split=config.data.split,
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
        reference = [tf.io.decode_image(ex["image"]).numpy() for ex in encoded]
        reference_labels = (
            [int(ex["label"]) for ex in tfds.as_numpy(encoded)]
            if "label" in encoded.element_spec
            else None
        )
    assert len(source) == 6
    wants = [images.preprocess_array(r, size, channels).astype(int) for r in reference]
    for i in range(6):
        image = source[i]
        assert image.shape == (size, size, channels) and image.dtype == np.uint8
        errors = [np.abs(image - want).mean() for want in wants]
        # Example i, up to the rounding of TF's and Pillow's jpeg decoders (mock images are noise: ~1 level).
        assert errors[i] < 2 and min(e for j, e in enumerate(errors) if j != i) > 10
    labels = datasets.load_labels(source, num_classes, config.data.dataset) if num_classes else None
    batch = next(pipeline.train_batches(config.data, source, 4, config.seed, 0, 1, labels))
    if num_classes:  # a conditional config: each image with its label
        batch, labels = batch
        indices = pipeline.global_batch_indices(
            0, 4, 6, config.seed + config.data.shuffle_seed_offset
        )
        np.testing.assert_array_equal(labels[0], np.asarray(reference_labels)[indices])
    assert batch.shape == (1, 4, size, size, channels) and -1 <= batch.min() and batch.max() <= 1


@pytest.mark.parametrize("name,size,channels", [("mnist", 28, 1), ("cifar10", 32, 3)])
def test_tfds_images_at_their_native_size_are_unchanged(name, size, channels):
    config = data_config(dataset=name, image_size=size, num_channels=channels)
    with tfds.testing.mock_data(num_examples=5):
        source = load(config)
        reference = np.stack(
            [
                ex["image"]
                for ex in tfds.as_numpy(tfds.load(name, split="train", shuffle_files=False))
            ]
        )
    np.testing.assert_array_equal(source.read_many(np.arange(5)), reference)


def test_tfds_array_record_split_is_read_with_random_access():
    with tfds.testing.mock_data(num_examples=5):
        reference = tfds.data_source("cifar10", split="train")
        source = tfds_source.TfdsRandomSource("cifar10", "", "train", 32, 3)
        for i in (4, 0, 2):
            np.testing.assert_array_equal(source[i], reference[i]["image"])
        np.testing.assert_array_equal(source.labels, [reference[i]["label"] for i in range(5)])


def test_tfds_errors_say_what_to_do(tmp_path):
    with pytest.raises(UserError, match=r"'mnist'.*not prepared under .*tfds build mnist"):
        load(data_config(dataset="mnist", data_dir=str(tmp_path)))
    with pytest.raises(UserError, match="neither a TFDS dataset"):
        load(data_config(dataset="no_such_dataset_xyz", data_dir=str(tmp_path)))
    with (
        tfds.testing.mock_data(num_examples=40),
        pytest.raises(UserError, match="dcgan_jax.prepare"),
    ):
        load(data_config(dataset="cifar10", image_size=32, num_channels=3, max_in_memory_mb=0))
