"""Image preprocessing: the reference resize-and-crop, the one for decoded arrays, and the pixel ranges."""

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
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = (
        255 * (band == 0),
        255 * (band == 1),
        255 * (band == 2),
    )
    out = images.resize_and_center_crop(Image.fromarray(pixels), 16, 3)
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to([0, 255, 0], (12, 12, 3)))


def test_pixel_ranges_convert_both_ways_and_refuse_other_integers():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    model = images.as_model_input(pixels)
    assert model.dtype == np.float32 and model.min() == -1.0 and model.max() == 1.0
    np.testing.assert_array_equal(images.as_uint8(model), pixels)  # round trip
    assert images.as_uint8(pixels) is pixels  # uint8 unchanged
    floats = np.array([-2.0, -1.0, 0.0, 1.0, 3.0], np.float64)
    np.testing.assert_array_equal(
        images.as_model_input(floats), floats.astype(np.float32)
    )  # model range already
    np.testing.assert_array_equal(images.as_uint8(floats), [0, 0, 128, 255, 255])  # clipped
    mean = np.array([0.0, 127.5, 255.0])  # a float mean of pixels: scaled only when asked
    np.testing.assert_allclose(
        images.as_model_input(mean, pixel_scale=True), [-1.0, 0.0, 1.0], atol=1e-6
    )
    for bad in (np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16)):
        with pytest.raises(ValueError, match="neither uint8"):
            images.as_model_input(bad)
        with pytest.raises(ValueError, match="neither uint8"):
            images.as_uint8(bad)


@pytest.mark.parametrize("shape", [(40, 24), (40, 24, 1), (40, 24, 3)])
def test_preprocess_array_matches_the_reference_and_keeps_finished_images(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pil = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and shape[-1] == 1 else pixels)
    for channels in (1, 3):
        np.testing.assert_array_equal(
            images.preprocess_array(pixels, 16, channels),
            images.resize_and_center_crop(pil, 16, channels),
        )
    done = images.preprocess_array(pixels, 16, 3)
    assert images.preprocess_array(done, 16, 3) is done
    np.testing.assert_array_equal(
        images.preprocess_array(done, 16, 3),
        images.resize_and_center_crop(Image.fromarray(done), 16, 3),
    )
