"""Config values the code cannot run with, refused before any work starts: one UserError naming field and fix."""

import jax
import jax.numpy as jnp
import ml_collections

from dcgan_jax.errors import UserError
from dcgan_jax.nn import latent, models
from dcgan_jax.training import losses, parallel


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Config values the code cannot run with, as one UserError naming the field and the fix."""
    try:
        models.build_models(config)
        losses.check_loss(config.loss)
        latent.sample_z(jax.random.PRNGKey(0), 1, 1, config.z_distribution)
        parallel.Parallel(config.parallelism)
        jnp.dtype(config.compute_dtype)
    except (ValueError, TypeError) as e:
        raise UserError(f"invalid config: {e}") from None
    if config.eval.every_steps < 0:
        raise UserError(f"invalid config: eval.every_steps={config.eval.every_steps} must be >= 0 (0 disables)")
    for field in ("batch_size", "num_train_steps", "latent_dim", "g_width", "d_width", "log_every_steps",
                  "sample_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
        if int(config[field]) <= 0:
            raise UserError(f"invalid config: {field}={config[field]} must be a positive integer")
    if config.batch_size % jax.device_count():
        raise UserError(f"invalid config: batch_size={config.batch_size} is not divisible by the "
                        f"{jax.device_count()} devices; use a multiple of {jax.device_count()}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UserError(f"invalid config: label_smoothing={config.label_smoothing} must be in [0, 1)")
