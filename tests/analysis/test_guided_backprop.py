"""Guided backpropagation of D's last-layer features (dcgan_jax/analysis/guided_backprop.py): the guided
nonlinearity by hand, the maps of a one-layer network in closed form, the search against numpy, the paper's figure."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax.analysis import guided_backprop
from dcgan_jax.training.run import open_run


def test_guided_activation_passes_only_positive_gradient_at_positive_inputs():
    x = jnp.array([-1.0, 2.0, 3.0, 0.5])
    y, vjp = jax.vjp(guided_backprop.guided_activation, x)
    np.testing.assert_allclose(y, [-0.2, 2.0, 3.0, 0.5])
    (g,) = vjp(jnp.array([1.0, 1.0, -1.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 0.0, 2.0])


class OneLayer(nn.Module):
    """A 4x4 stride-2 conv and the nonlinearity, sown like D's layers."""

    activation: callable = guided_backprop.models.d_activation

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Conv(3, (4, 4), strides=(2, 2), padding="VALID", use_bias=False, name="conv")(x)
        h = self.activation(h)
        self.sow("intermediates", "layer0", h)
        return h.sum()


def test_one_layer_maps_are_the_kernel_where_the_unit_is_on():
    """d act[pos, f] / d x is the kernel of f placed on the unit's 4x4 window when its pre-activation is positive
    (the guided rule passes the gradient 1), and zero when negative."""
    model = OneLayer()
    images = np.random.default_rng(0).integers(0, 256, (6, 10, 10, 1), dtype=np.uint8)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 10, 10, 1)))
    kernel = np.asarray(variables["params"]["conv"]["kernel"])  # 4, 4, 1, 3
    x = images.astype(np.float32) / 127.5 - 1.0
    features, positions = (
        np.array([0, 1, 2, 0, 1, 2]),
        np.array([0, 5, 15, 7, 3, 12]),
    )  # 4x4 grid of units
    got = guided_backprop.guided_gradients(model, variables, images, features, positions)
    for n, (f, p) in enumerate(zip(features, positions)):
        r, c = divmod(p, 4)
        window = x[n, 2 * r : 2 * r + 4, 2 * c : 2 * c + 4, 0]
        expected = np.zeros((10, 10, 1), np.float32)
        if np.sum(window * kernel[:, :, 0, f]) > 0:
            expected[2 * r : 2 * r + 4, 2 * c : 2 * c + 4, 0] = kernel[:, :, 0, f]
        np.testing.assert_allclose(got[n], expected, atol=1e-6)


def test_top_activations_match_numpy(trained_run):
    run = open_run(trained_run)
    _, discriminator = guided_backprop.models.build_models(run.config.model)
    images = np.random.default_rng(1).integers(0, 256, (40, 32, 32, 1), dtype=np.uint8)
    indices, positions = guided_backprop.top_activations(
        discriminator, run.d_variables, images, 3, 5, batch_size=16
    )
    acts = np.asarray(
        guided_backprop._last_layer(
            discriminator, run.d_variables, jnp.asarray(images / 127.5 - 1.0, jnp.float32)
        )
    )
    flat = acts.reshape(40, -1, acts.shape[-1])
    for f in range(3):
        peak = flat[:, :, f].max(axis=1)
        np.testing.assert_array_equal(indices[f], np.argsort(-peak, kind="stable")[:5])
        np.testing.assert_array_equal(positions[f], flat[indices[f], :, f].argmax(axis=1))


def test_figure_compares_trained_and_random_d(trained_run):
    run = open_run(trained_run)
    picture = guided_backprop.guided_backprop(
        run.config.model,
        run.config.data,
        run.d_variables,
        run.initial_state.d_variables,
        num_features=3,
        top_k=4,
        num_images=64,
        step=run.step,
    )
    assert len(picture.rows) == 7 and all(row.shape == (4, 32, 32, 1) for row in picture.rows)
    assert np.all(picture.rows[3] == 255)  # the blank row between trained and random
    assert not np.array_equal(np.stack(picture.rows[:3]), np.stack(picture.rows[4:]))
    # Maps, not flat grey. A feature never positive on any image has blank maps by the guided rule; after this
    # run's 5 steps (batchnorm running statistics barely estimated) two of the trained D's three are such.
    assert any(row.std() > 0 for row in picture.rows[:3]) and all(
        row.std() > 0 for row in picture.rows[4:]
    )
    assert (
        "random-init D" in picture.notes[0] and f"trained D (step {run.step})" in picture.notes[0]
    )
