"""`python -m dcgan_jax.evaluate`: the fid and classify tables of a trained run, and its one-line errors."""

import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import fid_weights, one_line_error, run_cli

pytestmark = pytest.mark.slow  # each command opens the run in a fresh process


@pytest.fixture
def workdir(trained_run, tmp_path):
    """A copy of the shared trained run (step 5): the evaluations write eval_<task>.json into it."""
    return shutil.copytree(trained_run, str(tmp_path / "run"))


def test_fid(workdir, fid_classifier):
    classifier_dir = fid_classifier[0].eval.classifier.dir
    result = run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={workdir}",
        "--task=fid",
        "--num_samples=30",
        f"--classifier_dir={classifier_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(workdir, "eval_fid.json")) as f:
        report = json.load(f)
    assert report["task"] == "fid" and report["step"] == 5
    names = [row["images"] for row in report["rows"]]
    assert names == ["generator (step 5)", "generator (untrained)", "real 'train' images (floor)"]
    assert all(row["fid"] >= 0 and row["num_images"] == 30 for row in report["rows"])
    assert "generator (untrained)" in result.stdout and "training the FID" not in result.stdout


def test_fid_with_the_real_inception(workdir):
    """The published-protocol network end to end: the TorchScript weights file, read as it is."""
    weights = fid_weights()
    result = run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={workdir}",
        "--task=fid",
        "--extractor=inception",
        f"--inception_weights={weights}",
        "--num_samples=10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(workdir, "eval_fid.json")) as f:
        rows = json.load(f)["rows"]
    assert [row["num_images"] for row in rows] == [10, 10, 10]
    assert all(np.isfinite(row["fid"]) and row["fid"] >= 0 for row in rows)
    assert f"InceptionV3 pool3 ({weights})" in result.stdout
    assert "unknown SHA-1" not in result.stderr


def test_classify(workdir):
    result = run_cli(
        "dcgan_jax.evaluate", f"--workdir={workdir}", "--task=classify", "--labels_per_class=15"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(workdir, "eval_classify.json")) as f:
        rows = json.load(f)["rows"]
    assert [r["features"] for r in rows] == [
        "D features (trained)",
        "D features (random init)",
        "raw pixels",
    ]
    assert rows[0]["dim"] == (8 + 16 + 32) * 16 and rows[2]["dim"] == 32 * 32
    assert all(
        r["train_examples"] == 150 and r["test_examples"] == 360 and r["test_accuracy"] > 0.5
        for r in rows
    )
    assert "linear L2-SVM on digits" in result.stdout


def test_errors_are_one_line(workdir, tmp_path):
    one_line_error(
        run_cli(
            "dcgan_jax.evaluate", f"--workdir={workdir}", "--task=fid", "--extractor=inception"
        ),
        "--inception_weights",
    )
    one_line_error(
        run_cli("dcgan_jax.evaluate", f"--workdir={tmp_path / 'empty'}", "--task=fid"),
        "no checkpoints",
    )


def test_train_classifier(workdir, tmp_path):
    result = run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={workdir}",
        "--task=train_classifier",
        "--classifier_steps=20",
        f"--classifier_dir={tmp_path}/classifier",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "classifier" / "meta.json") as f:
        meta = json.load(f)
    assert meta["steps"] == 20 and meta["dataset"] == "digits" and 0 <= meta["test_accuracy"] <= 1
    one_line_error(
        run_cli(
            "dcgan_jax.evaluate",
            f"--workdir={workdir}",
            "--task=train_classifier",
            "--classifier_steps=0",
            f"--classifier_dir={tmp_path}/other",
        ),
        "--classifier_steps",
    )
