"""The training animation: the sample grids a run saved as it trained, captioned with their step."""

import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_jax import visualize
from dcgan_jax.analysis import figures, progress
from dcgan_jax.errors import UserError


def test_training_progress_uses_the_saved_grids(trained_run, tmp_path):
    picture = progress.training_progress(trained_run)
    grids = visualize.training_grids(trained_run)
    assert [step for step, _ in grids] == [2, 4, 5]
    assert len(picture.frames) == 3 and len(picture.rows) == 1 and len(picture.rows[0]) == 3
    for frame, (_, grid) in zip(picture.frames, grids):
        np.testing.assert_array_equal(frame[-grid.shape[0]:], grid)  # the grid under its caption
    figures.write_picture(picture, str(tmp_path / "progress.gif"))
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == 3


def test_the_png_shows_at_most_max_shown_grids(trained_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    grid = np.asarray(Image.open(workdir / "samples" / "step_00000002.png"))
    for step in range(6, 30):
        Image.fromarray(grid).save(workdir / "samples" / f"step_{step:08d}.png")
    picture = progress.training_progress(str(workdir), max_shown=4)
    assert len(picture.frames) == 27 and len(picture.rows[0]) == 4
    np.testing.assert_array_equal(picture.rows[0][0], picture.frames[0])
    np.testing.assert_array_equal(picture.rows[0][-1], picture.frames[-1])  # first and last always shown


def test_a_run_without_grids_says_to_train_first(tmp_path):
    with pytest.raises(UserError, match="no sample grids"):
        progress.training_progress(str(tmp_path))
