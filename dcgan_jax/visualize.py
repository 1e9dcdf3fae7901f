"""Pictures: image grids (PNG), animations (GIF) and loss curves, from uint8 or model-range images.

numpy, Pillow and matplotlib only (no JAX): training reports with it, and so do the analysis tools.
"""

import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from dcgan_jax import atomic_write, run_files
from dcgan_jax.data.images import as_uint8


def make_grid(
    images: np.ndarray, num_cols: int | None = None, padding: int = 2, pad_value: int = 255
) -> np.ndarray:
    """uint8 images (N, H, W, C) -> one uint8 image (rows*H + pads, cols*W + pads, C), row-major
    order."""
    images = as_uint8(images)
    n, h, w, c = images.shape
    num_cols = num_cols or int(np.ceil(np.sqrt(n)))
    num_rows = int(np.ceil(n / num_cols))
    grid = np.full(
        (num_rows * (h + padding) + padding, num_cols * (w + padding) + padding, c),
        pad_value,
        np.uint8,
    )
    for i, image in enumerate(images):
        r, col = divmod(i, num_cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def save_image(path: str, image: np.ndarray) -> None:
    """Writes one uint8 (H, W, C) image; the format comes from the extension. Atomic (a kill or a
    full disk leaves the old file, never a 0-byte one); a failed write is one UserError."""
    image_format = _format(path)
    with atomic_write.target(path) as tmp:
        _to_pil(image).save(tmp, format=image_format)


def _format(path: str) -> str:
    """Pillow's format name for the extension of `path` (the temporary name keeps the extension,
    but an explicit format leaves no doubt)."""
    extension = os.path.splitext(path)[1].lower()
    formats = Image.registered_extensions()
    if extension not in formats:
        raise ValueError(f"unknown image file extension {extension!r} of {path}")
    return formats[extension]


def save_grid(path: str, images: np.ndarray, num_cols: int | None = None) -> None:
    save_image(path, make_grid(images, num_cols))


def save_gif(
    path: str, frames: Sequence[np.ndarray], duration_ms: int = 200, loop: int = 0, levels: int = 0
) -> None:
    """An animated GIF, one frame per uint8 (H, W, C) image (e.g. grids).

    `levels` > 0 quantizes every channel to that many values first (16 makes noisy samples ~3x
    smaller). Pillow merges a frame identical to the one before it into that one (adding up their
    durations).
    """
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    if levels:
        frames = [quantize(f, levels) for f in frames]
    pil_frames = [
        _to_pil(np.asarray(f)).convert("RGB")
        if np.asarray(f).shape[-1] == 3
        else _to_pil(np.asarray(f))
        for f in frames
    ]
    with atomic_write.target(path) as tmp:
        pil_frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=pil_frames[1:],
            duration=duration_ms,
            loop=loop,
            optimize=False,
            disposal=1,
        )


def table_grid(rows: Sequence[np.ndarray], padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Rows of images (each (n_r, H, W, C), n_r may differ) -> one grid; short rows are filled with
    blank cells."""
    width = max(len(r) for r in rows)
    blank = np.full_like(as_uint8(rows[0])[:1], pad_value)
    cells = [np.concatenate([as_uint8(r)] + [blank] * (width - len(r))) for r in rows]
    return make_grid(np.concatenate(cells), num_cols=width, padding=padding, pad_value=pad_value)


def zoom(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W, C) image by an integer factor (small images stay
    crisp)."""
    return image if factor == 1 else np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def caption(image: np.ndarray, text: str, height: int = 14) -> np.ndarray:
    """The image with a white strip on top holding `text` in PIL's built-in font."""
    from PIL import ImageDraw

    strip = Image.new("L", (image.shape[1], height), 255)
    ImageDraw.Draw(strip).text((2, 1), text, fill=0)
    strip = np.asarray(strip)[..., None].repeat(image.shape[-1], axis=-1)
    return np.concatenate([strip, image], axis=0)


def read_grid(path: str) -> np.ndarray | None:
    """A saved grid as uint8 (H, W, C), or None if it cannot be read: older versions wrote grids in
    place, so a kill or a full disk could leave a 0-byte or truncated PNG behind."""
    try:
        with Image.open(path) as opened:
            image = np.asarray(opened)
    except (OSError, SyntaxError, ValueError):  # Pillow: SyntaxError for a broken PNG chunk
        return None
    return image[..., None] if image.ndim == 2 else image


def training_grids(
    workdir: str, z: str = "fixed"
) -> tuple[list[tuple[int, np.ndarray]], list[str]]:
    """((step, grid) of the sample grids that training saved, in step order; the paths of those that
    cannot be read, skipped): `z='fixed'` the same z at every step (workdir/samples/), 'random'
    fresh z at each (workdir/samples/random/): run_files.GRID_FOLDERS."""
    found, unreadable = [], []
    for step, path in run_files.grid_files(workdir, z):
        grid = read_grid(path)
        if grid is None:
            unreadable.append(path)
        else:
            found.append((step, grid))
    return found, unreadable


def training_progress_frames(workdir: str, z: str = "fixed") -> tuple[list[np.ndarray], list[str]]:
    """(one captioned frame per readable sample grid: how the samples, of fixed or fresh z, evolve
    over training; the paths of the unreadable grids skipped)."""
    grids, unreadable = training_grids(workdir, z)
    return [caption(grid, f"step {step}") for step, grid in grids], unreadable


def quantize(image: np.ndarray, levels: int) -> np.ndarray:
    """uint8 image with each channel rounded to `levels` evenly spaced values in [0, 255]."""
    step = 255.0 / (levels - 1)
    return (np.round(np.asarray(image, np.float32) / step) * step).round().astype(np.uint8)


def read_metrics(path: str) -> list:
    """Rows of the metrics.jsonl that training appends to (one JSON object per logged step)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_losses(metrics_path: str, output_path: str) -> None:
    """D and G loss against step, from metrics.jsonl, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r for r in read_metrics(metrics_path) if "d_loss" in r
    ]  # eval rows carry eval_* keys only
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        ax.plot(steps, [r[key] for r in rows], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    _save_figure(fig, output_path)


def plot_distributions(
    groups: Sequence[tuple[str, Sequence[float]]], ylabel: str, title: str, output_path: str
) -> None:
    """One column per (label, values) group as a PNG: every value a dot (spread sideways by rank so
    equal values stay visible), a box of its quartiles, and its mean as a bar: a study's FID over
    seeds per variant, the distribution Lucic et al. (2018) ask results to be reported as."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.8 * len(groups) + 1.5), 4.5))
    ax.boxplot(
        [list(v) for _, v in groups], widths=0.5, showfliers=False, medianprops={"color": "gray"}
    )
    for i, (_, values) in enumerate(groups, start=1):
        order = np.argsort(np.argsort(values))  # rank: dots of equal value do not overlap
        offsets = 0.3 * (order / max(len(values) - 1, 1) - 0.5)
        ax.scatter(i + offsets, values, s=18, color="tab:blue", zorder=3)
        ax.hlines(np.mean(values), i - 0.3, i + 0.3, color="tab:red", zorder=4)
    ax.set_xticks(range(1, len(groups) + 1), [label for label, _ in groups], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\n(dots: members; red: mean; box: quartiles, gray: median)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, output_path)


def _save_figure(fig, output_path: str) -> None:
    """Writes a matplotlib figure as a PNG (atomically) and closes it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_write.target(output_path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
