"""Images/s and model FLOP utilization of this project's compiled D+G train step against a PyTorch
DCGAN reference on the same device, measured side by side.

  python benchmarks/train_step.py [--batch_sizes=64,128,512] [--dtypes=float32,bfloat16] [--steps=5] [--blocks=3]
      [--torch_device=auto] [--torch_variants=eager,channels_last_bf16,compile] [--peak_tflops=X] [--json]

JAX: `training.step.make_train_step` compiled by `training.parallel.Parallel` on `--devices` devices
(default 1: the same one device PyTorch gets), pytorch/examples architecture (64 px RGB, nz=100,
g_width=d_width=64), once per `--dtypes` entry (`compute_dtype`; params, optimizer states and losses
stay float32).

PyTorch: the pytorch/examples DCGAN (4x4 stride-2 padding-1 (transposed) convs, batchnorm, ReLU/LeakyReLU(0.2), BCE,
Adam 2e-4/0.5; a D step on a real and a fake batch, then a G step), written here, on `--torch_device` (default: CUDA
when JAX runs on a GPU, else the CPU), in three variants:
  eager               float32, NCHW (cuDNN autotuning on, as `torch.backends.cudnn.benchmark`);
  channels_last_bf16  eager, channels_last memory format, `torch.autocast` bfloat16;
  compile             `torch.compile` of G and D (channels_last, bfloat16 autocast, `--torch_compile_dtype`) with
                      fused Adam where the device has it. A variant that cannot be built or run here (torch.compile
                      needs a C++ compiler on CPU, for one) is reported unavailable with the reason.

All runners are timed in alternating blocks (each runner `--steps` steps per block, in turn) so that
load from other processes hits them alike; figures are medians over blocks, synchronized at the end
of each block only (no per-step host sync, as a training loop that logs every N steps). "compile" is
the wall time of the first step (tracing and compilation included; for eager PyTorch just its first
step).

Model FLOPs and MFU: benchmarks/model_flops.py (the count, checked against torch's FLOP counter, and the
devices' peaks). MFU is null on a CPU unless `--peak_tflops` is given; the achieved model FLOP/s are always
reported.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_dcgan  # noqa: E402  (benchmarks/: the PyTorch reference nets; torch is imported inside)
from model_flops import IMAGE_SIZES, peak_flops, step_flops  # noqa: E402
from torch_dcgan import NDF, NGF, NZ  # noqa: E402

NC = 3  # the benchmark's images: RGB

TORCH_VARIANTS = ("eager", "channels_last_bf16", "compile")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=64, choices=IMAGE_SIZES)
    parser.add_argument(
        "--batch_sizes", default="64,128,512", help="comma-separated global batch sizes"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=1,
        help="JAX devices (the first N; on CPU, N simulated devices via XLA_FLAGS)",
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument(
        "--blocks", type=int, default=3, help="alternating blocks of every runner; medians reported"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps of each runner after its first"
    )
    parser.add_argument(
        "--dtypes", default="float32,bfloat16", help="JAX compute_dtype(s), comma-separated"
    )
    parser.add_argument("--conv_impl", default="auto", choices=("auto", "xla", "fast"))
    parser.add_argument("--upsample", default="subpixel", choices=("subpixel", "transpose"))
    parser.add_argument("--parallelism", default="pmap", choices=("pmap", "shard_map"))
    parser.add_argument(
        "--torch_device",
        default="auto",
        help="'auto' (cuda when JAX is on a GPU, else cpu), cpu, cuda",
    )
    parser.add_argument(
        "--torch_variants",
        default=",".join(TORCH_VARIANTS),
        help=f"comma-separated subset of {TORCH_VARIANTS}",
    )
    parser.add_argument(
        "--torch_compile_dtype",
        default="bfloat16",
        choices=("float32", "bfloat16"),
        help="autocast dtype of the torch.compile variant",
    )
    parser.add_argument("--skip_torch", action="store_true", help="time the JAX step only")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=0.0,
        help="peak TFLOP/s of one device for MFU (default: from PEAK_TFLOPS by device kind)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        parser.exit(
            2, f"error: --batch_sizes={args.batch_sizes!r} must be comma-separated integers\n"
        )
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    args.torch_variants = (
        [] if args.skip_torch else [v for v in args.torch_variants.split(",") if v]
    )
    unknown = sorted(set(args.torch_variants) - set(TORCH_VARIANTS))
    if unknown:
        parser.exit(
            2, f"error: unknown --torch_variants {unknown}; use a subset of {TORCH_VARIANTS}\n"
        )
    return args


# ---------------------------------------------------------------- JAX


def make_jax_runner(args, batch_size: int, dtype: str):
    """(step, sync): `step()` dispatches one train step, `sync()` waits for the last one."""
    import jax
    import numpy as np

    from dcgan_jax import defaults
    from dcgan_jax.training import parallel
    from dcgan_jax.training.state import create_train_state
    from dcgan_jax.training.step import make_train_step

    config = defaults.get_config()
    config.update(batch_size=batch_size, parallelism=args.parallelism)
    config.model.update(
        image_size=args.image_size,
        num_channels=NC,
        latent_dim=NZ,
        g_width=NGF,
        d_width=NDF,
        upsample=args.upsample,
        conv_impl=args.conv_impl,
        compute_dtype=dtype,
    )
    runner = parallel.Parallel(config.parallelism, jax.devices()[: args.devices])
    per_device = batch_size // runner.num_devices
    step_fn = runner.compile(
        make_train_step(config.model, config.optim, config.objective, config.d_training, per_device)
    )
    holder = {
        "state": runner.replicate(create_train_state(config.model, config.optim, config.seed)),
        "metrics": None,
    }
    shape = (
        len(runner.local_devices),
        per_device,
        config.model.image_size,
        config.model.image_size,
        NC,
    )
    batch = runner.shard_batch(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))

    def step():
        holder["state"], holder["metrics"] = step_fn(holder["state"], batch)

    def sync():
        jax.block_until_ready((holder["state"], holder["metrics"]))

    return step, sync


# ---------------------------------------------------------------- PyTorch reference


def torch_device(args) -> str:
    import jax

    if args.torch_device != "auto":
        return args.torch_device
    return "cuda" if jax.default_backend() == "gpu" else "cpu"


# ---------------------------------------------------------------- timing


def _first_step(step, sync) -> float:
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def time_block(step, sync, steps: int) -> float:
    """Seconds per step over `steps` back-to-back steps, synchronized at the end."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def run_batch(args, batch_size: int, device: str) -> dict:
    """Every runner at one batch size: img/s, compile, MFU, and the ratio of each JAX run to each
    PyTorch run."""
    import jax

    runners, results = {}, {}
    for dtype in args.dtypes:
        runners[f"jax_{dtype}"] = make_jax_runner(args, batch_size, dtype)
    for variant in args.torch_variants:
        try:
            runners[f"torch_{variant}"] = torch_dcgan.timed_step(
                args.image_size, NC, batch_size, variant, device, args.torch_compile_dtype
            )
        except Exception as e:  # noqa: BLE001  (reported, not fatal: the other variants still run)
            results[f"torch_{variant}"] = {
                "unavailable": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            }
    for name, (step, sync) in list(runners.items()):
        try:
            results[name] = {"compile_seconds": _first_step(step, sync)}
            for _ in range(args.warmup):
                step()
            sync()
        except Exception as e:  # noqa: BLE001  (torch.compile fails at its first call without a C++ compiler)
            if name.startswith("jax"):
                raise
            results[name] = {"unavailable": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
            del runners[name]
    times = {name: [] for name in runners}
    for _ in range(args.blocks):  # ABC..ABC..: the same background load hits every runner
        for name, (step, sync) in runners.items():
            times[name].append(time_block(step, sync, args.steps))
    flops = step_flops(args.image_size, NZ, NGF, NDF, NC) * batch_size
    kind = jax.devices()[0].device_kind
    for name, block_times in times.items():
        seconds = statistics.median(block_times)
        dtype = (
            "float32"
            if name in ("jax_float32", "torch_eager")
            or (name == "torch_compile" and args.torch_compile_dtype == "float32")
            else "bfloat16"
        )
        devices = args.devices if name.startswith("jax") else 1
        peak = peak_flops(
            kind if name.startswith("jax") or device.startswith("cuda") else "cpu",
            dtype,
            args.peak_tflops,
        )
        results[name].update(
            images_per_sec=batch_size / seconds,
            seconds_per_step=[round(t, 4) for t in block_times],
            model_tflops_per_sec=flops / seconds / 1e12,
            mfu=flops / seconds / (peak * devices) if peak else None,
        )
    ratios = {
        f"{j}/{t}": results[j]["images_per_sec"] / results[t]["images_per_sec"]
        for j in times
        if j.startswith("jax")
        for t in times
        if t.startswith("torch")
    }
    return {
        "batch_size": batch_size,
        "runs": results,
        "ratios": ratios,
        "model_gflops_per_step": flops / 1e9,
    }


def run(args) -> dict:
    import jax

    device = torch_device(args)
    if args.torch_variants:
        torch_dcgan.set_threads()
    load_before = os.getloadavg()
    batches = [run_batch(args, b, device) for b in args.batch_sizes]
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "jax_devices": args.devices,
        "torch_device": device,
        "image_size": args.image_size,
        "conv_impl": args.conv_impl,
        "upsample": args.upsample,
        "steps": args.steps,
        "blocks": args.blocks,
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "batches": batches,
        "model_gflops_per_image": step_flops(args.image_size, NZ, NGF, NDF, NC) / 1e9,
    }


def print_tables(result) -> None:
    print(
        f"{result['image_size']}px, JAX on {result['jax_devices']} {result['backend']} device(s) "
        f"({result['device_kind']}), PyTorch on {result['torch_device']}, conv_impl={result['conv_impl']}; "
        f"{result['model_gflops_per_image']:.2f} model GFLOPs per image per step; load average "
        f"{tuple(round(x, 2) for x in result['loadavg_before'])} -> "
        f"{tuple(round(x, 2) for x in result['loadavg_after'])}"
    )
    for batch in result["batches"]:
        jax_runs = [
            n for n, r in batch["runs"].items() if n.startswith("jax") and "images_per_sec" in r
        ]
        print(
            f"\nbatch {batch['batch_size']}\n| run | img/s | first step (compile) s | MFU | "
            + " | ".join(f"{j} / this" for j in jax_runs)
            + " | s/step per block |"
        )
        print("|---" * (5 + len(jax_runs)) + "|")
        for name, r in batch["runs"].items():
            if "unavailable" in r:
                print(f"| {name} | unavailable: {r['unavailable']} |")
                continue
            achieved = f"{1000 * r['model_tflops_per_sec']:.0f} GFLOP/s"
            mfu = (
                f"{100 * r['mfu']:.1f}% ({achieved})"
                if r["mfu"] is not None
                else f"n/a: peak unknown ({achieved})"
            )
            cells = [
                f"{batch['ratios'][f'{j}/{name}']:.2f}" if f"{j}/{name}" in batch["ratios"] else ""
                for j in jax_runs
            ]
            print(
                f"| {name} | {r['images_per_sec']:.1f} | {r['compile_seconds']:.1f} | {mfu} | "
                + " | ".join(cells)
                + f" | {r['seconds_per_step']} |"
            )


def main(argv=None) -> None:
    args = parse_args(argv)
    # JAX would take 75% of a GPU's memory at start-up, leaving PyTorch too little on the same GPU.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.devices > 1:  # before jax is imported anywhere (only used when the backend is the CPU)
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={args.devices}"
        ).strip()
    bad = [b for b in args.batch_sizes if b % args.devices]
    if bad:
        sys.exit(f"error: --batch_sizes {bad} must be divisible by --devices={args.devices}")
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
