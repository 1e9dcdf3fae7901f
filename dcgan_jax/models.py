"""DCGAN generator and discriminator (Radford et al. 2015, Sec. 3) in Flax linen.

The paper's rules: no pooling (strided convs in D, fractional-strided convs in G), batchnorm everywhere except the
G output and the D input layer, ReLU in G with a tanh output, LeakyReLU(0.2) in D, no fully connected hidden layers,
weights drawn from N(0, 0.02). Every layer is bias-free, as in the reference implementations: batchnorm follows.
"""

from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax import batchnorm

SUPPORTED_IMAGE_SIZES = (32, 64, 128)
_KERNEL = 4  # every strided (transposed) convolution of the paper's reference code is 4x4, stride 2, padding 1
dcgan_init = nn.initializers.normal(stddev=0.02)


def num_resolution_changes(image_size: int) -> int:
    """Number of 2x up/downsampling layers between the 4x4 base and `image_size`."""
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(f"image_size={image_size} is not supported; use one of {SUPPORTED_IMAGE_SIZES}")
    return int(np.log2(image_size)) - 2


_DIMS = ("NHWC", "HWIO", "NHWC")


def _pad1(x: jax.Array) -> jax.Array:
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def transposed_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The 2x fractional-strided convolution as XLA's transposed convolution (the straightforward formulation)."""
    pad = _KERNEL - 2  # k - 1 - p with p = 1
    return jax.lax.conv_transpose(x, kernel, (2, 2), ((pad, pad), (pad, pad)), dimension_numbers=_DIMS)


def transposed_conv_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `transposed_conv_reference`, as a stride-1 2x2 convolution to 4x the channels (sub-pixel form).

    Output pixel (2p+a, 2q+b) sees the 2x2 window of the padded input starting at (p+a, q+b) through kernel taps
    (2r+a, 2s+b), r, s in {0, 1}. One 2x2 convolution over the (h+1)x(w+1) windows computes all four phases (a, b) as
    channel groups; phase (a, b) then reads its window grid shifted by (a, b). No FLOPs are spent on zero taps.
    """
    n, h, w, c_in = x.shape
    features = kernel.shape[-1]
    # kernel[2r+a, 2s+b, i, o] -> phase_kernel[r, s, i, (a, b, o)]
    phase_kernel = kernel.reshape(2, 2, 2, 2, c_in, features).transpose(0, 2, 4, 1, 3, 5)
    y = jax.lax.conv_general_dilated(_pad1(x), phase_kernel.reshape(2, 2, c_in, 4 * features), (1, 1), "VALID",
                                     dimension_numbers=_DIMS).reshape(n, h + 1, w + 1, 2, 2, features)
    rows = [jnp.stack([y[:, a:a + h, b:b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)]  # (n, h, w, 2, C)
    return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, features)


def strided_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """D's 4x4, stride-2, padding-1 convolution as XLA's convolution, with XLA's own gradients."""
    return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMS)


def strided_conv_space_to_depth(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `strided_conv_reference`, as a stride-1 2x2 convolution of the space-to-depth padded input.

    Tap (2r+a, 2s+b) of the 4x4 kernel meets input pixel (2(p+r)+a, 2(q+s)+b): the 2x2 blocks of the padded input
    become channels (a, b, i) and the stride-2 4x4 convolution a stride-1 2x2 one.
    """
    padded = _pad1(x)
    n, h, w, c_in = padded.shape
    blocks = padded.reshape(n, h // 2, 2, w // 2, 2, c_in).transpose(0, 1, 3, 2, 4, 5)
    block_kernel = kernel.reshape(2, 2, 2, 2, c_in, -1).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c_in, -1)
    return jax.lax.conv_general_dilated(blocks.reshape(n, h // 2, w // 2, 4 * c_in), block_kernel, (1, 1), "VALID",
                                        dimension_numbers=_DIMS)


def _input_grad_of(form: Callable) -> Callable:
    """(x, kernel, cotangent) -> the input gradient of `form(x, kernel)`."""
    return lambda x, kernel, cotangent: jax.vjp(lambda x_: form(x_, kernel), x)[1](cotangent)[0]


def _kernel_grad_of(form: Callable) -> Callable:
    """(x, kernel, cotangent) -> the kernel gradient of `form(x, kernel)`."""
    return lambda x, kernel, cotangent: jax.vjp(lambda k: form(x, k), kernel)[1](cotangent)[0]


def _swap_roles(kernel: jax.Array) -> jax.Array:
    """The kernel that makes the strided conv and the transposed conv each other's transpose (flip, swap channels)."""
    return jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)


def _transposed_conv_kernel_grad(x: jax.Array, kernel: jax.Array, cotangent: jax.Array) -> jax.Array:
    """The kernel gradient of the 2x transposed conv, as that of the strided conv mapping `cotangent` back to x's shape.

    Both sum x[p, q, i] * cotangent[2p + u - 1, 2q + v - 1, o] over the batch and positions, with the taps flipped.
    """
    swapped_grad = _kernel_grad_of(strided_conv_reference)(cotangent, _swap_roles(kernel), x)
    return _swap_roles(swapped_grad)


def _linear_op(forward: Callable, input_grad: Callable, kernel_grad: Callable) -> Callable:
    """`forward(x, kernel)` with its two gradients computed by `input_grad` / `kernel_grad(x, kernel, cotangent)`.

    XLA:CPU runs some of the three convolutions behind a layer (forward, input and kernel gradient) fast in one exact
    formulation and slowly in another; each is computed in the form measured fastest (benchmarks/train_step.py).
    """
    @jax.custom_vjp
    def op(x, kernel):
        return forward(x, kernel)

    def op_fwd(x, kernel):
        return forward(x, kernel), (x, kernel)

    def op_bwd(residuals, cotangent):
        x, kernel = residuals
        return input_grad(x, kernel, cotangent), kernel_grad(x, kernel, cotangent)

    op.defvjp(op_fwd, op_bwd)
    return op


# G's upsampling: the sub-pixel forward is 2-3x faster than XLA's transposed convolution; XLA's input gradient of the
# latter is an ordinary strided convolution (the fastest form), and its kernel gradient is fastest as a strided conv's.
transposed_conv_fast = _linear_op(transposed_conv_subpixel, _input_grad_of(transposed_conv_reference),
                                  _transposed_conv_kernel_grad)
# D's downsampling: XLA's input gradient of a strided convolution (an lhs-dilated convolution) is 2-3x slower than
# that of the space-to-depth form; XLA's own forward and kernel gradient are the fastest.
strided_conv_fast = _linear_op(strided_conv_reference, _input_grad_of(strided_conv_space_to_depth),
                               _kernel_grad_of(strided_conv_reference))


class Downsample(nn.Module):
    """D's strided 4x4 convolution (bias-free), halving the resolution."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (_KERNEL, _KERNEL, x.shape[-1], self.features), jnp.float32)
        return strided_conv_fast(x.astype(self.dtype), kernel.astype(self.dtype))


UPSAMPLERS: Mapping[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "subpixel": transposed_conv_fast,  # the sub-pixel form, with the fastest exact gradients
    "transpose": transposed_conv_reference,  # XLA's transposed convolution and its gradients
}
# Forms earlier versions offered, saved in their checkpoints' configs: the same math as "subpixel".
RETIRED_UPSAMPLERS = {"subpixel_conv": "subpixel", "subpixel_gemm": "subpixel"}


class Upsample(nn.Module):
    """Fractional-strided 4x4 convolution doubling the resolution (bias-free)."""

    features: int
    method: str = "subpixel"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (_KERNEL, _KERNEL, x.shape[-1], self.features), jnp.float32)
        return UPSAMPLERS[self.method](x.astype(self.dtype), kernel.astype(self.dtype))


class Project(nn.Module):
    """The paper's "project and reshape": z -> 4x4xC, i.e. a 4x4 transposed conv applied to a 1x1 input."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (4, 4, z.shape[-1], self.features), jnp.float32)
        return jnp.einsum("nl,hwlc->nhwc", z.astype(self.dtype), kernel.astype(self.dtype))


def _batch_norm(train: bool, axis_name: Optional[str], momentum: float, epsilon: float, dtype: Any, name: str):
    return batchnorm.BatchNorm(use_running_average=not train, axis_name=axis_name if train else None,
                               momentum=momentum, epsilon=epsilon, dtype=dtype, name=name)


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, S, S, C) in [-1, 1]. Widths halve from 4x4 up: g_width * 2**(n-1) ... g_width."""

    image_size: int = 64
    num_channels: int = 3
    width: int = 64
    upsample: str = "subpixel"
    axis_name: Optional[str] = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True,
                 layer_masks: Optional[Mapping[int, jax.Array]] = None) -> jax.Array:
        """`layer_masks[i]` (shape (C_i,)) multiplies the feature maps of hidden layer i (0 = 4x4) after its ReLU."""
        n_up = num_resolution_changes(self.image_size)
        layer_masks = layer_masks or {}
        h = Project(self.width * 2 ** (n_up - 1), dtype=self.dtype, name="project")(z)
        for i in range(n_up):
            h = _batch_norm(train, self.axis_name, self.bn_momentum, self.bn_epsilon, self.dtype, f"bn{i}")(h)
            h = nn.relu(h)
            if i in layer_masks:
                h = h * jnp.asarray(layer_masks[i], h.dtype)
            self.sow("intermediates", f"layer{i}", h)
            features = self.num_channels if i == n_up - 1 else self.width * 2 ** (n_up - 2 - i)
            h = Upsample(features, self.upsample, dtype=self.dtype, name=f"up{i}")(h)
        return jnp.tanh(h.astype(jnp.float32))


class Discriminator(nn.Module):
    """images (N, S, S, C) -> logits (N,). Strided 4x4 convs, widths d_width ... d_width * 2**(n-1), then 4x4 valid."""

    image_size: int = 64
    width: int = 64
    axis_name: Optional[str] = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """Hidden activations are sown into 'intermediates' as `layer{i}` (the paper's classifier features)."""
        n_down = num_resolution_changes(self.image_size)
        h = x.astype(self.dtype)
        for i in range(n_down):
            h = Downsample(self.width * 2 ** i, dtype=self.dtype, name=f"conv{i}")(h)
            if i > 0:  # the paper: no batchnorm on the discriminator's input layer
                h = _batch_norm(train, self.axis_name, self.bn_momentum, self.bn_epsilon, self.dtype, f"bn{i}")(h)
            h = nn.leaky_relu(h, 0.2)
            self.sow("intermediates", f"layer{i}", h)
        h = nn.Conv(1, (_KERNEL, _KERNEL), padding="VALID", use_bias=False, kernel_init=dcgan_init,
                    dtype=self.dtype, name="logit")(h)
        return h.reshape(h.shape[0]).astype(jnp.float32)


def build_models(config: ml_collections.ConfigDict, axis_name: Optional[str] = None):
    """Generator and Discriminator from the config; `axis_name` syncs batchnorm statistics across devices."""
    num_resolution_changes(config.image_size)  # validates the size
    if config.num_channels not in (1, 3):
        raise ValueError(f"num_channels={config.num_channels} is not supported; use 1 (grayscale) or 3 (RGB)")
    upsample = RETIRED_UPSAMPLERS.get(config.upsample, config.upsample)
    if upsample not in UPSAMPLERS:
        raise ValueError(f"upsample={config.upsample!r} is not supported; use one of {sorted(UPSAMPLERS)}")
    dtype = jnp.dtype(config.compute_dtype)
    bn = dict(axis_name=axis_name if config.sync_batchnorm else None, bn_momentum=config.bn_momentum,
              bn_epsilon=config.bn_epsilon, dtype=dtype)
    generator = Generator(config.image_size, config.num_channels, config.g_width, upsample, **bn)
    discriminator = Discriminator(config.image_size, config.d_width, **bn)
    return generator, discriminator


def init_variables(rng: jax.Array, config: ml_collections.ConfigDict):
    """Fresh {'params', 'batch_stats'} for G and D."""
    generator, discriminator = build_models(config)
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    x = jnp.zeros((1, config.image_size, config.image_size, config.num_channels), jnp.float32)
    return generator.init(g_rng, z, train=False), discriminator.init(d_rng, x, train=False)
