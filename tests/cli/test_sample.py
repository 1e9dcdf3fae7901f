"""The sampling CLI: PNG and .npz outputs hold the images of the Python API (`analysis.sampling`), whose properties
(same seed, same images whatever the count or batch size) tests/analysis/test_sampling.py checks without flags."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_jax.analysis import sampling
from dcgan_jax.training.run import open_run
from tests.helpers import one_line_error, run_cli


@pytest.fixture(scope="module")
def run(trained_run):
    return open_run(trained_run)


def test_png_grid(trained_run, tmp_path):
    output = str(tmp_path / "grid.png")
    result = run_cli(
        "dcgan_jax.sample", f"--workdir={trained_run}", "--num_samples=9", f"--output={output}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote 9 samples to {output}" in result.stdout
    grid = np.asarray(Image.open(output))
    assert grid.shape == (
        3 * 34 + 2,
        3 * 34 + 2,
    )  # 3x3 grid of 32 px images with 2 px padding, grayscale


@pytest.mark.parametrize("batch_stats", [False, True], ids=["running_stats", "batch_stats"])
def test_npz_holds_the_python_apis_samples(trained_run, run, tmp_path, batch_stats):
    output = str(tmp_path / "s.npz")
    result = run_cli(
        "dcgan_jax.sample",
        f"--workdir={trained_run}",
        "--num_samples=6",
        "--batch_size=2",
        "--seed=7",
        "--step=4",
        f"--output={output}",
        *(["--batch_stats"] if batch_stats else []),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(output) as saved:
        images, z = saved["images"], saved["z"]
    assert (
        images.dtype == np.uint8
        and images.shape == (6, 32, 32, 1)
        and z.shape == (6, run.config.model.latent_dim)
    )
    at_4 = open_run(trained_run, step=4)
    expected, expected_z = sampling.sample(
        at_4.config.model,
        at_4.sampling_g_variables,
        6,
        seed=7,
        batch_size=2,
        batch_stats=batch_stats,
    )
    np.testing.assert_array_equal(z, expected_z)
    np.testing.assert_array_equal(images, expected)
    latest, _ = sampling.sample(
        run.config.model, run.sampling_g_variables, 6, seed=7, batch_size=2, batch_stats=batch_stats
    )
    assert np.any(latest != images)  # --step=4 was honoured, not the latest step 5


def test_errors_are_one_line(tmp_path):
    result = run_cli("dcgan_jax.sample", f"--workdir={tmp_path}/empty", "--output=x.png")
    one_line_error(result, "no checkpoints")
    assert len(result.stderr.strip().splitlines()) == 1
    one_line_error(
        run_cli("dcgan_jax.sample", f"--workdir={tmp_path}", "--output=x.jpg"), ".png", ".npz"
    )


def _with_saved_upsample(workdir, tmp_path, value):
    """A copy of the trained workdir whose checkpoints' saved configs say upsample=`value`, under its flat name of
    earlier versions (the only ones that wrote the retired forms), which config_fields.from_saved moves to
    model.upsample."""
    copy = tmp_path / f"run_{value}"
    shutil.copytree(workdir, copy)
    for metadata in copy.glob("checkpoints/*/config/metadata"):
        saved = json.loads(metadata.read_text())
        saved["upsample"] = value
        metadata.write_text(json.dumps(saved))
    return copy


def test_a_retired_upsample_form_samples_the_same_images(trained_run, run, tmp_path):
    old = open_run(str(_with_saved_upsample(trained_run, tmp_path, "subpixel_gemm")))
    assert old.config.model.upsample == "subpixel"
    np.testing.assert_array_equal(
        sampling.sample(old.config.model, old.sampling_g_variables, 4)[0],
        sampling.sample(run.config.model, run.sampling_g_variables, 4)[0],
    )  # same math


def test_a_config_that_cannot_build_the_models_is_one_line(trained_run, tmp_path):
    bad = _with_saved_upsample(trained_run, tmp_path, "bogus")
    before = {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()}
    result = run_cli("dcgan_jax.sample", f"--workdir={bad}", f"--output={tmp_path}/bad.png")
    one_line_error(result, "model.upsample='bogus'", "cannot build the models")
    assert {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "bad.png").exists()
