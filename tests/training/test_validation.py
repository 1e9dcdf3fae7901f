"""Config validation as a class: every numeric field has a range, and a value outside it (-1, nan) is one
UserError naming the field, whichever field it is; every shipped config passes."""

import glob
import math
import os

import pytest

from dcgan_jax import defaults
from dcgan_jax.errors import UserError
from dcgan_jax.training import validation
from tests.helpers import REPO


def _numeric_fields(config, prefix=""):
    for key, value in config.items():
        if hasattr(value, "items"):
            yield from _numeric_fields(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}"


def _set(config, dotted, value):
    *groups, last = dotted.split(".")
    node = config
    for group in groups:
        node = node[group]
    node[last] = value


NUMERIC = sorted(_numeric_fields(defaults.get_config()))


def test_every_numeric_field_has_a_range():
    assert sorted(validation.RANGES) == NUMERIC  # a new numeric field needs its rule in validation.RANGES


@pytest.mark.parametrize("field", [f for f in NUMERIC if validation.RANGES.get(f) != "any_integer"])
def test_a_value_out_of_range_is_one_line_naming_the_field(field):
    config = defaults.get_config()
    default = validation._get(config, field)
    bad = [-1] if isinstance(default, int) else [-1.0, math.nan]
    for value in bad:
        _set(config, field, value)
        with pytest.raises(UserError, match=f"{field}={value}") as error:
            validation.validate_config(config)
        assert "\n" not in str(error.value)


def test_seeds_may_be_any_integer():
    config = defaults.get_config()
    config.seed, config.shuffle_seed_offset = -7, -1
    validation.validate_config(config)


@pytest.mark.parametrize("dtype", ["int32", "bool", "uint8"])
def test_compute_dtype_must_be_floating(dtype):
    config = defaults.get_config()
    config.compute_dtype = dtype
    with pytest.raises(UserError, match=f"compute_dtype='{dtype}' must be a floating type"):
        validation.validate_config(config)


def test_svm_c_values_must_be_positive():
    config = defaults.get_config()
    config.eval.probe.svm_c_values = (1e-3, -1.0)
    with pytest.raises(UserError, match="svm_c_values"):
        validation.validate_config(config)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_shipped_config_is_valid(path):
    validation.validate_config(defaults.load_config(path))
