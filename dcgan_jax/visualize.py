"""Pictures: image grids (PNG), animations (GIF) and loss curves."""

import json
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Model-range images in [-1, 1] -> uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, num_cols: Optional[int] = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 images (N, H, W, C) -> one uint8 image (rows*H + pads, cols*W + pads, C), row-major order."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w, c = images.shape
    num_cols = num_cols or int(np.ceil(np.sqrt(n)))
    num_rows = int(np.ceil(n / num_cols))
    grid = np.full((num_rows * (h + padding) + padding, num_cols * (w + padding) + padding, c), pad_value, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, num_cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def save_image(path: str, image: np.ndarray) -> None:
    """Writes one uint8 (H, W, C) image; the format comes from the extension."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _to_pil(image).save(path)


def save_grid(path: str, images: np.ndarray, num_cols: Optional[int] = None) -> None:
    save_image(path, make_grid(images, num_cols))


def save_gif(path: str, frames: Sequence[np.ndarray], duration_ms: int = 200, loop: int = 0) -> None:
    """An animated GIF, one frame per uint8 (H, W, C) image (e.g. grids)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pil_frames = [_to_pil(np.asarray(f)).convert("RGB") if np.asarray(f).shape[-1] == 3 else _to_pil(np.asarray(f))
                  for f in frames]
    pil_frames[0].save(path, save_all=True, append_images=pil_frames[1:], duration=duration_ms, loop=loop,
                       optimize=False, disposal=1)


def read_metrics(path: str) -> list:
    """Rows of the metrics.jsonl that training appends to (one JSON object per logged step)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_losses(metrics_path: str, output_path: str) -> None:
    """D and G loss against step, from metrics.jsonl, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        ax.plot(steps, [r[key] for r in rows], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output_path, dpi=100)
    plt.close(fig)
