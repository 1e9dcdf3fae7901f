"""InceptionV3 features: clear errors without weights, checked weight files, and the forward against PyTorch."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import inception


def test_inception_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="needs InceptionV3 weights"):
        inception.make_extractor("")
    with pytest.raises(UserError, match="do not exist"):
        inception.make_extractor(str(tmp_path / "missing.npz"))
    (tmp_path / "weights.pth").write_bytes(b"")
    with pytest.raises(UserError, match="is not a TorchScript/torch.save file or .npz"):
        inception.make_extractor(str(tmp_path / "weights.pth"))


def test_inception_weights_are_checked(tmp_path):
    shapes = inception.param_shapes()
    assert len(shapes) == 5 * 94 and shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    arrays = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    del arrays["Mixed_6e.branch1x1.bn.bias"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(UserError, match="lacks 1 InceptionV3 arrays"):
        inception.load_weights(str(tmp_path / "missing.npz"))
    arrays["Mixed_6e.branch1x1.bn.bias"] = np.zeros(5, np.float32)
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(UserError, match="expected"):
        inception.load_weights(str(tmp_path / "shape.npz"))


def _random_inception_npz(path):
    """Random weights with the FID InceptionV3's names and shapes (plus an fc layer the loader must ignore)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for key, shape in inception.param_shapes().items():
        if key.endswith("conv.weight"):
            arrays[key] = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape).astype(np.float32)
        elif key.endswith("running_var"):
            arrays[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            arrays[key] = rng.normal(
                0, 0.1 if "mean" in key or "bias" in key else 1.0, shape
            ).astype(np.float32)
    arrays["fc.weight"] = np.zeros((1008, 2048), np.float32)
    np.savez(path, **arrays)
    return arrays


def _torch_fid_inception(w, x):
    """An independent PyTorch (NCHW, torch.nn.functional) forward of pytorch-fid's FID InceptionV3 up to pool3."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in w.items()}

    def conv(name, h, stride=1, padding=0):
        h = F.conv2d(h, t[f"{name}.conv.weight"], stride=stride, padding=padding)
        h = F.batch_norm(
            h,
            t[f"{name}.bn.running_mean"],
            t[f"{name}.bn.running_var"],
            t[f"{name}.bn.weight"],
            t[f"{name}.bn.bias"],
            training=False,
            eps=0.001,
        )
        return F.relu(h)

    def avg(h):
        return F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)

    h = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    h = F.max_pool2d(
        conv("Conv2d_2b_3x3", conv("Conv2d_2a_3x3", conv("Conv2d_1a_3x3", h, 2)), padding=1), 3, 2
    )
    h = F.max_pool2d(conv("Conv2d_4a_3x3", conv("Conv2d_3b_1x1", h)), 3, 2)
    for n in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        b5 = conv(f"{n}.branch5x5_2", conv(f"{n}.branch5x5_1", h), padding=2)
        bd = conv(
            f"{n}.branch3x3dbl_3",
            conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1),
            padding=1,
        )
        h = torch.cat([conv(f"{n}.branch1x1", h), b5, bd, conv(f"{n}.branch_pool", avg(h))], 1)
    n = "Mixed_6a"
    bd = conv(
        f"{n}.branch3x3dbl_3",
        conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1),
        2,
    )
    h = torch.cat([conv(f"{n}.branch3x3", h, 2), bd, F.max_pool2d(h, 3, 2)], 1)
    for n in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        b7 = conv(
            f"{n}.branch7x7_3",
            conv(f"{n}.branch7x7_2", conv(f"{n}.branch7x7_1", h), padding=(0, 3)),
            padding=(3, 0),
        )
        bd = conv(f"{n}.branch7x7dbl_1", h)
        for i, pad in zip(range(2, 6), ((3, 0), (0, 3), (3, 0), (0, 3))):
            bd = conv(f"{n}.branch7x7dbl_{i}", bd, padding=pad)
        h = torch.cat([conv(f"{n}.branch1x1", h), b7, bd, conv(f"{n}.branch_pool", avg(h))], 1)
    n = "Mixed_7a"
    b3 = conv(f"{n}.branch3x3_2", conv(f"{n}.branch3x3_1", h), 2)
    b7 = conv(
        f"{n}.branch7x7x3_3",
        conv(f"{n}.branch7x7x3_2", conv(f"{n}.branch7x7x3_1", h), padding=(0, 3)),
        padding=(3, 0),
    )
    h = torch.cat([b3, conv(f"{n}.branch7x7x3_4", b7, 2), F.max_pool2d(h, 3, 2)], 1)
    for n, pool in (("Mixed_7b", avg), ("Mixed_7c", lambda v: F.max_pool2d(v, 3, 1, 1))):
        b3 = conv(f"{n}.branch3x3_1", h)
        b3 = torch.cat(
            [
                conv(f"{n}.branch3x3_2a", b3, padding=(0, 1)),
                conv(f"{n}.branch3x3_2b", b3, padding=(1, 0)),
            ],
            1,
        )
        bd = conv(f"{n}.branch3x3dbl_2", conv(f"{n}.branch3x3dbl_1", h), padding=1)
        bd = torch.cat(
            [
                conv(f"{n}.branch3x3dbl_3a", bd, padding=(0, 1)),
                conv(f"{n}.branch3x3dbl_3b", bd, padding=(1, 0)),
            ],
            1,
        )
        h = torch.cat([conv(f"{n}.branch1x1", h), b3, bd, conv(f"{n}.branch_pool", pool(h))], 1)
    return F.adaptive_avg_pool2d(h, 1).flatten(1).numpy()


def test_inception_matches_a_pytorch_forward(tmp_path):
    torch = pytest.importorskip(
        "torch",
        reason="the reference forward is written in PyTorch: the bench extra, pip install -e .[bench]",
    )
    path = str(tmp_path / "inception.npz")
    weights = _random_inception_npz(path)
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    got = inception.make_extractor(path, batch_size=2)(images)
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = _torch_fid_inception(weights, x)
    assert got.shape == (2, 2048) and np.abs(expected).mean() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())


def test_torch_files_are_read_without_running_their_code(tmp_path):
    """pytorch-fid's .pth (a torch.save state dict, zip or legacy format) reads as the .npz does;
    a pickle naming anything beyond tensors is refused, unrun; an unknown hash only warns."""
    torch = pytest.importorskip(
        "torch",
        reason="writes the torch files with torch: the bench extra, pip install -e .[bench]",
    )
    arrays = _random_inception_npz(tmp_path / "inception.npz")
    expected, tf_protocol = inception.load_weights(str(tmp_path / "inception.npz"))
    assert not tf_protocol
    state = {k: torch.from_numpy(v) for k, v in arrays.items()}
    for zip_format in (True, False):
        path = tmp_path / f"inception_{zip_format}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=zip_format)
        with pytest.warns(UserWarning, match="unknown SHA-1"):
            got, tf_protocol = inception.load_weights(str(path))
        assert not tf_protocol and set(got) == set(expected)
        assert all(np.array_equal(got[k], expected[k]) for k in got)
    hostile = tmp_path / "hostile.pth"
    torch.save({"x": torch.zeros(2)}, hostile)
    with zipfile.ZipFile(hostile) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    pkl = next(n for n in members if n.endswith("data.pkl"))
    members[pkl] = pickle.dumps(os.system)  # would name posix.system
    with zipfile.ZipFile(hostile, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(UserError, match="names posix.system"):
        inception.load_weights(str(hostile))
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "fc_only.pth")
    with pytest.raises(UserError, match="lacks 470 InceptionV3 arrays"):
        inception.load_weights(str(tmp_path / "fc_only.pth"))


def test_the_automatic_batch_size_gives_the_same_features(tmp_path):
    """batch_size 0 = default_batch_size of the backend (8 on CPU, measured fastest there by
    benchmarks/fid_extractor.py; 256 on accelerators): 3 images in one batch of the automatic size
    give the features of batches of 2 and 1."""
    path = str(tmp_path / "inception.npz")
    _random_inception_npz(path)
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 1)).astype(np.uint8)
    assert inception.default_batch_size("cpu") == 8
    assert inception.default_batch_size("gpu") == inception.default_batch_size("tpu") == 256
    auto = inception.make_extractor(path)(images)
    split = inception.make_extractor(path, batch_size=2)(images)
    assert auto.shape == (3, 2048) and np.abs(auto).mean() > 1e-3
    np.testing.assert_allclose(auto, split, rtol=1e-5, atol=1e-5 * np.abs(split).max())
