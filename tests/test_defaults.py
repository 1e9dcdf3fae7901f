"""The base config, the shipped configs and loading by path (configs saved by earlier versions:
tests/test_config_fields.py)."""

import glob
import os

import ml_collections
import pytest

from dcgan_jax import defaults
from dcgan_jax.nn import models
from tests.helpers import REPO

SHIPPED = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "configs", "*.py")))


def _leaves(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_by_name_and_by_path_and_build(name):
    by_name = defaults.load_config(name)
    by_path = defaults.load_config(os.path.join(REPO, "configs", f"{name}.py"))
    assert by_name.to_dict() == by_path.to_dict()
    assert set(dict(_leaves(by_name))) == set(
        dict(_leaves(defaults.get_config()))
    )  # no field of their own
    models.build_models(by_name.model)


def test_a_configs_folder_in_the_working_directory_changes_nothing(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.py").write_text(
        "raise RuntimeError('the user\\'s own configs/base.py')\n"
    )
    (tmp_path / "configs" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert defaults.load_config(os.path.join(REPO, "configs", "lsun.py")).model.image_size == 64
    assert defaults.load_config("digits").data.dataset == "digits"


def test_missing_config_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        defaults.load_config(str(tmp_path / "nope.py"))
