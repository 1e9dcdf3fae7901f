"""The population config (config.population; dcgan_jax/population.py): seeds and vary parsed into
each member's single-run config, every bad form one UserError line naming the field (through
config_fields.validate, as every command validates), the memory refusal naming the largest
population that fits, and a checkpoint of another population size refused on resume."""

import os

import numpy as np
import pytest

from dcgan_jax import config_fields, defaults, memory, population, train
from dcgan_jax.errors import UserError
from tests.helpers import one_line_error, run_cli, tiny_config


def _population(size=3, seeds="", vary="", **overrides):
    config = tiny_config(**overrides)
    config.population.update(size=size, seeds=seeds, vary=vary)
    return config


def _refused(config, *fragments):
    """validate(config) raises one UserError line holding every fragment."""
    with pytest.raises(UserError) as caught:
        config_fields.validate(config)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("invalid config: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------- seeds and vary


def test_seeds_default_to_seed_plus_the_member_index_or_are_given_one_per_member():
    config = _population(size=3, seed=5)
    config_fields.validate(config)
    assert population.seeds(config) == [5, 6, 7]
    config.population.seeds = "3, 0,11"
    config_fields.validate(config)
    assert population.seeds(config) == [3, 0, 11]


@pytest.mark.parametrize(
    "seeds, fragments",
    [
        ("1,2", ["population.seeds has 2 seeds for population.size=3"]),
        ("1,2,3,4", ["population.seeds has 4 seeds for population.size=3"]),
        ("1,two,3", ["population.seeds='1,two,3' is not a comma-separated list of integers"]),
        ("1,2.5,3", ["population.seeds", "not a comma-separated list of integers"]),
        ("0,1,4294967296", ["member seed 4294967296 is outside [0, 2**32)"]),
    ],
)
def test_bad_seeds_are_one_line_naming_the_field(seeds, fragments):
    _refused(_population(seeds=seeds), *fragments)


def test_vary_gives_one_value_per_member_or_one_for_all_converted_to_the_fields_type():
    config = _population(
        vary="optim.learning_rate=1e-4,2e-4,4e-4; objective.label_smoothing=0.1;"
        "d_training.steps_per_g_step=1,2,3.0"
    )
    config_fields.validate(config)
    assert population.varied(config) == {
        "optim.learning_rate": [1e-4, 2e-4, 4e-4],
        "objective.label_smoothing": [0.1, 0.1, 0.1],
        "d_training.steps_per_g_step": [1, 2, 3],
    }
    assert all(type(v) is int for v in population.varied(config)["d_training.steps_per_g_step"])
    assert population.varied(_population(vary=" ; ")) == {}


@pytest.mark.parametrize(
    "vary, fragments",
    [
        ("optim.learning_rate=1e-4,2e-4", ["gives optim.learning_rate 2 values", "size=3"]),
        ("optim.learning_rate=1e-4,fast,2e-4", ["optim.learning_rate the value 'fast'"]),
        ("d_training.steps_per_g_step=1,2,x", ["d_training.steps_per_g_step the value 'x'"]),
        ("optim.learning_rat=1e-4", ["names optim.learning_rat, which is not a config field"]),
        ("nothing.here=1", ["names nothing.here, which is not a config field"]),
        ("model.g_width=8,16,32", ["model.g_width cannot vary within a population"]),
        ("batch_size=16,32,64", ["batch_size cannot vary within a population"]),
        ("objective.loss=hinge", ["objective.loss cannot vary within a population"]),
        ("optim.learning_rate", ["part 'optim.learning_rate' is not FIELD=V1,V2"]),
        ("optim.learning_rate=", ["part 'optim.learning_rate=' is not FIELD=V1,V2"]),
    ],
)
def test_bad_vary_is_one_line_naming_the_field(vary, fragments):
    _refused(_population(vary=vary), *fragments)


def test_a_member_value_out_of_its_fields_range_is_refused_as_a_run_would_be():
    _refused(_population(vary="optim.beta1=0.5,0.9,1.5"), "optim.beta1=1.5")


@pytest.mark.parametrize(
    "field, value", [("population.seeds", "0,1"), ("population.vary", "optim.beta1=0.5")]
)
def test_seeds_or_vary_without_a_size_are_refused(field, value):
    config = tiny_config()
    config_fields.set_field(config, field, value)
    _refused(config, "population.seeds or population.vary without population.size")


def test_a_bad_vectorize_is_refused_and_each_good_one_passes():
    for good in population.VECTORIZE:
        config_fields.validate(_vectorized(good))
    _refused(
        _vectorized("pmap"), "population.vectorize='pmap' is not supported", "auto, vmap, loop"
    )


def _vectorized(value):
    config = _population()
    config.population.vectorize = value
    return config


# ---------------------------------------------------------------- members


def test_member_config_is_the_single_run_of_its_seed_and_values():
    config = _population(seeds="4,9,2", vary="optim.learning_rate=1e-4,2e-4,4e-4;optim.beta1=0.9")
    second = population.member_config(config, 1)
    assert (second.seed, second.optim.learning_rate, second.optim.beta1) == (9, 2e-4, 0.9)
    assert (second.population.size, second.population.seeds, second.population.vary) == (0, "", "")
    config_fields.validate(second)  # a plain run
    plain = second.to_dict()
    expected = tiny_config(seed=9, optim=dict(learning_rate=2e-4, beta1=0.9)).to_dict()
    assert plain == expected
    assert [m.seed for m in population.member_configs(config)] == [4, 9, 2]
    assert (config.seed, config.optim.beta1, config.population.size) == (0, 0.5, 3)  # untouched
    for member in (-1, 3):
        with pytest.raises(UserError, match=r"member .* does not exist: the population has 3"):
            population.member_config(config, member)


def test_distinct_members_keep_the_first_of_each_combination_of_values():
    config = _population(
        size=6,
        vary="optim.learning_rate=1e-4,2e-4,1e-4,2e-4,1e-4,2e-4;"
        "objective.label_smoothing=0,0,0,0,0.1,0",
    )
    distinct = population.distinct_members(config)
    assert [(m.seed, m.optim.learning_rate, m.objective.label_smoothing) for m in distinct] == [
        (0, 1e-4, 0.0),
        (1, 2e-4, 0.0),
        (4, 1e-4, 0.1),
    ]
    assert [m.seed for m in population.distinct_members(_population(size=5))] == [0]  # seeds aside
    assert population.distinct_members(tiny_config()) == []


# ---------------------------------------------------------------- memory


def test_a_population_too_large_names_the_largest_that_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * 2**30)  # a fixed 4 GiB host
    config = defaults.load_config("digits")
    config.population.size = 100_000
    message = _refused(config, "a population of 100000 members needs about", "available")
    largest = int(message.split("fits is ")[1].split(";")[0])
    assert message.endswith(f"lower population.size to {largest}") and 0 < largest < 100_000
    config.population.size = largest
    config_fields.validate(config)
    config.population.size = largest + 1
    _refused(config, f"the largest population of these members that fits is {largest}")


def test_the_cli_refuses_a_population_too_large_in_one_line_before_making_the_workdir(tmp_path):
    workdir = tmp_path / "never"
    result = run_cli(
        "dcgan_jax.main",
        "--config=configs/digits.py",
        f"--workdir={workdir}",
        "--config.population.size=100000",
    )
    one_line_error(
        result, "a population of 100000 members", "the largest population of these members"
    )
    assert not workdir.exists()


# ---------------------------------------------------------------- resume


@pytest.mark.slow
def test_resuming_with_another_population_size_names_the_field(tmp_path):
    workdir = str(tmp_path)
    train.train_and_evaluate(_population(size=2, num_train_steps=2), workdir)
    for size in (3, 0):
        with pytest.raises(
            UserError,
            match=rf"another architecture \(population.size: checkpoint 2 vs config {size}\)",
        ):
            train.train_and_evaluate(_population(size=size, num_train_steps=4), workdir)
    # The same size resumes; a member's values may change, as a run's learning rate may.
    vary = "optim.learning_rate=1e-4,3e-4"
    state = train.train_and_evaluate(_population(size=2, vary=vary, num_train_steps=3), workdir)
    assert np.shape(state.step) == (2,) and list(np.asarray(state.step)) == [3, 3]
    assert os.path.isdir(population.member_dir(workdir, 1))


def test_check_compatible_names_the_population_size_with_the_architecture_fields():
    saved = _population(size=2)
    with pytest.raises(UserError) as caught:
        config_fields.check_compatible(saved, tiny_config(model=dict(g_width=16)), "W")
    assert str(caught.value) == (
        "the checkpoint in W was trained with another architecture (model.g_width: checkpoint 8 "
        "vs config 16; population.size: checkpoint 2 vs config 0); use a new --workdir, or the "
        "checkpoint's values"
    )
    config_fields.check_compatible(saved, _population(size=2, vary="optim.beta1=0.9"), "W")


def test_the_study_config_is_each_variant_over_eight_seeds():
    """configs/fashion_mnist_study.py: member m is variant m // 8 with seed m % 8, i.e.
    fashion_mnist.py with only that variant's fields changed."""
    study, base = defaults.load_config("fashion_mnist_study"), defaults.load_config("fashion_mnist")
    config_fields.validate(study)
    assert population.size(study) == 48
    expected = {  # by hand, from the config's docstring
        0: {},
        1: {"optim.learning_rate": 1e-3},
        2: {"d_training.pretrain_steps": 500},
        3: {"objective.label_smoothing": 0.1},
        4: {"d_training.label_noise": 0.1, "d_training.label_flip": 0.05},
        5: {"d_training.instance_noise": 0.1, "d_training.instance_noise_decay_steps": 6000},
    }
    for m, member in enumerate(population.member_configs(study)):
        want = base.copy_and_resolve_references()
        want.seed = m % 8
        for field, value in expected[m // 8].items():
            group, name = field.split(".")
            want[group][name] = value
        got = member.to_dict()
        del got["population"], want["population"]
        assert got == want.to_dict(), m
