"""Training animations: the fixed-z sample grids a run saved as it trained, captioned with their step."""

import os

import numpy as np

from dcgan_jax import visualize
from dcgan_jax.analysis.figures import Picture
from dcgan_jax.errors import UserError


def training_progress(workdir: str, max_shown: int = 8) -> Picture:
    """The grids of workdir/samples/ as GIF frames; the PNG shows up to `max_shown` of them in a row."""
    frames = visualize.training_progress_frames(workdir)
    if not frames:
        raise UserError(f"no sample grids in {os.path.join(workdir, 'samples')}: train first")
    shown = np.unique(np.linspace(0, len(frames) - 1, min(max_shown, len(frames))).round().astype(int))
    return Picture([np.stack([frames[i] for i in shown])], frames=frames)
