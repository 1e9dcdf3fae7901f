"""A training workdir's layout, every file and folder name in one place: what training writes and
what the tools (sample, explore, evaluate, the TensorBoard reader) read back.

    workdir/
      .lock                      held (flock) while a run trains here
      config.json                the resolved config of the latest start
      metrics.jsonl              one JSON row per logged step
      loss_curve.png             D and G losses against step
      tensorboard/               scalars and sample grids
      samples/step_XXXXXXXX.png  grids of the run's fixed z
      samples/random/...         grids of fresh z, a function of (seed, step)
      checkpoints/<step>/        orbax checkpoints (the train state and the config)
      eval_<task>.json           the tables `evaluate` writes
      eval_fid.png               a population's FID per member, by variant (evaluate --task=fid;
                                 eval_fid_noema.png with --noema)
      real_features/<key>.npz    FID/KID features of real images, keyed by data, size and extractor
"""

import glob
import os
import re

LOCK = ".lock"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
TENSORBOARD = "tensorboard"
SAMPLES = "samples"
GRID_FOLDERS = {
    "fixed": SAMPLES,
    "random": os.path.join(SAMPLES, "random"),
}  # z: the run's fixed z, or fresh
CHECKPOINTS = "checkpoints"
REAL_FEATURES = "real_features"  # evaluation/real_features.py: cached features of real images
WRITE_TEST = ".write_test"  # + .<process index>: the probe each host writes and removes at start


def path(workdir: str, name: str) -> str:
    """workdir/name for one of the names above."""
    return os.path.join(workdir, name)


def grid_file(workdir: str, z: str, step: int) -> str:
    """The PNG of the training grid of `step`; `z` is 'fixed' or 'random' (GRID_FOLDERS)."""
    return os.path.join(workdir, GRID_FOLDERS[z], f"step_{step:08d}.png")


def grid_files(workdir: str, z: str) -> list[tuple[int, str]]:
    """(step, path) of the training grids of `z` ('fixed' or 'random') saved in workdir, in step
    order."""
    found = []
    for path in glob.glob(os.path.join(workdir, GRID_FOLDERS[z], "step_*.png")):
        match = re.fullmatch(r"step_(\d+)\.png", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def eval_table(workdir: str, task: str) -> str:
    """The JSON table that `evaluate --task=<task>` writes."""
    return os.path.join(workdir, f"eval_{task}.json")


def eval_fid_plot(task: str) -> str:
    """The plot of a population's FID distribution per variant beside its table (task 'fid', or
    'fid_noema': the members' trained Gs)."""
    return f"eval_{task}.png"


def checkpoint_dir(workdir: str) -> str:
    """The orbax checkpoint folder, absolute (orbax needs it so)."""
    return os.path.join(os.path.abspath(workdir), CHECKPOINTS)
