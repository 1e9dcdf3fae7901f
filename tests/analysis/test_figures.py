"""Pictures: rows of images as a PNG grid, or as a GIF of frames."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import figures, progress
from dcgan_jax.errors import UserError


def _rows():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (3, 8, 8, 1), dtype=np.uint8), rng.integers(0, 255, (2, 8, 8, 1), dtype=np.uint8)]


def test_png_grid_and_gif_frames(tmp_path):
    picture = figures.Picture(_rows())
    figures.write_picture(picture, str(tmp_path / "p.png"), zoom=2)
    assert np.asarray(Image.open(tmp_path / "p.png")).shape == (2 * (2 * 10 + 2), 2 * (3 * 10 + 2))
    figures.write_picture(picture, str(tmp_path / "p.gif"))
    with Image.open(tmp_path / "p.gif") as gif:  # one frame per column, the rows stacked
        assert gif.n_frames == 3 and gif.size == (10 + 2, 2 * 10 + 2)
    with pytest.raises(UserError, match=r"\.png"):
        figures.write_picture(picture, str(tmp_path / "p.jpg"))


def test_training_progress_uses_the_saved_grids(trained_run, tmp_path):
    picture = progress.training_progress(trained_run)
    assert len(picture.frames) == 3 and len(picture.rows) == 1 and len(picture.rows[0]) == 3
    with pytest.raises(UserError, match="no sample grids"):
        progress.training_progress(str(tmp_path))
