"""What a run shows and writes as it goes: console lines, TensorBoard, metrics.jsonl and sample
grids.

Only process 0 writes, so a multi-host run produces one set of outputs. TensorBoard event files are
written with the `tensorboard` package's protos and record format into a plain local file, which
needs neither TensorFlow nor PyTorch (flax's and tensorboardX's writers import one of them; so does
tensorboard's own EventFileWriter when TensorFlow is installed: it opens its file through
`tensorboard.compat.tf`, which is TensorFlow when importable).
"""

import io
import itertools
import json
import os
import socket
import time

import jax
import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from dcgan_jax import run_files, visualize


class SummaryWriter:
    """Scalars and images into a TensorBoard event file (`tensorboard --logdir` reads it)."""

    _file_ids = itertools.count()  # writers of one process in the same second get distinct files

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        # EventFileWriter's naming: TensorBoard reads every events.out.tfevents.* file of a
        # directory in name order.
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
            f"{next(self._file_ids)}"
        )
        self._writer = RecordWriter(open(os.path.join(logdir, name), "wb"))
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def _write(self, event: event_pb2.Event) -> None:
        self._writer.write(event.SerializeToString())

    def _add(self, step: int, value: summary_pb2.Summary.Value) -> None:
        summary = summary_pb2.Summary(value=[value])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._add(step, summary_pb2.Summary.Value(tag=tag, simple_value=float(value)))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """One uint8 (H, W, C) image, stored as PNG."""
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
        encoded = summary_pb2.Summary.Image(
            height=image.shape[0],
            width=image.shape[1],
            colorspace=image.shape[-1],
            encoded_image_string=buffer.getvalue(),
        )
        self._add(step, summary_pb2.Summary.Value(tag=tag, image=encoded))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        if not self._writer.closed:
            self._writer.close()


def trim_metrics(path: str, last_step: int) -> None:
    """Drops the rows of steps after `last_step` (logged by a run that died before its next
    checkpoint, and about to be replayed by the resumed run), so metrics.jsonl and the loss curve
    hold every step once. Atomic: the trimmed file replaces the old one by a rename."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if line.strip() and _row_step(line) <= last_step]
    if len(kept) != len(lines):
        with open(path + ".tmp", "w") as f:
            f.writelines(kept)
        os.replace(path + ".tmp", path)


def _row_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):  # a row cut short by a crash: dropped
        return float("inf")


class Reporter:
    """Console lines with img/s and ETA, TensorBoard scalars/images, metrics.jsonl rows, sample grid
    PNGs."""

    def __init__(self, workdir: str, start_step: int, num_train_steps: int, batch_size: int):
        self.enabled = jax.process_index() == 0
        self.workdir, self.num_train_steps, self.batch_size = workdir, num_train_steps, batch_size
        self.metrics_path = run_files.path(workdir, run_files.METRICS)
        self.last_time, self.last_step = time.time(), start_step
        self.writer = None
        if self.enabled:
            trim_metrics(self.metrics_path, start_step)
            self.writer = SummaryWriter(run_files.path(workdir, run_files.TENSORBOARD))

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.time()
        rate = (step - self.last_step) * self.batch_size / max(now - self.last_time, 1e-9)
        eta = (self.num_train_steps - step) * self.batch_size / max(rate, 1e-9)
        self.last_time, self.last_step = now, step
        print(
            f"step {step}/{self.num_train_steps} | d_loss {metrics['d_loss']:.3f} "
            f"g_loss {metrics['g_loss']:.3f} D(x) {metrics['d_real']:.2f} D(G(z)) {metrics['d_fake']:.2f} | "
            f"{rate:.0f} img/s | ETA {int(eta) // 60}m{int(eta) % 60:02d}s",
            flush=True,
        )
        self._write(step, {**metrics, "images_per_sec": rate}, "train")

    def evaluation(self, step: int, scores: dict[str, float]) -> None:
        if not self.enabled:
            return
        print(
            f"step {step} eval | " + " ".join(f"{k} {v:.4g}" for k, v in scores.items()), flush=True
        )
        self._write(step, scores, "eval")

    def _write(self, step: int, values: dict[str, float], prefix: str) -> None:
        for key, value in values.items():
            self.writer.scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()
        row = {
            "step": step,
            **(
                {k: v for k, v in values.items() if k != "images_per_sec"}
                if prefix == "train"
                else {f"eval_{k}": v for k, v in values.items()}
            ),
        }
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def samples(
        self, step: int, images: np.ndarray, z: str = "fixed", num_cols: int | None = None
    ) -> None:
        """A grid of `images` (of the run's fixed z, or of fresh `z='random'`) as a PNG and in
        TensorBoard; `num_cols` columns (default: square)."""
        if not self.enabled:
            return
        grid = visualize.make_grid(images, num_cols)
        path = run_files.grid_file(self.workdir, z, step)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        visualize.save_image(path, grid)
        self.writer.image("samples" if z == "fixed" else "samples_random_z", grid, step)
        self.writer.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        self.writer.close()
        if os.path.exists(self.metrics_path):
            visualize.plot_losses(
                self.metrics_path, run_files.path(self.workdir, run_files.LOSS_CURVE)
            )
