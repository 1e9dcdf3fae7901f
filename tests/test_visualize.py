"""Pictures: grids of uneven rows, GIF frame counts, the training-progress frames."""

import numpy as np
from PIL import Image

from dcgan_jax import run_files, visualize


def _frames(count, size=8):
    return [np.full((size, size, 1), 20 * i, np.uint8) for i in range(count)]


def test_gif_has_expected_frame_count(tmp_path):
    path = str(tmp_path / "a.gif")
    visualize.save_gif(path, _frames(7), duration_ms=50)
    with Image.open(path) as gif:
        assert gif.n_frames == 7
        gif.seek(3)
        assert np.asarray(gif.convert("L"))[0, 0] == 60


def test_quantized_gif_keeps_frame_count_and_levels(tmp_path):
    path = str(tmp_path / "q.gif")
    frames = [
        np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(5)
    ]
    visualize.save_gif(path, frames, levels=4)
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        assert set(np.unique(np.asarray(gif.convert("RGB")))) <= {0, 85, 170, 255}


def test_table_grid_pads_short_rows():
    rows = [np.zeros((3, 4, 4, 1), np.uint8), np.full((1, 4, 4, 1), 100, np.uint8)]
    grid = visualize.table_grid(rows, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    assert (
        grid[6, 1, 0] == 100 and (grid[6:10, 6:10] == 255).all()
    )  # second row: one image then blanks


def test_zoom_and_caption():
    image = np.arange(4, dtype=np.uint8).reshape(2, 2, 1)
    np.testing.assert_array_equal(
        visualize.zoom(image, 2)[:, :, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    )
    captioned = visualize.caption(np.zeros((20, 40, 3), np.uint8), "step 5")
    assert (
        captioned.shape == (34, 40, 3)
        and captioned[:14].min() < 128
        and captioned[:14].max() == 255
    )


def test_training_progress_frames_in_step_order(tmp_path):
    (tmp_path / "samples").mkdir()
    for step in (1000, 200, 30):  # where training writes them
        Image.fromarray(np.full((10, 12), step % 256, np.uint8)).save(
            run_files.grid_file(str(tmp_path), "fixed", step)
        )
    (tmp_path / "samples" / "notes.png").write_bytes(b"")  # not a step grid: ignored
    grids, unreadable = visualize.training_grids(str(tmp_path))
    assert [s for s, _ in grids] == [30, 200, 1000] and unreadable == []
    assert grids[0][1].shape == (10, 12, 1) and grids[2][1][0, 0, 0] == 1000 % 256
    frames, unreadable = visualize.training_progress_frames(str(tmp_path))
    assert len(frames) == 3 and frames[0].shape == (24, 12, 1) and unreadable == []
    path = str(tmp_path / "t.gif")
    visualize.save_gif(path, frames)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
