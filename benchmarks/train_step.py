"""Images/s of this project's compiled D+G train step against a PyTorch DCGAN reference, measured side by side.

  python benchmarks/train_step.py [--image_size=64] [--batch_size=64] [--steps=6] [--blocks=3] [--json]

The reference is the pytorch/examples DCGAN (nz=100, ngf=ndf=64, 4x4 stride-2 padding-1 (transposed) convs, batchnorm,
ReLU/LeakyReLU(0.2), BCE, Adam 2e-4/0.5; a D step on a real and a fake batch, then a G step), written here. The JAX
step is `training.step.make_train_step` compiled by `parallel.Parallel` with the same architecture (g_width=d_width=64).
The two are timed in alternating blocks (JAX, torch, JAX, torch, ...) so that load from other processes hits both
alike; the reported figures are the medians over blocks. Both use all cores (torch threads = core count).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=64, choices=(32, 64, 128))
    parser.add_argument("--batch_size", type=int, default=64, help="global batch (split over --devices for JAX)")
    parser.add_argument("--devices", type=int, default=1, help="simulated CPU devices for JAX (XLA_FLAGS)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument("--blocks", type=int, default=3, help="alternating JAX/torch blocks; medians are reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each before the first block")
    parser.add_argument("--upsample", default="subpixel", choices=("subpixel", "transpose"),
                        help="G's upsampling (dcgan_jax.nn.models.UPSAMPLERS); 'transpose' is the straightforward form")
    parser.add_argument("--dtype", default="float32", help="JAX compute_dtype (torch runs float32)")
    parser.add_argument("--parallelism", default="pmap", choices=("pmap", "shard_map"))
    parser.add_argument("--torch_compile", action="store_true", help="torch.compile the reference's models")
    parser.add_argument("--skip_torch", action="store_true", help="time the JAX step only (ratio is null)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- JAX


def jax_config(args):
    from dcgan_jax import defaults
    config = defaults.get_config()
    config.update(image_size=args.image_size, num_channels=3, latent_dim=100, g_width=64, d_width=64,
                  batch_size=args.batch_size, upsample=args.upsample, compute_dtype=args.dtype,
                  parallelism=args.parallelism)
    return config


def make_jax_runner(args):
    """(step(), compile_seconds): `step()` runs one train step and waits for it."""
    import jax
    import numpy as np
    from dcgan_jax.training import parallel
    from dcgan_jax.training.state import create_train_state
    from dcgan_jax.training.step import make_train_step

    config = jax_config(args)
    runner = parallel.Parallel(config.parallelism)
    per_device = config.batch_size // runner.num_devices
    step_fn = runner.compile(make_train_step(config, per_device))
    state = runner.replicate(create_train_state(config))
    rng = np.random.default_rng(0)
    shape = (len(runner.local_devices), per_device, config.image_size, config.image_size, 3)
    batch = runner.shard_batch(rng.uniform(-1, 1, shape).astype(np.float32))
    holder = {"state": state}

    def step():
        holder["state"], metrics = step_fn(holder["state"], batch)
        jax.block_until_ready(metrics)

    start = time.perf_counter()
    step()
    return step, time.perf_counter() - start


# ---------------------------------------------------------------- PyTorch reference


def make_torch_runner(args):
    """`step()` running one D+G step of the pytorch/examples DCGAN, written here."""
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    nz, ngf, ndf, nc, size, batch = 100, 64, 64, 3, args.image_size, args.batch_size
    n = {32: 3, 64: 4, 128: 5}[size]  # 2x resolution changes between 4x4 and the image

    g_layers, width = [nn.ConvTranspose2d(nz, ngf * 2 ** (n - 1), 4, 1, 0, bias=False)], ngf * 2 ** (n - 1)
    for i in range(n):
        out = nc if i == n - 1 else width // 2
        g_layers += [nn.BatchNorm2d(width), nn.ReLU(True), nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False)]
        width = out
    netg = nn.Sequential(*g_layers, nn.Tanh())
    d_layers, width = [], nc
    for i in range(n):
        out = ndf * 2 ** i
        d_layers.append(nn.Conv2d(width, out, 4, 2, 1, bias=False))
        if i > 0:
            d_layers.append(nn.BatchNorm2d(out))
        d_layers.append(nn.LeakyReLU(0.2, inplace=True))
        width = out
    netd = nn.Sequential(*d_layers, nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten(0))
    for module in list(netg.modules()) + list(netd.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
    opt_g = torch.optim.Adam(netg.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(netd.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if args.torch_compile:
        netg, netd = torch.compile(netg), torch.compile(netd)
    criterion = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, nc, size, size) * 2 - 1
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    def step():
        netd.zero_grad()
        err_real = criterion(netd(real), ones)
        err_real.backward()
        fake = netg(torch.rand(batch, nz, 1, 1) * 2 - 1)
        err_fake = criterion(netd(fake.detach()), zeros)
        err_fake.backward()
        opt_d.step()
        netg.zero_grad()
        err_g = criterion(netd(fake), ones)
        err_g.backward()
        opt_g.step()
        err_g.item()  # as the reference logs it every step

    step()
    return step


# ---------------------------------------------------------------- timing


def time_block(step, steps: int) -> float:
    """Seconds per step over `steps` back-to-back steps."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def run(args) -> dict:
    jax_step, compile_seconds = make_jax_runner(args)
    torch_step = None if args.skip_torch else make_torch_runner(args)
    for _ in range(args.warmup):
        jax_step()
        if torch_step:
            torch_step()
    jax_times, torch_times = [], []
    for _ in range(args.blocks):  # ABAB: the same background load hits both
        jax_times.append(time_block(jax_step, args.steps))
        if torch_step:
            torch_times.append(time_block(torch_step, args.steps))
    jax_ips = args.batch_size / statistics.median(jax_times)
    torch_ips = args.batch_size / statistics.median(torch_times) if torch_step else None
    return {
        "jax_images_per_sec": jax_ips,
        "torch_images_per_sec": torch_ips,
        "ratio": jax_ips / torch_ips if torch_ips else None,
        "compile_seconds": compile_seconds,
        # JAX/torch per adjacent pair of blocks: both saw about the same machine state
        "paired_ratios": [round(t / j, 3) for j, t in zip(jax_times, torch_times)],
        "jax_seconds_per_step": [round(t, 4) for t in jax_times],
        "torch_seconds_per_step": [round(t, 4) for t in torch_times],
        "image_size": args.image_size, "batch_size": args.batch_size, "devices": args.devices,
        "upsample": args.upsample, "dtype": args.dtype, "torch_compile": args.torch_compile,
        "cpu_count": os.cpu_count(),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.devices > 1:  # before jax is imported anywhere
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}").strip()
    if args.batch_size % args.devices:
        sys.exit(f"--batch_size={args.batch_size} must be divisible by --devices={args.devices}")
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    import jax
    print(f"{args.image_size}px, batch {args.batch_size}, {jax.device_count()} {jax.default_backend()} device(s), "
          f"upsample={args.upsample}, dtype={args.dtype}")
    print(f"JAX   : {result['jax_images_per_sec']:8.1f} img/s  (blocks, s/step: {result['jax_seconds_per_step']}; "
          f"first-step compile {result['compile_seconds']:.1f} s)")
    if result["torch_images_per_sec"]:
        label = "torch.compile" if args.torch_compile else "eager"
        print(f"torch : {result['torch_images_per_sec']:8.1f} img/s  ({label}; blocks, s/step: "
              f"{result['torch_seconds_per_step']})")
        print(f"ratio JAX/torch: {result['ratio']:.2f}  (per block pair: {result['paired_ratios']})")


if __name__ == "__main__":
    main()
