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

SUPPORTED_IMAGE_SIZES = (32, 64, 128)
_KERNEL = 4  # every strided (transposed) convolution of the paper's reference code is 4x4, stride 2, padding 1
dcgan_init = nn.initializers.normal(stddev=0.02)


def num_resolution_changes(image_size: int) -> int:
    """Number of 2x up/downsampling layers between the 4x4 base and `image_size`."""
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(f"image_size={image_size} is not supported; use one of {SUPPORTED_IMAGE_SIZES}")
    return int(np.log2(image_size)) - 2


# Sub-pixel form of the 4x4 / stride-2 / padding-1 transposed convolution. Output row 2p+a only sees input rows
# p-1..p+1: phase a=0 uses kernel taps (0, 2) at input offsets (-1, 0), phase a=1 taps (1, 3) at offsets (0, +1).
# _PHASE_TAPS[a, u, t] = 1 where tap t of the 4x4 kernel sits at row u of a 3x3 stride-1 kernel for phase a.
_PHASE_TAPS = np.zeros((2, 3, _KERNEL), np.float32)
_PHASE_TAPS[0, 0, 0] = _PHASE_TAPS[0, 1, 2] = 1.0
_PHASE_TAPS[1, 1, 1] = _PHASE_TAPS[1, 2, 3] = 1.0


def transposed_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The 2x fractional-strided convolution as XLA's transposed convolution (the straightforward formulation)."""
    pad = _KERNEL - 2  # k - 1 - p with p = 1
    return jax.lax.conv_transpose(x, kernel, (2, 2), ((pad, pad), (pad, pad)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def transposed_conv_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `transposed_conv_reference`, computed as a stride-1 3x3 conv to 4x channels + depth-to-space.

    XLA:CPU differentiates the transposed convolution very slowly with respect to its kernel; this form has ordinary
    convolutions only. The 4x4 kernel stays the parameter, so the two formulations share weights exactly.
    """
    n, h, w, _ = x.shape
    features = kernel.shape[-1]
    taps = jnp.asarray(_PHASE_TAPS, kernel.dtype)
    # (3, 3, in, 2, 2, out): phase (a, b) of the output gets its own 3x3 kernel.
    phase_kernel = jnp.einsum("aut,bvs,tsio->uviabo", taps, taps, kernel)
    phase_kernel = phase_kernel.reshape(3, 3, kernel.shape[2], 4 * features)
    y = jax.lax.conv_general_dilated(x, phase_kernel, (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(n, h, w, 2, 2, features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, 2 * h, 2 * w, features)


def transposed_conv_gemm(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same result as `transposed_conv_reference`, as one matrix product: no FLOPs spent on zero taps.

    Output pixel (2p+a, 2q+b) sees the 2x2 input window starting at (p-1+a, q-1+b) through kernel taps
    (2r+a, 2s+b), r, s in {0, 1}. So all four phases are one product of the (h+1)x(w+1) windows of the padded input
    (4*C_in values each) with a (4*C_in, 4*C_out) matrix; phase (a, b) then reads its window grid shifted by (a, b).
    """
    n, h, w, c_in = x.shape
    features = kernel.shape[-1]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = jnp.concatenate([padded[:, r:r + h + 1, s:s + w + 1] for r in (0, 1) for s in (0, 1)], axis=-1)
    # kernel[2r+a, 2s+b, i, o] -> matrix[(r, s, i), (a, b, o)]
    matrix = kernel.reshape(2, 2, 2, 2, c_in, features).transpose(0, 2, 4, 1, 3, 5).reshape(4 * c_in, 4 * features)
    y = jnp.dot(windows, matrix).reshape(n, h + 1, w + 1, 2, 2, features)
    rows = [jnp.stack([y[:, a:a + h, b:b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)]  # (n, h, w, 2, C)
    return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, features)


_GEMM_MIN_FEATURES = 16  # narrower outputs (G's RGB layer): the GEMM is too thin, the 3x3 conv form is faster


def transposed_conv_fast(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The fastest exact sub-pixel form on XLA:CPU (benchmarks/train_step.py): GEMM for wide layers, else 3x3 conv."""
    if kernel.shape[-1] >= _GEMM_MIN_FEATURES:
        return transposed_conv_gemm(x, kernel)
    return transposed_conv_subpixel(x, kernel)


def strided_conv_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """D's 4x4, stride-2, padding-1 convolution as XLA's convolution, with XLA's own gradients."""
    return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def strided_conv_fast(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`strided_conv_reference` with a faster input gradient on XLA:CPU.

    The input gradient of a 4x4/stride-2/padding-1 convolution is the 4x4/stride-2 transposed convolution of the
    output cotangent with the kernel flipped in space and transposed in channels, which `transposed_conv_fast`
    computes without XLA's slow lhs-dilated convolution.
    """
    return strided_conv_reference(x, kernel)


def _strided_conv_fwd(x, kernel):
    return strided_conv_reference(x, kernel), (x, kernel)


def _strided_conv_bwd(residuals, cotangent):
    x, kernel = residuals
    _, kernel_vjp = jax.vjp(lambda k: strided_conv_reference(x, k), kernel)
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    return transposed_conv_fast(cotangent, flipped).astype(x.dtype), kernel_vjp(cotangent)[0]


strided_conv_fast.defvjp(_strided_conv_fwd, _strided_conv_bwd)
_FAST_DOWNSAMPLE_MIN_FEATURES = 16  # D's RGB/grayscale input layer: XLA's own input gradient is faster there


class Downsample(nn.Module):
    """D's strided 4x4 convolution (bias-free), halving the resolution."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (_KERNEL, _KERNEL, x.shape[-1], self.features), jnp.float32)
        conv = strided_conv_fast if x.shape[-1] >= _FAST_DOWNSAMPLE_MIN_FEATURES else strided_conv_reference
        return conv(x.astype(self.dtype), kernel.astype(self.dtype))


UPSAMPLERS: Mapping[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "subpixel": transposed_conv_fast,
    "subpixel_conv": transposed_conv_subpixel,
    "subpixel_gemm": transposed_conv_gemm,
    "transpose": transposed_conv_reference,
}


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
    return nn.BatchNorm(use_running_average=not train, axis_name=axis_name if train else None,
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
    if config.upsample not in UPSAMPLERS:
        raise ValueError(f"upsample={config.upsample!r} is not supported; use one of {sorted(UPSAMPLERS)}")
    dtype = jnp.dtype(config.compute_dtype)
    bn = dict(axis_name=axis_name if config.sync_batchnorm else None, bn_momentum=config.bn_momentum,
              bn_epsilon=config.bn_epsilon, dtype=dtype)
    generator = Generator(config.image_size, config.num_channels, config.g_width, config.upsample, **bn)
    discriminator = Discriminator(config.image_size, config.d_width, **bn)
    return generator, discriminator


def init_variables(rng: jax.Array, config: ml_collections.ConfigDict):
    """Fresh {'params', 'batch_stats'} for G and D."""
    generator, discriminator = build_models(config)
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    x = jnp.zeros((1, config.image_size, config.image_size, config.num_channels), jnp.float32)
    return generator.init(g_rng, z, train=False), discriminator.init(d_rng, x, train=False)
