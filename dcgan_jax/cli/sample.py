"""Writes samples of a trained generator: `python -m dcgan_jax.sample --workdir=DIR --num_samples=64
--output=s.png`.

`.png` writes a grid; `.npz` writes `images` (uint8, N x H x W x C) and `z`. The same seed gives the
same images whatever --num_samples or --batch_size (dcgan_jax/analysis/sampling.py). A population's
workdir takes --member=I: member I's samples, the images its single run (or its exported workdir,
`python -m dcgan_jax.export`) gives.
"""

from absl import flags

from dcgan_jax.analysis import sampling
from dcgan_jax.cli import common
from dcgan_jax.training.run import open_run

_WORKDIR = flags.DEFINE_string("workdir", "workdir", "A training workdir (holds checkpoints/).")
common.require_nonempty("workdir")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many images.")
_OUTPUT = flags.DEFINE_string(
    "output", "samples.png", "Output file: .png (grid) or .npz (images and z)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the z draws.")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 256, "Generator batch size (does not change the images)."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_MEMBER = common.define_member()
_BATCH_STATS = flags.DEFINE_bool(
    "batch_stats", False, "Normalize with each batch's statistics, not running ones."
)
_EMA = flags.DEFINE_bool(
    "ema",
    True,
    "A run with a moving average of G (config.optim.ema_decay): sample it; "
    "--noema samples the trained G itself.",
)
_CLASS = flags.DEFINE_integer(
    "class",
    None,
    "A class-conditional run: every sample of this class (default: sample i "
    "of class i % num_classes).",
)
common.at_least(1, "num_samples", "batch_size")
common.at_least(0, "step")
common.seeds("seed")


@common.run_main
def main(argv):
    del argv
    common.output_file(_OUTPUT.value)
    sampling.check_samples_output(_OUTPUT.value)  # before any work
    run_ = open_run(_WORKDIR.value, _STEP.value, _MEMBER.value)
    model = run_.config.model
    g_variables = (
        run_.sampling_g_variables if _EMA.value else run_.g_variables
    )  # as explore picks G
    images, z = sampling.sample(
        model,
        g_variables,
        _NUM_SAMPLES.value,
        _SEED.value,
        _BATCH_SIZE.value,
        _BATCH_STATS.value,
        _CLASS.value,
    )
    num_classes = model.conditional.num_classes
    # A conditional run's samples cycle through the classes: one column per class.
    sampling.save_samples(
        _OUTPUT.value, images, z, num_classes if num_classes and _CLASS.value is None else None
    )
    print(f"wrote {len(images)} samples to {_OUTPUT.value}")


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
