"""Every writer of the tools' outputs (sample, explore, evaluate) and of the pictures training draws, against a full
disk, a read-only folder and a too-long name: one UserError naming the file, and what was saved before stays whole
(no 0-byte file, no temporary file left). A write killed halfway leaves the old file or classifier; `--output` is
refused before any image is generated."""

import errno
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import atomic_write, visualize
from dcgan_jax.analysis import sampling
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import classifier, tables
from tests import hostile
from tests.helpers import eval_config, one_line_error, run_cli

IMAGES = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 1), dtype=np.uint8)
Z = np.zeros((16, 8), np.float32)
META = dict(image_size=16, num_channels=1, num_classes=3, width=2, feature_dim=4)


def _classifier_params(seed=0):
    model = classifier.SmallCNN(META["num_classes"], META["width"], META["feature_dim"])
    return model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 16, 16, 1)))["params"]


def _metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "d_loss": 1.0 / (s + 1), "g_loss": 2.0 - s / 10} for s in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _table(path, tmp_path):
    folder, name = os.path.split(path)
    task = name[len("eval_") : -len(".json")]
    assert tables.save_table(folder, task, 5, "header", [{"fid": 1.5}]) == path


# name: (the default file name, whether the writer takes any name (so it can write onto old.bin), write(path))
WRITERS = {
    "save_samples_npz": ("s.npz", False, lambda p, t: sampling.save_samples(p, IMAGES, Z)),
    "save_samples_png": ("s.png", False, lambda p, t: sampling.save_samples(p, IMAGES, Z)),
    "save_image": ("grid.png", False, lambda p, t: visualize.save_image(p, IMAGES[0])),
    "save_gif": ("anim.gif", True, lambda p, t: visualize.save_gif(p, list(IMAGES))),
    "plot_losses": ("loss_curve.png", True, lambda p, t: visualize.plot_losses(_metrics(t), p)),
    "save_table": ("eval_fid.json", False, _table),
    "save_classifier": (
        "classifier",
        True,
        lambda p, t: classifier.save_classifier(p, _classifier_params(), META),
    ),
}


@hostile.needs_root
@pytest.mark.parametrize("kind", hostile.KINDS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failed_write_is_one_line_and_changes_nothing(tmp_path, writer, kind):
    name, any_name, write = WRITERS[writer]
    with hostile.hostile_folder(tmp_path, kind) as folder:
        onto_old = any_name and kind != "too_long"
        path = os.path.join(folder, hostile.OLD if onto_old else hostile.target_name(kind, name))
        with pytest.raises(UserError) as raised:
            write(path, tmp_path)
        message = str(raised.value)
        assert "\n" not in message and path in message, message
        reasons = {"full": ["No space left"], "readonly": ["Read-only"], "too_long": ["too long"]}
        reasons["too_long"].append("longer than 255 bytes")  # refused by the check before the work
        assert any(reason in message for reason in reasons[kind]), message
        assert hostile.unchanged(folder)
        assert sorted(os.listdir(folder)) == sorted(
            [hostile.OLD] + (["filler"] if kind == "full" else [])
        )  # no 0-byte file of the target


@hostile.needs_root
def test_a_classifier_save_failing_inside_orbax_is_one_line(tmp_path, monkeypatch):
    """Past the check before the work (e.g. the disk filled up while training): orbax's own error, one line."""
    monkeypatch.setattr(atomic_write, "check_writable", lambda path: None)
    with hostile.hostile_folder(tmp_path, "full") as folder:
        path = os.path.join(folder, "classifier")
        with pytest.raises(UserError, match="No space left") as raised:
            classifier.save_classifier(path, _classifier_params(), META)
        assert "\n" not in str(raised.value) and path in str(raised.value)
        assert hostile.unchanged(folder) and not os.path.exists(path)


def test_a_kill_halfway_through_a_samples_file_leaves_the_old_one(tmp_path, monkeypatch):
    path = str(tmp_path / "big.npz")
    sampling.save_samples(path, IMAGES, Z)
    before = open(path, "rb").read()

    def killed(file, **arrays):
        file.write(b"half of the new file")
        raise KeyboardInterrupt  # what a Ctrl-C (or a kill, which runs nothing at all) leaves

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        sampling.save_samples(path, IMAGES[:2], Z[:2])
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["big.npz"]


def _load(folder):
    config = eval_config(folder)
    return classifier.load_classifier(
        config.eval.classifier, config.data, 16, 1, train_if_missing=False
    )


@pytest.mark.parametrize("where", ["params", "meta", "swap"])
def test_a_classifier_save_killed_halfway_leaves_the_old_classifier(tmp_path, monkeypatch, where):
    folder = str(tmp_path / "clf")
    old = _classifier_params(0)
    classifier.save_classifier(folder, old, dict(META, test_accuracy=0.5))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "params":  # mid-checkpoint: orbax's save raises
        import orbax.checkpoint as ocp

        monkeypatch.setattr(ocp.StandardCheckpointer, "save", killed)
    elif where == "meta":  # the params written, meta.json not
        monkeypatch.setattr(atomic_write, "write_text", killed)
    else:  # both written, the old folder not yet renamed aside
        monkeypatch.setattr(classifier, "_swap_into_place", killed)
    with pytest.raises(KeyboardInterrupt):
        classifier.save_classifier(folder, _classifier_params(1), dict(META, test_accuracy=0.9))
    monkeypatch.undo()
    _, params, meta = _load(folder)
    assert meta["test_accuracy"] == 0.5
    jax.tree.map(np.testing.assert_array_equal, params, old)
    assert os.listdir(tmp_path) == ["clf"]  # no temporary folder left
    new = _classifier_params(1)
    classifier.save_classifier(folder, new, dict(META, test_accuracy=0.9))  # and a save that ends
    _, params, meta = _load(folder)
    assert meta["test_accuracy"] == 0.9 and os.listdir(tmp_path) == ["clf"]
    jax.tree.map(np.testing.assert_array_equal, params, new)


def test_a_classifier_swap_that_fails_puts_the_old_one_back(tmp_path, monkeypatch):
    folder = str(tmp_path / "clf")
    old = _classifier_params(0)
    classifier.save_classifier(folder, old, dict(META, test_accuracy=0.5))
    rename, calls = os.rename, []

    def refused(src, dst):
        if os.path.dirname(dst) == str(tmp_path):  # not orbax's own renames inside the folder
            calls.append((src, dst))
            if len(calls) == 2:  # the old folder went aside; the new one cannot take its place
                raise OSError(errno.EIO, "Input/output error")
        rename(src, dst)

    monkeypatch.setattr(os, "rename", refused)
    with pytest.raises(UserError, match=f"cannot write {folder} \\(Input/output error\\)"):
        classifier.save_classifier(folder, _classifier_params(1), dict(META, test_accuracy=0.9))
    monkeypatch.undo()
    _, params, meta = _load(folder)
    assert meta["test_accuracy"] == 0.5 and os.listdir(tmp_path) == ["clf"]
    jax.tree.map(np.testing.assert_array_equal, params, old)
    assert [dst for _, dst in calls] == [calls[0][1], folder, folder]  # aside, in (refused), back


@pytest.mark.parametrize(
    "damage", ["no_params", "garbage_meta", "meta_not_an_object", "meta_lacks_keys"]
)
def test_a_damaged_classifier_is_one_line_saying_to_train_it_again(tmp_path, damage):
    folder = str(tmp_path / "clf")
    classifier.save_classifier(folder, _classifier_params(), META)
    meta = os.path.join(folder, classifier.META)
    if damage == "no_params":
        import shutil

        shutil.rmtree(os.path.join(folder, classifier.PARAMS))
    else:
        text = {
            "garbage_meta": "{not json",
            "meta_not_an_object": "[1, 2]",
            "meta_lacks_keys": "{}",
        }
        with open(meta, "w") as f:
            f.write(text[damage])
    with pytest.raises(UserError) as raised:
        _load(folder)
    message = str(raised.value)
    assert "\n" not in message and folder in message and "damaged" in message
    assert "--task=train_classifier" in message and "delete the folder" in message


@hostile.needs_root
@pytest.mark.parametrize("kind", ["readonly", "too_long"])
def test_sample_refuses_an_unwritable_output_before_any_work(trained_run, tmp_path, kind):
    """The output is checked first: before the run is opened (a missing workdir is not what is reported) and
    before 200,000 samples are generated."""
    with hostile.hostile_folder(tmp_path, kind) as folder:
        for extension in (".npz", ".png"):
            output = os.path.join(folder, hostile.target_name(kind, "samples" + extension))
            for workdir in (trained_run, str(tmp_path / "missing")):
                result = run_cli(
                    "dcgan_jax.sample",
                    f"--workdir={workdir}",
                    "--num_samples=200000",
                    f"--output={output}",
                    timeout=120,
                )
                one_line_error(result, "cannot write", output)
                assert "wrote" not in result.stdout
        assert hostile.unchanged(folder) and os.listdir(folder) == [hostile.OLD]


@hostile.needs_root
def test_explore_and_evaluate_refuse_an_unwritable_destination_before_any_work(
    trained_run, tmp_path
):
    with hostile.hostile_folder(tmp_path, "readonly") as folder:
        output = os.path.join(folder, "walk.gif")
        result = run_cli(
            "dcgan_jax.explore",
            f"--workdir={tmp_path}/missing",
            "--mode=walk",
            f"--output={output}",
        )
        one_line_error(result, "cannot write", output, "Read-only")
        classifier_dir = os.path.join(folder, "classifier")
        result = run_cli(
            "dcgan_jax.evaluate",
            f"--workdir={trained_run}",
            "--task=train_classifier",
            f"--classifier_dir={classifier_dir}",
            "--classifier_steps=100000",
            timeout=120,
        )
        one_line_error(result, "cannot write", classifier_dir, "Read-only")
        assert "saved the FID classifier" not in result.stdout
        assert hostile.unchanged(folder) and os.listdir(folder) == [hostile.OLD]
