"""Config values the code cannot run with, refused before any work starts: one UserError naming field and fix."""

import math
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
    if not jnp.issubdtype(jnp.dtype(config.compute_dtype), jnp.floating):
        raise UserError(f"invalid config: compute_dtype={config.compute_dtype!r} must be a floating type "
                        f"('float32', or 'bfloat16' / 'float16' on GPU/TPU)")
    for field, rule in RANGES.items():
        value = _get(config, field)
        if value is not None and not RULES[rule][0](value):
            raise UserError(f"invalid config: {field}={value} must be {RULES[rule][1]}")
    tricks = config.d_training
    if config.loss == "hinge" and (tricks.label_noise or tricks.label_flip):
        raise UserError("invalid config: d_training.label_noise and d_training.label_flip need a loss with targets "
                        "('non_saturating', 'minimax' or 'least_squares'), not loss='hinge'; set them to 0 or change "
                        "the loss")
    if config.label_smoothing + tricks.label_noise > 1:
        raise UserError(f"invalid config: label_smoothing + d_training.label_noise = "
                        f"{config.label_smoothing + tricks.label_noise} would make real targets negative; keep it <= 1")
    if config.batch_size % jax.device_count():
        raise UserError(f"invalid config: batch_size={config.batch_size} is not divisible by the "
                        f"{jax.device_count()} devices; use a multiple of {jax.device_count()}")
    if not all(_finite(c) and c > 0 for c in config.eval.probe.svm_c_values):
        raise UserError(f"invalid config: eval.probe.svm_c_values={config.eval.probe.svm_c_values} must all be > 0")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


RULES = {  # name: (check, what the error says the value must be)
    "positive": (lambda v: _finite(v) and v > 0, "a positive number"),
    "non_negative": (lambda v: _finite(v) and v >= 0, ">= 0"),
    "unit": (lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    "open_unit": (lambda v: _finite(v) and 0 < v < 1, "in (0, 1)"),
    "any_integer": (lambda v: isinstance(v, int), "an integer"),
    "below_half": (lambda v: _finite(v) and 0 <= v < 0.5, "in [0, 0.5) (0.5 makes D's labels pure noise)"),
}

# Every numeric config field and the values it may take (tests/training/test_validation.py fails for a numeric
# field missing here). image_size and num_channels are checked by building the models.
RANGES = {
    **{f: "positive" for f in (
        "batch_size", "num_train_steps", "latent_dim", "g_width", "d_width", "log_every_steps", "sample_every_steps",
        "checkpoint_every_steps", "keep_checkpoints", "learning_rate", "adam_eps", "bn_epsilon", "max_in_memory_mb",
        "d_training.steps_per_g_step", "conditional.embedding_dim",
        "dedup.batch_size", "dedup.code_dim", "dedup.key_bits", "dedup.num_tables", "dedup.steps",
        "dedup.thumbnail_size", "dedup.learning_rate",
        "eval.batch_size", "eval.num_samples", "eval.kid_subsets", "eval.kid_subset_size",
        "eval.classifier.batch_size", "eval.classifier.feature_dim", "eval.classifier.steps",
        "eval.classifier.width", "eval.classifier.learning_rate",
        "eval.probe.block_rows", "eval.probe.svm_max_cg", "eval.probe.svm_max_iter", "eval.probe.svm_max_newton",
        "eval.probe.svm_tol")},
    **{f: "non_negative" for f in (
        "num_fixed_samples", "num_data_workers", "prefetch_batches", "keep_every_steps", "collapse.patience",
        "d_training.pretrain_steps", "d_training.instance_noise", "d_training.instance_noise_decay_steps",
        "conditional.num_classes",
        "dedup.max_hamming", "dedup.max_shift",
        "dedup.colour_jitter", "dedup.noise_std", "eval.every_steps", "eval.classifier.max_shift",
        "eval.probe.labels_per_class")},
    **{f: "unit" for f in ("beta1", "beta2", "bn_momentum", "label_smoothing", "dedup.dropout", "ema_decay",
                           "d_training.label_noise")},
    "d_training.label_flip": "below_half",
    "eval.probe.validation_fraction": "open_unit", "dedup.max_removed_fraction": "positive", "collapse.d_fake": "open_unit", "collapse.loss_factor": "positive",
    "image_size": "positive", "num_channels": "positive",
    "seed": "any_integer", "shuffle_seed_offset": "any_integer",  # any integer seeds a PRNG
}


def _get(config: ml_collections.ConfigDict, dotted: str):
    """config['a.b.c'], or None when a field is absent (configs saved by earlier versions)."""
    node = config
    for part in dotted.split("."):
        if part not in node:
            return None
        node = node[part]
    return node
