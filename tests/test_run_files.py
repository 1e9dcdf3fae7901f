"""A workdir's layout: the training grids listed in step order whatever the file system's order, and
the names every tool reads."""

import os

from dcgan_jax import run_files


def test_grid_files_are_listed_in_step_order_and_only_grids(tmp_path):
    for step in (20, 3, 100):
        path = run_files.grid_file(str(tmp_path), "fixed", step)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    (tmp_path / run_files.SAMPLES / "notes.png").write_bytes(b"")
    (tmp_path / run_files.SAMPLES / "step_7.png.partial").write_bytes(b"")
    found = run_files.grid_files(str(tmp_path), "fixed")
    assert [step for step, _ in found] == [3, 20, 100]
    assert found[0][1] == str(tmp_path / "samples" / "step_00000003.png")
    assert run_files.grid_files(str(tmp_path), "random") == []


def test_the_names_tools_read():
    assert run_files.grid_file("w", "random", 5) == os.path.join(
        "w", "samples", "random", "step_00000005.png"
    )
    assert run_files.eval_table("w", "fid") == os.path.join("w", "eval_fid.json")
    assert run_files.checkpoint_dir("w") == os.path.join(os.path.abspath("w"), "checkpoints")
