"""Writes samples of a trained generator: `python -m dcgan_jax.sample --workdir=DIR --num_samples=64 --output=s.png`.

`.png` writes a grid; `.npz` writes `images` (uint8, N x H x W x C) and `z`. Sample i uses the i-th z drawn from
--seed, and inference-mode batchnorm makes each image a function of its own z alone, so the same seed gives the same
images whatever --num_samples or --batch_size (--batch_stats uses per-batch statistics instead).
"""

import os
import sys

import numpy as np
from absl import app, flags

from dcgan_jax import cli
from dcgan_jax.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", "workdir", "A training workdir (holds checkpoints/).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many images.")
_OUTPUT = flags.DEFINE_string("output", "samples.png", "Output file: .png (grid) or .npz (images and z).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the z draws.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Generator batch size (does not change the images).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_BATCH_STATS = flags.DEFINE_bool("batch_stats", False, "Normalize with each batch's statistics, not running ones.")


def sample_z_for_seed(seed: int, num: int, latent_dim: int, distribution: str) -> np.ndarray:
    """z number i depends on (seed, i) only, so a longer request extends a shorter one."""
    import jax
    from dcgan_jax import latent
    return np.asarray(latent.sample_z_for_examples(jax.random.PRNGKey(seed), np.arange(num), latent_dim,
                                                   distribution))


def load_generator(workdir: str, step=None):
    """(config, G variables) of a checkpoint in workdir (latest by default)."""
    from dcgan_jax import checkpointing, train
    manager, config = checkpointing.open_workdir(workdir)
    if step is not None and step not in manager.all_steps():
        raise UserError(f"no checkpoint at step {step} in {workdir}; available: {sorted(manager.all_steps())}")
    state = checkpointing.restore_state(manager, train.create_train_state(config), step)
    return config, {"params": state.g_params, "batch_stats": state.g_batch_stats}


@cli.run_main
def main(argv):
    del argv
    output = _OUTPUT.value
    extension = os.path.splitext(output)[1].lower()
    if extension not in (".png", ".npz"):
        raise UserError(f"--output={output!r} must end in .png (grid) or .npz (arrays)")
    if _NUM_SAMPLES.value <= 0 or _BATCH_SIZE.value <= 0:
        raise UserError("--num_samples and --batch_size must be positive")
    from dcgan_jax import generate, visualize

    config, g_vars = load_generator(_WORKDIR.value, _STEP.value)
    z = sample_z_for_seed(_SEED.value, _NUM_SAMPLES.value, config.latent_dim, config.z_distribution)
    images = visualize.to_uint8(generate.generate(config, g_vars, z, _BATCH_SIZE.value, _BATCH_STATS.value))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if extension == ".png":
        visualize.save_grid(output, images)
    else:
        np.savez(output, images=images, z=z)
    print(f"wrote {len(images)} samples to {output}")


if __name__ == "__main__":
    cli.parse_flags_or_exit(sys.argv)
    app.run(main, argv=sys.argv[:1])
