"""The JAX L2-SVM (dcgan_jax/evaluation/svm.py) against liblinear: the same primal optimum, the same accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.svm import LinearSVC

from dcgan_jax.data.labelled import load_labelled
from dcgan_jax.evaluation import nystrom, probe, svm
from dcgan_jax.nn import features, models
from tests.helpers import tiny_config


def _standardized_digits(rows=600):
    x, y = load_digits(return_X_y=True)
    x, y = x[:rows].astype(np.float64), y[:rows]
    std = x.std(0)
    return ((x - x.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32), y


def test_primal_objective_is_liblinears_objective_by_hand():
    """The yardstick itself: two points, one class inside the margin, checked by hand."""
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    w = np.array([[0.5, 0.0], [-0.5, 0.25]])  # rows: classes 0, 1
    b = np.array([0.1, -0.1])
    # margins: row 0: (0.6, -0.6) label 0 -> hinges (0.4, 0.4); row 1: (0.1, 0.4) label 1 -> hinges (1.1, 0.6)
    expected = 0.5 * (0.25 + 0.25 + 0.0625 + 0.01 + 0.01) + 2.0 * (0.16 + 0.16 + 1.21 + 0.36)
    assert svm.primal_objective(x, np.array([0, 1]), w, b, 2.0) == pytest.approx(expected)


@pytest.mark.parametrize("c", [1e-3, 1e-1])
def test_optimum_matches_liblinear_within_1e_3(c):
    """The same objective (bias as a regularized feature of value 1, liblinear's intercept_scaling=1), both solved
    tightly, compared through an independent float64 numpy formula."""
    x, y = _standardized_digits()
    blocks = svm.blocks_from_host(x, 256)  # several blocks, the last one padded
    solution = svm.fit_c_path(blocks, y, 10, np.arange(len(x)), [c], tol=1e-4)[c]
    reference = LinearSVC(C=c, loss="squared_hinge", dual=True, tol=1e-8, max_iter=100_000).fit(
        x, y
    )
    ours = svm.primal_objective(x, y, np.asarray(solution.w), np.asarray(solution.b), c)
    theirs = svm.primal_objective(x, y, reference.coef_, reference.intercept_, c)
    assert abs(ours - theirs) <= 1e-3 * theirs
    assert np.mean(svm.predict(blocks, solution.w, solution.b) == reference.predict(x)) > 0.99


def test_warm_started_path_reaches_each_cold_optimum():
    x, y = _standardized_digits(300)
    blocks = svm.blocks_from_host(x, 128)
    path = svm.fit_c_path(blocks, y, 10, np.arange(len(x)), [1e-3, 1e-2, 1e-1], tol=1e-4)
    cold = svm.fit_c_path(blocks, y, 10, np.arange(len(x)), [1e-1], tol=1e-4)[1e-1]

    def objective(s):
        return svm.primal_objective(x, y, np.asarray(s.w), np.asarray(s.b), 1e-1)

    assert objective(path[1e-1]) == pytest.approx(objective(cold), rel=1e-3)


def test_rows_of_weight_zero_do_not_enter_the_fit():
    x, y = _standardized_digits(300)
    fit_rows = np.arange(0, 300, 2)
    c = 1e-2
    masked = svm.fit_c_path(svm.blocks_from_host(x, 100), y, 10, fit_rows, [c], tol=1e-4)[c]
    alone = svm.fit_c_path(
        svm.blocks_from_host(x[fit_rows], 100), y[fit_rows], 10, np.arange(150), [c], tol=1e-4
    )[c]
    np.testing.assert_allclose(np.asarray(masked.w), np.asarray(alone.w), atol=2e-3)


def test_standardize_blockwise_matches_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, (50, 6)).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature keeps scale 1, as scikit-learn's StandardScaler
    out, mean, scale = svm.standardize(svm.blocks_from_host(x, 16))
    std = x.std(0)
    expected = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(svm.blocks_to_host(out), expected, atol=1e-4)
    assert float(scale[2]) == 1.0 and svm.blocks_to_host(out).shape == (50, 6)


def test_same_test_accuracy_as_liblinear_on_digits_d_features():
    """The probe end to end (C chosen on validation, refit, test) on D features of the digits: within 0.5 points."""
    config = tiny_config()
    _, d_vars = models.init_variables(jax.random.PRNGKey(0), config.model)
    train_images, train_y = load_labelled("digits", "train", 32, 1, "")
    test_images, test_y = load_labelled("digits", "test", 32, 1, "")
    train_x = features.discriminator_features(config.model, d_vars, train_images)
    test_x = features.discriminator_features(config.model, d_vars, test_images)
    settings = config.eval.probe
    settings.svm_c_values = (1e-3, 1e-2)
    ours = probe.linear_svm(train_x, train_y, test_x, test_y, settings)
    settings.solver = "liblinear"
    theirs = probe.linear_svm(train_x, train_y, test_x, test_y, settings)
    assert ours["test_accuracy"] > 0.8
    assert abs(ours["test_accuracy"] - theirs["test_accuracy"]) <= 0.005


def _gram(x, weights):
    a = np.concatenate([x, np.ones((len(x), 1))], 1).astype(np.float64) * weights[:, None]
    return a.T @ a


def test_nystrom_at_full_rank_is_the_gram_and_its_shifted_inverse():
    """At rank dim + 1 the sketch is the Gram of the weighted rows (bias column included), and the
    preconditioner is (lam_r + mu) (G + mu I)^-1, checked against numpy's solve in float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)).astype(np.float32) @ rng.normal(size=(12, 12)).astype(np.float32)
    weights = (rng.random(300) < 0.7).astype(np.float32)
    blocks = svm.blocks_from_host(x, 128)
    padded = np.concatenate([weights, np.zeros(blocks.padded_rows - 300, np.float32)])
    pre = nystrom.sketch(blocks.blocks, jnp.asarray(padded), rank=50)  # capped at 13
    gram = _gram(x, weights)
    u, lam = np.asarray(pre.u, np.float64), np.asarray(pre.lam, np.float64)
    assert u.shape == (13, 13) and float(pre.rows) == weights.sum()
    np.testing.assert_allclose(u @ np.diag(lam) @ u.T, gram, atol=1e-4 * np.abs(gram).max())
    v = rng.normal(size=(3, 13))
    mu = np.array([0.5, 10.0, 1e3])
    zw, zb = nystrom.inverse_apply(pre, jnp.asarray(v[:, :-1]), jnp.asarray(v[:, -1]), mu)
    for k in range(3):
        expected = (lam[-1] + mu[k]) * np.linalg.solve(gram + mu[k] * np.eye(13), v[k])
        got = np.append(np.asarray(zw[k]), np.asarray(zb[k]))
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-4 * np.abs(expected).max())


def test_nystrom_of_a_low_rank_gram_is_exact_below_full_rank():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(200, 4)) @ rng.normal(size=(4, 30))).astype(np.float32)  # rank 4 (+ bias)
    weights = np.ones(200, np.float32)
    pre = nystrom.sketch(svm.blocks_from_host(x, 200).blocks, jnp.asarray(weights), rank=8)
    gram = _gram(x, weights)
    u, lam = np.asarray(pre.u, np.float64), np.asarray(pre.lam, np.float64)
    np.testing.assert_allclose(u @ np.diag(lam) @ u.T, gram, atol=1e-4 * np.abs(gram).max())


def test_the_preconditioner_changes_the_steps_not_the_optimum():
    """The same C path with and without the Nystrom preconditioner: the same objectives (to the
    solver's tolerance), and fewer CG steps on the correlated digit pixels."""
    x, y = _standardized_digits(1000)
    blocks = svm.blocks_from_host(x, 256)
    weights = jnp.asarray((np.arange(blocks.padded_rows) < len(x)).astype(np.float32))
    c_values = [1e-3, 1e-2, 1e-1]
    plain = svm.fit_c_path(blocks, y, 10, np.arange(len(x)), c_values, tol=1e-4)
    pre = nystrom.sketch(blocks.blocks, weights, rank=65)
    fast = svm.fit_c_path(blocks, y, 10, np.arange(len(x)), c_values, tol=1e-4, pre=pre)
    for c in c_values:
        objectives = [
            svm.primal_objective(x, y, np.asarray(s[c].w), np.asarray(s[c].b), c)
            for s in (plain, fast)
        ]
        assert objectives[1] == pytest.approx(objectives[0], rel=1e-4)
    steps = [sum(s[c].cg_steps for c in c_values[:2]) for s in (plain, fast)]
    assert steps[1] < 0.8 * steps[0], steps  # 41 against 75 when written
