"""The README's "From Python" script, as a user would run it: open a run, interpolate, vector arithmetic, filter
dropping, samples."""

import numpy as np
from PIL import Image

from dcgan_jax.analysis import figures, filters, latent_space, sampling
from dcgan_jax.training.run import open_run


def test_the_readme_script(trained_run, tmp_path):
    run = open_run(trained_run)
    z = sampling.pick_z(run.config, range(9))
    figures.write_picture(latent_space.interpolate(run, z[:2], num_steps=8, method="slerp"), str(tmp_path / "i.png"))
    figures.write_picture(latent_space.arithmetic(run, z[0:3], z[3:6], z[6:9]), str(tmp_path / "a.png"))
    picture = filters.drop_filters(run, z[:4], layer=-2, mask=filters.box_mask(run.config.image_size, (0, 0, 16, 32)),
                                   probe_samples=20)
    assert picture.notes[0].startswith("layer 1: dropped ")
    figures.write_picture(picture, str(tmp_path / "d.png"))
    images, z_drawn = sampling.sample(run, 64, seed=1)
    assert images.shape == (64, 32, 32, 1) and z_drawn.shape == (64, run.config.latent_dim)
    for name, shape in (("i.png", (34 + 2, 8 * 34 + 2)), ("a.png", (4 * 34 + 2, 9 * 34 + 2)),
                        ("d.png", (2 * 34 + 2, 4 * 34 + 2))):
        assert np.asarray(Image.open(tmp_path / name)).shape == shape, name
