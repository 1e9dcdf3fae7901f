"""Workdirs written by earlier versions (tests/fixtures/run_v0: a flat config; run_v1: grouped eval, d_training
and conditional fields, class-conditional with EMA; 4 tiny steps each) keep working: `main` resumes them to the same params that version reached, `sample` draws the same images,
`explore` and `evaluate` run on them."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from dcgan_jax import config_fields
from dcgan_jax.evaluation import classifier
from dcgan_jax.training.run import open_run
from tests.helpers import FIXTURES, one_line_error, run_cli

# The versions whose workdirs are fixtures, each with the flags its run was trained with (`python -m
# dcgan_jax.main` of that version), written here in today's names: v0 had a flat config, v1 (the version before the
# config groups) flat model/data/optimizer fields beside grouped eval, d_training and conditional ones, and EMA.
TINY = (
    "--config.model.g_width=8",
    "--config.model.d_width=8",
    "--config.batch_size=16",
    "--config.model.latent_dim=16",
    "--config.log_every_steps=2",
    "--config.sample_every_steps=4",
    "--config.checkpoint_every_steps=4",
    "--config.keep_checkpoints=1",
)
VERSIONS = {
    "run_v0": TINY + ("--config.num_fixed_samples=4",),
    "run_v1": ("--config=configs/digits_conditional.py",)
    + TINY
    + (
        "--config.num_fixed_samples=20",
        "--config.optim.ema_decay=0.5",
        "--config.d_training.label_noise=0.1",
    ),
}


@pytest.fixture(params=sorted(VERSIONS))
def old_run(request, tmp_path):
    path = tmp_path / request.param
    shutil.copytree(os.path.join(FIXTURES, request.param), path)
    return str(path)


def _flat(tree):
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _version(old_run):
    return os.path.basename(old_run)


def test_main_resumes_an_old_workdir_to_the_params_the_old_version_reached(old_run):
    flags = VERSIONS[_version(old_run)]
    result = run_cli("dcgan_jax.main", f"--workdir={old_run}", *flags, "--config.num_train_steps=6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 4" in result.stdout
    run = open_run(old_run)
    assert run.step == 6
    state = run.state
    trees = {
        "g": state.g_params,
        "d": state.d_params,
        "gbs": state.g_batch_stats,
        "dbs": state.d_batch_stats,
    }
    got = _flat({**trees, **({"ema": state.ema} if state.ema is not None else {})})
    with np.load(
        os.path.join(FIXTURES, f"{_version(old_run)}_params_after_resume_to_6.npz")
    ) as expected:
        assert set(got) == set(expected.files)
        for key in expected.files:
            np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
    with open(os.path.join(old_run, "config.json")) as f:
        saved = json.load(f)
    assert {"eval", "model", "data", "optim"} <= set(
        saved
    ) and "g_width" not in saved  # rewritten in today's layout


def test_sample_draws_the_images_the_old_version_drew(old_run, tmp_path):
    output = str(tmp_path / "s.npz")
    result = run_cli(
        "dcgan_jax.sample",
        f"--workdir={old_run}",
        "--num_samples=4",
        "--seed=3",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(output)
    with np.load(os.path.join(FIXTURES, f"{_version(old_run)}_samples_seed3.npz")) as expected:
        np.testing.assert_array_equal(got["z"], expected["z"])
        np.testing.assert_array_equal(got["images"], expected["images"])


def test_explore_and_evaluate_run_on_an_old_workdir(old_run, tmp_path):
    output = str(tmp_path / "walk.gif")
    result = run_cli(
        "dcgan_jax.explore",
        f"--workdir={old_run}",
        "--mode=walk",
        "--indices=0,1,2",
        "--steps_between=2",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.getsize(output) > 0

    config = open_run(old_run).config
    config.eval.classifier.steps, config.eval.classifier.dir = 30, str(tmp_path / "classifier")
    model = config.model
    classifier.train_and_save(
        config.eval.classifier, config.data, model.image_size, model.num_channels
    )
    # (a quick FID classifier, so the test does not train the default one)
    result = run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={old_run}",
        "--task=fid",
        "--num_samples=40",
        f"--classifier_dir={tmp_path}/classifier",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(old_run, "eval_fid.json")) as f:
        table = json.load(f)
    assert (
        table["step"] == 4
        and len(table["rows"]) >= 3
        and all(np.isfinite(r["fid"]) for r in table["rows"])
    )


def test_the_fixtures_are_in_their_versions_format():
    with open(os.path.join(FIXTURES, "run_v0", "config.json")) as f:
        saved = json.load(f)
    assert "eval_every_steps" in saved and "eval" not in saved and "g_width" in saved
    assert config_fields.from_saved(saved).eval.every_steps == saved["eval_every_steps"]
    with open(os.path.join(FIXTURES, "run_v1", "config.json")) as f:
        saved = json.load(f)
    assert {"eval", "conditional", "d_training", "g_width", "ema_decay"} <= set(
        saved
    ) and "model" not in saved
    assert (
        config_fields.from_saved(saved).model.conditional.num_classes
        == saved["conditional"]["num_classes"]
    )


def test_an_old_flag_is_one_line_naming_its_new_place(tmp_path):
    result = run_cli("dcgan_jax.main", f"--workdir={tmp_path}/run", "--config.g_width=64")
    one_line_error(result, "--config.g_width has moved to --config.model.g_width")
    assert not os.path.exists(tmp_path / "run")
