"""GAN losses on discriminator logits: the paper's non-saturating loss and common alternatives.

Every loss is a mean over the (per-device) batch, so averaging per-device gradients with `lax.pmean`
gives the gradient of the global-batch loss.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def _bce_with_logits(logits: jax.Array, target) -> jax.Array:
    """Mean binary cross-entropy of sigmoid(logits) against targets (a constant or one per example),
    computed stably via softplus."""
    return jnp.mean(target * jax.nn.softplus(-logits) + (1.0 - target) * jax.nn.softplus(logits))


# Each loss: (real logits, fake logits, real targets, fake targets) -> (D loss, G loss). The targets
# are the constants 1 - label_smoothing and 0, or one per example (label noise and flips,
# training/d_training.py).
def _non_saturating(
    real: jax.Array, fake: jax.Array, real_target, fake_target
) -> tuple[jax.Array, jax.Array]:
    # Goodfellow et al. 2014: G maximizes log D(G(z)) instead of minimizing log(1 - D(G(z))). The
    # DCGAN default.
    d_loss = _bce_with_logits(real, real_target) + _bce_with_logits(fake, fake_target)
    return d_loss, _bce_with_logits(fake, 1.0)


def _minimax(
    real: jax.Array, fake: jax.Array, real_target, fake_target
) -> tuple[jax.Array, jax.Array]:
    # The original saturating objective: G minimizes log(1 - D(G(z))).
    d_loss = _bce_with_logits(real, real_target) + _bce_with_logits(fake, fake_target)
    return d_loss, -_bce_with_logits(fake, 0.0)


def _least_squares(
    real: jax.Array, fake: jax.Array, real_target, fake_target
) -> tuple[jax.Array, jax.Array]:
    # LSGAN (Mao et al. 2017), a-b-c = 0-1-1 on raw D outputs.
    d_loss = 0.5 * jnp.mean((real - real_target) ** 2) + 0.5 * jnp.mean((fake - fake_target) ** 2)
    return d_loss, 0.5 * jnp.mean((fake - 1.0) ** 2)


def _hinge(
    real: jax.Array, fake: jax.Array, real_target, fake_target
) -> tuple[jax.Array, jax.Array]:
    # Geometric GAN / SNGAN hinge loss; the margin of the real term shrinks with smoothing. It has
    # no fake target: label noise and flips are refused with it (dcgan_jax/config_fields.py).
    d_loss = jnp.mean(jax.nn.relu(real_target - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
    return d_loss, -jnp.mean(fake)


LOSSES: dict[str, Callable[..., tuple[jax.Array, jax.Array]]] = {
    "non_saturating": _non_saturating,
    "minimax": _minimax,
    "least_squares": _least_squares,
    "hinge": _hinge,
}


def check_loss(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"loss={name!r} is not supported; use one of {sorted(LOSSES)}")


def discriminator_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    kind: str = "non_saturating",
    label_smoothing: float = 0.0,
    real_targets: jax.Array | None = None,
    fake_targets: jax.Array | None = None,
) -> jax.Array:
    """D's loss. `label_smoothing` is one-sided (Salimans et al. 2016): real targets become 1 -
    smoothing. `real_targets` / `fake_targets` (one per example) replace those constants (and 0 for
    fakes) when given."""
    real_target = 1.0 - label_smoothing if real_targets is None else real_targets
    fake_target = 0.0 if fake_targets is None else fake_targets
    return LOSSES[kind](real_logits, fake_logits, real_target, fake_target)[0]


def generator_loss(fake_logits: jax.Array, kind: str = "non_saturating") -> jax.Array:
    """G's loss on D's logits for generated images."""
    return LOSSES[kind](jnp.zeros_like(fake_logits), fake_logits, 1.0, 0.0)[1]
