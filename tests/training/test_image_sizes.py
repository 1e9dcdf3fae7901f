"""Every supported image size, 16 to 256 px, trains end to end: data at that size, G and D, samples, a checkpoint."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from dcgan_jax import train
from dcgan_jax.nn import models
from tests.helpers import tiny_config


def test_sizes_are_the_powers_of_two_from_16_to_256():
    assert models.SUPPORTED_IMAGE_SIZES == (16, 32, 64, 128, 256)
    assert [models.num_resolution_changes(s) for s in models.SUPPORTED_IMAGE_SIZES] == [
        2,
        3,
        4,
        5,
        6,
    ]
    with pytest.raises(ValueError, match="image_size=48"):
        models.num_resolution_changes(48)


@pytest.mark.parametrize("size", [16, 256])
def test_a_few_steps_train_at_the_extreme_sizes(tmp_path, size):
    config = tiny_config(
        num_train_steps=2, batch_size=4, num_fixed_samples=4, model=dict(image_size=size)
    )
    state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2
    assert all(
        np.isfinite(leaf).all() for leaf in jax.tree.leaves((state.g_params, state.d_params))
    )
    assert sum(name.startswith("conv") for name in state.d_params) == models.num_resolution_changes(
        size
    )
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000002.png"))
    assert (
        grid.shape[0] >= 2 * size and grid.shape[1] >= 2 * size
    )  # a 2x2 grid of size x size samples
    assert os.path.isdir(tmp_path / "checkpoints" / "2")
