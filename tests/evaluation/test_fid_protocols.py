"""The published FID protocols (config.eval.protocol, `evaluate --protocol`) and the cache of real
images' features beside the run (evaluation/real_features.py)."""

import json
import os
import shutil

import numpy as np
import pytest

from dcgan_jax import config_fields, defaults, run_files
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import fid, real_features
from tests.helpers import one_line_error, run_cli


def test_protocols_set_num_samples_and_split():
    ev = defaults.get_config().eval
    assert (ev.protocol, ev.num_samples, ev.split) == ("", 1000, "test")
    assert (real_features.apply_protocol(ev).num_samples, ev.split) == (1000, "test")
    ev.num_samples, ev.split = 77, "train"  # a protocol replaces both
    ev.protocol = "test10k"
    resolved = real_features.apply_protocol(ev)
    assert (resolved.num_samples, resolved.split) == (10_000, "test")
    assert (ev.num_samples, ev.split) == (77, "train")  # a copy: the config is left as it was
    ev.protocol = "train50k"
    resolved = real_features.apply_protocol(ev)
    assert (resolved.num_samples, resolved.split) == (50_000, "train")
    assert set(config_fields.CHOICES["eval.protocol"]) == {"", *real_features.PROTOCOLS}


def test_an_unknown_protocol_is_refused():
    config = defaults.get_config()
    config.eval.protocol = "test50k"
    with pytest.raises(UserError, match="eval.protocol='test50k' is not supported"):
        config_fields.validate(config)


@pytest.fixture
def counted(fid_classifier, monkeypatch):
    """(config, calls): the classifier config, and the (split, num) of every read of real images."""
    calls = []
    read = fid._real_choice

    def counting(model, data, split, num, seed, seed_offset=0):
        calls.append((split, num))
        return read(model, data, split, num, seed, seed_offset)

    monkeypatch.setattr(fid, "_real_choice", counting)
    return fid_classifier[0].copy_and_resolve_references(), calls


def _features(config, workdir, split="test"):
    ev, model, data, seed = config.eval, config.model, config.data, config.seed
    extractor, _ = fid.make_feature_extractor(ev, model, data, seed)
    return fid.real_image_features(ev, model, data, extractor, split, seed, workdir)


def _cached(workdir):
    folder = run_files.path(workdir, run_files.REAL_FEATURES)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_real_features_are_cached_once_and_keyed(counted, tmp_path):
    config, calls = counted
    workdir = str(tmp_path)
    first = _features(config, workdir)
    assert calls == [("test", 40)] and len(_cached(workdir)) == 1
    again = _features(config, workdir)
    assert calls == [("test", 40)]  # read from the cache, not the images
    np.testing.assert_array_equal(first, again)
    _features(config, workdir, split="train")  # another split: another file
    config.eval.num_samples = 30  # another size: another file
    _features(config, workdir)
    assert calls[1:] == [("train", 40), ("test", 30)] and len(_cached(workdir)) == 3
    assert _features(config, "") is not None and len(calls) == 4  # no workdir: no cache
    # Another extractor (or other weights) is another key.
    ev, model, data = config.eval, config.model, config.data
    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"not read: only hashed")
    key = real_features.key(ev, model, data, "test", 30, config.seed)
    ev.update(dict(feature_extractor="inception", inception_weights=str(weights)))
    inception_key = real_features.key(ev, model, data, "test", 30, config.seed)
    assert inception_key["inception_sha1"] and "classifier_dir" not in inception_key
    assert real_features.cache_file(workdir, key) != real_features.cache_file(
        workdir, inception_key
    )


def test_the_whole_split_is_cached_once_for_every_seed(counted, tmp_path):
    """num_samples >= the split's size (the test10k protocol on its dataset): every seed takes the
    same images, so a population's members (one seed each) share one file; a subset is per seed."""
    config, calls = counted
    workdir = str(tmp_path)
    config.eval.num_samples = 10**6  # more than the digits' 360 test images: all of them
    first = _features(config, workdir)
    config.seed += 1
    np.testing.assert_array_equal(_features(config, workdir), first)
    assert calls == [("test", 10**6)] and len(_cached(workdir)) == 1
    key = real_features.key(config.eval, config.model, config.data, "test", 10**6, None)
    assert os.path.isfile(real_features.cache_file(workdir, key)) and key["seed"] == "whole split"
    # the same images computed for the new seed without the cache: the same features
    np.testing.assert_array_equal(_features(config, ""), first)
    config.eval.num_samples = 40  # a seeded subset: one file per seed
    _features(config, workdir)
    config.seed += 1
    _features(config, workdir)
    assert calls[2:] == [("test", 40)] * 2 and len(_cached(workdir)) == 3


def test_a_damaged_cache_is_recomputed(counted, tmp_path):
    config, calls = counted
    workdir = str(tmp_path)
    first = _features(config, workdir)
    (name,) = _cached(workdir)
    path = os.path.join(run_files.path(workdir, run_files.REAL_FEATURES), name)
    with open(path, "rb") as f:
        whole = f.read()
    for reads, damage in enumerate((b"", b"PK\x03\x04 truncated", whole[:100]), start=2):
        with open(path, "wb") as f:
            f.write(damage)
        np.testing.assert_array_equal(_features(config, workdir), first)
        assert len(calls) == reads  # recomputed, and written whole again
    assert [split for split, _ in calls] == ["test"] * 4
    np.testing.assert_array_equal(_features(config, workdir), first)
    assert len(calls) == 4  # whole again


def test_the_training_evaluator_caches_in_its_workdir(counted, tmp_path):
    config, calls = counted
    config.eval.every_steps = 10
    parts = (config.eval, config.model, config.data, config.seed, str(tmp_path))
    first = fid.make_training_evaluator(*parts)
    second = fid.make_training_evaluator(*parts)
    assert calls == [("test", 40)]
    np.testing.assert_array_equal(first.real_features, second.real_features)
    config.eval.protocol = "train50k"  # the protocol's split and size
    assert fid.make_training_evaluator(*parts).z.shape[0] == 50_000
    assert calls[-1] == ("train", 50_000)


@pytest.mark.slow
def test_evaluate_with_a_protocol(trained_run, fid_classifier, tmp_path):
    workdir = shutil.copytree(trained_run, str(tmp_path / "run"))
    args = (
        "dcgan_jax.evaluate",
        f"--workdir={workdir}",
        "--task=fid",
        "--protocol=test10k",
        "--num_samples=20",  # after the protocol's 10,000: a small test
        f"--classifier_dir={fid_classifier[0].eval.classifier.dir}",
    )
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "(protocol test10k)" in first.stdout and "cached the real images'" in first.stdout
    assert len(_cached(workdir)) == 2  # the test split and the train images of the floor row
    with open(run_files.eval_table(workdir, "fid")) as f:
        rows = json.load(f)["rows"]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "cached the real images'" not in again.stdout and len(_cached(workdir)) == 2
    assert again.stdout.count("read the real images' features from") == 2
    with open(run_files.eval_table(workdir, "fid")) as f:
        assert json.load(f)["rows"] == rows
    bad = run_cli("dcgan_jax.evaluate", f"--workdir={workdir}", "--task=fid", "--protocol=x")
    one_line_error(bad, "protocol")
