"""Pictures: rows of images as a PNG grid, or as a GIF of frames (its own, or one per column of the grid)."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import figures
from dcgan_jax.errors import UserError


def _rows(channels=1):
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (3, 8, 8, channels), dtype=np.uint8),
        rng.integers(0, 255, (2, 8, 8, channels), dtype=np.uint8),
    ]


def _gif_frames(path):
    with Image.open(path) as gif:
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("L")))
        return frames


def test_png_grid_size_and_cells(tmp_path):
    rows = _rows()
    figures.write_picture(figures.Picture(rows), str(tmp_path / "p.png"))
    grid = np.asarray(Image.open(tmp_path / "p.png"))
    assert grid.shape == (2 * 10 + 2, 3 * 10 + 2)  # 8px cells, 2px padding
    np.testing.assert_array_equal(grid[12:20, 12:20], rows[1][1, ..., 0])  # row 2, column 2
    assert (grid[12:20, 22:30] == 255).all()  # the short row is padded with blank cells
    figures.write_picture(figures.Picture(rows), str(tmp_path / "zoomed.PNG"), zoom=2)
    zoomed = np.asarray(Image.open(tmp_path / "zoomed.PNG"))
    assert zoomed.shape == (2 * (2 * 10 + 2), 2 * (3 * 10 + 2))
    np.testing.assert_array_equal(zoomed[::2, ::2], grid)


def test_rgb_png(tmp_path):
    figures.write_picture(figures.Picture(_rows(channels=3)), str(tmp_path / "rgb.png"))
    assert np.asarray(Image.open(tmp_path / "rgb.png")).shape == (2 * 10 + 2, 3 * 10 + 2, 3)


def test_gif_plays_the_columns_when_the_picture_has_no_frames(tmp_path):
    rows = _rows()
    figures.write_picture(figures.Picture(rows), str(tmp_path / "p.gif"))
    frames = _gif_frames(tmp_path / "p.gif")
    assert len(frames) == 3 and frames[0].shape == (
        2 * 10 + 2,
        10 + 2,
    )  # the rows stacked, one column each
    np.testing.assert_array_equal(frames[2][2:10, 2:10], rows[0][2, ..., 0])
    np.testing.assert_array_equal(
        frames[2][12:20, 2:10], rows[1][1, ..., 0]
    )  # a short row repeats its last image


def test_gif_plays_the_pictures_own_frames(tmp_path):
    frames = [np.full((6, 5, 1), value, np.uint8) for value in (0, 130, 250, 10)]
    figures.write_picture(
        figures.Picture(_rows(), frames=frames), str(tmp_path / "own.gif"), zoom=3, gif_levels=3
    )
    written = _gif_frames(tmp_path / "own.gif")
    assert len(written) == 4 and written[0].shape == (18, 15)
    assert [int(f[0, 0]) for f in written] == [0, 128, 255, 0]  # 3 levels: 0, 127.5 -> 128, 255


def test_output_must_be_png_or_gif(tmp_path):
    assert figures.check_output("a/b.GIF") == ".gif"
    for name in ("p.jpg", "p", "p.png.txt"):
        with pytest.raises(UserError, match=r"\.png"):
            figures.write_picture(figures.Picture(_rows()), str(tmp_path / name))
    assert not list(tmp_path.iterdir())
