"""Milliseconds of every exact form of the forward, input gradient and kernel gradient of each
strided convolution of the 64 px DCGAN, on JAX's current backend: the table `conv_impl='auto'` is
chosen from.

  python benchmarks/conv_forms.py [--batch_size=64] [--dtype=float32] [--repeats=5] [--json]

Layers: the pytorch/examples 64 px model (nz=100, g_width=d_width=64, RGB), G's four 4x4 stride-2 transposed convs
(4->8 px 512->256 channels ... 32->64 px 64->3) and D's four 4x4 stride-2 convs (64->32 px 3->64 ... 8->4 px
256->512). Forms (dcgan_jax/nn/convolutions.py), all the same linear map:
  G forward: `transpose` (XLA's transposed conv) or `subpixel` (a stride-1 2x2 conv to 4x the channels);
  G input / kernel gradient: autodiff of either, or (kernel) `strided` (the strided conv mapping the cotangent back);
  D forward, input / kernel gradient: `xla` (XLA's strided conv, autodiff) or `space_to_depth` (a stride-1 2x2 conv
  of the 2x2 blocks).
Then, per layer, forward + both gradients of the whole op as `conv_impl='xla'` and `'fast'` build it (one jitted
vjp each), and their sums over the model: 'auto' uses 'fast' on a backend where its sum is lower
(`convolutions.FAST_FORMS_MEASURED_ON`). Each figure is the median of `--repeats` timed calls after one warm-up,
compiled as the train step is (on CPU: `training.parallel.CPU_COMPILER_OPTIONS`).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (name, input size, input channels, output channels) of the 64 px model's strided layers.
G_LAYERS = (
    ("G up0", 4, 512, 256),
    ("G up1", 8, 256, 128),
    ("G up2", 16, 128, 64),
    ("G up3", 32, 64, 3),
)
D_LAYERS = (
    ("D conv0", 64, 3, 64),
    ("D conv1", 32, 64, 128),
    ("D conv2", 16, 128, 256),
    ("D conv3", 8, 256, 512),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per form (median reported)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated layer names to time (default: all), e.g. up3,conv0",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    return parser.parse_args(argv)


def forms():
    """{'G'|'D': {part: {form name: fn(x, kernel, cotangent)}}} and the ops of each conv_impl."""
    from dcgan_jax.nn import convolutions as c

    def forward(form):
        return lambda x, kernel, cotangent: form(x, kernel)

    g = {
        "forward": {
            "transpose": forward(c.transposed_conv_reference),
            "subpixel": forward(c.transposed_conv_subpixel),
        },
        "input grad": {
            "transpose": c.input_grad_of(c.transposed_conv_reference),
            "subpixel": c.input_grad_of(c.transposed_conv_subpixel),
        },
        "kernel grad": {
            "transpose": c.kernel_grad_of(c.transposed_conv_reference),
            "subpixel": c.kernel_grad_of(c.transposed_conv_subpixel),
            "strided": c.transposed_conv_kernel_grad_strided,
        },
    }
    d = {
        "forward": {
            "xla": forward(c.strided_conv_reference),
            "space_to_depth": forward(c.strided_conv_space_to_depth),
        },
        "input grad": {
            "xla": c.input_grad_of(c.strided_conv_reference),
            "space_to_depth": c.input_grad_of(c.strided_conv_space_to_depth),
        },
        "kernel grad": {
            "xla": c.kernel_grad_of(c.strided_conv_reference),
            "space_to_depth": c.kernel_grad_of(c.strided_conv_space_to_depth),
        },
    }
    return {"G": g, "D": d}, {"G": c.TRANSPOSED_CONVS, "D": c.STRIDED_CONVS}


def _whole_op(op):
    """(x, kernel, cotangent) -> forward and both gradients of `op`, as a training step runs
    them."""
    import jax

    def run(x, kernel, cotangent):
        out, vjp = jax.vjp(op, x, kernel)
        return out, vjp(cotangent)

    return run


def time_ms(fn, args, repeats: int) -> float:
    import jax

    from dcgan_jax.training import parallel

    # As the train step is compiled: on CPU with XLA's own (Eigen) convolutions
    # (parallel.CPU_COMPILER_OPTIONS).
    options = parallel.CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    compiled = jax.jit(fn).lower(*args).compile(compiler_options=options)
    jax.block_until_ready(compiled(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run(args) -> dict:
    import jax
    import jax.numpy as jnp

    dtype = jnp.dtype(args.dtype)
    part_forms, impl_ops = forms()
    rows, totals = [], []
    for family, layers in (("G", G_LAYERS), ("D", D_LAYERS)):
        for name, size, c_in, c_out in layers:
            if args.only and not any(wanted in name for wanted in args.only.split(",")):
                continue
            out_size = 2 * size if family == "G" else size // 2
            keys = jax.random.split(jax.random.PRNGKey(0), 3)
            inputs = (
                jax.random.normal(keys[0], (args.batch_size, size, size, c_in), dtype),
                (0.02 * jax.random.normal(keys[1], (4, 4, c_in, c_out))).astype(dtype),
                jax.random.normal(keys[2], (args.batch_size, out_size, out_size, c_out), dtype),
            )
            for part, candidates in part_forms[family].items():
                for form, fn in candidates.items():
                    rows.append(
                        {
                            "layer": name,
                            "part": part,
                            "form": form,
                            "ms": round(time_ms(fn, inputs, args.repeats), 3),
                        }
                    )
            totals.append(
                {
                    "layer": name,
                    **{
                        impl: round(time_ms(_whole_op(op), inputs, args.repeats), 3)
                        for impl, op in impl_ops[family].items()
                    },
                }
            )
    sums = {impl: round(sum(t[impl] for t in totals), 2) for impl in ("xla", "fast")}
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "repeats": args.repeats,
        "forms": rows,
        "totals": totals,
        "model_sums": sums,
        "faster": min(sums, key=sums.get),
        "loadavg": os.getloadavg(),
    }


def print_tables(result) -> None:
    print(
        f"{result['backend']} ({result['device_kind']}), batch {result['batch_size']}, {result['dtype']}, "
        f"median of {result['repeats']} calls, load average {tuple(round(x, 2) for x in result['loadavg'])}"
    )
    print("\n| layer | part | " + " | ".join(["form: ms"] * 3) + " |\n|---|---|---|---|---|")
    by_part = {}
    for row in result["forms"]:
        by_part.setdefault((row["layer"], row["part"]), []).append(row)
    for (layer, part), candidates in by_part.items():
        best = min(r["ms"] for r in candidates)
        cells = [
            (
                f"**{r['form']}: {r['ms']:.2f}**"
                if r["ms"] == best
                else f"{r['form']}: {r['ms']:.2f}"
            )
            for r in candidates
        ]
        print(f"| {layer} | {part} | " + " | ".join(cells + [""] * (3 - len(cells))) + " |")
    print(
        "\n| layer | forward + both gradients, conv_impl='xla' (ms) | conv_impl='fast' (ms) | xla / fast |\n"
        "|---|---|---|---|"
    )
    for t in result["totals"]:
        print(f"| {t['layer']} | {t['xla']:.2f} | {t['fast']:.2f} | {t['xla'] / t['fast']:.2f} |")
    sums = result["model_sums"]
    print(
        f"| all timed | {sums['xla']:.2f} | {sums['fast']:.2f} | {sums['xla'] / sums['fast']:.2f} |"
    )
    print(f"\nfaster on {result['backend']}: conv_impl='{result['faster']}'")


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
