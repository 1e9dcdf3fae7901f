"""The "From Python" script of docs/latent_space.md, as a researcher would run it: open a run,
interpolate, vector arithmetic, filter dropping, pictures written. Plain function calls, no flags.
tests/test_docs.py checks that the page's script calls what exists."""

import pathlib

import numpy as np
from PIL import Image


def readme_script(workdir, out):
    """That script (with probe_samples=20 to keep it quick), writing into `out`; returns the filter picture."""
    from dcgan_jax.analysis import figures, filters, latent_space, sampling
    from dcgan_jax.training.run import open_run

    out = pathlib.Path(out)
    run = open_run(workdir)
    model, g = run.config.model, run.sampling_g_variables
    z = sampling.pick_z(model, range(9))
    figures.write_picture(
        latent_space.interpolate(model, g, z[:2], num_steps=8, method="slerp"), out / "interp.png"
    )
    figures.write_picture(
        latent_space.arithmetic(model, g, z[0:3], z[3:6], z[6:9]), out / "arith.png"
    )
    picture = filters.drop_filters(
        model,
        g,
        z[:4],
        layer=-2,
        mask=filters.box_mask(model.image_size, (0, 0, 16, 32)),
        probe_samples=20,
    )
    figures.write_picture(picture, out / "drop.png")
    return picture


def test_the_readme_script(trained_run, tmp_path):
    picture = readme_script(trained_run, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arith.png", "drop.png", "interp.png"]
    cell = 32 + 2
    for name, (rows, cols) in (("interp.png", (1, 8)), ("arith.png", (4, 9)), ("drop.png", (2, 4))):
        assert np.asarray(Image.open(tmp_path / name)).shape == (
            rows * cell + 2,
            cols * cell + 2,
        ), name
    # layer -2 of the tiny G (widths 32, 16, 8 at 4, 8 and 16 px) is layer 1, of 16 maps
    assert len(picture.notes) == 1 and picture.notes[0].startswith("layer 1: dropped ")
    assert picture.notes[0].split(" of ")[1].startswith("16 feature maps: ")
    assert len(picture.rows) == 2 and np.any(
        picture.rows[0] != picture.rows[1]
    )  # dropping the maps changed G(z)
