"""How D is trained beyond the plain step (the `d_training` group, every option off by default): D
pre-training, k D updates per G update, noisy and flipped labels, and instance noise on D's inputs.

The seed documents teach these as stabilizers: D trained first, then both together (the Keras card,
the paper notes); label noise and label flips (ganhacks, seed 000's tutorials); noise added to real
and generated images before D (instance noise, Sønderby et al. 2016; seed 000). Every draw is a
function of (seed, step, example index), as z is, so a run split over any number of devices or
resumed anywhere takes the same steps.
"""

import jax
import jax.numpy as jnp
import ml_collections

from dcgan_jax import rng_tags


def is_constant(value, constant) -> bool:
    """Whether a setting is the Python number `constant`. A population member's value is a traced
    number (training/members.py): never known to be off, so its code path is the general one,
    which computes the same values as the short cut when it is off."""
    return isinstance(value, (int, float)) and value == constant


def is_plain(d_training: ml_collections.ConfigDict) -> bool:
    """True when G updates at every step (no pre-training, one D update per G update): the step has
    no branch."""
    return is_constant(d_training.pretrain_steps, 0) and is_constant(d_training.steps_per_g_step, 1)


def g_updates_at(d_training: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """Whether the step that starts at `step` (0-based) updates G.

    Every step updates D once. The first `pretrain_steps` steps update D only; after them G updates
    on every `steps_per_g_step`-th step, after that many D updates (k = 2: steps p+1, p+3, ...). So
    num_train_steps counts D updates, and G makes (num_train_steps - pretrain_steps) // k of
    them."""
    p, k = d_training.pretrain_steps, d_training.steps_per_g_step
    return (step >= p) & ((step - p) % k == k - 1)


def _per_example(key: jax.Array, example_ids: jax.Array, draw):
    return jax.vmap(lambda i: draw(jax.random.fold_in(key, i)))(example_ids)


def d_targets(
    d_training: ml_collections.ConfigDict,
    label_smoothing: float,
    step_key: jax.Array,
    example_ids: jax.Array,
) -> tuple[jax.Array | None, jax.Array | None]:
    """Per-example targets of D's real and fake examples, or (None, None) for the plain constant
    ones.

    label_noise = n: a real example's target is drawn from U[1 - s - n, 1 - s] (s: label_smoothing),
    a fake one's from U[0, n]. label_flip = p: each example, real or fake, takes the other side's
    target with probability p."""
    noise, flip = d_training.label_noise, d_training.label_flip
    if is_constant(noise, 0) and is_constant(flip, 0):
        return None, None
    real_level = 1.0 - label_smoothing

    def draw(key):
        u_real, u_fake, f_real, f_fake = jax.random.uniform(key, (4,))
        as_real = lambda u: real_level - noise * u  # noqa: E731
        as_fake = lambda u: noise * u  # noqa: E731
        real_target = jnp.where(f_real < flip, as_fake(u_real), as_real(u_real))
        fake_target = jnp.where(f_fake < flip, as_real(u_fake), as_fake(u_fake))
        return real_target, fake_target

    return _per_example(jax.random.fold_in(step_key, rng_tags.D_TARGETS), example_ids, draw)


def instance_noise_std(d_training: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """The std of the instance noise at `step`: `instance_noise`, decayed linearly to 0 at
    `instance_noise_decay_steps` (0: constant)."""
    std, decay = d_training.instance_noise, d_training.instance_noise_decay_steps
    if is_constant(decay, 0):
        return jnp.float32(std)
    if isinstance(decay, int):
        return std * jnp.maximum(0.0, 1.0 - step.astype(jnp.float32) / decay)
    ramp = std * jnp.maximum(0.0, 1.0 - step.astype(jnp.float32) / jnp.maximum(decay, 1))
    return jnp.where(decay > 0, ramp, std)  # a member's traced value may be 0: constant


def add_instance_noise(
    d_training: ml_collections.ConfigDict,
    step_key: jax.Array,
    step: jax.Array,
    example_ids: jax.Array,
    real: jax.Array,
    fake: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """(real, fake) plus gaussian noise of `instance_noise_std(step)`, per example; unchanged when
    it is off. G's update sees the same noisy fakes as D's (the noise is added, so it passes G's
    gradient unchanged)."""
    if is_constant(d_training.instance_noise, 0):
        return real, fake
    std = instance_noise_std(d_training, step)
    shape = real.shape[1:]

    def draw(key):
        real_key, fake_key = jax.random.split(key)
        return jax.random.normal(real_key, shape), jax.random.normal(fake_key, shape)

    real_noise, fake_noise = _per_example(
        jax.random.fold_in(step_key, rng_tags.INSTANCE_NOISE), example_ids, draw
    )
    return real + std * real_noise, fake + std * fake_noise
