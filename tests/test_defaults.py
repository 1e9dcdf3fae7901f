"""The base config, the shipped configs, loading by path, and configs saved by earlier versions."""

import glob
import json
import os

import ml_collections
import pytest

from dcgan_jax import defaults
from dcgan_jax.nn import models
from tests.helpers import FIXTURES, REPO

SHIPPED = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "configs", "*.py")))


def _leaves(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_evaluation_fields_are_grouped():
    config = defaults.get_config()
    flat = dict(_leaves(config))
    assert not [k for k in flat if k.startswith("eval_")]
    assert {k.split(".")[1] for k in flat if k.startswith("eval.")} >= {"every_steps", "classifier", "probe"}
    assert len([k for k in config if not isinstance(config[k], ml_collections.ConfigDict)]) <= 40


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_by_name_and_by_path_and_build(name):
    by_name = defaults.load_config(name)
    by_path = defaults.load_config(os.path.join(REPO, "configs", f"{name}.py"))
    assert by_name.to_dict() == by_path.to_dict()
    assert set(dict(_leaves(by_name))) == set(dict(_leaves(defaults.get_config())))  # no field of their own
    models.build_models(by_name)


def test_a_configs_folder_in_the_working_directory_changes_nothing(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.py").write_text("raise RuntimeError('the user\\'s own configs/base.py')\n")
    (tmp_path / "configs" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert defaults.load_config(os.path.join(REPO, "configs", "lsun.py")).image_size == 64
    assert defaults.load_config("digits").dataset == "digits"


def test_missing_config_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        defaults.load_config(str(tmp_path / "nope.py"))


def test_renamed_fields_all_exist_today():
    flat = dict(_leaves(defaults.get_config()))
    assert set(defaults.RENAMED_FIELDS.values()) <= set(flat)
    assert all(old.startswith("eval_") for old in defaults.RENAMED_FIELDS)


def test_a_flat_config_of_the_previous_version_maps_onto_the_groups():
    with open(os.path.join(FIXTURES, "run_v0", "config.json")) as f:
        saved = json.load(f)
    saved.update(eval_every_steps=7, eval_classifier_steps=11, eval_svm_c_values=[0.5, 2.0],
                 eval_labels_per_class=3, upsample="subpixel_gemm")
    config = defaults.from_saved(saved)
    assert (config.eval.every_steps, config.eval.classifier.steps, config.eval.probe.labels_per_class) == (7, 11, 3)
    assert config.eval.probe.svm_c_values == (0.5, 2.0)
    assert config.upsample == "subpixel"  # a retired name of the same math
    assert (config.g_width, config.latent_dim) == (8, 16)  # the saved values win over the defaults
    assert config.eval.kid_subsets == defaults.get_config().eval.kid_subsets  # unsaved fields: today's defaults
    assert not [k for k in config if k.startswith("eval_")]


def test_a_config_saved_by_this_version_round_trips():
    config = defaults.load_config("lsun")
    config.eval.classifier.steps = 5
    restored = defaults.from_saved(json.loads(config.to_json()))
    assert restored.to_dict() == config.to_dict()
