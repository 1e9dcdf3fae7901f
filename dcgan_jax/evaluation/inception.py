"""InceptionV3 pool features for FID/KID comparable with published numbers: user-supplied weights
only.

Nothing is ever downloaded. The expected weights file is a .npz of the FID InceptionV3 (the TF-slim graph of
Heusel et al.'s TTUR code, as ported by pytorch-fid in `pt_inception-2015-12-05-6726825d.pth`), one array per
parameter named by its PyTorch state_dict key (e.g. `Conv2d_1a_3x3.conv.weight`); convert it once with
    python -c "import torch, numpy as np; sd = torch.load('pt_inception-2015-12-05-6726825d.pth');
               np.savez('inception_fid.npz', **{k: v.numpy() for k, v in sd.items()})"
The .pth is distributed with pytorch-fid's GitHub releases (github.com/mseitzer/pytorch-fid).

The network is pytorch-fid's FIDInceptionA/C/E_1/E_2 variant of InceptionV3 (average pools exclude
padding, the last block max-pools), fed 299x299 bilinear-resized images in [-1, 1]; features are the
2,048-d global average pool. Only the layers up to that pool are read from the file (fc.* and any
AuxLogits.* are ignored).
"""

import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dcgan_jax.data.images import as_model_input
from dcgan_jax.errors import UserError
from dcgan_jax.nn.batched import map_batches

BN_EPSILON = 1e-3
INPUT_SIZE = 299
FEATURE_DIM = 2048
Params = dict[str, jax.Array]

WEIGHTS_HELP = (
    "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth to .npz as described in "
    "dcgan_jax/evaluation/inception.py"
)


def check_weights(path: str) -> str:
    """The absolute path of a readable .npz weights file, or a UserError saying how to get one."""
    if not path:
        raise UserError(
            "--config.eval.feature_extractor='inception' needs InceptionV3 weights: set "
            f"--config.eval.inception_weights=FILE.npz (evaluate: --inception_weights; {WEIGHTS_HELP}); "
            "nothing is downloaded. Or use --config.eval.feature_extractor='classifier' (works offline)"
        )
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise UserError(f"InceptionV3 weights {path} do not exist; {WEIGHTS_HELP}")
    if not path.endswith(".npz"):
        raise UserError(f"InceptionV3 weights {path} must be a .npz; {WEIGHTS_HELP}")
    return path


def _conv_specs() -> list[tuple[str, int, int, int, int]]:
    """(name, in, out, kh, kw) of every conv+BN unit, in network order."""
    specs = [
        ("Conv2d_1a_3x3", 3, 32, 3, 3),
        ("Conv2d_2a_3x3", 32, 32, 3, 3),
        ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1),
        ("Conv2d_4a_3x3", 80, 192, 3, 3),
    ]
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        specs += [
            (f"{name}.branch1x1", cin, 64, 1, 1),
            (f"{name}.branch5x5_1", cin, 48, 1, 1),
            (f"{name}.branch5x5_2", 48, 64, 5, 5),
            (f"{name}.branch3x3dbl_1", cin, 64, 1, 1),
            (f"{name}.branch3x3dbl_2", 64, 96, 3, 3),
            (f"{name}.branch3x3dbl_3", 96, 96, 3, 3),
            (f"{name}.branch_pool", cin, pool, 1, 1),
        ]
    specs += [
        ("Mixed_6a.branch3x3", 288, 384, 3, 3),
        ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
        ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3),
        ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3),
    ]
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        specs += [
            (f"{name}.branch1x1", 768, 192, 1, 1),
            (f"{name}.branch7x7_1", 768, c7, 1, 1),
            (f"{name}.branch7x7_2", c7, c7, 1, 7),
            (f"{name}.branch7x7_3", c7, 192, 7, 1),
            (f"{name}.branch7x7dbl_1", 768, c7, 1, 1),
            (f"{name}.branch7x7dbl_2", c7, c7, 7, 1),
            (f"{name}.branch7x7dbl_3", c7, c7, 1, 7),
            (f"{name}.branch7x7dbl_4", c7, c7, 7, 1),
            (f"{name}.branch7x7dbl_5", c7, 192, 1, 7),
            (f"{name}.branch_pool", 768, 192, 1, 1),
        ]
    specs += [
        ("Mixed_7a.branch3x3_1", 768, 192, 1, 1),
        ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
        ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1),
        ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
        ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1),
        ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3),
    ]
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        specs += [
            (f"{name}.branch1x1", cin, 320, 1, 1),
            (f"{name}.branch3x3_1", cin, 384, 1, 1),
            (f"{name}.branch3x3_2a", 384, 384, 1, 3),
            (f"{name}.branch3x3_2b", 384, 384, 3, 1),
            (f"{name}.branch3x3dbl_1", cin, 448, 1, 1),
            (f"{name}.branch3x3dbl_2", 448, 384, 3, 3),
            (f"{name}.branch3x3dbl_3a", 384, 384, 1, 3),
            (f"{name}.branch3x3dbl_3b", 384, 384, 3, 1),
            (f"{name}.branch_pool", cin, 192, 1, 1),
        ]
    return specs


def param_shapes() -> dict[str, tuple[int, ...]]:
    """Every array the .npz must hold, with its (PyTorch) shape: OIHW conv weights and BN
    vectors."""
    shapes = {}
    for name, cin, cout, kh, kw in _conv_specs():
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{field}"] = (cout,)
    return shapes


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


@jax.jit
def _features(p: Params, images: jax.Array) -> jax.Array:
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)
    # Bilinear, half-pixel centers, no antialiasing: torch's interpolate(align_corners=False), as
    # pytorch-fid.
    resized = jax.image.resize(
        images, (images.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False
    )
    return pool_features(p, resized)


def load_weights(path: str) -> Params:
    """The arrays of `param_shapes()` from a .npz, checked; extra arrays (fc, AuxLogits) are
    ignored."""
    path = check_weights(path)
    shapes = param_shapes()
    with np.load(path) as data:
        missing = [k for k in shapes if k not in data.files]
        if missing:
            raise UserError(
                f"{path} lacks {len(missing)} InceptionV3 arrays (e.g. {missing[0]!r}); "
                f"{WEIGHTS_HELP}"
            )
        params = {k: np.asarray(data[k], np.float32) for k in shapes}
    wrong = [k for k, shape in shapes.items() if params[k].shape != shape]
    if wrong:
        raise UserError(
            f"{path}: {wrong[0]} has shape {params[wrong[0]].shape}, expected {shapes[wrong[0]]}"
        )
    return {k: jnp.asarray(v) for k, v in params.items()}


def make_extractor(weights_path: str, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """images (uint8, or float in [-1, 1]; 1 or 3 channels) -> (N, 2048) InceptionV3 pool
    features."""
    params = load_weights(weights_path)

    def extract(images: np.ndarray) -> np.ndarray:
        return map_batches(
            lambda chunk: _features(params, chunk), images, batch_size, as_model_input
        )

    return extract
