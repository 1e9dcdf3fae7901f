"""Image preprocessing: the reference resize-and-crop."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.data import images


@pytest.mark.parametrize("width,height", [(96, 32), (32, 96)])
def test_resize_shorter_side_then_center_crop(width, height):
    # Three bands along the longer side: only the middle (green) one survives the crop.
    pixels = np.zeros((height, width, 3), np.uint8)
    long_axis = 1 if width > height else 0
    thirds = np.arange(max(width, height)) * 3 // max(width, height)
    band = thirds[None, :] if long_axis else thirds[:, None]
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 255 * (band == 0), 255 * (band == 1), 255 * (band == 2)
    out = images.resize_and_center_crop(Image.fromarray(pixels), 16, 3)
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to([0, 255, 0], (12, 12, 3)))
