"""The paper's latent-space figures as Python functions of an opened run's model and G (no flags)."""

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import figures, latent_space, sampling
from dcgan_jax.errors import UserError
from dcgan_jax.training.run import open_run


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


@pytest.fixture(scope="module")
def gen(run):
    """The first two arguments of every figure: the run's model group and the G it samples with."""
    return run.config.model, run.sampling_g_variables


@pytest.fixture(scope="module")
def z(run):
    return sampling.pick_z(run.config.model, range(9))


def _shapes(picture):
    return [r.shape for r in picture.rows]


def test_interpolate_rows_start_and_end_at_the_endpoints(gen, z):
    picture = latent_space.interpolate(*gen, z[:4], num_steps=5, method="slerp")
    assert _shapes(picture) == [(5, 32, 32, 1)] * 2
    for row, (a, b) in zip(picture.rows, ((0, 1), (2, 3))):
        np.testing.assert_array_equal(row[0], sampling.images(*gen, z[a])[0])
        np.testing.assert_array_equal(row[-1], sampling.images(*gen, z[b])[0])


def test_linear_interpolation_midpoint(gen, z):
    picture = latent_space.interpolate(
        *gen, z[:2], num_steps=3, method="linear", start=-1.0, stop=3.0
    )
    # alphas -1, 1, 3: the middle column is G(z1), the ends extrapolate
    np.testing.assert_array_equal(picture.rows[0][1], sampling.images(*gen, z[1])[0])
    np.testing.assert_array_equal(picture.rows[0][0], sampling.images(*gen, 2 * z[0] - z[1])[0])


def test_walk_passes_through_every_point(gen, z):
    picture = latent_space.walk(*gen, z[:3], steps_between=3)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 2 and len(picture.frames) == 7
    for k in range(3):
        np.testing.assert_array_equal(picture.frames[3 * k], sampling.images(*gen, z[k])[0])


def test_vary_dim_and_vary_all_sweep_coordinates(run, gen, z):
    values = latent_space.sweep(4, -1.0, 1.0)
    picture = latent_space.vary_dim(*gen, z[:2], dim=3, values=values)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 2
    swept = z[1].copy()
    swept[3] = values[2]
    np.testing.assert_array_equal(picture.rows[1][2], sampling.images(*gen, swept)[0])
    assert _shapes(latent_space.vary_all(*gen, z[0], values, max_dims=5)) == [(4, 32, 32, 1)] * 5
    assert len(latent_space.vary_all(*gen, z[0], values).rows) == run.config.model.latent_dim
    with pytest.raises(UserError, match="one latent point"):
        latent_space.vary_all(*gen, z[:2], values)


def test_arithmetic_draws_mean_a_minus_mean_b_plus_mean_c(gen, z):
    picture = latent_space.arithmetic(*gen, z[0:3], z[3:6], z[6:9], num_noise=4, noise_scale=0.25)
    assert _shapes(picture) == [(4, 32, 32, 1)] * 3 + [(5, 32, 32, 1)]
    result = z[0:3].mean(0) - z[3:6].mean(0) + z[6:9].mean(0)
    np.testing.assert_array_equal(picture.rows[3][0], sampling.images(*gen, result)[0])
    np.testing.assert_array_equal(picture.rows[0][3], sampling.images(*gen, z[0:3].mean(0))[0])


def test_turn_moves_along_the_group_direction(gen, z):
    amounts = latent_space.sweep(3, 0.0, 1.0)
    picture = latent_space.turn(*gen, z[4:6], z[0:2], z[2:4], amounts)
    assert _shapes(picture) == [(3, 32, 32, 1)] * 2
    moved = z[5] + (z[0:2].mean(0) - z[2:4].mean(0))
    np.testing.assert_array_equal(picture.rows[1][2], sampling.images(*gen, moved)[0])
    np.testing.assert_array_equal(picture.rows[1][0], sampling.images(*gen, z[5])[0])


def test_pictures_write_as_grids_and_gifs(gen, z, tmp_path):
    picture = latent_space.walk(*gen, z[:3], steps_between=2)
    figures.write_picture(picture, str(tmp_path / "walk.png"))
    figures.write_picture(picture, str(tmp_path / "walk.gif"))
    assert np.asarray(Image.open(tmp_path / "walk.png")).shape == (2 * 34 + 2, 3 * 34 + 2)
    with Image.open(
        tmp_path / "walk.gif"
    ) as gif:  # the walk's own frames: the images of the whole path
        assert gif.n_frames == 5 and gif.size == (32, 32)


ERRORS = [  # (function, arguments given gen and z, message): every mistake is a one-line UserError
    ("interpolate", lambda gen, z: latent_space.interpolate(*gen, z[:3]), "pairs"),
    ("interpolate", lambda gen, z: latent_space.interpolate(*gen, z[:1]), "pairs"),
    (
        "interpolate",
        lambda gen, z: latent_space.interpolate(*gen, z[:2], start=float("nan")),
        "finite",
    ),
    ("interpolate", lambda gen, z: latent_space.interpolate(*gen, z[:2], num_steps=0), "num_steps"),
    ("interpolate", lambda gen, z: latent_space.interpolate(*gen, z[:2], method="cubic"), "cubic"),
    ("walk", lambda gen, z: latent_space.walk(*gen, z[:1]), "at least 2"),
    ("walk", lambda gen, z: latent_space.walk(*gen, z[:3], steps_between=0), "steps_between"),
    ("vary_dim", lambda gen, z: latent_space.vary_dim(*gen, z[:1], dim=-1, values=[0.0]), "dim=-1"),
    ("vary_dim", lambda gen, z: latent_space.vary_dim(*gen, z[:1], dim=16, values=[0.0]), "dim=16"),
    (
        "arithmetic",
        lambda gen, z: latent_space.arithmetic(*gen, z[0:3], z[:0], z[6:9]),
        "non-empty",
    ),
    ("sweep", lambda gen, z: latent_space.sweep(3, 0.0, float("inf")), "finite"),
]


@pytest.mark.parametrize("index", range(len(ERRORS)), ids=[f"{f}-{m}" for f, _, m in ERRORS])
def test_mistakes_are_user_errors(gen, z, index):
    _, call, message = ERRORS[index]
    with pytest.raises(UserError, match=message):
        call(gen, z)
