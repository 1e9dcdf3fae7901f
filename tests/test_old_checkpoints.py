"""Workdirs written by the previous version (flat config, `dcgan_jax/train.py` era; tests/fixtures/run_v0, 4 tiny
steps) keep working: `main` resumes them to the same params that version reached, `sample` draws the same images,
`explore` and `evaluate` run on them."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from dcgan_jax import defaults
from dcgan_jax.evaluation import classifier
from dcgan_jax.training.run import open_run
from tests.helpers import FIXTURES, run_cli

OLD_RUN = os.path.join(FIXTURES, "run_v0")
# The flags the fixture was trained with (`python -m dcgan_jax.main` of the previous version).
OLD_FLAGS = ("--config.g_width=8", "--config.d_width=8", "--config.batch_size=16", "--config.latent_dim=16",
             "--config.num_fixed_samples=4", "--config.log_every_steps=2", "--config.sample_every_steps=4",
             "--config.checkpoint_every_steps=4", "--config.keep_checkpoints=1")


@pytest.fixture
def old_run(tmp_path):
    path = tmp_path / "run_v0"
    shutil.copytree(OLD_RUN, path)
    return str(path)


def _flat(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_main_resumes_an_old_workdir_to_the_params_the_old_version_reached(old_run):
    result = run_cli("dcgan_jax.main", f"--workdir={old_run}", "--config.num_train_steps=6", *OLD_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 4" in result.stdout
    run = open_run(old_run)
    assert run.step == 6
    state = run.state
    got = _flat({"g": state.g_params, "d": state.d_params, "gbs": state.g_batch_stats, "dbs": state.d_batch_stats})
    with np.load(os.path.join(FIXTURES, "run_v0_params_after_resume_to_6.npz")) as expected:
        assert set(got) == set(expected.files)
        for key in expected.files:
            np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
    with open(os.path.join(old_run, "config.json")) as f:
        saved = json.load(f)
    assert "eval" in saved and not [k for k in saved if k.startswith("eval_")]  # rewritten in today's layout


def test_sample_draws_the_images_the_old_version_drew(old_run, tmp_path):
    output = str(tmp_path / "s.npz")
    result = run_cli("dcgan_jax.sample", f"--workdir={old_run}", "--num_samples=4", "--seed=3", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(output)
    with np.load(os.path.join(FIXTURES, "run_v0_samples_seed3.npz")) as expected:
        np.testing.assert_array_equal(got["z"], expected["z"])
        np.testing.assert_array_equal(got["images"], expected["images"])


def test_explore_and_evaluate_run_on_an_old_workdir(old_run, tmp_path):
    output = str(tmp_path / "walk.gif")
    result = run_cli("dcgan_jax.explore", f"--workdir={old_run}", "--mode=walk", "--indices=0,1,2",
                     "--steps_between=2", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.getsize(output) > 0

    config = open_run(old_run).config
    config.eval.classifier.steps, config.eval.classifier.dir = 30, str(tmp_path / "classifier")
    classifier.train_and_save(config)  # a quick FID classifier, so the test does not train the default one
    result = run_cli("dcgan_jax.evaluate", f"--workdir={old_run}", "--task=fid", "--num_samples=40",
                     f"--classifier_dir={tmp_path}/classifier")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(old_run, "eval_fid.json")) as f:
        table = json.load(f)
    assert table["step"] == 4 and len(table["rows"]) == 3 and all(np.isfinite(r["fid"]) for r in table["rows"])


def test_the_fixture_is_in_the_old_format():
    with open(os.path.join(OLD_RUN, "config.json")) as f:
        saved = json.load(f)
    assert "eval_every_steps" in saved and "eval" not in saved
    assert defaults.from_saved(saved).eval.every_steps == saved["eval_every_steps"]
