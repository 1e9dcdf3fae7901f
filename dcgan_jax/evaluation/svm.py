"""The paper's linear L2-SVM (squared hinge, one-vs-rest) solved in JAX on the run's backend, at
CIFAR-10 scale.

Objective, per class k with labels y_ik = +1 (class k) / -1 (other classes), the same as liblinear's
(scikit-learn `LinearSVC(loss='squared_hinge', fit_intercept=True, intercept_scaling=1)`), whose
bias is an extra feature of value 1 regularized like every weight:

    f_k(w, b) = 0.5 (||w||^2 + b^2) + C sum_i s_i max(0, 1 - y_ik (w . x_i + b))^2

with row weights s_i in {0, 1} (0: validation or padding rows). It is solved by truncated Newton
(conjugate gradient on the generalized Hessian I + 2C X^T D X, D the rows inside the margin), all
classes at once as the columns of one (d, K) matrix, with an exact line search along the Newton
direction (piecewise quadratic in the step, evaluated from margins already at hand), warm-started
along the increasing C path. Features live on the device as a list of row blocks (`Blocks`), so a
50,000 x 28,672 float32 problem (5.7 GB) is held once; every product with X or X^T is a loop over
blocks, and one pass over the blocks gives both X v and X^T (D X v).
"""

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax.evaluation import nystrom


class Blocks(NamedTuple):
    """A (rows, dim) float32 matrix as device blocks of `block_rows` rows (the last one
    zero-padded). The list is mutable on purpose: `standardize` replaces its blocks in place, so no
    holder keeps the raw copy alive."""

    blocks: list[jax.Array]
    rows: int

    @property
    def block_rows(self) -> int:
        return int(self.blocks[0].shape[0])

    @property
    def padded_rows(self) -> int:
        return self.block_rows * len(self.blocks)

    @property
    def dim(self) -> int:
        return int(self.blocks[0].shape[1])


def blocks_from_host(x: np.ndarray, block_rows: int) -> Blocks:
    """Host rows -> device blocks (float32), converting one block at a time."""
    if len(x) == 0:
        raise ValueError("the SVM needs at least one row")
    block_rows = min(block_rows, len(x))
    blocks = []
    for start in range(0, len(x), block_rows):
        chunk = np.asarray(x[start : start + block_rows], np.float32)
        if len(chunk) < block_rows:
            chunk = np.concatenate(
                [chunk, np.zeros((block_rows - len(chunk), chunk.shape[1]), np.float32)]
            )
        blocks.append(jax.device_put(chunk))
    return Blocks(blocks, len(x))


def blocks_to_host(x: Blocks) -> np.ndarray:
    return np.concatenate([np.asarray(b) for b in x.blocks])[: x.rows]


def _row_mask(x: Blocks) -> jax.Array:
    return (jnp.arange(x.padded_rows) < x.rows).astype(jnp.float32)


def standardize(
    x: Blocks, mean: jax.Array | None = None, scale: jax.Array | None = None
) -> tuple[Blocks, jax.Array, jax.Array]:
    """(x - mean) / scale per feature, IN PLACE (x.blocks' entries are replaced one by one, so at
    most one extra block is in memory); mean and scale (population std, 1 where a feature is
    constant, as scikit-learn's StandardScaler) are x's own unless given. Returns (x, mean,
    scale)."""
    if mean is None:
        mask = _row_mask(x).reshape(len(x.blocks), -1)
        total = sum(_masked_sum(b, m) for b, m in zip(x.blocks, mask))
        mean = total / x.rows
        squares = sum(_masked_square(b, m, mean) for b, m in zip(x.blocks, mask))
        std = jnp.sqrt(squares / x.rows)
        scale = jnp.where(std > 1e-6 * jnp.maximum(1.0, jnp.abs(mean)), std, 1.0)
    for i in range(len(x.blocks)):
        x.blocks[i] = _scale_block(x.blocks[i], mean, scale)
    return x, mean, scale


@jax.jit
def _masked_sum(block, mask):
    return (block * mask[:, None]).astype(jnp.float32).sum(0)


@jax.jit
def _masked_square(block, mask, mean):
    return (jnp.square(block - mean) * mask[:, None]).sum(0)


@jax.jit
def _scale_block(block, mean, scale):
    return ((block - mean) / scale).astype(jnp.float32)


# -----------------------------------------------------------------------------------------
# blockwise products
@jax.jit
def _margins_and_grad(blocks, w, b, y, s, c):
    """One pass: margins X w + b, per-class objective and gradient (w-part, b-part)."""
    rows = blocks[0].shape[0]
    margins, gw = [], jnp.zeros_like(w)
    loss = jnp.zeros(w.shape[0])
    gb = jnp.zeros_like(b)
    for i, block in enumerate(blocks):
        m = jnp.einsum("nd,kd->nk", block, w) + b
        yi, si = y[i * rows : (i + 1) * rows], s[i * rows : (i + 1) * rows, None]
        xi = jnp.maximum(0.0, 1.0 - yi * m) * si
        r = -2.0 * c * yi * xi
        gw = gw + jnp.einsum("nd,nk->kd", block, r)
        gb = gb + r.sum(0)
        loss = loss + (xi * xi).sum(0)
        margins.append(m)
    objective = 0.5 * ((w * w).sum(1) + b * b) + c * loss
    return jnp.concatenate(margins), objective, gw + w, gb + b


@jax.jit
def _hessian_product(blocks, active, vw, vb, c):
    """One pass: (H v, X v + vb) with H = I + 2C X_aug^T D X_aug column by column, D = `active`
    (rows, K)."""
    rows = blocks[0].shape[0]
    out, z_all = jnp.zeros_like(vw), []
    out_b = jnp.zeros_like(vb)
    for i, block in enumerate(blocks):
        z = jnp.einsum("nd,kd->nk", block, vw) + vb
        dz = active[i * rows : (i + 1) * rows] * z
        out = out + jnp.einsum("nd,nk->kd", block, dz)
        out_b = out_b + dz.sum(0)
        z_all.append(z)
    return vw + 2.0 * c * out, vb + 2.0 * c * out_b, jnp.concatenate(z_all)


@jax.jit
def _predict_blocks(blocks, w, b):
    return jnp.concatenate([jnp.einsum("nd,kd->nk", block, w) + b for block in blocks])


def _coldot(aw, ab, bw, bb):
    return (aw * bw).sum(1) + ab * bb


@jax.jit
def _line_search(w, b, pw, pb, margins, z, y, s, c):
    """Per class, the exact minimizer t >= 0 of f(theta + t p) (convex, piecewise quadratic in t) by
    safeguarded 1-D Newton from t = 1 on cached margins; falls back to halving until f decreases."""
    tp, pp = _coldot(w, b, pw, pb), _coldot(pw, pb, pw, pb)
    ww = _coldot(w, b, w, b)

    def phi(t):
        xi = jnp.maximum(0.0, 1.0 - y * (margins + t * z)) * s[:, None]
        return 0.5 * (ww + 2 * t * tp + t * t * pp) + c * (xi * xi).sum(0)

    def newton(t, _):
        u = 1.0 - y * (margins + t * z)
        xi = jnp.maximum(0.0, u) * s[:, None]
        d1 = tp + t * pp - 2.0 * c * (xi * y * z).sum(0)
        d2 = pp + 2.0 * c * ((u > 0) * s[:, None] * z * z).sum(0)
        return jnp.maximum(t - d1 / d2, 0.0), None

    t, _ = jax.lax.scan(newton, jnp.ones_like(tp), None, length=8)
    f0 = phi(jnp.zeros_like(tp))
    halvings = 0.5 ** jnp.arange(30.0)
    candidates = jax.vmap(phi)(halvings)  # (30, K): the fallback, f along t = 1, 1/2, 1/4, ...
    first = jnp.argmax(candidates < f0, axis=0)
    fallback = jnp.where(jnp.any(candidates < f0, axis=0), halvings[first], 0.0)
    return jnp.where(phi(t) <= f0, t, fallback)


# -----------------------------------------------------------------------------------------------
# the solver
class Solution(NamedTuple):
    w: jax.Array  # (K, dim): rows are classes (the layout in which X^T r is a fast product on CPU)
    b: jax.Array  # (K,)
    margins: jax.Array  # (padded rows, K): X w + b on the training blocks
    newton_steps: int
    cg_steps: int


def one_vs_rest_targets(labels: np.ndarray, num_classes: int, padded_rows: int) -> jax.Array:
    """(padded rows, K) float32 +1/-1 targets (padding rows -1; they carry weight 0)."""
    y = -np.ones((padded_rows, num_classes), np.float32)
    y[np.arange(len(labels)), labels] = 1.0
    return jnp.asarray(y)


def newton_solve(
    x: Blocks,
    y: jax.Array,
    s: jax.Array,
    c: float,
    w: jax.Array,
    b: jax.Array,
    tol: float = 1e-3,
    max_newton: int = 50,
    max_cg: int = 100,
    pre: nystrom.Nystrom | None = None,
) -> Solution:
    """Minimizes every class's f_k from (w, b) until ||grad f_k|| <= tol ||grad f_k(0)||
    (liblinear's criterion); `pre` (nystrom.sketch of the fit rows) preconditions CG."""
    c = jnp.float32(c)
    zero_w, zero_b = jnp.zeros_like(w), jnp.zeros_like(b)
    _, _, g0w, g0b = _margins_and_grad(x.blocks, zero_w, zero_b, y, s, c)
    g0 = np.sqrt(np.asarray(_coldot(g0w, g0b, g0w, g0b)))
    cg_total = 0
    for step in range(max_newton + 1):
        margins, _, gw, gb = _margins_and_grad(x.blocks, w, b, y, s, c)
        gnorm = np.sqrt(np.asarray(_coldot(gw, gb, gw, gb)))
        if step == max_newton or np.all(gnorm <= tol * g0):
            break
        active = ((y * margins < 1.0) * s[:, None]).astype(jnp.float32)
        pw, pb, z, used = _conjugate_gradient(x, active, gw, gb, c, gnorm, max_cg, pre)
        cg_total += used
        t = _line_search(w, b, pw, pb, margins, z, y, s, c)
        w, b = w + t[:, None] * pw, b + t * pb
    return Solution(w, b, margins, step, cg_total)


def _conjugate_gradient(x, active, gw, gb, c, gnorm, max_cg, pre=None):
    """Approximately solves H p = -g per column, to a relative residual that tightens as the
    gradient shrinks (a forcing term, for superlinear convergence); also returns X_aug p,
    accumulated from the products CG already made."""
    forcing = np.minimum(0.1, np.sqrt(gnorm / (gnorm.max() + 1e-30)))
    target = jnp.asarray(forcing * gnorm, jnp.float32)
    pw, pb, xp, steps = _cg_loop(x.blocks, active, gw, gb, c, target, max_cg, pre)
    return pw, pb, xp, int(steps)


@functools.partial(jax.jit, static_argnames=("max_cg",))
def _cg_loop(blocks, active, gw, gb, c, target, max_cg, pre=None):
    """(Preconditioned) conjugate gradient, every column at once in one compiled loop; converged
    columns stop moving. With `pre`, class k's H_k ~ 2C a_k (G + mu_k I), a_k its fraction of
    rows inside the margin, mu_k = 1 / (2C a_k) (evaluation/nystrom.py)."""
    rows = blocks[0].shape[0] * len(blocks)
    if pre is None:

        def precondition(rw, rb):
            return rw, rb
    else:
        mu = 1.0 / (2.0 * c * jnp.maximum(active.sum(0), 1.0) / pre.rows)

        def precondition(rw, rb):
            return nystrom.inverse_apply(pre, rw, rb, mu)

    zw, zb = precondition(-gw, -gb)
    rr = _coldot(gw, gb, gw, gb)
    init = dict(
        pw=jnp.zeros_like(gw),
        pb=jnp.zeros_like(gb),
        xp=jnp.zeros((rows, gw.shape[0]), gw.dtype),
        rw=-gw,
        rb=-gb,
        dw=zw,
        db=zb,
        rz=_coldot(-gw, -gb, zw, zb),
        k=jnp.int32(0),
        done=jnp.sqrt(rr) <= target,
    )

    def cond(state):
        return (state["k"] < max_cg) & ~jnp.all(state["done"])

    def body(state):
        dw, db, rz = state["dw"], state["db"], state["rz"]
        hw, hb, xd = _hessian_product(blocks, active, dw, db, c)
        alpha = jnp.where(state["done"], 0.0, rz / jnp.maximum(_coldot(dw, db, hw, hb), 1e-30))
        rw, rb = state["rw"] - alpha[:, None] * hw, state["rb"] - alpha * hb
        zw, zb = precondition(rw, rb)
        rz_new = _coldot(rw, rb, zw, zb)
        done = state["done"] | (jnp.sqrt(_coldot(rw, rb, rw, rb)) <= target)
        beta = jnp.where(done, 0.0, rz_new / jnp.maximum(rz, 1e-30))
        keep = jnp.where(done, 0.0, 1.0)
        return dict(
            pw=state["pw"] + alpha[:, None] * dw,
            pb=state["pb"] + alpha * db,
            xp=state["xp"] + alpha * xd,
            rw=rw,
            rb=rb,
            dw=keep[:, None] * (zw + beta[:, None] * dw),
            db=keep * (zb + beta * db),
            rz=rz_new,
            k=state["k"] + 1,
            done=done,
        )

    state = jax.lax.while_loop(cond, body, init)
    return state["pw"], state["pb"], state["xp"], state["k"]


def fit_c_path(
    x: Blocks,
    labels: np.ndarray,
    num_classes: int,
    fit_rows: np.ndarray,
    c_values: Sequence[float],
    tol: float = 1e-3,
    max_newton: int = 50,
    max_cg: int = 100,
    on_fit: Callable[[float, Solution], None] | None = None,
    pre: nystrom.Nystrom | None = None,
) -> dict[float, Solution]:
    """Solutions for every C (increasing, each warm-started from the previous), trained on
    `fit_rows` only; their margins cover every row, so held-out rows are scored without another
    pass. `pre`: a CG preconditioner (nystrom.sketch), the same for every C."""
    y = one_vs_rest_targets(labels, num_classes, x.padded_rows)
    weights = np.zeros(x.padded_rows, np.float32)
    weights[fit_rows] = 1.0
    s = jnp.asarray(weights)
    w, b = jnp.zeros((num_classes, x.dim), jnp.float32), jnp.zeros((num_classes,), jnp.float32)
    solutions = {}
    for c in sorted(c_values):
        solution = newton_solve(x, y, s, c, w, b, tol, max_newton, max_cg, pre)
        solutions[c] = solution
        w, b = solution.w, solution.b
        if on_fit is not None:
            on_fit(c, solution)
    return solutions


def predict(x: Blocks, w: jax.Array, b: jax.Array) -> np.ndarray:
    """Class predictions (argmax of the one-vs-rest decision values) of x's rows."""
    return np.asarray(jnp.argmax(_predict_blocks(x.blocks, w, b), axis=1))[: x.rows]


def primal_objective(
    x: np.ndarray, labels: np.ndarray, w: np.ndarray, b: np.ndarray, c: float
) -> float:
    """Sum over classes of f_k for w (K, dim) (scikit-learn's coef_ layout), in float64 numpy: the
    common yardstick of this solver and liblinear."""
    x, w, b = np.asarray(x, np.float64), np.asarray(w, np.float64), np.asarray(b, np.float64)
    y = -np.ones((len(x), w.shape[0]))
    y[np.arange(len(x)), labels] = 1.0
    hinge = np.maximum(0.0, 1.0 - y * (x @ w.T + b))
    return float(0.5 * (np.sum(w * w) + np.sum(b * b)) + c * np.sum(hinge * hinge))
