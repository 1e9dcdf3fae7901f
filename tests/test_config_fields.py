"""Config knowledge in one module: validation as a class (every numeric field has a range, and a value outside it
(-1, nan, an integer past int32 or a seed past 32 bits, a run no memory holds) is one UserError naming the field,
whichever field it is; every shipped config passes), the fields of
earlier versions mapped onto today's groups, old names refused with their new place, and the architecture check."""

import glob
import json
import math
import os

import ml_collections
import pytest

from dcgan_jax import config_fields, defaults, memory
from dcgan_jax.errors import UserError
from dcgan_jax.training import losses, parallel
from tests.helpers import FIXTURES, REPO, tiny_config


def _numeric_fields(config, prefix=""):
    for key, value in config.items():
        if hasattr(value, "items"):
            yield from _numeric_fields(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}"


NUMERIC = sorted(_numeric_fields(defaults.get_config()))


def test_every_numeric_field_has_a_range():
    assert sorted(config_fields.RANGES) == NUMERIC  # a new numeric field needs its rule in RANGES


@pytest.mark.parametrize("field", NUMERIC)
def test_a_value_out_of_range_is_one_line_naming_the_field(field):
    config = defaults.get_config()
    default = config_fields.get(config, field)
    bad = [-1] if isinstance(default, int) else [-1.0, math.nan]
    for value in bad:
        config_fields.set_field(config, field, value)
        with pytest.raises(UserError, match=f"{field}={value}") as error:
            config_fields.validate(config)
        assert "\n" not in str(error.value)


INTEGERS = [f for f in NUMERIC if isinstance(config_fields.get(defaults.get_config(), f), int)]


def test_every_integer_field_has_a_bounded_integer_rule():
    integer_rules = {"count", "count_or_zero", "seed"}
    assert {config_fields.RANGES[f] for f in INTEGERS} <= integer_rules
    assert {f for f, rule in config_fields.RANGES.items() if rule in integer_rules} == set(INTEGERS)


@pytest.mark.parametrize("field", INTEGERS)
def test_an_integer_past_what_its_use_holds_is_one_line(field):
    """Steps and counts beyond int32 (the step counter's type), seeds beyond 32 bits (PRNGKey
    keeps 32: a larger seed silently repeats a smaller one's numbers)."""
    config = defaults.get_config()
    limit = config_fields.SEEDS if config_fields.RANGES[field] == "seed" else 2**31
    config_fields.set_field(config, field, limit)
    with pytest.raises(
        UserError, match=f"{field}={limit} (must be an integer|is not supp)"
    ) as error:
        config_fields.validate(config)
    assert "\n" not in str(error.value)


def test_seeds_span_32_bits():
    config = defaults.get_config()
    config.seed, config.data.shuffle_seed_offset = 2**32 - 1, 2**32 - 1
    config_fields.validate(config)
    config.num_train_steps = config.checkpoint_every_steps = 2**31 - 1
    config_fields.validate(config)
    for seed in (-1, 2**32, 99999999999999999999):
        config.seed = seed
        with pytest.raises(
            UserError, match=f"seed={seed} must be an integer in \\[0, 4294967295\\]"
        ):
            config_fields.validate(config)


def test_the_memory_estimate_allocates_nothing_whatever_the_sizes():
    config = defaults.get_config()
    config.model.latent_dim = config.model.g_width = config.model.d_width = 2**31 - 1
    estimate = config_fields._training_bytes(config)  # abstract shapes: returns at once
    assert estimate > 2**70  # about 25 ZiB
    shipped = config_fields._training_bytes(defaults.load_config("lsun"))
    assert 2**29 < shipped < 2**31  # XLA's own for the lsun step: 0.8 GB


@pytest.mark.parametrize(
    "sizes, field",
    [
        (dict(model=dict(latent_dim=2**31 - 1)), "model.latent_dim=2147483647"),
        (dict(model=dict(g_width=2**20)), "model.g_width=1048576"),
        (dict(batch_size=2**30), "batch_size=1073741824"),
        (dict(num_fixed_samples=2**31 - 1), "num_fixed_samples=2147483647"),
    ],
)
def test_a_run_no_memory_holds_is_one_line_naming_the_field(sizes, field, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**30)  # the same on any machine
    config = tiny_config(**sizes)
    with pytest.raises(UserError, match="training needs about .* of memory per device") as error:
        config_fields.validate(config)
    message = str(error.value)
    assert f"lower {field}" in message and "is available" in message and "\n" not in message
    config_fields.validate(tiny_config())  # the tiny run fits


@pytest.mark.parametrize("dtype", ["int32", "bool", "uint8", "foo", "bfloat"])
def test_compute_dtype_must_be_floating(dtype):
    config = defaults.get_config()
    config.model.compute_dtype = dtype
    with pytest.raises(UserError, match=f"compute_dtype='{dtype}' must be a floating type"):
        config_fields.validate(config)


def test_svm_c_values_must_be_positive():
    config = defaults.get_config()
    config.eval.probe.svm_c_values = (1e-3, -1.0)
    with pytest.raises(UserError, match="svm_c_values"):
        config_fields.validate(config)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_shipped_config_is_valid(path):
    config_fields.validate(defaults.load_config(path))


def _leaves(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_each_part_has_its_group():
    config = defaults.get_config()
    groups = {k for k in config if isinstance(config[k], ml_collections.ConfigDict)}
    assert groups == {
        "data",
        "model",
        "optim",
        "objective",
        "d_training",
        "collapse",
        "population",
        "eval",
        "dedup",
    }
    assert {"image_size", "g_width", "latent_dim", "conditional"} <= set(config.model)
    assert {"dataset", "data_path", "split"} <= set(config.data)
    assert {"learning_rate", "beta1", "ema_decay"} <= set(config.optim)
    flat = {k for k in config if k not in groups}
    assert flat == {
        "seed",
        "batch_size",
        "num_train_steps",
        "parallelism",
        "log_every_steps",
        "sample_every_steps",
        "checkpoint_every_steps",
        "keep_checkpoints",
        "keep_every_steps",
        "init_from",
        "num_fixed_samples",
        "sample_random_z",
    }  # the trainer's own


def test_every_old_name_has_a_place_today():
    today = {k for k, _ in _leaves(defaults.get_config())}
    for old, new in config_fields.OLD_NAMES.items():
        assert old not in today
        assert new in today or any(k.startswith(new + ".") for k in today), (old, new)


@pytest.mark.parametrize(
    "old, new",
    [
        ("g_width", "model.g_width"),
        ("dataset", "data.dataset"),
        ("learning_rate", "optim.learning_rate"),
        ("loss", "objective.loss"),
        ("conditional.num_classes", "model.conditional.num_classes"),
        ("eval_every_steps", "eval.every_steps"),
        ("eval_svm_c_values", "eval.probe.svm_c_values"),
    ],
)
def test_old_names_map_to_their_new_place(old, new):
    assert config_fields.new_name(old) == new
    assert config_fields.new_name(new) is None
    message = config_fields.old_flags(["--workdir=x", f"--config.{old}=3"])
    assert message == f"--config.{old} has moved to --config.{new}; pass --config.{new}=3"


def test_a_config_file_setting_an_old_name_is_refused_with_its_new_place():
    config = defaults.get_config()
    config.g_width = 32  # an unlocked ConfigDict adds the field silently
    with pytest.raises(UserError, match="no field g_width; it has moved to config.model.g_width"):
        config_fields.validate(config)
    config = defaults.get_config()
    config.model.widht = 3
    with pytest.raises(UserError, match="no field model.widht; remove it, or check its spelling"):
        config_fields.validate(config)


def test_the_choices_listed_here_are_the_codes_own():
    assert set(config_fields.CHOICES["objective.loss"]) == set(losses.LOSSES)
    assert set(config_fields.CHOICES["parallelism"]) == set(parallel.PARALLELISMS)
    config = defaults.get_config()
    config.objective.loss = "wasserstein"
    with pytest.raises(UserError, match="objective.loss='wasserstein' is not supported"):
        config_fields.validate(config)


def test_a_flat_config_of_the_first_version_maps_onto_the_groups():
    with open(os.path.join(FIXTURES, "run_v0", "config.json")) as f:
        saved = json.load(f)
    saved.update(
        eval_every_steps=7,
        eval_classifier_steps=11,
        eval_svm_c_values=[0.5, 2.0],
        eval_labels_per_class=3,
        upsample="subpixel_gemm",
    )
    config = config_fields.from_saved(saved)
    assert (
        config.eval.every_steps,
        config.eval.classifier.steps,
        config.eval.probe.labels_per_class,
    ) == (7, 11, 3)
    assert config.eval.probe.svm_c_values == (0.5, 2.0)
    assert config.model.upsample == "subpixel"  # a retired name of the same math
    assert (config.model.g_width, config.model.latent_dim) == (
        8,
        16,
    )  # the saved values win over the defaults
    assert (
        config.eval.kid_subsets == defaults.get_config().eval.kid_subsets
    )  # unsaved fields: today's defaults
    assert not config_fields.unknown_fields(config)


def test_a_config_of_the_grouped_eval_version_maps_onto_the_groups():
    """The version before this one: flat model/data/optimizer fields beside grouped eval, d_training, conditional."""
    with open(os.path.join(FIXTURES, "run_v1", "config.json")) as f:
        saved = json.load(f)
    config = config_fields.from_saved(saved)
    assert config.model.conditional.num_classes == saved["conditional"]["num_classes"] == 10
    assert config.optim.ema_decay == saved["ema_decay"] > 0
    assert (config.model.g_width, config.data.dataset) == (saved["g_width"], saved["dataset"])
    assert config.d_training.label_noise == saved["d_training"]["label_noise"]
    assert not config_fields.unknown_fields(config)
    config_fields.validate(config)


def test_a_config_saved_by_this_version_round_trips():
    config = defaults.load_config("lsun")
    config.eval.classifier.steps = 5
    restored = config_fields.from_saved(json.loads(config.to_json()))
    assert restored.to_dict() == config.to_dict()


def test_an_architecture_mismatch_names_every_differing_field():
    saved, config = defaults.get_config(), defaults.get_config()
    config.model.g_width, config.model.latent_dim = 16, 20
    with pytest.raises(
        UserError,
        match=r"model.latent_dim: checkpoint 100 vs config 20; model.g_width: checkpoint "
        r"64 vs config 16",
    ):
        config_fields.check_compatible(saved, config, "runs/x/checkpoints/4")
    config = defaults.get_config()
    config.model.conditional.d_form = (
        "concat"  # a class field matters only for a class-conditional model
    )
    config_fields.check_compatible(saved, config, "x")
