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
    GIF frames; the PNG shows up to `max_shown` of them in a row. Grids that cannot be read (0-byte
    or truncated PNGs an older version left after a kill or a full disk) are skipped with one
    warning line among the notes; if none can be read, the run is refused."""
    if z not in run_files.GRID_FOLDERS:
        raise UserError(f"z={z!r} must be one of {', '.join(run_files.GRID_FOLDERS)}")
    frames, unreadable = visualize.training_progress_frames(workdir, z)
    folder = os.path.join(workdir, run_files.GRID_FOLDERS[z])
    if not frames and unreadable:
        raise UserError(
            f"none of the {len(unreadable)} sample grids in {folder} can be read (0-byte or "
            f"damaged PNGs); delete them and train (or resume) to write new grids"
        )
    if not frames:
        raise UserError(
            f"no sample grids in {folder}: train first"
            + (" (with --config.sample_random_z=True)" if z == "random" else "")
        )
    shown = np.unique(
        np.linspace(0, len(frames) - 1, min(max_shown, len(frames))).round().astype(int)
    )
    notes = (
        [
            f"warning: skipped {len(unreadable)} unreadable sample grid(s) (0-byte or damaged): "
            + ", ".join(unreadable)
        ]
        if unreadable
        else []
    )
    return Picture([np.stack([frames[i] for i in shown])], frames=frames, notes=notes)
