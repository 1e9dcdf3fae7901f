"""FID against closed forms and scipy's matrix square root; KID against a direct double loop."""

import numpy as np
import pytest
import scipy.linalg

from dcgan_jax.evaluation import distances


def _diagonal_closed_form(mu1, var1, mu2, var2):
    return np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))


def _random_covariance(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    got = distances.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(_diagonal_closed_form(mu1, var1, mu2, var2), rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = _random_covariance(rng, 8), _random_covariance(rng, 8)
    reference = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    )
    assert distances.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_frechet_distance_of_commuting_covariances_rotated():
    """Same eigenvectors: FID = |dmu|^2 + sum (sqrt(l1) - sqrt(l2))^2, in any basis."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    l1, l2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    got = distances.frechet_distance(
        np.zeros(5), q @ np.diag(l1) @ q.T, np.ones(5), q @ np.diag(l2) @ q.T
    )
    assert got == pytest.approx(5.0 + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2), rel=1e-8)


def test_fid_of_samples_converges_to_closed_form():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    var1, var2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 0.5, 0.5])
    x = mu1 + np.sqrt(var1) * rng.normal(size=(200_000, 3))
    y = mu2 + np.sqrt(var2) * rng.normal(size=(200_000, 3))
    assert distances.fid(x, y) == pytest.approx(
        _diagonal_closed_form(mu1, var1, mu2, var2), abs=0.02
    )


def test_fid_of_identical_sets_is_zero_even_when_singular():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 10))
    assert abs(distances.fid(x, x)) < 1e-8
    wide = rng.normal(size=(20, 64))  # N < D: singular covariance
    assert abs(distances.fid(wide, wide.copy())) < 1e-8
    other = rng.normal(size=(20, 64))
    assert np.isfinite(distances.fid(wide, other)) and distances.fid(wide, other) > 0


def test_fid_is_symmetric_and_needs_two_rows():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(1, 2, size=(40, 4))
    assert distances.fid(x, y) == pytest.approx(distances.fid(y, x), rel=1e-8)
    with pytest.raises(ValueError):
        distances.fid(x[:1], y)


def _mmd2_double_loop(x, y):
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_unbiased_matches_double_loop():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(9, 5))
    assert distances.mmd2_unbiased(x, y) == pytest.approx(_mmd2_double_loop(x, y), rel=1e-10)


def test_kid_subsets():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 3)), rng.normal(0.5, 1.0, size=(30, 3))
    # One subset as large as the smaller set: every y, and 30 x's drawn with the same generator.
    mean, std = distances.kid(x, y, num_subsets=1, subset_size=1000, seed=3)
    gen = np.random.default_rng(3)
    i, j = gen.choice(40, 30, replace=False), gen.choice(30, 30, replace=False)
    assert mean == pytest.approx(_mmd2_double_loop(x[i], y[j]), rel=1e-10) and std == 0.0
    mean, std = distances.kid(x, y, num_subsets=20, subset_size=10, seed=0)
    gen = np.random.default_rng(0)
    values = []
    for _ in range(20):
        i, j = gen.choice(40, 10, replace=False), gen.choice(30, 10, replace=False)
        values.append(_mmd2_double_loop(x[i], y[j]))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8) and std > 0


def test_kid_is_unbiased_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    same, std = distances.kid(x, y, num_subsets=20, subset_size=500)
    assert abs(same) < 3 * std + 1e-3
    shifted, _ = distances.kid(x, y + 1.0, num_subsets=20, subset_size=500)
    assert shifted > 0.1
    scores = distances.fid_and_kid(x, y + 1.0, num_subsets=5, subset_size=100)
    assert set(scores) == {"fid", "kid", "kid_std"} and scores["fid"] == pytest.approx(4.0, abs=0.5)
