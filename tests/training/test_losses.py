"""Losses against values computed by hand from their definitions."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.training import losses

REAL = jnp.array([2.0, -1.0])
FAKE = jnp.array([0.5, -3.0])


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _mean(values):
    return sum(values) / len(values)


def test_non_saturating_matches_the_papers_cross_entropy():
    # D: -log D(x) - log(1 - D(G(z))); G: -log D(G(z)) (the non-saturating trick).
    d_expected = _mean([-math.log(_sigmoid(r)) for r in (2.0, -1.0)]) + _mean(
        [-math.log(1 - _sigmoid(f)) for f in (0.5, -3.0)]
    )
    g_expected = _mean([-math.log(_sigmoid(f)) for f in (0.5, -3.0)])
    assert float(losses.discriminator_loss(REAL, FAKE)) == pytest.approx(d_expected, rel=1e-6)
    assert float(losses.generator_loss(FAKE)) == pytest.approx(g_expected, rel=1e-6)


def test_one_sided_label_smoothing_only_changes_real_targets():
    s = 0.1
    d_expected = _mean(
        [-(1 - s) * math.log(_sigmoid(r)) - s * math.log(1 - _sigmoid(r)) for r in (2.0, -1.0)]
    ) + _mean([-math.log(1 - _sigmoid(f)) for f in (0.5, -3.0)])
    assert float(losses.discriminator_loss(REAL, FAKE, label_smoothing=s)) == pytest.approx(
        d_expected, rel=1e-6
    )


def test_minimax_generator_loss_is_the_saturating_log():
    g_expected = _mean([math.log(1 - _sigmoid(f)) for f in (0.5, -3.0)])
    assert float(losses.generator_loss(FAKE, "minimax")) == pytest.approx(g_expected, rel=1e-6)


def test_least_squares_and_hinge():
    assert float(losses.discriminator_loss(REAL, FAKE, "least_squares")) == pytest.approx(
        0.5 * _mean([(2 - 1) ** 2, (-1 - 1) ** 2]) + 0.5 * _mean([0.25, 9.0])
    )
    assert float(losses.generator_loss(FAKE, "least_squares")) == pytest.approx(
        0.5 * _mean([0.25, 16.0])
    )
    assert float(losses.discriminator_loss(REAL, FAKE, "hinge")) == pytest.approx(
        _mean([0.0, 2.0]) + _mean([1.5, 0.0])
    )
    assert float(losses.generator_loss(FAKE, "hinge")) == pytest.approx(_mean([-0.5, 3.0]))


def test_bce_is_stable_for_large_logits():
    big = jnp.array([100.0, -100.0])
    assert np.isfinite(float(losses.discriminator_loss(big, -big)))
    assert float(losses.generator_loss(jnp.array([-100.0]))) == pytest.approx(100.0, rel=1e-6)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="loss='wgan' is not supported"):
        losses.check_loss("wgan")
