"""Images/s of the training input pipeline at 64 px: LSUN-like LMDB (webp), a jpeg folder, the
prepared cache.

  python benchmarks/input_pipeline.py [--num_images=5000] [--image_size=64] [--workdir=/tmp/bench]

Makes its own data: `num_images` synthetic 341x256 photos-like images (smooth colour fields plus
sensor noise, about the size of LSUN's webp files), written as an LMDB in LSUN's layout (hex keys ->
webp), as a folder of jpegs, and as a prepared cache (`dcgan_jax.prepare`). Each source is read
through `data.pipeline.train_batches` (shuffled global batches of 128, decoded, resized, scaled to
[-1, 1]) for a whole pass and more, with 1 core (decoding in the reading process) and with all cores
(one decoding process per core); the rate is printed for every 1,000 images, so a reader that slows
down over a pass (pytorch/examples#156) shows it.
"""

import argparse
import io
import os
import sys
import tempfile
import time
from concurrent import futures

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WIDTH, HEIGHT = 341, 256  # LSUN's images have their shorter side at 256


def synthetic_photo(index: int) -> Image.Image:
    """A 341x256 RGB image with photo-like statistics: coarse colour layout, finer texture, noise
    (webp ~15 KiB)."""
    rng = np.random.default_rng(index)

    def field(h, w):
        noise = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        return np.asarray(noise.resize((WIDTH, HEIGHT), Image.BICUBIC), np.float32)

    pixels = 0.7 * field(6, 8) + 0.3 * field(32, 43) + rng.normal(0, 10, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode_range(start: int, stop: int):
    """(webp bytes, jpeg bytes) of synthetic images start..stop-1."""
    out = []
    for index in range(start, stop):
        image, webp, jpeg = synthetic_photo(index), io.BytesIO(), io.BytesIO()
        image.save(webp, "WEBP", quality=75)
        image.save(jpeg, "JPEG", quality=90)
        out.append((webp.getvalue(), jpeg.getvalue()))
    return out


def make_data(root: str, num_images: int, workers: int) -> None:
    import lmdb

    ranges = [(i, min(i + 250, num_images)) for i in range(0, num_images, 250)]
    os.makedirs(os.path.join(root, "folder"), exist_ok=True)
    env = lmdb.open(os.path.join(root, "lmdb"), map_size=1 << 34)
    webp_bytes = 0
    with futures.ProcessPoolExecutor(workers) as pool, env.begin(write=True) as txn:
        for (start, _), encoded in zip(ranges, pool.map(encode_range, *zip(*ranges))):
            for index, (webp, jpeg) in enumerate(encoded, start):
                txn.put(
                    f"{index * 2654435761 % 2**40:040x}".encode(), webp
                )  # LSUN-like hex ids, unordered
                with open(os.path.join(root, "folder", f"{index:07d}.jpg"), "wb") as f:
                    f.write(jpeg)
                webp_bytes += len(webp)
    env.close()
    print(
        f"made {num_images} images of {WIDTH}x{HEIGHT} (webp {webp_bytes / num_images / 1024:.1f} KiB each)"
    )


def measure(config, source, min_images: int, min_seconds: float = 2.0):
    """Reads through train_batches; returns (images/s, images per CPU-second of this process,
    per-window rates).

    The CPU-second rate counts only this process's CPU time: with 1 core (decoding here) it is the
    reader's own speed, unaffected by other programs competing for the cores; per 1,000-image window
    it shows whether a pass slows down.
    """
    from dcgan_jax.data import pipeline

    batches = pipeline.train_batches(
        config.data, source, config.batch_size, config.seed, 0, 1, process_index=0, process_count=1
    )
    next(batches)  # worker start-up is not part of the rate
    start, cpu_start = time.perf_counter(), time.process_time()
    window_start, window_cpu, done, window_done = start, cpu_start, 0, 0
    windows = []
    while done < min_images or time.perf_counter() - start < min_seconds:
        next(batches)
        done += config.batch_size
        window_done += config.batch_size
        if window_done >= 1000:
            now, cpu = time.perf_counter(), time.process_time()
            windows.append(
                (window_done / (now - window_start), window_done / max(cpu - window_cpu, 1e-9))
            )
            window_start, window_cpu, window_done = now, cpu, 0
    rate = done / (time.perf_counter() - start)
    cpu_rate = done / max(time.process_time() - cpu_start, 1e-9)
    batches.close()
    return rate, cpu_rate, windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_images", type=int, default=5000)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()

    from dcgan_jax import defaults
    from dcgan_jax.data import datasets, prepare, workers

    all_cores = workers.num_workers(0)
    root = args.workdir or tempfile.mkdtemp(prefix="dcgan_input_bench_")
    if not os.path.exists(os.path.join(root, "lmdb", "data.mdb")):
        make_data(root, args.num_images, all_cores)
    config = defaults.get_config()
    config.model.image_size, config.model.num_channels, config.batch_size = (
        args.image_size,
        3,
        args.batch_size,
    )
    config.data.dataset, config.data.data_path = "lsun_lmdb", os.path.join(root, "lmdb")
    prepared = os.path.join(root, f"prepared_{args.image_size}")
    if not os.path.exists(os.path.join(prepared, "info.json")):
        prepare.write_cache(config.data, args.image_size, 3, prepared)

    print(
        f"{args.image_size} px, batches of {args.batch_size}, {args.num_images} images per pass; "
        f"'all cores' = {all_cores} decoding processes"
    )
    results = {}
    for name, dataset, path in [
        ("LMDB-webp", "lsun_lmdb", "lmdb"),
        ("folder-jpeg", "image_folder", "folder"),
        ("prepared", "prepared", f"prepared_{args.image_size}"),
    ]:
        config.data.dataset, config.data.data_path = dataset, os.path.join(root, path)
        source = datasets.load_source(config.data, args.image_size, 3)
        for label, count in [("1 core", 1), ("all cores", all_cores)]:
            config.data.num_data_workers = count
            rate, cpu_rate, windows = measure(config, source, int(1.5 * args.num_images))
            results[name, label] = rate, cpu_rate
            column = (
                1 if count == 1 else 0
            )  # per CPU-second where the decoding is all in this process
            per_window = " ".join(f"{w[column]:,.0f}" for w in windows[:10]) + (
                " ..." if len(windows) > 10 else ""
            )
            cpu = f"{cpu_rate:9,.0f}/CPU-s" if count == 1 else " " * 15
            print(
                f"{name:12s} {label:9s} {rate:9,.0f} images/s {cpu}   per 1,000 images"
                f"{' (per CPU-s)' if count == 1 else ''}: {per_window}",
                flush=True,
            )
    ratio, cpu_ratio = (
        results["prepared", "1 core"][i] / results["LMDB-webp", "1 core"][i] for i in (0, 1)
    )
    print(
        f"prepared / LMDB-webp on 1 core: {ratio:,.0f}x (wall clock), {cpu_ratio:,.0f}x (per CPU-second)"
    )


if __name__ == "__main__":
    main()
