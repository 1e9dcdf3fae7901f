"""What an analysis draws: rows of images, written as one PNG grid or as a GIF (one frame per
column, or its own)."""

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dcgan_jax import memory, visualize
from dcgan_jax.errors import UserError

FORMATS = (".png", ".gif")


class Picture(NamedTuple):
    """Rows of uint8 images (the PNG grid), optional GIF frames (else one per column), and lines
    worth printing."""

    rows: list[np.ndarray]
    frames: list[np.ndarray] | None = None
    notes: Sequence[str] = ()


def columns_as_frames(rows: list[np.ndarray]) -> list[np.ndarray]:
    """Frame j stacks the j-th image of every row vertically (short rows repeat their last
    image)."""
    width = max(len(r) for r in rows)
    return [
        visualize.make_grid(np.stack([r[min(j, len(r) - 1)] for r in rows]), num_cols=1)
        for j in range(width)
    ]


def check_output(output: str) -> str:
    """The lower-case extension of a picture's output path (a str or a pathlib.Path), which must be
    .png or .gif."""
    output = os.fspath(output)
    extension = os.path.splitext(output)[1].lower()
    if extension not in FORMATS:
        raise UserError(f"output {output!r} must end in .png (grid) or .gif (animation)")
    return extension


def write_picture(
    picture: Picture, output: str, zoom: int = 1, duration_ms: int = 200, gif_levels: int = 0
) -> None:
    """A .png grid of the rows, or a .gif of the frames; `zoom` upscales by an integer (nearest
    neighbour)."""

    def scale(image):
        return visualize.zoom(image, zoom)

    png = check_output(output) == ".png"
    frames = (
        None
        if png
        else (picture.frames if picture.frames is not None else columns_as_frames(picture.rows))
    )
    pixels = visualize.table_grid(picture.rows).nbytes if png else sum(f.nbytes for f in frames)
    if 2 * pixels * zoom**2 > memory.budget_bytes():  # the zoomed copy and its encoding
        largest = max(int((memory.budget_bytes() / (2 * pixels)) ** 0.5), 1)
        raise UserError(
            f"the picture at --zoom={zoom} needs about {2 * pixels * zoom**2 / 2**30:.1f} GiB of "
            f"memory and {memory.available_bytes() / 2**30:.1f} GiB is available: use --zoom={largest} "
            f"or less"
        )
    if png:
        visualize.save_image(output, scale(visualize.table_grid(picture.rows)))
    else:
        visualize.save_gif(output, [scale(f) for f in frames], duration_ms, levels=gif_levels)
