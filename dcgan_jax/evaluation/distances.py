"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) between two sets of feature vectors, in
float64 numpy.

Both depend on the feature extractor and on the sample sizes (FID is biased upwards for small N);
compare numbers only when both are the same.
"""

import numpy as np


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of the rows of `features` (N, D), N >= 2."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _clip_round_off(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those indistinguishable from 0 (numpy's rank tolerance) set
    to 0.

    Their square roots would otherwise add ~sqrt(eps) each, visible for singular covariances (N <
    D).
    """
    tolerance = max(eigenvalues.max(initial=0.0), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(_clip_round_off(eigenvalues))) @ eigenvectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2): the inner matrix is symmetric PSD, so the
    trace is the sum of square roots of its eigenvalues, real and stable even when the covariances
    are singular (N < D).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _psd_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(_clip_round_off(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet Inception Distance between the Gaussian fits of two feature sets (with any
    extractor)."""
    return frechet_distance(*gaussian_fit(features1), *gaussian_fit(features2))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x.y / d + 1)^3."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel: within-set means exclude the diagonal."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD^2 needs at least 2 vectors in each set")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kid(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over random subsets (without
    replacement).

    `subset_size` is clipped to the smaller set; with one subset covering both sets it is exactly
    their MMD^2.
    """
    size = min(subset_size, len(features1), len(features2))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        i = rng.choice(len(features1), size, replace=False)
        j = rng.choice(len(features2), size, replace=False)
        values.append(mmd2_unbiased(features1[i], features2[j]))
    return float(np.mean(values)), float(np.std(values))


def fid_and_kid(
    real: np.ndarray,
    fake: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """{'fid', 'kid', 'kid_std'} of two feature sets."""
    kid_mean, kid_std = kid(real, fake, num_subsets, subset_size, seed)
    return {"fid": fid(real, fake), "kid": kid_mean, "kid_std": kid_std}
