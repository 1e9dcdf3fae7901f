"""The paper's D features: dimensions, pooling against a numpy reference, inference-mode batching, BN statistics."""

import jax
import numpy as np
import pytest

from dcgan_jax import defaults
from dcgan_jax.nn import features, models


def _model(image_size=32, d_width=8, num_channels=1):
    """The default config's model group (config.model) at this size and width."""
    model = defaults.get_config().model
    model.update(
        image_size=image_size, d_width=d_width, g_width=8, num_channels=num_channels, latent_dim=8
    )
    return model


@pytest.mark.parametrize(
    "image_size, expected", [(32, (64 + 128 + 256) * 16), (64, (64 + 128 + 256 + 512) * 16)]
)
def test_feature_dim_follows_the_recipe(image_size, expected):
    """Sum of D's conv widths x 4x4 cells: 7,168 at 32px with width 64 (the paper's SVHN D), 15,360 at 64px."""
    assert features.feature_dim(_model(image_size, 64)) == expected


@pytest.mark.parametrize("image_size", [32, 64])
def test_features_are_pooled_activations_of_every_layer(image_size):
    model = _model(image_size, d_width=4, num_channels=3)
    _, d_vars = models.init_variables(jax.random.PRNGKey(0), model)
    images = (
        np.random.default_rng(0).uniform(-1, 1, (3, image_size, image_size, 3)).astype(np.float32)
    )
    got = features.discriminator_features(model, d_vars, images, batch_size=2)
    assert got.shape == (3, features.feature_dim(model))

    _, discriminator = models.build_models(model)
    _, state = discriminator.apply(d_vars, images, train=False, mutable=["intermediates"])
    expected = []
    for i in range(models.num_resolution_changes(image_size)):
        h = np.asarray(state["intermediates"][f"layer{i}"][0])
        assert h.shape[1:] == (image_size // 2 ** (i + 1),) * 2 + (4 * 2**i,)
        cell = h.shape[1] // 4
        pooled = h.reshape(3, 4, cell, 4, cell, h.shape[-1]).max(axis=(2, 4))  # (N, 4, 4, C)
        expected.append(pooled.reshape(3, -1))
    np.testing.assert_allclose(got, np.concatenate(expected, axis=1), rtol=1e-5, atol=1e-6)


def test_features_do_not_depend_on_batching_and_accept_uint8():
    model = _model()
    _, d_vars = models.init_variables(jax.random.PRNGKey(1), model)
    images = np.random.default_rng(1).integers(0, 256, (7, 32, 32, 1)).astype(np.uint8)
    a = features.discriminator_features(model, d_vars, images, batch_size=7)
    b = features.discriminator_features(model, d_vars, images, batch_size=3)
    c = features.discriminator_features(
        model, d_vars, images.astype(np.float32) / 127.5 - 1.0, batch_size=4
    )
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_recompute_batch_stats_gives_population_statistics():
    """bn1 normalizes conv1's output, which depends on no earlier batchnorm: its population mean and biased
    variance over all images must come out exactly, whatever the batch size."""
    model = _model()
    _, d_vars = models.init_variables(jax.random.PRNGKey(2), model)
    images = np.random.default_rng(2).uniform(-1, 1, (10, 32, 32, 1)).astype(np.float32)
    _, discriminator = models.build_models(model)
    _, captured = discriminator.apply(
        d_vars, images, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
    conv1 = np.asarray(captured["intermediates"]["conv1"]["__call__"][0], np.float64).reshape(
        -1, 16
    )
    for batch_size in (10, 4):
        stats = features.recompute_batch_stats(model, d_vars, images, batch_size)["batch_stats"]
        np.testing.assert_allclose(stats["bn1"]["mean"], conv1.mean(0), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(stats["bn1"]["var"], conv1.var(0), rtol=1e-3, atol=1e-9)
        assert set(stats) == set(d_vars["batch_stats"])
    # With them, D in inference mode standardizes conv1's output over these images (scale 1, bias 0 at init).
    new_vars = features.recompute_batch_stats(model, d_vars, images, 4)
    _, captured = discriminator.apply(
        new_vars, images, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
    bn1 = np.asarray(captured["intermediates"]["bn1"]["__call__"][0], np.float64).reshape(-1, 16)
    np.testing.assert_allclose(bn1.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(
        bn1.var(0), conv1.var(0) / (conv1.var(0) + model.bn_epsilon), rtol=1e-3
    )
