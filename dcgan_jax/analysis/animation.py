"""Training animations: the sample grids a run saved as it trained (of its fixed z, or of fresh z at
each step), captioned with their step. Fixed z shows each sample sharpening; fresh z shows the whole
distribution improving."""

import os

import numpy as np

from dcgan_jax import run_files, visualize
from dcgan_jax.analysis.figures import Picture
from dcgan_jax.errors import UserError


def training_progress(workdir: str, max_shown: int = 8, z: str = "fixed") -> Picture:
    """The grids of fixed (workdir/samples/) or fresh (`z='random'`, workdir/samples/random/) z as
    GIF frames; the PNG shows up to `max_shown` of them in a row."""
    if z not in run_files.GRID_FOLDERS:
        raise UserError(f"z={z!r} must be one of {', '.join(run_files.GRID_FOLDERS)}")
    frames = visualize.training_progress_frames(workdir, z)
    if not frames:
        raise UserError(
            f"no sample grids in {os.path.join(workdir, run_files.GRID_FOLDERS[z])}: train first"
            + (" (with --config.sample_random_z=True)" if z == "random" else "")
        )
    shown = np.unique(
        np.linspace(0, len(frames) - 1, min(max_shown, len(frames))).round().astype(int)
    )
    return Picture([np.stack([frames[i] for i in shown])], frames=frames)
