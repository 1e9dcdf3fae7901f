"""Generator/Discriminator shapes, the paper's architecture rules, and the fast upsampling's equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from dcgan_jax import defaults
from dcgan_jax.nn import models


def _config(image_size, num_channels, **kw):
    config = defaults.get_config()
    config.update(image_size=image_size, num_channels=num_channels, g_width=8, d_width=8, latent_dim=12, **kw)
    return config


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("num_channels", [1, 3])
def test_output_shapes_and_ranges(image_size, num_channels):
    config = _config(image_size, num_channels)
    g_vars, d_vars = models.init_variables(jax.random.PRNGKey(0), config)
    generator, discriminator = models.build_models(config)
    z = jax.random.uniform(jax.random.PRNGKey(1), (3, 12), minval=-1, maxval=1)
    images = generator.apply(g_vars, z, train=False)
    assert images.shape == (3, image_size, image_size, num_channels)
    assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh output
    logits = discriminator.apply(d_vars, images, train=False)
    assert logits.shape == (3,)


@pytest.mark.parametrize("bad_size", [48, 16, 256])
def test_unsupported_image_size_is_a_clear_error(bad_size):
    with pytest.raises(ValueError, match=f"image_size={bad_size} is not supported"):
        models.build_models(_config(bad_size, 3))


def _flat(tree):
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def test_architecture_follows_the_paper():
    config = _config(64, 3)
    g_vars, d_vars = models.init_variables(jax.random.PRNGKey(0), config)
    g_params, d_params = _flat(g_vars["params"]), _flat(d_vars["params"])
    # No dense layers and no biases anywhere: only convolution kernels and batchnorm scale/bias.
    for name, value in {**g_params, **d_params}.items():
        layer, leaf = name.split("/")
        assert layer.startswith(("project", "up", "bn", "conv", "logit")), name
        assert leaf in ("kernel", "scale", "bias") and (leaf != "bias" or layer.startswith("bn")), name
        if leaf == "kernel":
            assert value.ndim == 4 and value.shape[:2] == (4, 4), name  # 4x4 convolutions
    # G: batchnorm after the projection and every hidden upsampling, none on the output layer (up3 -> tanh).
    assert sorted(k for k in g_vars["batch_stats"]) == ["bn0", "bn1", "bn2", "bn3"]
    assert g_params["up3/kernel"].shape[-1] == 3
    # D: no batchnorm on the input layer, batchnorm on every other conv layer.
    assert sorted(k for k in d_vars["batch_stats"]) == ["bn1", "bn2", "bn3"]
    assert [d_params[f"conv{i}/kernel"].shape[-1] for i in range(4)] == [8, 16, 32, 64]


def test_activations_relu_in_g_and_leaky_relu_in_d():
    config = _config(32, 1)
    g_vars, d_vars = models.init_variables(jax.random.PRNGKey(0), config)
    generator, discriminator = models.build_models(config)
    z = jax.random.normal(jax.random.PRNGKey(1), (4, 12))
    images, g_inter = generator.apply(g_vars, z, train=False, mutable=["intermediates"])
    for (act,) in g_inter["intermediates"].values():
        assert float(jnp.min(act)) >= 0.0  # ReLU
    _, d_inter = discriminator.apply(d_vars, images, train=False, mutable=["intermediates"])
    layer0 = d_inter["intermediates"]["layer0"][0]
    assert float(jnp.min(layer0)) < 0.0  # LeakyReLU passes 0.2 * negatives
    conv0 = jax.lax.conv_general_dilated(images, d_vars["params"]["conv0"]["kernel"], (2, 2), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(layer0, np.where(conv0 > 0, conv0, 0.2 * conv0), atol=1e-6)


def test_weights_are_drawn_from_normal_0_002():
    config = _config(64, 3)
    config.g_width = config.d_width = 64
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), config)
    kernel = np.asarray(g_vars["params"]["up1"]["kernel"])
    assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3


def test_lsun_config_builds_the_papers_generator():
    config = defaults.load_config("lsun")
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), config)
    params = g_vars["params"]
    assert params["project"]["kernel"].shape == (4, 4, 100, 1024)  # z(100) -> 4x4x1024
    assert [params[f"up{i}"]["kernel"].shape[-1] for i in range(4)] == [512, 256, 128, 3]
    generator, _ = models.build_models(config)
    z = jnp.zeros((1, 100))
    assert generator.apply(g_vars, z, train=False).shape == (1, 64, 64, 3)


def test_project_is_a_4x4_transposed_conv_of_a_1x1_input():
    z = jax.random.normal(jax.random.PRNGKey(0), (2, 5))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 5, 7))
    out = models.Project(7).apply({"params": {"kernel": kernel}}, z)
    # Independent formula: out[n, h, w, c] = sum_l z[n, l] K[h, w, l, c].
    expected = np.einsum("nl,hwlc->nhwc", np.asarray(z, np.float64), np.asarray(kernel, np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def _numpy_transposed_conv(x, kernel):
    """Scatter form of a 4x4, stride-2, padding-1 transposed conv (PyTorch's ConvTranspose2d(4, 2, 1) semantics
    with kernel index t = 3 - (tap offset)), written independently of XLA."""
    n, h, w, _ = x.shape
    full = np.zeros((n, 2 * h + 2, 2 * w + 2, kernel.shape[-1]))
    flipped = kernel[::-1, ::-1]  # XLA's conv_transpose correlates with an unflipped kernel
    for i in range(h):
        for j in range(w):
            full[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("nc,uvcd->nuvd", x[:, i, j], flipped)
    return full[:, 1:-1, 1:-1]


def test_transposed_conv_reference_matches_numpy_scatter():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    kernel = np.random.default_rng(1).normal(size=(4, 4, 5, 6))
    out = models.transposed_conv_reference(jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32))
    np.testing.assert_allclose(out, _numpy_transposed_conv(x, kernel), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 4, 4, 16, 8), (3, 5, 7, 6, 3)])
def test_subpixel_upsampling_equals_transposed_conv_forward_and_gradients(shape):
    n, h, w, c_in, c_out = shape
    x = jax.random.normal(jax.random.PRNGKey(0), (n, h, w, c_in))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, c_in, c_out))
    cotangent = jax.random.normal(jax.random.PRNGKey(2), (n, 2 * h, 2 * w, c_out))
    fast = models.transposed_conv_subpixel(x, kernel)
    ref = models.transposed_conv_reference(x, kernel)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-4)

    def loss(f):
        return lambda xx, kk: jnp.sum(f(xx, kk) * cotangent)
    fast_grads = jax.grad(loss(models.transposed_conv_subpixel), argnums=(0, 1))(x, kernel)
    ref_grads = jax.grad(loss(models.transposed_conv_reference), argnums=(0, 1))(x, kernel)
    for a, b in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_subpixel_matches_flax_conv_transpose_module():
    import flax.linen as nn
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 6))
    module = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), use_bias=False)
    variables = module.init(jax.random.PRNGKey(1), x)
    ours = models.Upsample(5).apply(variables, x)
    np.testing.assert_allclose(ours, module.apply(variables, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 4, 4, 16, 24), (3, 5, 7, 6, 3)])
def test_fast_upsampling_equals_transposed_conv_forward_and_gradients(shape):
    """'subpixel' (the sub-pixel forward with gradients taken from several forms) against XLA's transposed conv."""
    n, h, w, c_in, c_out = shape
    x = jax.random.normal(jax.random.PRNGKey(3), (n, h, w, c_in))
    kernel = jax.random.normal(jax.random.PRNGKey(4), (4, 4, c_in, c_out))
    cotangent = jax.random.normal(jax.random.PRNGKey(5), (n, 2 * h, 2 * w, c_out))
    fast_fn = jax.jit(models.UPSAMPLERS["subpixel"])
    np.testing.assert_allclose(fast_fn(x, kernel), models.transposed_conv_reference(x, kernel), rtol=1e-5, atol=1e-4)

    def loss(f):
        return lambda xx, kk: jnp.sum(f(xx, kk) * cotangent)
    fast_grads = jax.grad(loss(fast_fn), argnums=(0, 1))(x, kernel)
    ref_grads = jax.grad(loss(models.transposed_conv_reference), argnums=(0, 1))(x, kernel)
    for a, b in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(2, 8, 8, 16, 8), (3, 6, 10, 32, 16)])
def test_fast_strided_conv_equals_xla_forward_and_gradients(shape):
    n, h, w, c_in, c_out = shape
    x = jax.random.normal(jax.random.PRNGKey(0), (n, h, w, c_in))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, c_in, c_out))
    cotangent = jax.random.normal(jax.random.PRNGKey(2), (n, h // 2, w // 2, c_out))
    ref_out = models.strided_conv_reference(x, kernel)
    np.testing.assert_allclose(models.strided_conv_fast(x, kernel), ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(models.strided_conv_space_to_depth(x, kernel), ref_out, rtol=1e-5, atol=1e-4)

    def loss(f):
        return lambda xx, kk: jnp.sum(f(xx, kk) * cotangent)
    fast = jax.jit(jax.grad(loss(models.strided_conv_fast), argnums=(0, 1)))(x, kernel)
    ref = jax.grad(loss(models.strided_conv_reference), argnums=(0, 1))(x, kernel)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_discriminator_layers_equal_flax_conv():
    import flax.linen as nn
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
    module = nn.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1)), use_bias=False)
    variables = module.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(models.Downsample(8).apply(variables, x), module.apply(variables, x),
                               rtol=1e-5, atol=1e-5)
