"""The training animation: the sample grids a run saved as it trained, captioned with their step."""

import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_jax import visualize
from dcgan_jax.analysis import animation, figures
from dcgan_jax.errors import UserError
from dcgan_jax.training import grids
from tests.helpers import tiny_config


def test_training_progress_uses_the_saved_grids(trained_run, tmp_path):
    picture = animation.training_progress(trained_run)
    grids, _ = visualize.training_grids(trained_run)
    assert [step for step, _ in grids] == [2, 4, 5]
    assert len(picture.frames) == 3 and len(picture.rows) == 1 and len(picture.rows[0]) == 3
    for frame, (_, grid) in zip(picture.frames, grids):
        np.testing.assert_array_equal(frame[-grid.shape[0] :], grid)  # the grid under its caption
    figures.write_picture(picture, str(tmp_path / "training.gif"))
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.n_frames == 3


def test_the_png_shows_at_most_max_shown_grids(trained_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    grid = np.asarray(Image.open(workdir / "samples" / "step_00000002.png"))
    for step in range(6, 30):
        Image.fromarray(grid).save(workdir / "samples" / f"step_{step:08d}.png")
    picture = animation.training_progress(str(workdir), max_shown=4)
    assert len(picture.frames) == 27 and len(picture.rows[0]) == 4
    np.testing.assert_array_equal(picture.rows[0][0], picture.frames[0])
    np.testing.assert_array_equal(
        picture.rows[0][-1], picture.frames[-1]
    )  # first and last always shown


def test_unreadable_grids_are_skipped_with_one_warning(trained_run, tmp_path):
    """Older versions wrote grids in place: a kill or a full disk left 0-byte or truncated PNGs."""
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    empty = workdir / "samples" / "step_00000004.png"
    empty.write_bytes(b"")
    truncated = workdir / "samples" / "step_00000005.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    picture = animation.training_progress(str(workdir))
    assert len(picture.frames) == 1  # step 2 alone
    (note,) = picture.notes
    assert note.startswith("warning: skipped 2 unreadable") and str(empty) in note
    assert str(truncated) in note and "\n" not in note
    (workdir / "samples" / "step_00000002.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="none of the 3 sample grids .* can be read"):
        animation.training_progress(str(workdir))


def test_a_run_without_grids_says_to_train_first(tmp_path):
    with pytest.raises(UserError, match="no sample grids"):
        animation.training_progress(str(tmp_path))


def test_random_z_grids_are_saved_beside_the_fixed_ones_and_animate_too(trained_run):
    """Seed 001's two animations: fixed z (each sample sharpening) and fresh z at each step (the distribution)."""
    (fixed, _), (random, _) = (
        visualize.training_grids(trained_run),
        visualize.training_grids(trained_run, "random"),
    )
    assert [s for s, _ in random] == [s for s, _ in fixed] == [2, 4, 5]
    for (_, a), (_, b) in zip(fixed, random):
        assert a.shape == b.shape and not np.array_equal(a, b)  # other z, same G
    picture = animation.training_progress(trained_run, z="random")
    assert len(picture.frames) == 3
    with pytest.raises(UserError, match="must be one of fixed, random"):
        animation.training_progress(trained_run, z="other")


def test_random_z_is_a_function_of_seed_and_step():
    config = tiny_config()
    model, count, seed = config.model, config.num_fixed_samples, config.seed
    random_z = lambda step: grids.random_z(model, count, seed, step)  # noqa: E731
    np.testing.assert_array_equal(random_z(4), random_z(4))
    assert not np.array_equal(random_z(4), random_z(6))
    assert not np.array_equal(random_z(4), grids.fixed_z(model, count, seed))
    assert not np.array_equal(random_z(4), grids.random_z(model, count, seed + 1, 4))
    assert random_z(4).shape == (count, model.latent_dim)
