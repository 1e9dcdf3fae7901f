"""Linear probe, labelled-data helpers, the FID classifier, the training evaluator and the evaluate CLI."""

import json
import os

import jax
import numpy as np
import pytest

from tests.helpers import TINY_FLAGS, run_cli, tiny_config
from dcgan_jax.evaluation import classifier
from dcgan_jax.evaluation import fid, probe, tables
from dcgan_jax.evaluation import inception
from dcgan_jax.evaluation import distances
from dcgan_jax.nn import models
from dcgan_jax.errors import UserError

CLASSIFIER_FLAGS = ("--config.eval_classifier_steps=100", "--config.eval_classifier_width=4",
                    "--config.eval_classifier_feature_dim=16", "--config.eval_classifier_learning_rate=3e-3",
                    "--config.eval_classifier_batch_size=32")


def _eval_config(tmp_dir, **overrides):
    return tiny_config(eval_classifier_steps=100, eval_classifier_width=4, eval_classifier_feature_dim=16,
                       eval_classifier_learning_rate=3e-3, eval_classifier_batch_size=32,
                       eval_classifier_dir=str(tmp_dir), eval_num_samples=40, eval_kid_subsets=5,
                       eval_kid_subset_size=20, eval_batch_size=32, **overrides)


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory):
    """A tiny digits classifier saved to disk once for the module: (config, meta)."""
    config = _eval_config(tmp_path_factory.mktemp("classifier"))
    return config, classifier.train_and_save(config)


def test_select_per_class_and_validation_split():
    labels = np.repeat(np.arange(4), [5, 6, 7, 8])
    chosen = classifier.select_per_class(labels, 3, seed=0)
    assert np.array_equal(np.bincount(labels[chosen]), [3, 3, 3, 3]) and len(set(chosen)) == 12
    assert np.array_equal(chosen, classifier.select_per_class(labels, 3, seed=0))
    assert np.array_equal(classifier.select_per_class(labels, 0, seed=0), np.arange(26))
    with pytest.raises(UserError, match="only 5 examples"):
        classifier.select_per_class(labels, 6, seed=0)
    fit, val = classifier.validation_split(50, 0.2, seed=1)
    assert len(val) == 10 and len(fit) == 40 and not set(fit) & set(val)


def test_linear_svm_chooses_c_and_classifies_separable_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 20))
    labels = rng.integers(0, 3, 600)
    x = centers[labels] + rng.normal(size=(600, 20))
    config = tiny_config()
    result = evaluate.linear_svm(x[:400], labels[:400], x[400:], labels[400:], config)
    assert result["test_accuracy"] > 0.97 and result["C"] in config.eval_svm_c_values


def test_classifier_learns_a_synthetic_task():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64).astype(np.int32)
    images = np.zeros((64, 16, 16, 1), np.uint8)
    for k, label in enumerate(labels):  # class 0: bright top half, class 1: bright bottom half
        images[k, 8 * label:8 * label + 8] = 200
    config = tiny_config(eval_classifier_steps=60, eval_classifier_width=4, eval_classifier_feature_dim=8,
                         eval_classifier_max_shift=1)
    model, params = classifier.train_classifier(images, labels, config)
    logits, feats = classifier.predict(model, params, images, batch_size=10)
    assert np.mean(logits.argmax(-1) == labels) == 1.0 and feats.shape == (64, 8) and (feats >= 0).all()


def test_saved_classifier_round_trips(trained_classifier):
    config, meta = trained_classifier
    model, params, loaded_meta = classifier.load_classifier(config, train_if_missing=False)
    assert loaded_meta == meta and meta["dataset"] == "digits" and meta["feature_dim"] == 16
    test_images, test_labels = classifier.load_labelled("digits", "test", 32, 1)
    logits, feats = classifier.predict(model, params, test_images)
    assert np.mean(logits.argmax(-1) == test_labels) == pytest.approx(meta["test_accuracy"])
    assert meta["test_accuracy"] > 0.25  # 100 steps of a 4-channel net (0.55 here): well above chance (0.1)
    assert feats.shape == (len(test_images), 16)
    with pytest.raises(UserError, match="is for 32px"):
        classifier.load_classifier(_eval_config(config.eval_classifier_dir, image_size=64), False)
    with pytest.raises(UserError, match="no FID classifier"):
        classifier.load_classifier(_eval_config(os.path.join(config.eval_classifier_dir, "none")), False)


def test_training_evaluator(trained_classifier):
    config, _ = trained_classifier
    assert evaluate.make_training_evaluator(tiny_config(eval_every_steps=0), "/tmp/unused") is None
    config = config.copy_and_resolve_references()
    config.eval_every_steps = 10
    hook = evaluate.make_training_evaluator(config, "/tmp/unused")
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), config)
    first, again = hook(10, g_vars), hook(20, g_vars)
    assert first == again and set(first) == {"fid", "kid", "kid_std"}
    assert first["fid"] > 0 and np.isfinite(first["kid"]) and first["kid_std"] >= 0
    # The same numbers as computing the pieces by hand.
    extractor, _ = evaluate.make_feature_extractor(config)
    real = extractor(evaluate.real_images(config, "test", 40))
    from dcgan_jax.nn import generate
    fake = extractor(generate.generate(config, g_vars, evaluate.eval_z(config, 40)))
    assert first["fid"] == pytest.approx(distances.fid(real, fake), rel=1e-6)


def test_inception_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="needs InceptionV3 weights"):
        inception.make_extractor("")
    with pytest.raises(UserError, match="do not exist"):
        inception.make_extractor(str(tmp_path / "missing.npz"))


def test_format_table():
    text = evaluate.format_table([{"name": "a", "fid": 1.23456}, {"name": "longer", "fid": 10.0}])
    assert text.splitlines() == ["name    fid  ", "a       1.235", "longer  10   "]


@pytest.mark.slow
def test_evaluate_cli(tmp_path):
    workdir = str(tmp_path / "run")
    flags = TINY_FLAGS + CLASSIFIER_FLAGS + (f"--config.eval_classifier_dir={tmp_path / 'clf'}",)
    result = run_cli("dcgan_jax.main", f"--workdir={workdir}", "--config.num_train_steps=2", *flags)
    assert result.returncode == 0, result.stderr
    result = run_cli("dcgan_jax.evaluate", f"--workdir={workdir}", "--task=fid", "--num_samples=30")
    assert result.returncode == 0, result.stderr
    with open(os.path.join(workdir, "eval_fid.json")) as f:
        report = json.load(f)
    names = [row["images"] for row in report["rows"]]
    assert names == ["generator (step 2)", "generator (untrained)", "real 'train' images (floor)"]
    assert all(row["fid"] >= 0 and row["num_images"] == 30 for row in report["rows"])
    assert "generator (untrained)" in result.stdout and os.path.isdir(tmp_path / "clf")

    result = run_cli("dcgan_jax.evaluate", f"--workdir={workdir}", "--task=classify", "--labels_per_class=15")
    assert result.returncode == 0, result.stderr
    with open(os.path.join(workdir, "eval_classify.json")) as f:
        rows = json.load(f)["rows"]
    assert [r["features"] for r in rows] == ["D features (trained)", "D features (random init)", "raw pixels"]
    assert rows[0]["dim"] == (8 + 16 + 32) * 16 and rows[2]["dim"] == 32 * 32
    assert all(r["train_examples"] == 150 and r["test_examples"] == 360 and r["test_accuracy"] > 0.5
               for r in rows)

    result = run_cli("dcgan_jax.evaluate", f"--workdir={workdir}", "--task=fid", "--extractor=inception")
    assert result.returncode == 1 and "--inception_weights" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("dcgan_jax.evaluate", f"--workdir={tmp_path / 'empty'}", "--task=fid")
    assert result.returncode == 1 and "no checkpoints" in result.stderr and "Traceback" not in result.stderr


def _random_inception_npz(path):
    """Random weights with the FID InceptionV3's names and shapes (plus an fc layer the loader must ignore)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for key, shape in inception.param_shapes().items():
        if key.endswith("conv.weight"):
            arrays[key] = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape).astype(np.float32)
        elif key.endswith("running_var"):
            arrays[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            arrays[key] = rng.normal(0, 0.1 if "mean" in key or "bias" in key else 1.0, shape).astype(np.float32)
    arrays["fc.weight"] = np.zeros((1008, 2048), np.float32)
    np.savez(path, **arrays)
    return arrays


def _torch_fid_inception(w, x):
    """An independent PyTorch (NCHW, torch.nn.functional) forward of pytorch-fid's FID InceptionV3 up to pool3."""
    import torch
    import torch.nn.functional as F
    t = {k: torch.from_numpy(v) for k, v in w.items()}

    def conv(name, h, stride=1, padding=0):
        h = F.conv2d(h, t[f"{name}.conv.weight"], stride=stride, padding=padding)
        h = F.batch_norm(h, t[f"{name}.bn.running_mean"], t[f"{name}.bn.running_var"], t[f"{name}.bn.weight"],
                         t[f"{name}.bn.bias"], training=False, eps=0.001)
        return F.relu(h)

    avg = lambda h: F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)
    h = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    h = F.max_pool2d(conv("Conv2d_2b_3x3", conv("Conv2d_2a_3x3", conv("Conv2d_1a_3x3", h, 2)), padding=1), 3, 2)
    h = F.max_pool2d(conv("Conv2d_4a_3x3", conv("Conv2d_3b_1x1", h)), 3, 2)
    for n in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        b5 = conv(f"{n}.branch5x5_2", conv(f"{n}.branch5x5_1", h), padding=2)
        bd = conv(f"{n}.branch3x3dbl_3", conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1),
                  padding=1)
        h = torch.cat([conv(f"{n}.branch1x1", h), b5, bd, conv(f"{n}.branch_pool", avg(h))], 1)
    n = "Mixed_6a"
    bd = conv(f"{n}.branch3x3dbl_3", conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1), 2)
    h = torch.cat([conv(f"{n}.branch3x3", h, 2), bd, F.max_pool2d(h, 3, 2)], 1)
    for n in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        b7 = conv(f"{n}.branch7x7_3", conv(f"{n}.branch7x7_2", conv(f"{n}.branch7x7_1", h), padding=(0, 3)),
                  padding=(3, 0))
        bd = conv(f"{n}.branch7x7dbl_1", h)
        for i, pad in zip(range(2, 6), ((3, 0), (0, 3), (3, 0), (0, 3))):
            bd = conv(f"{n}.branch7x7dbl_{i}", bd, padding=pad)
        h = torch.cat([conv(f"{n}.branch1x1", h), b7, bd, conv(f"{n}.branch_pool", avg(h))], 1)
    n = "Mixed_7a"
    b3 = conv(f"{n}.branch3x3_2", conv(f"{n}.branch3x3_1", h), 2)
    b7 = conv(f"{n}.branch7x7x3_3", conv(f"{n}.branch7x7x3_2", conv(f"{n}.branch7x7x3_1", h), padding=(0, 3)),
              padding=(3, 0))
    h = torch.cat([b3, conv(f"{n}.branch7x7x3_4", b7, 2), F.max_pool2d(h, 3, 2)], 1)
    for n, pool in (("Mixed_7b", avg), ("Mixed_7c", lambda v: F.max_pool2d(v, 3, 1, 1))):
        b3 = conv(f"{n}.branch3x3_1", h)
        b3 = torch.cat([conv(f"{n}.branch3x3_2a", b3, padding=(0, 1)),
                        conv(f"{n}.branch3x3_2b", b3, padding=(1, 0))], 1)
        bd = conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1)
        bd = torch.cat([conv(f"{n}.branch3x3dbl_3a", bd, padding=(0, 1)),
                        conv(f"{n}.branch3x3dbl_3b", bd, padding=(1, 0))], 1)
        h = torch.cat([conv(f"{n}.branch1x1", h), b3, bd, conv(f"{n}.branch_pool", pool(h))], 1)
    return F.adaptive_avg_pool2d(h, 1).flatten(1).numpy()


def test_inception_matches_a_pytorch_forward(tmp_path):
    torch = pytest.importorskip("torch", reason="the reference forward is written in PyTorch")
    path = str(tmp_path / "inception.npz")
    weights = _random_inception_npz(path)
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    got = inception.make_extractor(path, batch_size=2)(images)
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = _torch_fid_inception(weights, x)
    assert got.shape == (2, 2048) and np.abs(expected).mean() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())


def test_inception_weights_are_checked(tmp_path):
    shapes = inception.param_shapes()
    assert len(shapes) == 5 * 94 and shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    arrays = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    del arrays["Mixed_6e.branch1x1.bn.bias"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(UserError, match="lacks 1 InceptionV3 arrays"):
        inception.load_weights(str(tmp_path / "missing.npz"))
    arrays["Mixed_6e.branch1x1.bn.bias"] = np.zeros(5, np.float32)
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(UserError, match="expected"):
        inception.load_weights(str(tmp_path / "shape.npz"))


def test_load_labelled_tfds_resizes_and_reports_errors(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    rng = np.random.default_rng(0)
    fake = (rng.integers(0, 256, (3, 28, 28, 1)).astype(np.uint8), np.array([3, 1, 4]))
    calls = {}

    def fake_load(name, **kwargs):
        calls.update(kwargs, name=name)
        if name != "mnist":
            raise ValueError("Dataset celeb_a has no supervised keys")
        return fake

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda data: data)
    images, labels = classifier.load_labelled("mnist", "train", 32, 1, data_dir="/data/tfds")
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8 and labels.tolist() == [3, 1, 4]
    assert calls["as_supervised"] and calls["data_dir"] == "/data/tfds" and calls["split"] == "train"
    from PIL import Image
    expected = np.asarray(Image.fromarray(fake[0][1, ..., 0]).resize((32, 32), Image.BICUBIC))
    np.testing.assert_array_equal(images[1, ..., 0], expected)
    with pytest.raises(UserError, match="no supervised keys.*labelled dataset"):
        classifier.load_labelled("celeb_a", "train", 32, 1)
