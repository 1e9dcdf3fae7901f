"""The D-feature probe's SVM and feature extraction: the JAX solver against liblinear, and at
CIFAR-10 scale.

  python benchmarks/evaluate.py [--workdir=runs/digits] [--rows=50000 --dim=28672] [--json]

Prints, in one run:
1. digits: D features of the 1,437 training / 360 test digits (the trained D of --workdir, or the digits default
   config's D at its random init), the extraction rate in images/s, then the probe (C chosen on 10% validation
   among config.eval.probe.svm_c_values, refit, test accuracy) with the JAX solver and with liblinear: seconds and
   test accuracy of each;
2. a synthetic problem of the paper's CIFAR-10 size (default 50,000 x 28,672 float32, 10 classes, 10,000 test rows):
   the JAX solver's seconds for the whole C path + refit, its accuracy, and the process's peak memory.
   Structure, so that accuracy means something: class c's rows are (mu_c + g) U + e, with class means mu_c ~
   N(0, mean_scale^2 I) in a `rank`-dimensional latent space, within-class latent noise g ~ N(0, I), a fixed random
   map U (rank x dim, entries N(0, 1/rank)) to feature space and isotropic feature noise e ~ N(0, noise^2 I): linearly
   separable only in part, so the solver's accuracy is below 100% and above chance. Rows are generated block by block
   on the device (never a host copy).
The load average before and after is printed: the machine may be shared. --rows/--dim/--test_rows shrink problem 2.
"""

import argparse
import json
import os
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcgan_jax import defaults  # noqa: E402
from dcgan_jax.data.labelled import load_labelled  # noqa: E402
from dcgan_jax.evaluation import probe, svm  # noqa: E402
from dcgan_jax.nn import features, models  # noqa: E402
from dcgan_jax.training.run import open_run  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workdir", default="", help="a trained digits run (default: the digits config at init)"
    )
    parser.add_argument(
        "--d_width", type=int, default=0, help="digits at init: D's width (0 = the config's)"
    )
    parser.add_argument(
        "--c_values", default="", help="comma-separated C grid (default: eval.probe.svm_c_values)"
    )
    parser.add_argument("--skip_liblinear", action="store_true", help="digits: the JAX solver only")
    parser.add_argument(
        "--rows", type=int, default=50_000, help="synthetic: training rows (0 skips it)"
    )
    parser.add_argument("--test_rows", type=int, default=10_000)
    parser.add_argument(
        "--dim", type=int, default=28_672, help="synthetic: features (the paper's CIFAR-10 D)"
    )
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument(
        "--rank", type=int, default=64, help="synthetic: latent dimension of the class structure"
    )
    parser.add_argument(
        "--mean_scale", type=float, default=0.35, help="synthetic: spread of the class means"
    )
    parser.add_argument(
        "--noise", type=float, default=1.0, help="synthetic: isotropic feature noise"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the report as one JSON line"
    )
    return parser.parse_args(argv)


def probe_settings(args):
    settings = defaults.get_config().eval.probe
    if args.c_values:
        settings.svm_c_values = tuple(float(c) for c in args.c_values.split(","))
    return settings


def digits(args):
    """Section 1: extraction rate, and the probe with both solvers on the same features."""
    if args.workdir:
        run = open_run(args.workdir)
        config, d_vars, source = (
            run.config,
            run.d_variables,
            f"trained D of {args.workdir} (step {run.step})",
        )
    else:
        config = defaults.load_config("digits")
        if args.d_width:
            config.model.d_width = args.d_width
        _, d_vars = jax.jit(lambda: models.init_variables(jax.random.PRNGKey(0), config.model))()
        source = f"digits config's D at init (d_width {config.model.d_width})"
    train_images, train_y = load_labelled(
        "digits", "train", config.model.image_size, config.model.num_channels, ""
    )
    test_images, test_y = load_labelled(
        "digits", "test", config.model.image_size, config.model.num_channels, ""
    )

    def extract(x):
        return features.discriminator_features(config.model, d_vars, x, config.eval.batch_size)

    extract(train_images[: config.eval.batch_size])  # compile outside the timing
    start = time.perf_counter()
    train_x, test_x = extract(train_images), extract(test_images)
    rate = (len(train_images) + len(test_images)) / (time.perf_counter() - start)
    settings = probe_settings(args)
    solvers = {}
    for solver in ("jax", "liblinear")[: 1 if args.skip_liblinear else 2]:
        settings.solver = solver
        start = time.perf_counter()
        result = probe.linear_svm(train_x, train_y, test_x, test_y, settings, seed=0)
        solvers[solver] = {"seconds": round(time.perf_counter() - start, 2), **result}
    return {
        "features": source,
        "dim": int(train_x.shape[1]),
        "train": len(train_x),
        "test": len(test_x),
        "extraction_images_per_sec": round(rate, 1),
        "solvers": solvers,
    }


def synthetic_blocks(args, rows, key, block_rows, u, means):
    """Device blocks of the documented synthetic problem, and their labels."""
    labels = np.asarray(jax.random.randint(jax.random.fold_in(key, 0), (rows,), 0, args.classes))

    @jax.jit
    def block(index, y):
        k1, k2 = jax.random.split(jax.random.fold_in(key, index + 1))
        latent = means[y] + jax.random.normal(k1, (y.shape[0], args.rank))
        return latent @ u + args.noise * jax.random.normal(k2, (y.shape[0], args.dim))

    blocks = []
    for i, start in enumerate(range(0, rows, block_rows)):
        y = np.zeros(block_rows, np.int32)
        chunk = labels[start : start + block_rows]
        y[: len(chunk)] = chunk
        blocks.append(block(i, jnp.asarray(y)).astype(jnp.float32))
    return svm.Blocks(blocks, rows), labels


def synthetic(args):
    """Section 2: the JAX solver on a CIFAR-10-sized problem."""
    settings = probe_settings(args)
    key = jax.random.PRNGKey(0)
    u = jax.random.normal(jax.random.fold_in(key, 1), (args.rank, args.dim)) / np.sqrt(args.rank)
    means = args.mean_scale * jax.random.normal(
        jax.random.fold_in(key, 2), (args.classes, args.rank)
    )
    start = time.perf_counter()
    train, train_y = synthetic_blocks(
        args, args.rows, jax.random.fold_in(key, 3), settings.block_rows, u, means
    )
    test, test_y = synthetic_blocks(
        args, args.test_rows, jax.random.fold_in(key, 4), settings.block_rows, u, means
    )
    jax.block_until_ready(test.blocks)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    result = probe.block_svm(train, train_y, test, test_y, settings, seed=0, desc="synthetic SVM")
    seconds = time.perf_counter() - start
    return {
        "rows": args.rows,
        "test_rows": args.test_rows,
        "dim": args.dim,
        "classes": args.classes,
        "rank": args.rank,
        "gigabytes": round(4 * args.rows * args.dim / 1e9, 2),
        "generate_seconds": round(generated, 1),
        "svm_seconds": round(seconds, 1),
        "c_values": list(settings.svm_c_values),
        **result,
    }


def main(argv=None):
    args = parse_args(argv)
    report = {
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in os.getloadavg()],
    }
    report["digits"] = digits(args)
    d = report["digits"]
    print(f"backend {report['backend']}, load average {report['loadavg_before']}")
    print(
        f"digits: {d['features']}, {d['dim']}-d, {d['train']} train / {d['test']} test; "
        f"feature extraction {d['extraction_images_per_sec']:.0f} img/s"
    )
    for name, run in d["solvers"].items():
        print(
            f"  {name:9s}  {run['seconds']:8.2f} s  test accuracy {run['test_accuracy']:.4f}  C {run['C']:g}"
        )
    if args.rows:
        report["synthetic"] = s = synthetic(args)
        print(
            f"synthetic: {s['rows']} x {s['dim']} float32 ({s['gigabytes']} GB), {s['classes']} classes, rank "
            f"{s['rank']}: C path ({len(s['c_values'])} values) + refit {s['svm_seconds']:.1f} s, test accuracy "
            f"{s['test_accuracy']:.4f} (C {s['C']:g}); data generated in {s['generate_seconds']:.1f} s"
        )
    report["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    report["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    print(f"peak memory {report['peak_rss_gb']} GB; load average after {report['loadavg_after']}")
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
