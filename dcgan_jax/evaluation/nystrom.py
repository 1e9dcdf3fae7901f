"""A preconditioner for the L2-SVM's conjugate gradient (evaluation/svm.py): a randomized Nystrom
approximation of the feature Gram matrix.

CG on the SVM's generalized Hessian H_k = I + 2C X_aug^T D_k X_aug (X_aug: the features with the
bias column of ones; D_k: class k's rows inside the margin) needs many steps on real features,
whose Gram has a few huge eigenvalues (D features are strongly correlated: eigenvalues spread over
~4 decades on Fashion-MNIST). With a_k the fraction of rows in D_k, H_k is close to
I + 2C a_k G, G = X_aug^T X_aug, whose inverse is cheap once G's top eigenpairs are known.

G ~ U diag(lam) U^T (rank r) from one pass over the blocks, Y = G Omega (Omega: r orthonormal
random columns), stabilized as in Tropp, Yurtsever, Udell & Cevher (2017) and used as a
preconditioner as in Frangella, Tropp & Udell (2021, "Randomized Nystrom preconditioning"): for
A = G + mu I,

    P^-1 v = U diag((lam_r + mu) / (lam + mu)) U^T v + (v - U U^T v),

so the r directions it captures are scaled to the level of the r-th eigenvalue and the rest are
left alone. Any symmetric positive definite P leaves CG's answer unchanged; only the number of
steps changes (on Fashion-MNIST D features, rank 1,024 of 7,169: 3x fewer steps).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Nystrom(NamedTuple):
    u: jax.Array  # (dim + 1, r): orthonormal columns (the bias is the last coordinate)
    lam: jax.Array  # (r,): the approximate eigenvalues of G, decreasing, >= 0
    rows: jax.Array  # the number of rows G sums over (the weights' sum)


def sketch(blocks: list[jax.Array], weights: jax.Array, rank: int, seed: int = 0) -> Nystrom | None:
    """The rank-`rank` Nystrom approximation (capped at dim + 1) of G = X_aug^T S X_aug over the
    row blocks, S = diag(weights) with weights in {0, 1} (fit rows 1; validation and padding 0).
    None when float32 could not factor it (CG then runs unpreconditioned)."""
    dim = int(blocks[0].shape[1]) + 1
    rank = min(rank, dim)
    omega, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(seed), (dim, rank)))
    rows = int(blocks[0].shape[0])
    y = jnp.zeros((dim, rank), jnp.float32)
    for i, block in enumerate(blocks):
        y = _sketch_block(y, block, weights[i * rows : (i + 1) * rows], omega)
    pre = _from_sketch(y, omega, weights.sum())
    finite = jnp.all(jnp.isfinite(pre.u)) & jnp.all(jnp.isfinite(pre.lam))
    return pre if bool(finite) else None


@jax.jit
def _sketch_block(y, block, weights, omega):
    """y + A^T (A omega), A = the block's rows with a column of ones, times their weights."""
    a = jnp.concatenate([block, jnp.ones((block.shape[0], 1), block.dtype)], 1) * weights[:, None]
    return y + a.T @ (a @ omega)


@jax.jit
def _from_sketch(y, omega, rows):
    """Y = G omega -> (U, lam), with a small shift nu for a stable Cholesky in float32."""
    nu = jnp.sqrt(jnp.float32(y.shape[0])) * jnp.finfo(jnp.float32).eps * jnp.linalg.norm(y)
    y = y + nu * omega
    chol = jnp.linalg.cholesky(omega.T @ y)
    b = jax.scipy.linalg.solve_triangular(chol, y.T, lower=True).T
    u, sigma, _ = jnp.linalg.svd(b, full_matrices=False)
    return Nystrom(u, jnp.maximum(0.0, sigma**2 - nu), rows)


def inverse_apply(pre: Nystrom, rw: jax.Array, rb: jax.Array, mu: jax.Array):
    """P_k^-1 applied to each class's residual (rows of rw (K, dim), rb (K,)) with the class's own
    shift mu (K,): the preconditioner of G + mu_k I. Returns (zw, zb)."""
    r = jnp.concatenate([rw, rb[:, None]], 1)
    proj = r @ pre.u
    scaled = proj * ((pre.lam[-1] + mu[:, None]) / (pre.lam[None, :] + mu[:, None]))
    z = r + (scaled - proj) @ pre.u.T
    return z[:, :-1], z[:, -1]
