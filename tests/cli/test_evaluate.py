"""`python -m dcgan_jax.evaluate`: the fid and classify tables of a trained run, and its one-line errors."""

import json
import os
import shutil

import numpy as np
import pytest

from dcgan_jax import train
from tests.data.test_idx import write_set
from tests.helpers import fid_weights, one_line_error, run_cli, tiny_config

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


def striped_idx_folder(folder, train=200, test=50):
    """A tiny Fashion-MNIST stand-in in idx files: 28x28 greys whose class (0-9) is a bright band
    at rows 2k..2k+2 over noise, so raw pixels separate the classes."""
    rng = np.random.default_rng(0)
    for word, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + 2 * label : 6 + 2 * label] = 220
        write_set(str(folder), word, images, labels.astype(np.uint8))
    return str(folder)


def test_classify_only_the_rows_asked_for(workdir):
    """--probe_features: the rows to fit, in that order; a name that is not one is one line."""
    rows, _ = classify_rows(workdir, "--labels_per_class=15", "--probe_features=pixels,trained")
    assert [r["features"] for r in rows] == ["raw pixels", "D features (trained)"]
    assert rows[0]["dim"] == 32 * 32 and rows[1]["dim"] == (8 + 16 + 32) * 16
    # a later command's rows join the table of the same step and data
    merged, stdout = classify_rows(workdir, "--labels_per_class=15", "--probe_features=random_init")
    assert merged[:2] == rows and merged[2]["features"] == "D features (random init)"
    assert "kept 2 row(s) of an earlier command" in stdout
    # other data (another number of labels) starts a new table
    fresh, stdout = classify_rows(workdir, "--labels_per_class=10", "--probe_features=pixels")
    assert [(r["features"], r["train_examples"]) for r in fresh] == [("raw pixels", 100)]
    assert "kept" not in stdout
    one_line_error(
        run_cli(
            "dcgan_jax.evaluate", f"--workdir={workdir}", "--task=classify", "--probe_features=D"
        ),
        "eval.probe.features=D",
        "--probe_features=trained,pixels",
    )


def classify_rows(workdir, *flags):
    """(rows of eval_classify.json, stdout) of `evaluate --task=classify` with `flags`."""
    result = run_cli("dcgan_jax.evaluate", f"--workdir={workdir}", "--task=classify", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(workdir, "eval_classify.json")) as f:
        return json.load(f)["rows"], result.stdout


def test_classify_a_run_trained_on_idx_files_on_its_own_folder(tmp_path):
    """configs/fashion_mnist.py's case: a run trained on idx files is probed on their train split
    (all labels, or N per class) and scored on their test split, with no --dataset."""
    folder = striped_idx_folder(tmp_path / "fashion")
    workdir = str(tmp_path / "run")
    config = tiny_config(num_train_steps=2, data=dict(dataset="idx", data_path=folder))
    train.train_and_evaluate(config, workdir)
    for flags, train_examples in (((), 200), (("--labels_per_class=5",), 50)):
        rows, stdout = classify_rows(workdir, *flags)
        assert [r["features"] for r in rows] == [
            "D features (trained)",
            "D features (random init)",
            "raw pixels",
        ]
        assert rows[0]["dim"] == rows[1]["dim"] == (8 + 16 + 32) * 16 and rows[2]["dim"] == 32 * 32
        assert all(r["train_examples"] == train_examples and r["test_examples"] == 50 for r in rows)
        assert rows[2]["test_accuracy"] > 0.9  # the bands are linearly separable in pixels
        assert f"linear L2-SVM on idx files in {folder} ({train_examples} labelled" in stdout


def test_classify_on_an_idx_folder_named_with_dataset(workdir, tmp_path):
    """A run trained on the digits, probed on idx files named by --dataset=idx:DIR."""
    folder = striped_idx_folder(tmp_path / "fashion")
    rows, stdout = classify_rows(workdir, f"--dataset=idx:{folder}", "--labels_per_class=10")
    assert len(rows) == 3 and all(
        r["train_examples"] == 100 and r["test_examples"] == 50 for r in rows
    )
    assert rows[2]["test_accuracy"] > 0.9 and f"idx files in {folder}" in stdout


def test_classify_on_a_bad_idx_folder_is_one_line(workdir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(
        run_cli(
            "dcgan_jax.evaluate",
            f"--workdir={workdir}",
            "--task=classify",
            f"--dataset=idx:{empty}",
        ),
        "no idx train images",
        str(empty),
    )
    one_line_error(  # the FID classifier's idx data is the run's own folder
        run_cli(
            "dcgan_jax.evaluate", f"--workdir={workdir}", "--task=fid", f"--dataset=idx:{empty}"
        ),
        "is for --task=classify",
    )
