"""Training with evaluation during training: the library functions `python -m dcgan_jax.main` calls.

    from dcgan_jax import defaults, train
    state = train.train_and_evaluate(defaults.load_config("configs/lsun.py"), "runs/lsun")

The config stops here: this module reads the whole config and hands each part its own group
(`config.data` to the input pipeline, `config.model` to the models, `config.optim`,
`config.objective` and `config.d_training` to the step, `config.eval` to the evaluator); nothing
below it sees the whole config. It is also the one module that sees both training and evaluation:
the evaluator carries its own schedule and the score the best checkpoint is kept by.

Data order and every random draw are functions of (seed, step), so an interrupted run rerun with the
same command ends with the same params as an uninterrupted one. SIGTERM/SIGINT stop after the
current step with a checkpoint.
"""

import json
import os
from typing import Any, Protocol

import jax
import ml_collections

from dcgan_jax import config_fields, run_files
from dcgan_jax.data import datasets, pipeline
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import fid
from dcgan_jax.nn import generate
from dcgan_jax.training import (
    checkpoints,
    collapse,
    distributed,
    grids,
    parallel,
    preemption,
    reporting,
)
from dcgan_jax.training import workdir as workdir_lib
from dcgan_jax.training.state import TrainState, create_train_state, set_ema
from dcgan_jax.training.step import make_train_step


class Evaluator(Protocol):
    """Scores G every `every_steps` steps (e.g. dcgan_jax/evaluation/fid.py's FID/KID); the
    checkpoint of the lowest `best_metric` is kept."""

    every_steps: int
    best_metric: str

    def __call__(self, step: int, g_variables: Any) -> dict[str, float]: ...


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains (or resumes) in `workdir`; FID/KID every config.eval.every_steps steps when it is >
    0."""
    _prepare(config, workdir)  # before the evaluator, which may first train the FID classifier
    evaluator = None
    if config.eval.every_steps:
        evaluator = fid.make_training_evaluator(
            config.eval, config.model, config.data, config.seed, workdir
        )
    return _train_prepared(config, workdir, evaluator)


def train(
    config: ml_collections.ConfigDict, workdir: str, evaluator: Evaluator | None = None
) -> TrainState:
    """Trains from scratch or from the latest checkpoint in workdir; returns the final state (host
    copy). `evaluator` (if given) scores the current G on its own schedule; its scores are
    logged."""
    _prepare(config, workdir)
    return _train_prepared(config, workdir, evaluator)


def _prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Validation and the workdir's creation, once per run, before any work."""
    config_fields.validate(config)
    workdir_lib.prepare_workdir(workdir)


def _train_prepared(config, workdir, evaluator):
    with workdir_lib.locked(workdir):
        return _train_locked(config, workdir, evaluator)


def _saved_config(config: ml_collections.ConfigDict) -> dict:
    """The config as JSON data, as checkpoints store it."""
    return json.loads(config.to_json())


def _initial_from(config: ml_collections.ConfigDict, fresh: TrainState) -> TrainState:
    """config.init_from ('DIR' or 'DIR:STEP'): that checkpoint's params, batchnorm statistics and
    Adam moments, at step 0 and with this run's own rng, so a new run (fine-tuning, a restart from
    before a collapse) goes on from any kept checkpoint of any run."""
    source, _, step = config.init_from.rpartition(":")
    if not (source and step.isdigit()):
        source, step = config.init_from, ""
    if os.path.basename(os.path.normpath(source)) == run_files.CHECKPOINTS:
        source = os.path.dirname(os.path.normpath(source))
    manager, saved = checkpoints.open_workdir(source)
    step = int(step) if step else manager.latest_step()
    if step not in manager.all_steps():
        raise UserError(
            f"init_from: no checkpoint at step {step} in {run_files.checkpoint_dir(source)}; "
            f"available: {sorted(manager.all_steps())}"
        )
    where = os.path.join(run_files.checkpoint_dir(source), str(step))
    config_fields.check_compatible(saved, config, where)
    template = set_ema(jax.eval_shape(lambda: fresh), bool(saved.optim.ema_decay))
    try:
        restored = checkpoints.restore_state(manager, template, step)
    except Exception as e:  # orbax raises many types for damaged files
        raise UserError(
            f"init_from: checkpoint {where} is unreadable ({type(e).__name__})"
        ) from None
    print(f"initialized from {where}", flush=True)
    return set_ema(restored, bool(config.optim.ema_decay)).replace(step=fresh.step, rng=fresh.rng)


def _train_locked(config, workdir, evaluator):
    """`train` once the workdir is ours. Every check (checkpoint, step count, data) comes before the
    first write to the workdir (config.json, TensorBoard, metrics.jsonl), so a run that cannot start
    changes nothing."""
    manager = checkpoints.create_manager(
        workdir,
        config.keep_checkpoints,
        keep_every=config.keep_every_steps,
        best_metric=evaluator.best_metric if evaluator else None,
    )
    new_state = lambda: create_train_state(config.model, config.optim, config.seed)  # noqa: E731
    # Restoring needs only shapes; a fresh state only when there is nothing to resume.
    state = checkpoints.restore_for_training(
        manager,
        jax.eval_shape(new_state),
        workdir,
        ema=bool(config.optim.ema_decay),
        accept=lambda saved, where: config_fields.check_compatible(saved, config, where),
    )
    if manager.latest_step() is None:
        state = new_state()
        if config.init_from:
            state = _initial_from(config, state)
    start_step = int(state.step)
    if start_step > config.num_train_steps:
        raise UserError(
            f"the checkpoint in {run_files.checkpoint_dir(workdir)} is already at step {start_step}, "
            f"past num_train_steps={config.num_train_steps}; pass a larger --config.num_train_steps to "
            f"train on, or another --workdir"
        )
    model, data = config.model, config.data
    num_classes = model.conditional.num_classes
    source = datasets.load_source(
        data, model.image_size, model.num_channels, labelled=bool(num_classes)
    )
    # data without labels is refused here, before anything is written
    labels = datasets.load_labels(source, num_classes, data.dataset) if num_classes else None
    if start_step == config.num_train_steps:
        if jax.process_index() == 0:
            print(f"already trained to step {start_step} in {workdir}: nothing to do", flush=True)
        return jax.device_get(state)

    reporter = reporting.Reporter(workdir, start_step, config.num_train_steps, config.batch_size)
    reporter.message(
        distributed.backend_report()
    )  # backend, devices, processes; a CPU-only jaxlib on a GPU host
    if start_step:
        reporter.message(f"resumed from step {start_step} in {run_files.checkpoint_dir(workdir)}")
    if jax.process_index() == 0:
        with open(run_files.path(workdir, run_files.CONFIG), "w") as f:
            f.write(config.to_json(indent=2))
    runner = parallel.Parallel(config.parallelism)
    train_step = runner.compile(
        make_train_step(
            model,
            config.optim,
            config.objective,
            config.d_training,
            config.batch_size // runner.num_devices,
        )
    )
    batches = pipeline.train_batches(
        data, source, config.batch_size, config.seed, start_step, len(runner.local_devices), labels
    )
    device_state = runner.replicate(state)
    try:
        device_state = _train_loop(
            config, workdir, runner, manager, reporter, train_step, batches, evaluator, device_state
        )
    finally:
        manager.wait_until_finished()
    reporter.close()
    return jax.device_get(runner.unreplicate(device_state))


def _host_g(runner, device_state):
    return jax.device_get(runner.unreplicate(device_state)).sampling_g_variables


def _train_loop(
    config, workdir, runner, manager, reporter, train_step, batches, evaluator, device_state
):
    """Steps from the state's step to num_train_steps, or until a stop signal; returns the device
    state."""
    model, saved_config = config.model, _saved_config(config)
    sample_z = grids.fixed_z(model, config.num_fixed_samples, config.seed)
    columns = grids.grid_columns(config.num_fixed_samples, model.conditional.num_classes)
    detector = collapse.CollapseDetector.from_config(config.collapse)
    start_step = int(jax.device_get(runner.unreplicate(device_state.step)))
    with preemption.StopRequest() as stop:
        for step in range(start_step + 1, config.num_train_steps + 1):
            device_state, metrics = train_step(device_state, runner.shard_batch(next(batches)))
            last = step == config.num_train_steps
            log, save = (
                step % config.log_every_steps == 0 or last,
                step % config.checkpoint_every_steps == 0,
            )
            stopping = stop.requested(
                at_sync_step=log or save
            )  # hosts compare flags only where they sync anyway
            if (
                log or save or stopping or last
            ):  # fetching metrics waits for the step: only when needed
                host_metrics = {
                    k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()
                }
                collapse.check_finite(host_metrics, step, manager)
            evaluate_now = evaluator is not None and step % evaluator.every_steps == 0
            scores = evaluator(step, _host_g(runner, device_state)) if evaluate_now else None
            if (
                save or stopping or last or evaluate_now
            ):  # before logs and samples: their failure must not cost it
                kept_by = {evaluator.best_metric: scores[evaluator.best_metric]} if scores else None
                checkpoints.save_or_fail(
                    manager,
                    step,
                    jax.device_get(runner.unreplicate(device_state)),
                    saved_config,
                    wait=stopping,
                    metrics=kept_by,
                )
            if log:
                reporter.scalars(step, host_metrics)
                collapse.check_collapse(
                    config.collapse, detector, step, host_metrics, manager, reporter.message
                )
            if scores:
                reporter.evaluation(step, scores)
            if (
                (step % config.sample_every_steps == 0 or last)
                and config.num_fixed_samples > 0
                and jax.process_index() == 0
            ):  # one writer; num_fixed_samples=0: no grids
                g_vars = _host_g(runner, device_state)
                reporter.samples(step, generate.generate(model, g_vars, sample_z), num_cols=columns)
                if config.sample_random_z:
                    fresh = grids.random_z(model, config.num_fixed_samples, config.seed, step)
                    reporter.samples(
                        step, generate.generate(model, g_vars, fresh), z="random", num_cols=columns
                    )
            if stopping:
                reporter.message(
                    f"stopped by {stop.signal_name or 'another host'} at step {step}; checkpoint "
                    f"saved in {run_files.checkpoint_dir(workdir)}; rerun the same command to resume"
                )
                break
    return device_state
