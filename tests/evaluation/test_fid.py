"""FID/KID of generators: the training evaluator, the `evaluate --task=fid` table and the feature extractors."""

import jax
import numpy as np
import pytest

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
    fake = extractor(generate.generate(model, g_vars, fid.eval_z(model, 40, seed)))
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
