"""What a run shows and writes as it goes: console lines, TensorBoard, metrics.jsonl, config.json
and sample grids.

Only process 0 writes, so a multi-host run produces one set of outputs. Nothing saved is left
damaged by a failed write (full disk, read-only folder): grids and config.json are written to a
temporary name and renamed into place; metrics.jsonl and the TensorBoard event file are appended
to, and a failed append is cut back to the file's size before it, so the file stays as it was. A
failed write is one UserError naming the file and the fix. TensorBoard event files are
written with the `tensorboard` package's protos and record format into a plain local file, which
needs neither TensorFlow nor PyTorch (flax's and tensorboardX's writers import one of them; so does
tensorboard's own EventFileWriter when TensorFlow is installed: it opens its file through
`tensorboard.compat.tf`, which is TensorFlow when importable).
"""

import contextlib
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

from dcgan_jax import atomic_write, run_files, visualize
from dcgan_jax.errors import UserError


def _append(fd: int, path: str, data: bytes) -> None:
    """Appends `data` to the file `fd` (of `path`, opened with O_APPEND, so the next write goes to
    the end whatever a failed one left) whole or not at all: a failed write (full disk) is cut back
    to the size before it, so no torn row or record is left for readers."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as e:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise atomic_write.failure(path, e) from None


def append_line(path: str, line: str) -> None:
    """One line appended to the text file `path` (created if absent), whole or not at all; a failed
    write leaves the file as it was (a file it created is removed)."""
    real = os.path.realpath(path)  # a link's target is what a failure removes
    existed = os.path.exists(real)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise atomic_write.failure(path, e) from None
    try:
        _append(fd, path, (line + "\n").encode())
    except UserError:
        if not existed:
            with contextlib.suppress(OSError):
                os.remove(real)
        raise
    finally:
        os.close(fd)


class SummaryWriter:
    """Scalars and images into a TensorBoard event file (`tensorboard --logdir` reads it).

    Events are held until `flush`, which appends them in one write, cut back on failure. A writer
    of a resumed run (`purge_from`: the first step it trains) starts with a SessionLog.START at
    that step: TensorBoard then drops the events of that step and later that an earlier, killed
    run had written before dying, which the resumed run writes again."""

    _file_ids = itertools.count()  # writers of one process in the same second get distinct files

    def __init__(self, logdir: str, purge_from: int | None = None):
        # EventFileWriter's naming: TensorBoard reads every events.out.tfevents.* file of a
        # directory in name order.
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
            f"{next(self._file_ids)}"
        )
        self.path = os.path.join(logdir, name)
        try:
            os.makedirs(logdir, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            raise atomic_write.failure(self.path, e) from None
        self._pending = io.BytesIO()
        self._records = RecordWriter(self._pending)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_from is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write(event_pb2.Event(wall_time=time.time(), step=purge_from, session_log=start))
        try:
            self.flush()
        except UserError:  # no header written: an empty file would only puzzle readers
            self.close()
            with contextlib.suppress(OSError):
                os.remove(self.path)
            raise

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

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
        """Appends the events held since the last flush; on failure the file keeps only the earlier
        ones, and the held events are dropped."""
        data = self._pending.getvalue()
        self._pending.seek(0)
        self._pending.truncate()
        if data:
            _append(self._fd, self.path, data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def trim_metrics(path: str, last_step: int) -> None:
    """Drops the rows of steps after `last_step` (logged by a run that died before its next
    checkpoint, and about to be replayed by the resumed run), so metrics.jsonl and the loss curve
    hold every step once. Atomic: the trimmed file replaces the old one by a rename."""
    if not os.path.exists(path):
        return
    try:
        with open(path, errors="replace") as f:  # a garbled row is dropped, not a traceback
            lines = f.readlines()
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); remove or rename it") from None
    kept = [line for line in lines if line.strip() and _row_step(line) <= last_step]
    kept = [line if line.endswith("\n") else line + "\n" for line in kept]
    if kept != lines:
        atomic_write.write_text(path, "".join(kept))


def _row_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):  # a row cut short by a crash: dropped
        return float("inf")


def write_config(workdir: str, text: str) -> None:
    """workdir/config.json: the resolved config of a run's start (JSON `text`), replaced atomically,
    so a failed write keeps the previous start's."""
    atomic_write.write_text(run_files.path(workdir, run_files.CONFIG), text)


def say(text: str) -> None:
    """A console line from process 0 (a multi-host run prints one), as `Reporter.message`."""
    if jax.process_index() == 0:
        print(text, flush=True)


class Reporter:
    """Console lines with img/s and ETA, TensorBoard scalars/images, metrics.jsonl rows, sample grid
    PNGs, config.json.

    Created when a run starts (after every check, before the first step): it trims metrics.jsonl
    to the resumed step and opens this run's event file, so an unwritable TensorBoard folder or
    metrics file stops the run before any training."""

    def __init__(
        self,
        workdir: str,
        start_step: int,
        num_train_steps: int,
        batch_size: int,
        console: bool = True,
    ):
        """`console=False`: files only (a population member's; the population prints one line)."""
        self.enabled = jax.process_index() == 0
        self.workdir, self.num_train_steps, self.batch_size = workdir, num_train_steps, batch_size
        self.console = console
        self.metrics_path = run_files.path(workdir, run_files.METRICS)
        self.last_time, self.last_step = time.time(), start_step
        self.writer = None
        if self.enabled:
            trim_metrics(self.metrics_path, start_step)
            self.writer = SummaryWriter(
                run_files.path(workdir, run_files.TENSORBOARD),
                purge_from=start_step + 1 if start_step else None,
            )

    def save_config(self, text: str) -> None:
        if self.enabled:
            write_config(self.workdir, text)

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.time()
        rate = (step - self.last_step) * self.batch_size / max(now - self.last_time, 1e-9)
        eta = (self.num_train_steps - step) * self.batch_size / max(rate, 1e-9)
        self.last_time, self.last_step = now, step
        if self.console:
            self._print_step(step, metrics, rate, eta)
        self._write(step, {**metrics, "images_per_sec": rate}, "train")

    def _print_step(self, step: int, metrics: dict[str, float], rate: float, eta: float) -> None:
        print(
            f"step {step}/{self.num_train_steps} | d_loss {metrics['d_loss']:.3f} "
            f"g_loss {metrics['g_loss']:.3f} D(x) {metrics['d_real']:.2f} D(G(z)) {metrics['d_fake']:.2f} | "
            f"{rate:.0f} img/s | ETA {int(eta) // 60}m{int(eta) % 60:02d}s",
            flush=True,
        )

    def evaluation(self, step: int, scores: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.console:
            line = " ".join(f"{k} {v:.4g}" for k, v in scores.items())
            print(f"step {step} eval | {line}", flush=True)
        self._write(step, scores, "eval")

    def _write(self, step: int, values: dict[str, float], prefix: str) -> None:
        row = {
            "step": step,
            **(
                {k: v for k, v in values.items() if k != "images_per_sec"}
                if prefix == "train"
                else {f"eval_{k}": v for k, v in values.items()}
            ),
        }
        append_line(self.metrics_path, json.dumps(row))
        for key, value in values.items():
            self.writer.scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def samples(
        self, step: int, images: np.ndarray, z: str = "fixed", num_cols: int | None = None
    ) -> None:
        """A grid of `images` (of the run's fixed z, or of fresh `z='random'`) as a PNG (replaced
        atomically) and in TensorBoard; `num_cols` columns (default: square)."""
        if not self.enabled:
            return
        grid = visualize.make_grid(images, num_cols)
        path = run_files.grid_file(self.workdir, z, step)
        try:
            visualize.save_image(path, grid)
        except OSError as e:  # save_image reports its own failures; this is a last resort
            raise atomic_write.failure(path, e) from None
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
