"""The explore CLI on a checkpoint trained here for a few steps, and the nearest-neighbour search."""

import jax
import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli, tiny_config
from dcgan_jax.data import datasets, pipeline, sources
from dcgan_jax.nn import latent
from dcgan_jax.analysis import neighbors
from dcgan_jax import train
from dcgan_jax.training import state as train_state


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("explore_run"))
    train.train_and_evaluate(tiny_config(num_train_steps=5, checkpoint_every_steps=5), path)
    return path


def test_nearest_training_neighbour_of_a_training_image_is_itself():
    source = datasets.load_source(tiny_config())
    queries = source.read_many(np.array([0, 17, 400, 1000]))
    for featurize in (neighbors.pixel_features, lambda x: neighbors.pixel_features(x)[:, ::3]):
        idx, dist = neighbors.nearest_in_source(queries, source, featurize, k=2, chunk_size=300)
        np.testing.assert_array_equal(idx[:, 0], [0, 17, 400, 1000])
        np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-4)  # sqrt of float64 cancellation error
        assert (dist[:, 1] > 0).all()


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    refs, queries = rng.normal(size=(200, 9)), rng.normal(size=(5, 9))
    idx, dist = neighbors.nearest(queries, refs, k=4)
    brute = np.linalg.norm(queries[:, None] - refs[None], axis=-1)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :4])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :4], rtol=1e-9)


def test_d_feature_neighbours_of_training_images(workdir):
    from dcgan_jax.training import checkpoints
    manager, config = checkpoints.open_workdir(workdir)
    state = checkpoints.restore_state(manager, train_state.create_train_state(config))
    featurize = neighbors.discriminator_featurizer(config, {"params": state.d_params,
                                                            "batch_stats": state.d_batch_stats})
    source = datasets.load_source(config)
    idx, dist = neighbors.nearest_in_source(source.read_many(np.array([3, 50])), source, featurize, k=1)
    np.testing.assert_array_equal(idx[:, 0], [3, 50])
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-3)


def _explore(workdir, tmp_path, mode, ext, *flags):
    output = str(tmp_path / f"{mode}{ext}")
    result = run_cli("dcgan_jax.explore", f"--workdir={workdir}", f"--mode={mode}", f"--output={output}", *flags)
    assert result.returncode == 0, result.stderr
    return output, result


CELL = 32 + 2  # a 32px image plus the grid padding


@pytest.mark.slow
@pytest.mark.parametrize("mode, flags, rows, cols", [
    ("interpolate", ("--indices=0,1,2,3", "--num_steps=5", "--method=slerp"), 2, 5),
    ("walk", ("--indices=0,1,2", "--steps_between=3"), 2, 4),
    ("vary_dim", ("--indices=4", "--dim=3", "--num_steps=4"), 1, 4),
    ("vary_all", ("--num_steps=3",), 16, 3),
    ("arithmetic", ("--groups=0,1,2;3,4,5;6,7,8", "--num_noise=4"), 4, 5),
    ("turn", ("--groups=0,1;2,3", "--indices=5,6", "--num_steps=6"), 2, 6),
    ("drop_filters", ("--mask_box=0,0,16,32", "--probe_samples=20", "--indices=0,1,2"), 2, 3),
    ("nearest", ("--indices=0,1", "--k=2", "--max_train_images=300"), 2, 7),
])
def test_every_mode_writes_a_grid(workdir, tmp_path, mode, flags, rows, cols):
    output, result = _explore(workdir, tmp_path, mode, ".png", *flags)
    grid = np.asarray(Image.open(output))
    assert grid.shape[:2] == (rows * CELL + 2, cols * CELL + 2), result.stdout


def test_gif_output_and_z_file_input(workdir, tmp_path):
    cfg = tiny_config()
    z = np.asarray(latent.sample_z_for_examples(jax.random.PRNGKey(7), np.arange(3), cfg.latent_dim))
    np.savez(tmp_path / "z.npz", z=z, images=np.zeros((3, 32, 32, 1), np.uint8))
    output, _ = _explore(workdir, tmp_path, "interpolate", ".gif", f"--z_file={tmp_path}/z.npz", "--indices=0,2",
                         "--num_steps=6", "--start=-0.5", "--stop=1.5")
    with Image.open(output) as gif:
        assert gif.n_frames == 6 and gif.size == (CELL + 2, CELL + 2)
    output, _ = _explore(workdir, tmp_path, "training_gif", ".gif")
    with Image.open(output) as gif:
        assert gif.n_frames == 3  # grids at steps 2, 4 and 5 (the last step)


@pytest.mark.parametrize("flags, message", [
    (("--mode=zoom",), "not a mode"),
    (("--mode=walk", "--output=x.jpg"), ".png"),
    (("--mode=arithmetic", "--groups=0,1"), "3 non-empty"),
    (("--mode=interpolate", "--indices=0,x"), "comma-separated integers"),
    (("--mode=drop_filters",), "--maps, --mask_box or --mask_file"),
])
def test_bad_flags_are_one_line_errors(workdir, tmp_path, flags, message):
    flags = flags if any(f.startswith("--output") for f in flags) else flags + (f"--output={tmp_path}/x.png",)
    result = run_cli("dcgan_jax.explore", f"--workdir={workdir}", *flags)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error:") and message in lines[-1] and "Traceback" not in result.stderr
