"""Image preprocessing and pixel ranges: decoding, the reference resize-and-crop, uint8 <-> the
model's [-1, 1].

No JAX here: the decoding worker processes import this module.

Decoding is bounded by the header, read before any pixel is: an image over MAX_PIXELS pixels (after
JPEG's DCT-domain reduction) or with one side over MAX_ASPECT times the other is refused unread
(ImageTooLarge), so no file can exhaust a worker's memory: a 2 KB PNG can claim 1 x 1,000,000
pixels, and resizing its short side to 64 would make it 64 x 64,000,000 before the crop.
"""

import io
import warnings

import numpy as np
from PIL import Image

# PIL's own decompression-bomb threshold (it only warns below twice this): ~89M pixels, 268 MB as RGB.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS
# The resized image before the crop holds image_size**2 * aspect pixels; panoramas stay well under.
MAX_ASPECT = 64


class ImageTooLarge(ValueError):
    """An image whose header claims more than the decoder may allocate; `kind` names the bound."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def failure_kind(error: BaseException) -> str:
    """A short name for why an image failed to decode, the same for every image failing alike (the
    skipped-image reports count images by it)."""
    if isinstance(error, ImageTooLarge):
        return error.kind
    if isinstance(error, Image.DecompressionBombError):  # PIL's own refusal, at twice MAX_PIXELS
        return "too many pixels"
    if isinstance(error, Image.UnidentifiedImageError):
        return "not a decodable image"
    if isinstance(error, OSError) and "truncated" in str(error):
        return "truncated file"
    return type(error).__name__


def check_size(width: int, height: int) -> None:
    """Refuses (ImageTooLarge) an image too large to decode safely (see module doc)."""
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            "too many pixels",
            f"{width} x {height} = {width * height:,} pixels, over the limit of {MAX_PIXELS:,}; "
            f"shrink it",
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageTooLarge(
            "too elongated",
            f"{width} x {height} pixels, one side over {MAX_ASPECT} times the other; crop it",
        )


def _dtype_checked(images: np.ndarray, what: str) -> np.ndarray:
    """`images` as a numpy array, refusing integer and bool dtypes other than uint8: they are
    neither pixels (uint8) nor model-range floats, and reading them as either silently gives wrong
    images."""
    images = np.asarray(images)
    if images.dtype != np.uint8 and images.dtype.kind in "biu":
        raise ValueError(
            f"{what}: images of dtype {images.dtype} are neither uint8 pixels [0, 255] nor floats in "
            f"[-1, 1]; convert them to one of the two first"
        )
    return images


def as_model_input(images: np.ndarray, pixel_scale: bool = False) -> np.ndarray:
    """Images -> float32 in [-1, 1], the range of G's tanh: uint8 [0, 255] is scaled, float images
    (model range already) are cast. pixel_scale=True: the values are on the 0..255 pixel scale
    whatever their dtype (e.g. a float mean of uint8 images), and are scaled. Other integer dtypes
    are a ValueError."""
    images = _dtype_checked(images, "as_model_input")
    if images.dtype == np.uint8 or pixel_scale:
        return images.astype(np.float32) * (2.0 / 255.0) - 1.0
    return images.astype(np.float32, copy=False)


def as_uint8(images: np.ndarray) -> np.ndarray:
    """Images -> uint8 [0, 255]: uint8 images unchanged, model-range float images in [-1, 1]
    converted (values outside are clipped). Other integer dtypes are a ValueError."""
    images = _dtype_checked(images, "as_uint8")
    if images.dtype == np.uint8:
        return images
    return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _eight_bit(image: Image.Image) -> Image.Image:
    """An image of any PIL mode as 8-bit L or RGB(A)-compatible: 16-bit and 32-bit integer greys are
    rescaled to 0..255 (PIL's own conversion clips them, turning a 16-bit PNG white), and
    transparency is composited onto white (dropping alpha would show whatever colour the transparent
    pixels happen to hold)."""
    if image.mode.startswith("I"):  # 'I;16', 'I;16B', ... (16-bit PNG/TIFF greys) and 'I' (32-bit)
        pixels = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        return Image.fromarray(
            np.clip(np.round(pixels * (255.0 / top)), 0, 255).astype(np.uint8), "L"
        )
    if image.mode == "F":  # float images: [0, 1]
        return Image.fromarray(
            np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8), "L"
        )
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(
            Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba
        ).convert("RGB")
    return image


def resize_and_center_crop(image: Image.Image, size: int, num_channels: int) -> np.ndarray:
    """The reference preprocessing: resize the shorter side to `size` (bicubic), center-crop,
    convert channels."""
    image = _eight_bit(image).convert("L" if num_channels == 1 else "RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), np.uint8)
    return array.reshape(size, size, num_channels)


def preprocess_array(pixels: np.ndarray, size: int, num_channels: int) -> np.ndarray:
    """resize_and_center_crop for a decoded uint8 array (H, W), (H, W, 1) or (H, W, 3); one that is
    already size x size x num_channels is returned as it is (the preprocessing would leave it
    unchanged)."""
    pixels = np.asarray(pixels, np.uint8)
    if pixels.ndim == 3 and pixels.shape == (size, size, num_channels):
        return pixels
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return resize_and_center_crop(Image.fromarray(pixels), size, num_channels)


def decode_image(data: bytes, size: int, num_channels: int) -> np.ndarray:
    """Encoded jpeg/png/webp/... bytes -> preprocessed uint8 image; raises on bytes that do not
    decode, and (ImageTooLarge) on an image too large to decode, before decoding it."""
    with warnings.catch_warnings():  # check_size refuses what PIL would warn about
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        opened = Image.open(io.BytesIO(data))  # reads the header only
    with opened as image:
        if (
            image.format == "JPEG"
        ):  # DCT-domain downscaling, kept >= 2x the target so the bicubic pass still filters
            image.draft("L" if num_channels == 1 else "RGB", (2 * size, 2 * size))
        check_size(*image.size)
        return resize_and_center_crop(image, size, num_channels)
