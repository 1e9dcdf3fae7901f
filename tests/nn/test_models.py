"""Generator/Discriminator shapes, the paper's architecture rules, layer widths, and the conv modules against Flax's.

The conv forms themselves are checked against XLA in test_convolutions.py."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from dcgan_jax import defaults
from dcgan_jax.nn import convolutions, models


def _model(image_size, num_channels, **overrides):
    """The default config's model group (config.model) at this size, with small widths."""
    model = defaults.get_config().model
    model.update(
        image_size=image_size, num_channels=num_channels, g_width=8, d_width=8, latent_dim=12
    )
    model.update(overrides)
    return model


def _init_shapes(model):
    """Shapes of init_variables(model): the architecture without computing anything."""
    return jax.eval_shape(lambda rng: models.init_variables(rng, model), jax.random.PRNGKey(0))


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("num_channels", [1, 3])
def test_output_shapes(image_size, num_channels):
    model = _model(image_size, num_channels)
    generator, discriminator = models.build_models(model)

    def forward(rng, z):
        g_vars, d_vars = models.init_variables(rng, model)
        images = generator.apply(g_vars, z, train=False)
        return images, discriminator.apply(d_vars, images, train=False)

    images, logits = jax.eval_shape(forward, jax.random.PRNGKey(0), jnp.zeros((3, 12)))
    assert images.shape == (3, image_size, image_size, num_channels) and logits.shape == (3,)


@pytest.mark.parametrize("bad_size", [48, 8, 512])
def test_unsupported_image_size_is_a_clear_error(bad_size):
    with pytest.raises(ValueError, match=f"model.image_size={bad_size} is not supported"):
        models.build_models(_model(bad_size, 3))


def _flat(tree):
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def test_architecture_follows_the_paper():
    g_vars, d_vars = _init_shapes(_model(64, 3))
    g_params, d_params = _flat(g_vars["params"]), _flat(d_vars["params"])
    # No dense layers and no biases anywhere: only convolution kernels and batchnorm scale/bias.
    for name, value in {**g_params, **d_params}.items():
        layer, leaf = name.split("/")
        assert layer.startswith(("project", "up", "bn", "conv", "logit")), name
        assert leaf in ("kernel", "scale", "bias") and (leaf != "bias" or layer.startswith("bn")), (
            name
        )
        if leaf == "kernel":
            assert value.ndim == 4 and value.shape[:2] == (4, 4), name  # 4x4 convolutions
    # G: batchnorm after the projection and every hidden upsampling, none on the output layer (up3 -> tanh).
    assert sorted(k for k in g_vars["batch_stats"]) == ["bn0", "bn1", "bn2", "bn3"]
    assert g_params["up3/kernel"].shape[-1] == 3
    # D: no batchnorm on the input layer, batchnorm on every other conv layer.
    assert sorted(k for k in d_vars["batch_stats"]) == ["bn1", "bn2", "bn3"]
    assert [d_params[f"conv{i}/kernel"].shape[-1] for i in range(4)] == [8, 16, 32, 64]


def test_activations_relu_in_g_and_leaky_relu_in_d_and_tanh_output():
    model = _model(32, 1)
    g_vars, d_vars = models.init_variables(jax.random.PRNGKey(0), model)
    generator, discriminator = models.build_models(model)
    z = jax.random.uniform(jax.random.PRNGKey(1), (4, 12), minval=-1, maxval=1)
    images, g_inter = generator.apply(g_vars, z, train=False, mutable=["intermediates"])
    assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh
    for (act,) in g_inter["intermediates"].values():
        assert float(jnp.min(act)) >= 0.0  # ReLU
    _, d_inter = discriminator.apply(d_vars, images, train=False, mutable=["intermediates"])
    layer0 = d_inter["intermediates"]["layer0"][0]
    assert float(jnp.min(layer0)) < 0.0  # LeakyReLU passes 0.2 * negatives
    conv0 = jax.lax.conv_general_dilated(
        images,
        d_vars["params"]["conv0"]["kernel"],
        (2, 2),
        ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(layer0, np.where(conv0 > 0, conv0, 0.2 * conv0), atol=1e-6)


def test_weights_are_drawn_from_normal_0_002():
    model = _model(64, 3)
    g_vars, d_vars = jax.jit(lambda rng: models.init_variables(rng, model))(jax.random.PRNGKey(0))
    kernels = {
        name: np.asarray(v)
        for name, v in {**_flat(g_vars["params"]), **_flat(d_vars["params"])}.items()
        if name.endswith("kernel") and v.size >= 8192
    }  # enough draws to pin the mean and std down
    assert len(kernels) == 5  # project, up0, up1 of G; conv2, conv3 of D
    for name, kernel in kernels.items():
        assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3, name


def test_lsun_config_builds_the_papers_generator():
    model = defaults.load_config("lsun").model
    params = _init_shapes(model)[0]["params"]
    assert params["project"]["kernel"].shape == (4, 4, 100, 1024)  # z(100) -> 4x4x1024
    assert [params[f"up{i}"]["kernel"].shape[-1] for i in range(4)] == [512, 256, 128, 3]
    generator, _ = models.build_models(model)
    images = jax.eval_shape(
        lambda z: generator.apply(
            generator.init(jax.random.PRNGKey(0), z, train=False), z, train=False
        ),
        jnp.zeros((1, 100)),
    )
    assert images.shape == (1, 64, 64, 3)


def test_project_is_a_4x4_transposed_conv_of_a_1x1_input():
    z = jax.random.normal(jax.random.PRNGKey(0), (2, 5))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 5, 7))
    out = models.Project(7).apply({"params": {"kernel": kernel}}, z)
    # Independent formula: out[n, h, w, c] = sum_l z[n, l] K[h, w, l, c].
    expected = np.einsum("nl,hwlc->nhwc", np.asarray(z, np.float64), np.asarray(kernel, np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv_impl", ["fast", "xla"])
@pytest.mark.parametrize("method", sorted(models.UPSAMPLERS))
def test_upsample_equals_flax_conv_transpose(method, conv_impl):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 6))
    module = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), use_bias=False)
    variables = module.init(jax.random.PRNGKey(1), x)
    ours = models.Upsample(5, method, conv_impl=conv_impl).apply(variables, x)
    np.testing.assert_allclose(ours, module.apply(variables, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv_impl", ["fast", "xla"])
def test_downsample_equals_flax_conv(conv_impl):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
    module = nn.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1)), use_bias=False)
    variables = module.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(
        models.Downsample(8, conv_impl=conv_impl).apply(variables, x),
        module.apply(variables, x),
        rtol=1e-5,
        atol=1e-5,
    )


def _outputs_and_grads(model, g_vars, d_vars, z):
    """G's images, D's logits on them, and the gradients of a scalar of both w.r.t. G's and D's params (training
    mode: batch statistics), for the models `model` (config.model) builds."""
    generator, discriminator = models.build_models(model)

    def loss(g_params, d_params):
        images, _ = generator.apply({**g_vars, "params": g_params}, z, mutable=["batch_stats"])
        logits, _ = discriminator.apply(
            {**d_vars, "params": d_params}, images, mutable=["batch_stats"]
        )
        return jnp.sum(jnp.sin(logits)) + jnp.mean(images**2), (images, logits)

    grads, (images, logits) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
        g_vars["params"], d_vars["params"]
    )
    return images, logits, grads


def test_conv_impl_xla_and_fast_give_the_same_outputs_and_gradients():
    """The whole G and D (32 px, all four strided layers of each) with XLA's convolutions and with the fast forms."""
    model = _model(32, 3, conv_impl="xla")
    g_vars, d_vars = models.init_variables(jax.random.PRNGKey(0), model)
    z = jax.random.uniform(jax.random.PRNGKey(1), (4, 12), minval=-1, maxval=1)
    xla = _outputs_and_grads(model, g_vars, d_vars, z)
    fast = _outputs_and_grads(_model(32, 3, conv_impl="fast"), g_vars, d_vars, z)
    for got, expected in zip(jax.tree.leaves(fast), jax.tree.leaves(xla)):
        scale = float(jnp.max(jnp.abs(expected)))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale + 1e-7)
    # The check can fail: every kernel has a non-zero gradient, so a wrong form shows.
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(xla[2]))


def test_conv_impl_auto_resolves_per_backend(monkeypatch):
    assert convolutions.resolve_conv_impl("auto", "cpu") == "fast"  # measured: docs/performance.md
    assert convolutions.resolve_conv_impl("auto", "gpu") == "xla"  # not measured: XLA's own
    assert convolutions.resolve_conv_impl("auto", "tpu") == "xla"
    for backend in ("cpu", "gpu", "tpu"):
        assert convolutions.resolve_conv_impl("xla", backend) == "xla"
        assert convolutions.resolve_conv_impl("fast", backend) == "fast"
    # build_models resolves 'auto' for JAX's default backend.
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    generator, discriminator = models.build_models(_model(32, 1))
    assert generator.conv_impl == discriminator.conv_impl == "xla"
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert models.build_models(_model(32, 1))[0].conv_impl == "fast"
    assert models.build_models(_model(32, 1, conv_impl="xla"))[0].conv_impl == "xla"


@pytest.mark.parametrize("image_size", [32, 64])
def test_layer_widths_match_the_parameters(image_size):
    model = _model(image_size, 3, g_width=4, d_width=6)
    g_vars, d_vars = _init_shapes(model)
    n = models.num_resolution_changes(image_size)
    assert models.g_layer_widths(model) == [
        g_vars["params"][f"up{i}"]["kernel"].shape[2] for i in range(n)
    ]
    assert models.d_layer_widths(model) == [
        d_vars["params"][f"conv{i}"]["kernel"].shape[3] for i in range(n)
    ]
    assert models.g_layer_widths(model)[-1] == 4 and models.d_layer_widths(model)[0] == 6


def test_unsupported_channels_and_upsampling_are_clear_errors():
    with pytest.raises(ValueError, match="model.num_channels=2 is not supported"):
        models.build_models(_model(32, 2))
    with pytest.raises(ValueError, match="model.upsample='nearest' is not supported"):
        models.build_models(_model(32, 1, upsample="nearest"))
    with pytest.raises(ValueError, match="model.conv_impl='cudnn' is not supported; use one of"):
        models.build_models(_model(32, 1, conv_impl="cudnn"))
    bad_form = _model(32, 1)
    bad_form.conditional.update(num_classes=3, d_form="sum")
    with pytest.raises(ValueError, match="model.conditional.d_form='sum' is not supported"):
        models.build_models(bad_form)
