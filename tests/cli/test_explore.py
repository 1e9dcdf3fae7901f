"""The explore CLI turns flags into the arguments of the analysis functions (tests/analysis/ test those functions):
every mode draws the picture its Python call draws; bad flags are one-line errors."""

import json
import shutil
import types

import numpy as np
import pytest
from PIL import Image

from dcgan_jax import visualize
from dcgan_jax.analysis import (
    animation,
    figures,
    filters,
    guided_backprop,
    latent_space,
    neighbors,
    sampling,
)
from dcgan_jax.training.run import open_run
from tests.helpers import one_line_error, run_cli

CELL = 32 + 2  # a 32px image plus the grid padding


def _g(run):
    """The model group and the G explore draws by default (the sampling G): the first arguments of the figures."""
    return run.config.model, run.sampling_g_variables


# mode, flags, the same picture from Python (run, z pool -> Picture), its grid in cells (rows, cols)
MODES = [
    (
        "interpolate",
        ("--indices=0,1,2,3", "--num_steps=5", "--method=slerp"),
        lambda run, z: latent_space.interpolate(*_g(run), z[:4], 5, "slerp"),
        (2, 5),
    ),
    (
        "walk",
        ("--indices=0,1,2", "--steps_between=3"),
        lambda run, z: latent_space.walk(*_g(run), z[:3], 3),
        (2, 4),
    ),
    (
        "vary_dim",
        ("--indices=4", "--dim=3", "--num_steps=4"),
        lambda run, z: latent_space.vary_dim(*_g(run), z[4:5], 3, latent_space.sweep(4, -1.0, 1.0)),
        (1, 4),
    ),
    (
        "vary_all",
        ("--num_steps=3",),
        lambda run, z: latent_space.vary_all(*_g(run), z[0], latent_space.sweep(3, -1.0, 1.0)),
        (16, 3),
    ),
    (
        "arithmetic",
        ("--groups=0,1,2;3,4,5;6,7,8", "--num_noise=4"),
        lambda run, z: latent_space.arithmetic(*_g(run), z[0:3], z[3:6], z[6:9], num_noise=4),
        (4, 5),
    ),
    (
        "turn",
        ("--groups=0,1;2,3", "--indices=5,6", "--num_steps=6"),
        lambda run, z: latent_space.turn(
            *_g(run), z[5:7], z[0:2], z[2:4], latent_space.sweep(6, -1.0, 1.0)
        ),
        (2, 6),
    ),
    (
        "drop_filters",
        ("--mask_box=0,0,16,32", "--probe_samples=20", "--indices=0,1,2"),
        lambda run, z: filters.drop_filters(
            *_g(run), z[:3], mask=filters.box_mask(32, (0, 0, 16, 32)), probe_samples=20
        ),
        (2, 3),
    ),
    (
        "nearest",
        ("--indices=0,1", "--k=2", "--max_train_images=300"),
        lambda run, z: neighbors.nearest_figure(
            run.config.model,
            run.config.data,
            run.sampling_g_variables,
            run.d_variables,
            z[:2],
            k=2,
            max_train_images=300,
        ),
        (2, 7),
    ),
    (
        "guided_backprop",
        ("--num_features=3", "--top_k=4", "--num_images=64"),
        lambda run, z: guided_backprop.guided_backprop(
            run.config.model,
            run.config.data,
            run.d_variables,
            run.initial_state.d_variables,
            3,
            4,
            64,
            step=run.step,
        ),
        (7, 4),
    ),
    # --noema: the trained G (the same as the sampling G here: the tiny run keeps no moving average)
    (
        "walk_noema",
        ("--mode=walk", "--indices=0,1,2", "--steps_between=3", "--noema"),
        lambda run, z: latent_space.walk(run.config.model, run.g_variables, z[:3], 3),
        (2, 4),
    ),
]

BAD_FLAGS = [
    (("--mode=zoom",), "not a mode"),
    (("--mode=walk", "--output=x.jpg"), ".png"),
    (("--mode=arithmetic", "--groups=0,1"), "3 non-empty"),
    (("--mode=interpolate", "--indices=0,x"), "comma-separated integers"),
    (("--mode=interpolate", "--indices=0,1,2"), "pairs"),
    (("--mode=drop_filters",), "--maps, --mask_box or --mask_file"),
    (("--mode=vary_dim", "--num_steps=0"), "--num_steps=0"),
    (("--mode=interpolate", "--step=3"), "no checkpoint at step 3"),
]


@pytest.fixture(scope="module")
def commands(trained_run, tmp_path_factory):
    """Every mode and every bad command line above, run by explore's main in one process (tests/cli/explore_driver.py):
    {name: (output path, result)}."""
    out = tmp_path_factory.mktemp("explore")
    lines = {}
    for mode, flags, _, _ in MODES:
        lines[mode] = (
            str(out / f"{mode}.png"),
            [f"--mode={mode}", *flags, f"--output={out}/{mode}.png"],
        )
    lines["training_gif"] = (
        str(out / "training.gif"),
        ["--mode=training_gif", f"--output={out}/training.gif", "--gif_levels=16"],
    )
    lines["training_gif_random"] = (
        str(out / "random.gif"),
        ["--mode=training_gif", "--grids=random", f"--output={out}/random.gif"],
    )
    for i, (flags, _) in enumerate(BAD_FLAGS):
        output = (
            () if any(f.startswith("--output") for f in flags) else (f"--output={out}/bad{i}.png",)
        )
        lines[f"bad{i}"] = (None, [*flags, *output])
    names = list(lines)
    (out / "commands.json").write_text(
        json.dumps([[f"--workdir={trained_run}", *lines[n][1]] for n in names])
    )
    result = run_cli(
        "tests.cli.explore_driver", str(out / "results.json"), str(out / "commands.json")
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return {name: (lines[name][0], types.SimpleNamespace(**r)) for name, r in zip(names, results)}


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


@pytest.mark.parametrize("mode, flags, expected, cells", MODES, ids=[m[0] for m in MODES])
def test_every_mode_draws_its_python_picture(commands, run, mode, flags, expected, cells):
    output, result = commands[mode]
    assert result.returncode == 0, result.stderr
    assert f"wrote {mode.split('_noema')[0]} to {output}" in result.stdout
    grid = np.asarray(Image.open(output))
    assert grid.shape == (cells[0] * CELL + 2, cells[1] * CELL + 2)
    picture = expected(run, sampling.pick_z(run.config.model, range(9)))
    np.testing.assert_array_equal(grid, visualize.table_grid(picture.rows)[..., 0])
    for note in picture.notes:  # drop_filters' maps, nearest's distances
        assert note in result.stdout


def test_training_gif(commands, trained_run):
    output, result = commands["training_gif"]
    assert result.returncode == 0, result.stderr
    frames = animation.training_progress(trained_run).frames
    with Image.open(output) as gif:  # grids at steps 2, 4 and 5 (the last step)
        assert gif.n_frames == len(frames) == 3 and gif.size == frames[0].shape[1::-1]
        assert len(np.unique(np.asarray(gif.convert("L")))) <= 16  # --gif_levels


def test_training_gif_of_the_random_z_grids(commands, trained_run):
    output, result = commands["training_gif_random"]
    assert result.returncode == 0, result.stderr
    frames = animation.training_progress(trained_run, z="random").frames
    with Image.open(output) as gif:
        assert gif.n_frames == len(frames) == 3
        gif.seek(2)
        np.testing.assert_array_equal(np.asarray(gif.convert("L")), frames[2][..., 0])


@pytest.mark.parametrize("index", range(len(BAD_FLAGS)), ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_one_line_errors(commands, index):
    message = BAD_FLAGS[index][1]
    _, result = commands[f"bad{index}"]
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr


def test_gif_of_a_z_file(trained_run, run, tmp_path):
    """The real entry point: an interpolation GIF between rows of an .npz that `sample` wrote, extrapolated."""
    images, z = sampling.sample(*_g(run), 3, seed=5)
    sampling.save_samples(str(tmp_path / "z.npz"), images, z)
    output = str(tmp_path / "interp.gif")
    result = run_cli(
        "dcgan_jax.explore",
        f"--workdir={trained_run}",
        "--mode=interpolate",
        f"--output={output}",
        f"--z_file={tmp_path}/z.npz",
        "--indices=0,2",
        "--num_steps=6",
        "--start=-0.5",
        "--stop=1.5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = figures.columns_as_frames(
        latent_space.interpolate(*_g(run), z[[0, 2]], 6, start=-0.5, stop=1.5).rows
    )
    with Image.open(output) as gif:
        assert gif.n_frames == 6 and gif.size == (CELL + 2, CELL + 2)
        for k, frame in enumerate(expected):
            gif.seek(k)
            np.testing.assert_array_equal(np.asarray(gif.convert("L")), frame[..., 0])


def test_training_gif_skips_a_damaged_grid_with_one_warning(trained_run, tmp_path):
    """Older versions wrote grids in place: a kill or a full disk could leave a 0-byte PNG."""
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    empty = workdir / "samples" / "step_00000004.png"
    empty.write_bytes(b"")
    output = tmp_path / "training.gif"
    result = run_cli(
        "dcgan_jax.explore", f"--workdir={workdir}", "--mode=training_gif", f"--output={output}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (warning,) = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert f"skipped 1 unreadable sample grid(s) (0-byte or damaged): {empty}" in warning
    with Image.open(output) as gif:
        assert gif.n_frames == 2  # steps 2 and 5
    for name in ("step_00000002.png", "step_00000005.png"):
        (workdir / "samples" / name).write_bytes(b"")
    one_line_error(
        run_cli(
            "dcgan_jax.explore", f"--workdir={workdir}", "--mode=training_gif", f"--output={output}"
        ),
        "none of the 3 sample grids",
        "can be read",
    )
