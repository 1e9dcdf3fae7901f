"""Generator-side tools: images in batches, layer activations, and images with feature maps dropped."""

import numpy as np
import pytest

from dcgan_jax.nn import generate, models


@pytest.fixture
def setup(untrained_generator):
    """(the tiny config's model group, G variables at init, 12 z)."""
    config, g_vars, z = untrained_generator
    return config.model, g_vars, z


def test_layer_widths_match_the_activations(setup):
    model, g_vars, z = setup
    assert models.g_layer_widths(model) == [32, 16, 8]  # g_width 8 at 32px: 4x4x32, 8x8x16, 16x16x8
    for layer, (size, width) in enumerate(zip((4, 8, 16), (32, 16, 8))):
        acts = generate.activations(model, g_vars, z, layer, batch_size=5)
        assert acts.shape == (12, size, size, width)
        assert acts.min() >= 0.0 and acts.max() > 0.0  # after ReLU
    np.testing.assert_array_equal(
        generate.activations(model, g_vars, z, -1), generate.activations(model, g_vars, z, 2)
    )


def test_activations_match_a_direct_apply(setup):
    model, g_vars, z = setup
    generator, _ = models.build_models(model)
    _, state = generator.apply(g_vars, z, train=False, mutable=["intermediates"])
    np.testing.assert_allclose(
        generate.activations(model, g_vars, z, 1),
        state["intermediates"]["layer1"][0],
        rtol=1e-5,
        atol=1e-6,
    )


def test_dropping_no_maps_changes_nothing_and_all_maps_changes_output(setup):
    model, g_vars, z = setup
    plain = generate.generate(model, g_vars, z)
    assert (
        np.abs(plain).min() >= 0 and np.abs(plain).max() > 1e-5
    )  # fresh weights (std 0.02): small outputs
    for layer in range(3):
        np.testing.assert_array_equal(generate.generate_without(model, g_vars, z, layer, []), plain)
        dropped_all = generate.generate_without(
            model, g_vars, z, layer, range(models.g_layer_widths(model)[layer])
        )
        # Layers are bias-free and fresh batchnorm has mean 0 / offset 0, so zeros propagate to tanh(0) = 0.
        np.testing.assert_array_equal(dropped_all, np.zeros_like(dropped_all))


def test_dropping_some_maps_equals_zeroing_their_activations(setup):
    model, g_vars, z = setup
    mask = generate.feature_mask(model, 1, [0, 3, 5])
    assert mask.tolist() == [0 if i in (0, 3, 5) else 1 for i in range(16)]
    out = generate.generate_without(model, g_vars, z, 1, [0, 3, 5])
    expected = generate.generate(model, g_vars, z, layer_masks={1: mask})
    np.testing.assert_array_equal(out, expected)
    assert np.abs(out - generate.generate(model, g_vars, z)).max() > 1e-4
    with pytest.raises(ValueError, match="0..15"):
        generate.feature_mask(model, 1, [16])
    with pytest.raises(ValueError, match="hidden layers"):
        generate.check_layer(model, 3)
