"""FID/KID of generators: the training evaluator, the `evaluate --task=fid` table and the feature extractors."""

import jax
import numpy as np
import pytest

from dcgan_jax.data.images import as_uint8
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import distances, fid
from dcgan_jax.nn import generate, models
from dcgan_jax.training.run import open_run


def test_training_evaluator(fid_classifier):
    config = fid_classifier[0].copy_and_resolve_references()
    config.eval.every_steps = 10
    ev, model, data, seed = config.eval, config.model, config.data, config.seed
    hook = fid.make_training_evaluator(ev, model, data, seed, "/tmp/unused")
    assert hook.every_steps == 10 and hook.best_metric == "fid"
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), model)
    first, again = hook(10, g_vars), hook(20, g_vars)
    assert first == again and set(first) == {"fid", "kid", "kid_std"}
    assert first["fid"] > 0 and np.isfinite(first["kid"]) and first["kid_std"] >= 0
    # The same numbers as computing the pieces by hand.
    extractor, _ = fid.make_feature_extractor(ev, model, data, seed)
    real = extractor(fid.real_images(model, data, "test", 40, seed))
    fake = extractor(fid.as_pixels(generate.generate(model, g_vars, fid.eval_z(model, 40, seed))))
    assert first["fid"] == pytest.approx(distances.fid(real, fake), rel=1e-6)


def test_fid_table_rows(fid_classifier, trained_run):
    run = open_run(trained_run)
    config = run.config.copy_and_resolve_references()
    config.eval.update(dict(num_samples=30, kid_subsets=5, kid_subset_size=20))
    config.eval.classifier.dir = fid_classifier[0].eval.classifier.dir
    parts = (config.eval, config.model, config.data, config.seed)
    rows, describe = fid.fid_table(*parts, run.g_variables, run.initial_state.g_variables, run.step)
    assert [row["images"] for row in rows] == [
        "generator (step 5)",
        "generator (untrained)",
        "real 'train' images (floor)",
    ]
    assert all(
        row["fid"] >= 0 and row["num_images"] == 30 and row["num_real"] == 30 for row in rows
    )
    assert (
        rows[2]["fid"] < rows[1]["fid"]
    )  # real images are closer to the test split than an untrained G's
    assert describe.startswith("classifier digits 32px")
    config.eval.num_samples = 1
    with pytest.raises(UserError, match="at least 2"):
        fid.fid_table(*parts, run.g_variables, run.initial_state.g_variables, run.step)


def test_real_images_and_eval_z_are_fixed_per_seed(tiny):
    config = tiny()
    model, data, seed = config.model, config.data, config.seed
    reals = fid.real_images(model, data, "test", 25, seed)
    assert reals.shape == (25, 32, 32, 1) and reals.dtype == np.uint8
    np.testing.assert_array_equal(reals, fid.real_images(model, data, "test", 25, seed))
    assert (
        len(fid.real_images(model, data, "test", 10**6, seed)) == 360
    )  # capped at the split's size
    z = fid.eval_z(model, 7, seed)
    assert z.shape == (7, model.latent_dim)
    np.testing.assert_array_equal(z, fid.eval_z(model, 20, seed)[:7])


def test_feature_extractor_choices(tiny):
    config = tiny()
    config.eval.feature_extractor = "inception"
    with pytest.raises(UserError, match="--inception_weights"):
        fid.make_feature_extractor(config.eval, config.model, config.data, config.seed)
    config.eval.feature_extractor = "pixels"
    with pytest.raises(
        UserError, match="--config.eval.feature_extractor='pixels'; use 'classifier' or 'inception'"
    ):
        fid.make_feature_extractor(config.eval, config.model, config.data, config.seed)


def test_samples_are_quantised_as_a_saved_png_and_floats_are_refused(fid_classifier):
    """G's [-1, 1] floats become the uint8 a PNG holds (as_uint8's rounding); floats outside
    [-1, 1] are refused with one line; extractors refuse floats outside as_pixels (a [0, 1] image
    would otherwise be read as [-1, 1])."""
    samples = np.array([[-1.0, -0.996, 0.0, 0.5, 0.99, 1.0]], np.float32)
    pixels = fid.as_pixels(samples)
    assert pixels.dtype == np.uint8 and pixels.tolist() == [[0, 1, 128, 191, 254, 255]]
    np.testing.assert_array_equal(pixels, as_uint8(samples))
    assert fid.as_pixels(pixels) is pixels
    for bad in (samples * 255, samples + 1.5, np.full((2, 2), np.nan, np.float32)):
        with pytest.raises(UserError, match=r"outside \[-1, 1\]") as error:
            fid.as_pixels(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="dtype int32"):
        fid.as_pixels(np.zeros(3, np.int32))
    config = fid_classifier[0]
    extractor, _ = fid.make_feature_extractor(config.eval, config.model, config.data, config.seed)
    with pytest.raises(UserError, match="take uint8 pixels .*, got float32: quantise"):
        extractor(np.full((2, 32, 32, 1), 0.5, np.float32))


def test_group_rows_summarizes_each_variant_over_its_seeds():
    rows = [
        {"member": 0, "seed": 0, "lr": 2e-4, "noise": 0.0, "fid": 10.0},
        {"member": 1, "seed": 1, "lr": 2e-4, "noise": 0.0, "fid": 14.0},
        {"member": 2, "seed": 0, "lr": 1e-3, "noise": 0.0, "fid": 30.0},
        {"member": 3, "seed": 1, "lr": 2e-4, "noise": 0.1, "fid": 9.0},
        {"member": 4, "seed": 2, "lr": 2e-4, "noise": 0.0, "fid": 12.0},
    ]
    groups = fid.group_rows(rows, ["lr", "noise"])
    # by hand: (10, 14, 12) mean 12, sample std 2, best member 0; singletons have std 0
    assert groups == [
        {"lr": 2e-4, "noise": 0.0, "members": 3, "mean": 12.0, "std": 2.0, "min": 10.0,
         "best_member": 0},
        {"lr": 1e-3, "noise": 0.0, "members": 1, "mean": 30.0, "std": 0.0, "min": 30.0,
         "best_member": 2},
        {"lr": 2e-4, "noise": 0.1, "members": 1, "mean": 9.0, "std": 0.0, "min": 9.0,
         "best_member": 3},
    ]  # fmt: skip
