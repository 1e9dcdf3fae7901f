"""DCGAN generator and discriminator (Radford et al. 2015, Sec. 3) in Flax linen.

The paper's rules: no pooling (strided convs in D, fractional-strided convs in G), batchnorm
everywhere except the G output and the D input layer, ReLU in G with a tanh output, LeakyReLU(0.2)
in D, no fully connected hidden layers, weights drawn from N(0, 0.02). Every layer is bias-free, as
in the reference implementations: batchnorm follows.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax.nn import batchnorm, convolutions
from dcgan_jax.nn.convolutions import KERNEL

SUPPORTED_IMAGE_SIZES = (16, 32, 64, 128, 256)  # 4 x 2**n: G doubles from 4x4, D halves down to 4x4
dcgan_init = nn.initializers.normal(stddev=0.02)


def num_resolution_changes(image_size: int) -> int:
    """Number of 2x up/downsampling layers between the 4x4 base and `image_size`."""
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(
            f"model.image_size={image_size} is not supported; use one of {SUPPORTED_IMAGE_SIZES}"
        )
    return int(np.log2(image_size)) - 2


class Downsample(nn.Module):
    """D's strided 4x4 convolution (bias-free), halving the resolution. `conv_impl`: 'fast' or 'xla'
    (resolved)."""

    features: int
    dtype: Any = jnp.float32
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", dcgan_init, (KERNEL, KERNEL, x.shape[-1], self.features), jnp.float32
        )
        return convolutions.STRIDED_CONVS[self.conv_impl](
            x.astype(self.dtype), kernel.astype(self.dtype)
        )


# G's upsampling: "subpixel" follows conv_impl (the sub-pixel form with the fastest exact gradients,
# or XLA's own); "transpose" is always XLA's transposed convolution and its gradients.
UPSAMPLERS: Mapping[str, Callable[[str], Callable[[jax.Array, jax.Array], jax.Array]]] = {
    "subpixel": lambda conv_impl: convolutions.TRANSPOSED_CONVS[conv_impl],
    "transpose": lambda conv_impl: convolutions.transposed_conv_reference,
}


class Upsample(nn.Module):
    """Fractional-strided 4x4 convolution doubling the resolution (bias-free)."""

    features: int
    method: str = "subpixel"
    dtype: Any = jnp.float32
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", dcgan_init, (KERNEL, KERNEL, x.shape[-1], self.features), jnp.float32
        )
        return UPSAMPLERS[self.method](self.conv_impl)(
            x.astype(self.dtype), kernel.astype(self.dtype)
        )


class Project(nn.Module):
    """The paper's "project and reshape": z -> 4x4xC, i.e. a 4x4 transposed conv applied to a 1x1
    input."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (4, 4, z.shape[-1], self.features), jnp.float32)
        return jnp.einsum("nl,hwlc->nhwc", z.astype(self.dtype), kernel.astype(self.dtype))


def _batch_norm(
    train: bool, axis_name: str | None, momentum: float, epsilon: float, dtype: Any, name: str
):
    return batchnorm.BatchNorm(
        use_running_average=not train,
        axis_name=axis_name if train else None,
        momentum=momentum,
        epsilon=epsilon,
        dtype=dtype,
        name=name,
    )


CLASS_FORMS = ("projection", "concat")


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, S, S, C) in [-1, 1]. Widths halve from 4x4 up: g_width *
    2**(n-1) ... g_width.

    Class-conditional (num_classes > 0): G's input is z followed by a class code of num_classes
    entries (one-hot for class c, `latent.with_class`); the code is mapped to a learned embedding
    (code @ E: E's row c for one-hot c, a mixture for a soft code, so latent tools interpolate
    between classes too) and concatenated to z."""

    image_size: int = 64
    num_channels: int = 3
    width: int = 64
    upsample: str = "subpixel"
    axis_name: str | None = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    conv_impl: str = "fast"  # 'fast' or 'xla': convolutions.resolve_conv_impl of model.conv_impl
    num_classes: int = 0
    embedding_dim: int = 0

    @nn.compact
    def __call__(
        self, z: jax.Array, train: bool = True, layer_masks: Mapping[int, jax.Array] | None = None
    ) -> jax.Array:
        """`layer_masks[i]` (shape (C_i,)) multiplies the feature maps of hidden layer i (0 = 4x4)
        after its ReLU."""
        n_up = num_resolution_changes(self.image_size)
        layer_masks = layer_masks or {}
        if self.num_classes:
            z, code = z[:, : -self.num_classes], z[:, -self.num_classes :]
            table = self.param(
                "class_embedding",
                nn.initializers.normal(1.0),
                (self.num_classes, self.embedding_dim),
                jnp.float32,
            )
            z = jnp.concatenate([z, code.astype(jnp.float32) @ table], axis=-1)
        h = Project(self.width * 2 ** (n_up - 1), dtype=self.dtype, name="project")(z)
        for i in range(n_up):
            h = _batch_norm(
                train, self.axis_name, self.bn_momentum, self.bn_epsilon, self.dtype, f"bn{i}"
            )(h)
            h = nn.relu(h)
            if i in layer_masks:
                h = h * jnp.asarray(layer_masks[i], h.dtype)
            self.sow("intermediates", f"layer{i}", h)
            features = self.num_channels if i == n_up - 1 else self.width * 2 ** (n_up - 2 - i)
            h = Upsample(features, self.upsample, self.dtype, self.conv_impl, name=f"up{i}")(h)
        return jnp.tanh(h.astype(jnp.float32))


def d_activation(x: jax.Array) -> jax.Array:
    """D's nonlinearity (the paper: LeakyReLU, slope 0.2)."""
    return nn.leaky_relu(x, 0.2)


class Discriminator(nn.Module):
    """images (N, S, S, C) -> logits (N,). Strided 4x4 convs, widths d_width ... d_width * 2**(n-1),
    then 4x4 valid.

    `activation` is replaceable so analyses can change how gradients pass it (guided
    backpropagation).

    Class-conditional (num_classes > 0) D takes the class code (N, num_classes) too: 'projection' (Miyato & Koyama
    2018) adds <code @ V, sum over positions of the last features> to the logit; 'concat' appends the code to the
    image as constant channels. Without a code (feature analyses of a conditional D) the code is all zeros."""

    image_size: int = 64
    width: int = 64
    axis_name: str | None = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    conv_impl: str = "fast"
    activation: Callable[[jax.Array], jax.Array] = d_activation
    num_classes: int = 0
    class_form: str = "projection"

    @nn.compact
    def __call__(
        self, x: jax.Array, train: bool = True, class_code: jax.Array | None = None
    ) -> jax.Array:
        """Hidden activations are sown into 'intermediates' as `layer{i}` (the paper's classifier
        features)."""
        n_down = num_resolution_changes(self.image_size)
        if self.num_classes and class_code is None:
            class_code = jnp.zeros((x.shape[0], self.num_classes), jnp.float32)
        if self.num_classes and self.class_form == "concat":
            planes = jnp.broadcast_to(
                class_code[:, None, None, :].astype(x.dtype), x.shape[:3] + (self.num_classes,)
            )
            x = jnp.concatenate([x, planes], axis=-1)
        h = x.astype(self.dtype)
        for i in range(n_down):
            h = Downsample(self.width * 2**i, self.dtype, self.conv_impl, name=f"conv{i}")(h)
            if i > 0:  # the paper: no batchnorm on the discriminator's input layer
                h = _batch_norm(
                    train, self.axis_name, self.bn_momentum, self.bn_epsilon, self.dtype, f"bn{i}"
                )(h)
            h = self.activation(h)
            self.sow("intermediates", f"layer{i}", h)
        logits = nn.Conv(
            1,
            (KERNEL, KERNEL),
            padding="VALID",
            use_bias=False,
            kernel_init=dcgan_init,
            dtype=self.dtype,
            name="logit",
        )(h)
        logits = logits.reshape(h.shape[0]).astype(jnp.float32)
        if self.num_classes and self.class_form == "projection":
            table = self.param(
                "class_projection", dcgan_init, (self.num_classes, h.shape[-1]), jnp.float32
            )
            pooled = jnp.sum(h.astype(jnp.float32), axis=(1, 2))
            logits = logits + jnp.sum((class_code.astype(jnp.float32) @ table) * pooled, axis=-1)
        return logits


def build_models(model: ml_collections.ConfigDict, axis_name: str | None = None, backend: str = ""):
    """Generator and Discriminator of `model` (config.model); `axis_name` syncs batchnorm statistics
    across devices. `backend` ('' = JAX's default) is the one they run on, which
    conv_impl='auto' picks the convolutions' form for: naming it builds a GPU's or TPU's model on a
    machine without one (jax.export, tests/test_accelerator_lowering.py)."""
    num_resolution_changes(model.image_size)  # validates the size
    if model.num_channels not in (1, 3):
        raise ValueError(
            f"model.num_channels={model.num_channels} is not supported; use 1 (grayscale) or 3 (RGB)"
        )
    upsample = model.upsample
    if upsample not in UPSAMPLERS:
        raise ValueError(
            f"model.upsample={model.upsample!r} is not supported; use one of {sorted(UPSAMPLERS)}"
        )
    dtype = jnp.dtype(model.compute_dtype)
    conv_impl = convolutions.resolve_conv_impl(model.conv_impl, backend)  # 'auto' -> per backend
    bn = dict(
        axis_name=axis_name if model.sync_batchnorm else None,
        bn_momentum=model.bn_momentum,
        bn_epsilon=model.bn_epsilon,
        dtype=dtype,
        conv_impl=conv_impl,
    )
    conditional = model.conditional
    if conditional.num_classes and conditional.d_form not in CLASS_FORMS:
        raise ValueError(
            f"model.conditional.d_form={conditional.d_form!r} is not supported; use one of "
            f"{CLASS_FORMS}"
        )
    generator = Generator(
        model.image_size,
        model.num_channels,
        model.g_width,
        upsample,
        **bn,
        num_classes=conditional.num_classes,
        embedding_dim=conditional.embedding_dim,
    )
    discriminator = Discriminator(
        model.image_size,
        model.d_width,
        **bn,
        num_classes=conditional.num_classes,
        class_form=conditional.d_form,
    )
    return generator, discriminator


def g_input_dim(model: ml_collections.ConfigDict) -> int:
    """The length of G's input vectors: latent_dim, plus num_classes for the class code of a
    conditional G."""
    return model.latent_dim + model.conditional.num_classes


def g_layer_widths(model: ml_collections.ConfigDict) -> Sequence[int]:
    """Channels of G's hidden layers, 4x4 layer first (the layers `layer_masks` and sown `layer{i}`
    index)."""
    n_up = num_resolution_changes(model.image_size)
    return [model.g_width * 2 ** (n_up - 1 - i) for i in range(n_up)]


def d_layer_widths(model: ml_collections.ConfigDict) -> Sequence[int]:
    """Channels of D's conv layers, input side first."""
    return [model.d_width * 2**i for i in range(num_resolution_changes(model.image_size))]


def init_variables(rng: jax.Array, model: ml_collections.ConfigDict):
    """Fresh {'params', 'batch_stats'} for G and D."""
    generator, discriminator = build_models(model)
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((1, g_input_dim(model)), jnp.float32)
    x = jnp.zeros((1, model.image_size, model.image_size, model.num_channels), jnp.float32)
    return generator.init(g_rng, z, train=False), discriminator.init(d_rng, x, train=False)
