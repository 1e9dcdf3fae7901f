"""Image decoding edge cases, as a class: 16-bit greys and colours are rescaled (not clipped to white), every PIL
mode with transparency is composited on white, CMYK converts, and symlinked folders never repeat images."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.data import sources
from dcgan_jax.data.images import decode_image
from tests.helpers import REPO


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (PIL cannot write one): signature, IHDR, one zlib IDAT, IEND."""
    height, width, _ = pixels.shape

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_16_bit_grey_png_is_rescaled():
    values = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    decoded = decode_image(_png_bytes(Image.fromarray(values)), 32, 1)[..., 0]
    np.testing.assert_allclose(decoded, np.round(values / 257.0), atol=1)
    assert (decoded == 255).mean() < 0.01 and len(
        np.unique(decoded)
    ) > 200  # clipping made ~all of it 255


def test_a_16_bit_rgb_png_is_rescaled():
    pixels = np.random.default_rng(0).integers(0, 65536, (32, 32, 3)).astype(np.uint16)
    decoded = decode_image(_png16_rgb(pixels), 32, 3)
    np.testing.assert_allclose(decoded, pixels / 257.0, atol=1.01)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_white(mode):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 30  # dark colour everywhere ...
    rgba[:, 16:, 3] = 255  # ... opaque on the right half, fully transparent on the left
    image = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        image = image.convert("RGB").convert("P")
        image.info["transparency"] = image.getpixel((0, 0))
        image.putdata(
            [image.getpixel((0, 0)) if x < 16 else 1 for y in range(32) for x in range(32)]
        )
        image.putpalette([30, 30, 30] * 1 + [30, 30, 30] * 255)
    decoded = decode_image(_png_bytes(image), 32, 3)
    assert (decoded[:, :16] == 255).all()
    assert (decoded[:, 16:] < 60).all()


def test_cmyk_jpeg_converts():
    image = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    decoded = decode_image(buffer.getvalue(), 32, 3)
    red, green, blue = decoded[..., 0].mean(), decoded[..., 1].mean(), decoded[..., 2].mean()
    assert red > 200 and green < 60 and blue < 60


def test_symlink_loops_and_duplicate_links_do_not_repeat_images(tmp_path):
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for folder, name in (("a", "1.png"), ("a", "2.png"), ("b", "3.png")):
        Image.new("L", (8, 8), 100).save(root / folder / name)
    os.symlink("..", root / "a" / "up")  # a loop: a/up/a/up/...
    os.symlink(root / "b", root / "b_again")  # a second way into b
    source = sources.ImageFolderSource(str(root), 8, 1)
    assert source.paths == ["a/1.png", "a/2.png", "b/3.png"]


# Reads a folder with an image source in a fresh process; prints each skipped file's kind, then the peak memory (MB).
# (VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the forked copy of pytest.)
MEASURE = """
import json, sys
from dcgan_jax.data import sources
source = sources.ImageFolderSource(sys.argv[1], 64, 3)
_, skipped = source.read_chunk(range(len(source)))
kinds = {source.paths[i]: kind for i, kind, _ in skipped}
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps([kinds, int(peak.split()[1]) / 1024]))
"""


def test_images_too_large_to_decode_are_skipped_unread(tmp_path):
    """A PNG's header can claim any size: 1 x 1,000,000 is 2 KB on disk, but resizing its short side to 64 made it
    64 x 64,000,000 (3 GB for a grey one, an out-of-memory kill in colour). Such images are refused from the header
    and skipped like undecodable ones, with a kind saying why."""
    Image.new("L", (1, 1_000_000)).save(tmp_path / "tall.png")
    Image.new("RGB", (1_000_000, 1)).save(tmp_path / "wide.png")
    Image.new("L", (10_000, 10_000)).save(tmp_path / "huge.png")  # 100M pixels, over PIL's 89M
    Image.new("RGB", (300, 20), (200, 10, 10)).save(tmp_path / "panorama.png")  # 15:1 is fine
    assert os.path.getsize(tmp_path / "tall.png") < 10_000
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    kinds, peak_mb = json.loads(result.stdout)
    assert kinds == {
        "huge.png": "too many pixels",
        "tall.png": "too elongated",
        "wide.png": "too elongated",
    }
    assert peak_mb < 400, peak_mb  # unbounded, the tall grey one alone took 3 GB


def test_a_chunk_of_encoded_images_names_each_failure_by_kind():
    """The TFDS stream's decoder: the readable images stacked, each failure with its position and kind."""
    good = _png_bytes(Image.new("RGB", (40, 30), (10, 200, 10)))
    tall = _png_bytes(Image.new("L", (1, 1_000_000)))
    images, failed = sources.decode_chunk([good, b"junk", tall, good], 32, 3)
    assert images.shape == (2, 32, 32, 3)
    assert [(position, kind) for position, kind, _ in failed] == [
        (1, "not a decodable image"),
        (2, "too elongated"),
    ]
