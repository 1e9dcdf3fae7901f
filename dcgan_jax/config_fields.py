"""Config knowledge beside the defaults: dotted fields, the names of earlier versions, validation of
every group (the bounds each value's use holds, a training run's memory) and the architecture a
checkpoint must match. The one module that knows where each field lives; `defaults.py` says what
each field means.

Earlier versions had flat model, data and optimizer fields (`g_width`, `dataset`, `learning_rate`,
...) and flat `eval_*` fields: a config they saved maps onto today's groups with `from_saved`, and
an old name given as a flag or set by a config file is one line naming its new place.
"""

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from dcgan_jax import defaults, memory, population
from dcgan_jax.errors import UserError
from dcgan_jax.nn import latent, models

# Names of earlier versions -> today's dotted fields. A group name moves everything under it.
_GROUPED = {
    "data": "dataset data_dir data_path split shuffle_seed_offset num_data_workers prefetch_batches "
    "max_in_memory_mb",
    "model": "image_size num_channels latent_dim z_distribution g_width d_width conv_impl upsample "
    "bn_momentum bn_epsilon sync_batchnorm compute_dtype conditional",
    "optim": "learning_rate beta1 beta2 adam_eps ema_decay",
    "objective": "loss label_smoothing",
}
_EVAL = set(
    "every_steps num_samples split batch_size feature_extractor inception_weights kid_subsets "
    "kid_subset_size".split()
)
_CLASSIFIER = set("dataset dir steps batch_size learning_rate width feature_dim max_shift".split())
_PROBE = set(
    "labels_per_class validation_fraction svm_c_values svm_max_iter recompute_batch_stats".split()
)
OLD_NAMES = {
    **{field: f"{group}.{field}" for group, fields in _GROUPED.items() for field in fields.split()},
    **{f"eval_{field}": f"eval.{field}" for field in _EVAL},
    **{f"eval_classifier_{field}": f"eval.classifier.{field}" for field in _CLASSIFIER},
    **{f"eval_{field}": f"eval.probe.{field}" for field in _PROBE},
}
# Upsampling forms earlier versions offered, saved in their checkpoints' configs: the same math as
# "subpixel".
RETIRED_VALUES = {"model.upsample": {"subpixel_conv": "subpixel", "subpixel_gemm": "subpixel"}}


def new_name(dotted: str) -> str | None:
    """Today's name of a field of an earlier version ('g_width' -> 'model.g_width',
    'conditional.num_classes' -> 'model.conditional.num_classes'), or None when the name is current
    or unknown."""
    head, _, rest = dotted.partition(".")
    moved = OLD_NAMES.get(dotted) or (OLD_NAMES.get(head) and f"{OLD_NAMES[head]}.{rest}")
    return moved or None


def get(config: Any, dotted: str) -> Any:
    """config['a.b.c'], or None when a field is absent (configs saved by earlier versions)."""
    for part in dotted.split("."):
        if config is None or not hasattr(config, "get"):
            return None
        config = config.get(part)
    return config


def set_field(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    """config['a.b.c'] = value; a mapping given for a group sets its fields one by one, a JSON list
    a tuple field."""
    *groups, field = dotted.split(".")
    for group in groups:
        config = config[group]
    if isinstance(config.get(field), ml_collections.ConfigDict) and isinstance(value, Mapping):
        for key, inner in value.items():
            set_field(config[field], key, inner)
    elif isinstance(value, list) and isinstance(config.get(field), tuple):
        config[field] = tuple(value)  # JSON has no tuples
    else:
        config[field] = value


def from_saved(saved: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A config saved with a checkpoint (any version), on top of today's defaults: fields added
    since get their defaults, moved or renamed ones their new places, retired values their current
    equivalents. Unknown fields are kept (a newer version's)."""
    config = defaults.get_config()
    for key, value in _flatten_old(dict(saved)):
        key = new_name(key) or key
        value = RETIRED_VALUES.get(key, {}).get(value, value) if isinstance(value, str) else value
        if key.split(".")[0] in config:
            set_field(config, key, value)
        else:
            with config.unlocked():
                config[key] = value
    return config


def _flatten_old(saved: Mapping[str, Any]) -> Iterable:
    """(key, value) pairs with old groups ('conditional') spelled out, so that each field moves on
    its own."""
    for key, value in saved.items():
        if key in OLD_NAMES and isinstance(value, Mapping):
            yield from ((f"{key}.{inner}", v) for inner, v in value.items())
        else:
            yield key, value


def old_flags(argv: Iterable[str]) -> str | None:
    """A one-line message for the first `--config.<old name>` in argv, naming its new place; None if
    there is none."""
    for arg in argv:
        if arg.startswith("--config."):
            name, has_value, value = arg[len("--config.") :].partition("=")
            moved = new_name(name)
            if moved:
                return (
                    f"--config.{name} has moved to --config.{moved}; pass "
                    f"--config.{moved}{'=' + value if has_value else ''}"
                )
    return None


def unknown_fields(config: ml_collections.ConfigDict) -> list[str]:
    """Dotted names that `config` has and today's defaults do not (a config file setting an old or
    mistyped name adds it silently)."""

    def walk(node, reference, prefix):
        for key in node:
            dotted = prefix + key
            if key not in reference:
                yield dotted
            elif isinstance(node[key], ml_collections.ConfigDict) and isinstance(
                reference[key], ml_collections.ConfigDict
            ):
                yield from walk(node[key], reference[key], dotted + ".")

    return list(walk(config, defaults.get_config(), ""))


# Fields that change the shapes of the saved params: resuming or sampling with other values cannot
# work.
ARCHITECTURE_FIELDS = (
    "model.image_size",
    "model.num_channels",
    "model.latent_dim",
    "model.g_width",
    "model.d_width",
    "model.conditional.num_classes",
)
CLASS_FIELDS = (
    "model.conditional.embedding_dim",
    "model.conditional.d_form",
)  # only where a model has classes


def check_compatible(
    saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict, where: str
) -> None:
    """A one-line error naming every architecture field that differs between a checkpoint's config
    and this one (the class fields only where a class-conditional model has them)."""
    conditional = get(saved, "model.conditional.num_classes") or get(
        config, "model.conditional.num_classes"
    )
    fields = ARCHITECTURE_FIELDS + (CLASS_FIELDS if conditional else ())
    differ = [
        f"{k}: checkpoint {get(saved, k)} vs config {get(config, k)}"
        for k in fields
        if get(saved, k) != get(config, k)
    ] + [  # members are a leading axis of every array
        f"population.size: checkpoint {population.size(saved)} vs config {population.size(config)}"
    ] * (population.size(saved) != population.size(config))
    if differ:
        raise UserError(
            f"the checkpoint in {where} was trained with another architecture ({'; '.join(differ)}); "
            f"use a new --workdir, or the checkpoint's values"
        )


# The choices of the string fields whose code lives above this floor (tests/test_config_fields.py
# checks them against training/losses.py and training/parallel.py).
CHOICES = {
    "objective.loss": ("non_saturating", "minimax", "least_squares", "hinge"),
    "parallelism": ("pmap", "shard_map"),
    "eval.protocol": ("", "test10k", "train50k"),  # evaluation/real_features.py: PROTOCOLS
}


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the code cannot run with, refused before any work starts: one UserError naming
    the field and the fix."""
    for dotted in unknown_fields(config):
        moved = new_name(dotted)
        fix = (
            f"it has moved to config.{moved}"
            if moved
            else "remove it, or check its spelling and group"
        )
        raise UserError(f"invalid config: there is no field {dotted}; {fix}")
    for field, choices in CHOICES.items():
        if get(config, field) not in choices:
            raise UserError(
                f"invalid config: {field}={get(config, field)!r} is not supported; use one of "
                f"{', '.join(choices)}"
            )
    _validate_model(config.model)
    for field, rule in RANGES.items():
        value = get(config, field)
        if value is not None and not RULES[rule][0](value):
            raise UserError(f"invalid config: {field}={value} must be {RULES[rule][1]}")
    tricks, objective = config.d_training, config.objective
    if objective.loss == "hinge" and (tricks.label_noise or tricks.label_flip):
        raise UserError(
            "invalid config: d_training.label_noise and d_training.label_flip need a loss with targets "
            "('non_saturating', 'minimax' or 'least_squares'), not objective.loss='hinge'; set them to 0 "
            "or change the loss"
        )
    if objective.label_smoothing + tricks.label_noise > 1:
        raise UserError(
            f"invalid config: objective.label_smoothing + d_training.label_noise = "
            f"{objective.label_smoothing + tricks.label_noise} would make real targets negative; keep it "
            f"<= 1"
        )
    if config.batch_size % jax.device_count():
        raise UserError(
            f"invalid config: batch_size={config.batch_size} is not divisible by the "
            f"{jax.device_count()} devices; use a multiple of {jax.device_count()}"
        )
    if not all(_finite(c) and c > 0 for c in config.eval.probe.svm_c_values):
        raise UserError(
            f"invalid config: eval.probe.svm_c_values={config.eval.probe.svm_c_values} must all be > 0"
        )
    population.check(config)
    members = population.distinct_members(config)  # each a run; together they must fit
    for member in members:
        validate(member)
    if members:
        size = max(_training_bytes(m) for m in members)
        return population.check_fits(population.size(config), size)
    fix = functools.partial(_largest_size, config)  # estimates alternatives: only when refused
    memory.check_device_fits(_training_bytes(config), "invalid config: training", fix)


# The fields that set what a training run holds in memory (`_training_bytes`).
SIZE_FIELDS = tuple(
    """model.latent_dim model.g_width model.d_width model.image_size model.conditional.num_classes
    model.conditional.embedding_dim batch_size num_fixed_samples""".split()
)


def _training_bytes(config: ml_collections.ConfigDict) -> int:
    """A rough estimate (1.2-1.4x XLA's own for the shipped configs' step) of one device's memory in
    training: G's and D's params times the copies the state and the step hold (params, gradients,
    Adam's two moments, EMA), 16 bytes per activation of G and D for each example of the device's
    batch (forward values kept for the gradients, and those gradients) and G's float32 activations
    for the sample grid. Shapes only (jax.eval_shape): nothing is allocated, whatever the sizes."""
    model, ema = config.model, bool(config.optim.ema_decay)
    g_vars, d_vars = jax.eval_shape(lambda: models.init_variables(jax.random.PRNGKey(0), model))
    params = _nbytes(g_vars["params"]) + _nbytes(d_vars["params"])
    stats = _nbytes(g_vars["batch_stats"]) + _nbytes(d_vars["batch_stats"])
    size, image = model.image_size, model.image_size**2 * model.num_channels
    g_acts = models.g_input_dim(model) + image
    g_acts += sum((4 * 2**i) ** 2 * w for i, w in enumerate(models.g_layer_widths(model)))
    d_acts = image + sum(
        (size >> i + 1) ** 2 * w for i, w in enumerate(models.d_layer_widths(model))
    )
    per_device_batch = max(config.batch_size // jax.device_count(), 1)
    return (
        (4 + ema) * params
        + (1 + ema) * stats
        + 16 * (g_acts + d_acts) * per_device_batch
        + 4 * g_acts * config.num_fixed_samples
    )


def _nbytes(tree) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _largest_size(config: ml_collections.ConfigDict) -> str:
    """The fix for a run too large for the memory: the size field above its default whose default
    would shrink the estimate most."""
    default, shrunk = defaults.get_config(), []
    for field in SIZE_FIELDS:
        if get(config, field) > get(default, field):
            smaller = config.copy_and_resolve_references()
            set_field(smaller, field, get(default, field))
            shrunk.append((_training_bytes(smaller), field))
    if not shrunk:
        return "lower batch_size, model.g_width or model.d_width, or use a machine with more memory"
    estimate, field = min(shrunk)
    return (
        f"lower {field}={get(config, field)} (at its default, {get(default, field)}, training "
        f"would need about {memory.size_text(estimate)})"
    )


def _validate_model(model: ml_collections.ConfigDict) -> None:
    try:  # first: building the models would fail on the dtype name without naming the field
        floating = jnp.issubdtype(jnp.dtype(model.compute_dtype), jnp.floating)
    except (ValueError, TypeError):  # not a dtype name at all: the same answer as a non-float one
        floating = False
    if not floating:
        raise UserError(
            f"invalid config: model.compute_dtype={model.compute_dtype!r} must be a floating type "
            f"('float32', or 'bfloat16' / 'float16' on GPU/TPU)"
        )
    try:
        models.build_models(model)
        latent.sample_z(jax.random.PRNGKey(0), 1, 1, model.z_distribution)
    except (ValueError, TypeError) as e:
        raise UserError(f"invalid config: {e}") from None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


INT32_MAX = 2**31 - 1  # the step counter and the step's own counts are int32
SEEDS = 2**32  # PRNGKey keeps a seed's low 32 bits (2**32 would repeat 0); NumPy refuses seeds < 0


def _integer(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


RULES = {  # name: (check, what the error says the value must be)
    "positive": (lambda v: _finite(v) and v > 0, "a positive number"),
    "non_negative": (lambda v: _finite(v) and v >= 0, ">= 0"),
    "count": (lambda v: _integer(v, 1, INT32_MAX), f"an integer in [1, {INT32_MAX}]"),
    "count_or_zero": (lambda v: _integer(v, 0, INT32_MAX), f"an integer in [0, {INT32_MAX}]"),
    "seed": (
        lambda v: _integer(v, 0, SEEDS - 1),
        f"an integer in [0, {SEEDS - 1}] (a PRNG seed of 32 bits)",
    ),
    "unit": (lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    "open_unit": (lambda v: _finite(v) and 0 < v < 1, "in (0, 1)"),
    "below_half": (
        lambda v: _finite(v) and 0 <= v < 0.5,
        "in [0, 0.5) (0.5 makes D's labels pure noise)",
    ),
}

# Every numeric config field and the values it may take (tests/test_config_fields.py fails for a
# numeric field missing here, or an integer field without an integer rule). Integers are counts
# within int32 (steps are compared with the int32 step counter), and the sizes of what training
# holds are checked against the memory too (`SIZE_FIELDS`). model.image_size and
# model.num_channels are checked by building the models.
_FIELDS_BY_RULE = {
    "count": """
        batch_size num_train_steps log_every_steps sample_every_steps checkpoint_every_steps
        keep_checkpoints model.latent_dim model.g_width model.d_width model.image_size
        model.num_channels model.conditional.embedding_dim data.max_in_memory_mb
        d_training.steps_per_g_step dedup.batch_size dedup.code_dim dedup.key_bits
        dedup.num_tables dedup.steps dedup.thumbnail_size eval.batch_size eval.num_samples
        eval.kid_subsets eval.kid_subset_size eval.classifier.batch_size
        eval.classifier.feature_dim eval.classifier.steps eval.classifier.width
        eval.probe.block_rows eval.probe.svm_max_cg eval.probe.svm_max_iter
        eval.probe.svm_max_newton
    """,
    "count_or_zero": """
        num_fixed_samples keep_every_steps data.num_data_workers data.prefetch_batches
        collapse.patience d_training.pretrain_steps d_training.instance_noise_decay_steps
        model.conditional.num_classes dedup.max_hamming dedup.max_shift eval.every_steps
        eval.classifier.max_shift eval.probe.labels_per_class population.size
        eval.inception_batch_size eval.probe.svm_preconditioner_rank
    """,
    "positive": """
        model.bn_epsilon optim.learning_rate optim.adam_eps dedup.learning_rate
        dedup.max_removed_fraction collapse.loss_factor eval.classifier.learning_rate
        eval.probe.svm_tol
    """,
    "non_negative": """
        d_training.instance_noise dedup.colour_jitter dedup.noise_std
    """,
    "unit": """
        optim.beta1 optim.beta2 model.bn_momentum objective.label_smoothing dedup.dropout
        optim.ema_decay d_training.label_noise
    """,
    "open_unit": """
        eval.probe.validation_fraction collapse.d_fake
    """,
    "below_half": """
        d_training.label_flip
    """,
    "seed": """
        seed data.shuffle_seed_offset
    """,
}
RANGES = {f: rule for rule, fields in _FIELDS_BY_RULE.items() for f in fields.split()}
