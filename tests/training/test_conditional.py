"""Class-conditional DCGAN: G's class embedding and D's projection against their closed forms, labels through the
data pipeline, the step on 1 and 2 devices, and the class flags of the tools."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dcgan_jax import defaults, train
from dcgan_jax.analysis import sampling
from dcgan_jax.data import datasets, pipeline
from dcgan_jax.data.images import as_model_input
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import class_accuracy
from dcgan_jax.nn import latent, models
from dcgan_jax.training import grids
from dcgan_jax.training.run import open_run
from tests.helpers import (
    digit_batches,
    load_source,
    max_abs_diff,
    one_line_error,
    run_cli,
    run_steps,
    tiny_config,
)


def _conditional(**overrides):
    config = tiny_config(**overrides)
    config.model.conditional.num_classes = 10
    config.model.conditional.embedding_dim = 6
    return config


def test_g_concatenates_z_with_the_class_embedding():
    config = _conditional()
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), config.model)
    z = np.asarray(latent.sample_z(jax.random.PRNGKey(1), 4, config.model.latent_dim))
    labels = np.array([3, 0, 9, 3])
    generator, _ = models.build_models(config.model)
    got = generator.apply(g_vars, jnp.asarray(latent.with_class(z, labels, 10)), train=False)

    # The same G without classes, fed z followed by the embedding rows: the class code is a lookup.
    plain = config.copy_and_resolve_references()
    plain.model.conditional.num_classes, plain.model.latent_dim = 0, config.model.latent_dim + 6
    plain_g, _ = models.build_models(plain.model)
    params = {k: v for k, v in g_vars["params"].items() if k != "class_embedding"}
    table = np.asarray(g_vars["params"]["class_embedding"])
    want = plain_g.apply(
        {"params": params, "batch_stats": g_vars["batch_stats"]},
        jnp.asarray(np.concatenate([z, table[labels]], axis=1)),
        train=False,
    )
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


def test_projection_d_adds_the_class_embedding_dot_pooled_features():
    config = _conditional()
    _, d_vars = models.init_variables(jax.random.PRNGKey(0), config.model)
    d_vars = jax.tree.map(lambda x: x, d_vars)
    d_vars["params"]["class_projection"] = jax.random.normal(
        jax.random.PRNGKey(2), (10, 32)
    )  # not ~0 as at init
    _, discriminator = models.build_models(config.model)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 1)), jnp.float32)
    code = latent.class_code(np.array([1, 4, 7]), 10)
    with_class, inter = discriminator.apply(
        d_vars, x, train=False, class_code=code, mutable=["intermediates"]
    )
    without = discriminator.apply(
        d_vars, x, train=False
    )  # no code: all zeros, the unconditional logit
    last = np.asarray(inter["intermediates"]["layer2"][0], np.float64)  # (3, 4, 4, 32)
    table = np.asarray(d_vars["params"]["class_projection"], np.float64)
    want = np.asarray(without) + np.einsum("nc,nc->n", last.sum(axis=(1, 2)), table[[1, 4, 7]])
    np.testing.assert_allclose(np.asarray(with_class), want, rtol=1e-4, atol=1e-4)


def test_concat_d_sees_the_class_code_as_input_channels():
    config = _conditional()
    config.model.conditional.d_form = "concat"
    _, d_vars = models.init_variables(jax.random.PRNGKey(0), config.model)
    assert d_vars["params"]["conv0"]["kernel"].shape[2] == 1 + 10
    _, discriminator = models.build_models(config.model)
    x = jnp.zeros((2, 32, 32, 1))
    a = discriminator.apply(
        d_vars, x, train=False, class_code=latent.class_code(np.array([0, 0]), 10)
    )
    b = discriminator.apply(
        d_vars, x, train=False, class_code=latent.class_code(np.array([5, 5]), 10)
    )
    assert np.all(np.asarray(a) != np.asarray(b))


def test_digits_batches_carry_their_labels():
    config = _conditional()
    source = load_source(config)
    labels = datasets.load_labels(source, 10, "digits")
    batches = pipeline.train_batches(
        config.data,
        source,
        config.batch_size,
        config.seed,
        start_step=3,
        local_devices=2,
        labels=labels,
    )
    for step in (3, 4):
        images, labels = next(batches)
        indices = pipeline.global_batch_indices(
            step, config.batch_size, len(source), config.seed + config.data.shuffle_seed_offset
        )
        assert labels.shape == (2, 8) and labels.dtype == np.int32
        np.testing.assert_array_equal(labels.reshape(-1), source.labels[indices])
        np.testing.assert_array_equal(
            images.reshape((-1,) + images.shape[2:]), as_model_input(source.read_many(indices))
        )


def _class_folders(root, corrupt=()):
    for c, name in enumerate(["cat", "dog", "owl"]):
        os.makedirs(root / name)
        for i in range(4):
            path = root / name / f"{i}.png"
            if (name, i) in corrupt:
                path.write_bytes(b"not an image")
            else:
                Image.fromarray(np.full((8, 8), 60 * c + i, np.uint8)).save(path)


def test_image_folder_classes_are_its_subfolders_and_a_replaced_image_brings_its_label(tmp_path):
    _class_folders(
        tmp_path / "data", corrupt={("cat", 3)}
    )  # cat/3 is replaced by dog/0, the next readable one
    config = _conditional(
        data=dict(dataset="image_folder", data_path=str(tmp_path / "data"), num_data_workers=1),
        batch_size=12,
        model=dict(image_size=16),
    )
    config.model.conditional.num_classes = 3
    source = load_source(config)
    assert source.class_names == ["cat", "dog", "owl"]
    np.testing.assert_array_equal(source.labels, np.repeat([0, 1, 2], 4))
    labels = datasets.load_labels(source, 3, "image_folder")
    images, labels = next(
        pipeline.train_batches(config.data, source, config.batch_size, config.seed, labels=labels)
    )
    grey = np.round((images[0, :, 0, 0, 0] + 1) * 127.5).astype(int)  # pixel value 60 * class + i
    np.testing.assert_array_equal(labels[0], grey // 60)


@pytest.mark.parametrize("dataset,extra", [("lsun_lmdb", {}), ("image_folder", {"flat": True})])
def test_data_without_labels_is_refused_naming_what_has_them(tmp_path, dataset, extra):
    config = _conditional()
    if dataset == "image_folder":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
        config.data.dataset, config.data.data_path = dataset, str(tmp_path)
        source = load_source(config)
    else:
        config.data.dataset = dataset
        source = type("Unlabelled", (), {"__len__": lambda self: 3})()
    with pytest.raises(UserError, match="needs labelled data.*one subfolder per class"):
        datasets.load_labels(source, 10, dataset)


def test_too_few_classes_for_the_labels_is_refused():
    config = _conditional()
    config.model.conditional.num_classes = 5
    with pytest.raises(UserError, match="num_classes=10"):
        datasets.load_labels(load_source(config), 5, "digits")


def test_the_conditional_step_trains_the_class_tables():
    config = _conditional()
    final, history = run_steps(config, digit_batches(config, 2), jax.devices()[:1])
    init_g, init_d = models.init_variables(
        jax.random.split(jax.random.PRNGKey(config.seed))[0], config.model
    )
    assert all(h["finite"] == 1.0 for h in history)
    assert max_abs_diff(final.g_params["class_embedding"], init_g["params"]["class_embedding"]) > 0
    assert (
        max_abs_diff(final.d_params["class_projection"], init_d["params"]["class_projection"]) > 0
    )
    # 1 device == 8 devices for a conditional run: tests/training/multidevice_checks.py


def test_grids_have_one_row_per_class_with_the_same_z_along_a_column():
    config = _conditional(num_fixed_samples=25)
    z = grids.fixed_z(config.model, config.num_fixed_samples, config.seed)
    assert grids.grid_columns(
        config.num_fixed_samples, config.model.conditional.num_classes
    ) == 2 and z.shape == (20, config.model.latent_dim + 10)
    np.testing.assert_array_equal(
        z[:, config.model.latent_dim :].argmax(1), np.repeat(np.arange(10), 2)
    )
    np.testing.assert_array_equal(
        z[0::2, : config.model.latent_dim], np.repeat(z[:1, : config.model.latent_dim], 10, 0)
    )
    fresh = grids.random_z(config.model, config.num_fixed_samples, config.seed, 7)
    assert len(np.unique(fresh[:, : config.model.latent_dim], axis=0)) == 20


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("conditional") / "run")
    train.train(_conditional(num_fixed_samples=0), workdir)
    return workdir


def test_sample_class_flag(conditional_run, tmp_path):
    output = str(tmp_path / "s.npz")
    result = run_cli(
        "dcgan_jax.sample",
        f"--workdir={conditional_run}",
        "--num_samples=5",
        "--class=3",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    z = np.load(output)["z"]
    assert z.shape == (5, 16 + 10) and np.all(z[:, 16:].argmax(1) == 3)
    run = open_run(conditional_run)
    images, balanced = sampling.sample(run.config.model, run.sampling_g_variables, 12)
    np.testing.assert_array_equal(balanced[:, 16:].argmax(1), np.arange(12) % 10)
    np.testing.assert_array_equal(balanced[:5, :16], z[:, :16])  # the same z pool, another class
    one_line_error(
        run_cli(
            "dcgan_jax.sample", f"--workdir={conditional_run}", "--class=10", f"--output={output}"
        ),
        "--class=10 must be in 0..9",
    )


def test_explore_takes_a_class(conditional_run, tmp_path):
    output = str(tmp_path / "i.png")
    result = run_cli(
        "dcgan_jax.explore",
        f"--workdir={conditional_run}",
        "--mode=interpolate",
        "--class=7",
        "--num_steps=3",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = open_run(conditional_run)
    z = sampling.pick_z(run.config.model, [0, 1], label=7)
    assert np.all(z[:, 16:].argmax(1) == 7) and np.all(
        sampling.pick_z(run.config.model, [3, 4])[:, 16:].argmax(1) == [3, 4]
    )


def test_evaluate_class_accuracy(conditional_run, tmp_path):
    result = run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={conditional_run}",
        "--task=class_accuracy",
        "--num_samples=40",
        f"--classifier_dir={tmp_path}/classifier",
        "--classifier_steps=20",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(conditional_run, "eval_class_accuracy.json")) as f:
        table = json.load(f)
    assert [r["class"] for r in table["rows"]] == list(range(10)) + ["all"]
    assert (
        all(r["samples"] == 4 for r in table["rows"][:10])
        and 0 <= table["rows"][-1]["accuracy"] <= 1
    )


def test_class_on_an_unconditional_run_is_one_line(tmp_path):
    config = tiny_config()
    with pytest.raises(UserError, match="this run is unconditional"):
        sampling.g_inputs(config.model, np.zeros((2, 16)), label=3)


def test_class_accuracy_table_from_counts():
    counts = np.array([[8, 2, 0], [1, 9, 0], [0, 5, 5]])
    rows = class_accuracy.accuracy_table(counts)
    assert [r["accuracy"] for r in rows] == [0.8, 0.9, 0.5, 22 / 30]
    assert [r["most_confused_with"] for r in rows[:3]] == [1, 0, 1]


def test_shipped_conditional_configs():
    digits = defaults.load_config("digits_conditional")
    cifar = defaults.load_config("cifar10_conditional")
    assert digits.model.conditional.num_classes == cifar.model.conditional.num_classes == 10
    assert (
        grids.grid_columns(digits.num_fixed_samples, digits.model.conditional.num_classes) == 8
        and grids.grid_columns(cifar.num_fixed_samples, cifar.model.conditional.num_classes) == 10
    )


def test_resuming_with_other_classes_names_the_fields(conditional_run, tmp_path):
    import shutil

    workdir = str(tmp_path / "run")
    shutil.copytree(conditional_run, workdir)
    config = _conditional(num_train_steps=6, num_fixed_samples=0)
    config.model.conditional.num_classes, config.model.conditional.embedding_dim = 5, 6
    with pytest.raises(UserError, match="conditional.num_classes: checkpoint 10 vs config 5"):
        train.train(config, workdir)


def test_main_on_unlabelled_data_is_one_line_and_writes_nothing(tmp_path):
    from tests.helpers import tree_digest

    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(
            tmp_path / f"{i}.png"
        )  # a flat folder: no classes
    workdir = tmp_path / "run"
    workdir.mkdir()
    before = tree_digest(str(workdir))
    result = run_cli(
        "dcgan_jax.main",
        "--config=configs/digits_conditional.py",
        "--config.data.dataset=image_folder",
        f"--config.data.data_path={tmp_path}",
        f"--workdir={workdir}",
    )
    one_line_error(result, "needs labelled data", "one subfolder per class")
    assert tree_digest(str(workdir)) == before
