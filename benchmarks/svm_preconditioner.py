"""The probe SVM's CG with and without the Nystrom preconditioner, on the real D features of a run.

  python benchmarks/svm_preconditioner.py --workdir=runs/fashion_mnist [--ranks=0,1024]
      [--labels_per_class=0] [--c_values=1e-5,...] [--json]

The run's D (batchnorm statistics recomputed on the labelled train images, as the probe does)
extracts the features of its labelled dataset's train split (the run's own: an idx run reads its
own folder), standardized and split into fit and validation rows as `evaluate --task=classify`
does. Then, for each rank in turn on the same device blocks (0: plain CG): the sketch's seconds,
and per C of the path (increasing, warm-started) the Newton and CG steps, the seconds, the primal
objective summed over classes and the validation accuracy. The objectives should agree to the
solver's tolerance (the preconditioner changes the steps, not the optimum; where a C takes no Newton
step, each side keeps its previous C's solution); the load average before and after is printed.
"""

import argparse
import json
import os
import sys
import time

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcgan_jax.data.labelled import (  # noqa: E402
    load_labelled,
    resolve_dataset,
    select_per_class,
    validation_split,
)
from dcgan_jax.evaluation import nystrom, probe, svm  # noqa: E402
from dcgan_jax.nn import features  # noqa: E402
from dcgan_jax.training.run import open_run  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a trained run")
    parser.add_argument("--ranks", default="0,1024", help="preconditioner ranks (0: plain CG)")
    parser.add_argument("--labels_per_class", type=int, default=0, help="0: every train image")
    parser.add_argument("--c_values", default="", help="default: the run's eval.probe.svm_c_values")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def features_of_run(args):
    """(standardized device blocks, labels, fit rows, validation rows, probe settings, source)."""
    run = open_run(args.workdir)
    config = run.config
    model, settings = config.model, config.eval.probe
    dataset, data_path = resolve_dataset(config.data.dataset, config.data.data_path)
    images, labels = load_labelled(
        dataset,
        "train",
        model.image_size,
        model.num_channels,
        data_dir=config.data.data_dir,
        data_path=data_path,
    )
    keep = select_per_class(labels, args.labels_per_class, config.seed)
    images, labels = images[keep], labels[keep]
    d_vars = features.recompute_batch_stats(model, run.d_variables, images, config.eval.batch_size)
    start = time.perf_counter()
    blocks = probe.extract_blocks(
        lambda x: features.discriminator_features(model, d_vars, x, config.eval.batch_size),
        images,
        settings.block_rows,
        "D features",
    )
    seconds = time.perf_counter() - start
    blocks, _, _ = svm.standardize(blocks)
    fit, val = validation_split(blocks.rows, settings.validation_fraction, config.seed)
    source = f"{dataset} train, D of {args.workdir} at step {run.step}"
    return blocks, labels, fit, val, settings, source, seconds


def path_with_rank(blocks, labels, fit, val, settings, c_values, rank):
    """The C path with a rank-`rank` preconditioner (0: none): timings, steps, objectives."""
    num_classes = int(labels.max()) + 1
    weights = np.zeros(blocks.padded_rows, np.float32)
    weights[fit] = 1.0
    start = time.perf_counter()
    pre = nystrom.sketch(blocks.blocks, jnp.asarray(weights), rank) if rank else None
    if pre is not None:
        pre.lam.block_until_ready()
    sketch_seconds = time.perf_counter() - start
    y = svm.one_vs_rest_targets(labels, num_classes, blocks.padded_rows)
    s = jnp.asarray(weights)
    rows, last = [], [time.perf_counter()]

    def on_fit(c, solution):
        _, objective, _, _ = svm._margins_and_grad(
            blocks.blocks, solution.w, solution.b, y, s, jnp.float32(c)
        )
        predicted = np.asarray(solution.margins[val]).argmax(1)
        now = time.perf_counter()
        rows.append(
            {
                "C": c,
                "newton_steps": solution.newton_steps,
                "cg_steps": solution.cg_steps,
                "seconds": round(now - last[0], 2),
                "objective": float(np.asarray(objective, np.float64).sum()),
                "val_accuracy": float(np.mean(predicted == labels[val])),
            }
        )
        last[0] = time.perf_counter()

    start = time.perf_counter()
    svm.fit_c_path(
        blocks,
        labels,
        num_classes,
        fit,
        c_values,
        tol=settings.svm_tol,
        max_newton=settings.svm_max_newton,
        max_cg=settings.svm_max_cg,
        on_fit=on_fit,
        pre=pre,
    )
    return {
        "rank": rank,
        "sketch_seconds": round(sketch_seconds, 2),
        "path_seconds": round(time.perf_counter() - start, 2),
        "cg_steps": sum(r["cg_steps"] for r in rows),
        "per_c": rows,
    }


def run(args) -> dict:
    load_before = os.getloadavg()[0]
    blocks, labels, fit, val, settings, source, seconds = features_of_run(args)
    c_values = (
        sorted(float(c) for c in args.c_values.split(","))
        if args.c_values
        else sorted(settings.svm_c_values)
    )
    ranks = [int(r) for r in args.ranks.split(",")]
    results = [path_with_rank(blocks, labels, fit, val, settings, c_values, r) for r in ranks]
    return {
        "features": source,
        "rows": blocks.rows,
        "fit_rows": len(fit),
        "dim": blocks.dim,
        "extraction_seconds": round(seconds, 2),
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "ranks": results,
    }


def print_tables(result) -> None:
    print(
        f"{result['features']}: {result['fit_rows']} fit rows of {result['rows']} x "
        f"{result['dim']} (extraction {result['extraction_seconds']} s; load average "
        f"{result['load_average_before_after'][0]:.2f} -> "
        f"{result['load_average_before_after'][1]:.2f})"
    )
    print("| rank | sketch s | C path s | CG steps | per C: newton/CG, objective, val accuracy |")
    print("|---|---|---|---|---|")
    for r in result["ranks"]:
        per_c = "; ".join(
            f"{c['C']:g}: {c['newton_steps']}/{c['cg_steps']}, {c['objective']:.6g}, "
            f"{c['val_accuracy']:.4f}"
            for c in r["per_c"]
        )
        print(
            f"| {r['rank']} | {r['sketch_seconds']} | {r['path_seconds']} | {r['cg_steps']} "
            f"| {per_c} |"
        )


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
