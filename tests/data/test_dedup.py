"""Near-duplicate removal (dcgan_jax/data/dedup.py): the LSH search against a brute-force search, and the whole
method on images with planted near duplicates."""

import numpy as np
import pytest

from dcgan_jax import defaults
from dcgan_jax.data import dedup
from tests.helpers import planted_duplicates


def _brute_force(bits: np.ndarray, max_hamming: int) -> dict:
    """The same greedy rule, by comparing every pair: removed when within max_hamming of an earlier kept image."""
    kept, removed = [], {}
    for i, row in enumerate(bits):
        close = [j for j in kept if np.sum(row != bits[j]) <= max_hamming]
        if close:
            removed[i] = min(close)
        else:
            kept.append(i)
    return removed


def _codes_with_near_copies(seed=0, n=300, copies=120):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, 128), dtype=np.uint8)
    near = []
    for _ in range(copies):
        row = bits[rng.integers(0, n)].copy()
        flip = rng.choice(
            128, rng.integers(0, 21), replace=False
        )  # 0..20 bits: inside and outside the radius
        row[flip] ^= 1
        near.append(row)
    return np.concatenate([bits, np.stack(near)])


@pytest.mark.parametrize("max_hamming", [0, 5, 12])
def test_lsh_search_finds_what_brute_force_finds(max_hamming):
    bits = _codes_with_near_copies()
    # With 200 tables a pair 12 bits apart is missed with probability 0.93**200 ~ 5e-7: the searches must agree.
    found = dedup.duplicates(np.packbits(bits, axis=1), max_hamming, num_tables=200, key_bits=20)
    expected = _brute_force(bits, max_hamming)
    assert found == expected
    assert len(expected) > (10 if max_hamming else 3)  # the planted copies are there to be found


def test_nothing_beyond_the_radius_is_removed_with_few_tables():
    bits = _codes_with_near_copies(seed=1)
    found = dedup.duplicates(np.packbits(bits, axis=1), 12, num_tables=4, key_bits=20)
    expected = _brute_force(bits, 12)
    for removed, kept in found.items():
        assert np.sum(bits[removed] != bits[kept]) <= 12 and kept not in found
    assert len(found) >= len(expected) // 3  # four tables still find many


def test_thumbnails_are_box_averages_in_rgb():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (3, 64, 64, 1), dtype=np.uint8)
    thumbs = dedup.thumbnails(grey, 32)
    assert thumbs.shape == (3, 32, 32, 3)
    box = grey[..., 0].reshape(3, 32, 2, 32, 2).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(thumbs[..., 0] - box).max() <= 1
    assert np.array_equal(thumbs[..., 0], thumbs[..., 2])


def test_planted_near_duplicates_are_removed_and_distinct_images_kept():
    """Measured when written (300 distinct scenes, 90 copies: JPEG q75, shifted up to 2 px, recoloured +-7%;
    400 steps of batch 128): 90/90 copies removed, 0/300 distinct images removed; copies were 1-12 code bits from
    their originals, distinct images at least 32 bits from any other. Exact collisions (the paper's rule) found
    11/90. With 300 steps of batch 64 (a third of the examples, and of the time): again 90/90 and 0/300, copies
    0-10 bits from their originals, distinct images at least 33 apart (200 steps of 64: 90/90, 0-12 and 31)."""
    images, originals = planted_duplicates(distinct=300, copies=90, seed=0)
    cfg = defaults.get_config().dedup
    cfg.steps, cfg.batch_size = 300, 64
    removed = dedup.find_duplicates(images, cfg)
    copies = {300 + j for j in range(90)}
    found = copies & set(removed)
    assert len(found) >= 0.95 * len(copies)
    assert sum(1 for i in removed if i < 300) <= 3  # at most 1% of the distinct images
    for c in (
        found
    ):  # a copy is matched to its own original (or to another copy of it, which is then kept)
        assert removed[c] == originals[c - 300] or originals[removed[c] - 300] == originals[c - 300]


def test_mostly_dark_images_get_codes_that_tell_them_apart():
    """The digits (dark backgrounds): before inputs were centered, 127 of 128 code units died and all 1,438 images
    shared one code. Measured with 300 steps (of batch 256): 1,437 distinct codes, 64 of 128 bits active on
    average, 187 removed, each with an image of its digit. With 300 steps of batch 32 (an eighth of the time):
    1,437 distinct codes, 55 bits active, 186 removed, all of their digit; uncentered inputs still give one code."""
    from dcgan_jax.data import digits

    images, labels = digits.digits_with_labels(32, 1, "train")
    cfg = defaults.get_config().dedup
    cfg.steps, cfg.batch_size = 300, 32
    thumbs = dedup.thumbnails(images, cfg.thumbnail_size)
    model, params = dedup.train_autoencoder(thumbs, cfg)
    packed = dedup.codes(model, params, thumbs)
    assert len(np.unique(packed, axis=0)) >= 0.95 * len(images)
    removed = dedup.duplicates(packed, cfg.max_hamming, cfg.num_tables, cfg.key_bits)
    assert len(removed) < 0.2 * len(images)
    assert (
        np.mean([labels[i] == labels[j] for i, j in removed.items()]) > 0.9
    )  # near duplicates: the same digit
