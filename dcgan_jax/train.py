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

What a step writes (its metrics row, TensorBoard events, eval scores, sample grids) is written
before its checkpoint, so a resumed run leaves no gaps: whatever a killed run wrote after its last
checkpoint is written again by the resumed run (metrics.jsonl trimmed to the resumed step, grids
replaced, TensorBoard told to drop the dead run's later events), and everything of a checkpointed
step was written before the checkpoint. A failed write of those still saves the step's
checkpoint before the error stops the run.
"""

import json
import os
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from dcgan_jax import config_fields, population, run_files
from dcgan_jax.data import datasets, pipeline
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import fid
from dcgan_jax.nn import generate
from dcgan_jax.training import (
    checkpoints,
    collapse,
    distributed,
    grids,
    members,
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
    if population.size(saved):
        raise UserError(
            f"init_from: {source} holds a population of {population.size(saved)} members; write "
            f"the member out as a run first (`python -m dcgan_jax.export --workdir={source} "
            f"--member=I --output=DIR`) and start from DIR"
        )
    config_fields.check_compatible(saved, config, where)
    checkpoints.check_architecture(manager, step, saved.model, where)
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
    member_configs = population.member_configs(config)  # [] for a plain run
    if member_configs:
        optims, seeds = [m.optim for m in member_configs], [m.seed for m in member_configs]
        new_state = lambda: members.create_state(config.model, optims, seeds)  # noqa: E731
    else:
        new_state = lambda: create_train_state(config.model, config.optim, config.seed)  # noqa: E731
    # Restoring needs only shapes; a fresh state only when there is nothing to resume.
    state = checkpoints.restore_for_training(
        manager,
        jax.eval_shape(new_state),
        workdir,
        ema=population.keeps_ema(config),
        accept=lambda saved, where: config_fields.check_compatible(saved, config, where),
    )
    if manager.latest_step() is None:
        state = new_state()
        if config.init_from:
            state = _initial_from(config, state)
    start_step = _step_of(state.step)
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

    reporter = reporting.Reporter(
        workdir, start_step, config.num_train_steps, config.batch_size * max(len(member_configs), 1)
    )
    member_reporters = [
        reporting.Reporter(
            population.member_dir(workdir, i),
            start_step,
            config.num_train_steps,
            config.batch_size,
            console=False,
        )
        for i in range(len(member_configs))
    ]
    reporter.message(
        distributed.backend_report()
    )  # backend, devices, processes; a CPU-only jaxlib on a GPU host
    if start_step:
        reporter.message(f"resumed from step {start_step} in {run_files.checkpoint_dir(workdir)}")
    reporter.save_config(config.to_json(indent=2))
    if (
        start_step
        and config.num_fixed_samples > 0
        and jax.process_index() == 0
        and not member_configs
    ):
        _rewrite_grids(config, workdir, manager, jax.eval_shape(new_state), state, reporter)
    runner = parallel.Parallel(config.parallelism)
    per_device_batch = config.batch_size // runner.num_devices
    if member_configs:
        train_step = members.compile_step(
            runner,
            model,
            {group: config[group] for group in members.GROUPS},
            per_device_batch,
            members.varied_values(population.varied(config)),
            config.population.vectorize,
        )
    else:
        train_step = runner.compile(
            make_train_step(
                model, config.optim, config.objective, config.d_training, per_device_batch
            )
        )
    batches = [
        pipeline.train_batches(
            data, source, config.batch_size, run.seed, start_step, len(runner.local_devices), labels
        )
        for run in member_configs or [config]
    ]
    batches = members.member_batches(batches) if member_configs else batches[0]
    device_state = members.to_device(
        runner, state, config.population.vectorize, len(member_configs)
    )
    try:
        device_state = _train_loop(
            config,
            workdir,
            runner,
            manager,
            [reporter, *member_reporters],
            train_step,
            batches,
            evaluator,
            device_state,
        )
    finally:
        manager.wait_until_finished()
    for each in [reporter, *member_reporters]:
        each.close()
    return members.host_state(runner, device_state)


def _host_g(runner, device_state):
    return jax.device_get(runner.unreplicate(device_state)).sampling_g_variables


def _grid_zs(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The grids a sample step writes: of the fixed z, and of fresh z with sample_random_z."""
    return ("fixed", "random") if config.sample_random_z else ("fixed",)


def _save_grids(config, reporter, step: int, g_variables, zs) -> None:
    """The sample grids of `step` (`zs`: 'fixed' and/or 'random') drawn by G's `g_variables`."""
    model, count = config.model, config.num_fixed_samples
    columns = grids.grid_columns(count, model.conditional.num_classes)
    for z in zs:
        inputs = (
            grids.fixed_z(model, count, config.seed)
            if z == "fixed"
            else grids.random_z(model, count, config.seed, step)
        )
        images = generate.generate(model, g_variables, inputs)
        reporter.samples(step, images, z=z, num_cols=columns)


def _rewrite_grids(config, workdir, manager, template, state, reporter) -> None:
    """At a resume, rewrites the sample grids of the kept checkpoints that are missing (a run killed
    between a checkpoint and its grids, before grids were written first) or empty or unreadable (a
    failed write), each from its own checkpoint: the resume step's from the restored `state`, an
    earlier one's restored from its step (in the layout it was saved with, `template` giving the
    shapes). Grids of steps whose checkpoint is gone cannot be redrawn and are left as they are; so
    are an earlier step's in a multi-process run, where only process 0 draws and orbax's reads are
    collective."""
    start_step = int(state.step)
    kept = [s for s in manager.all_steps() if s == start_step or jax.process_count() == 1]
    todo = grids.to_rewrite(workdir, kept, config.sample_every_steps, _grid_zs(config))
    for step in sorted({s for s, _ in todo}):
        if step == start_step:
            g_variables = state.sampling_g_variables
        else:
            try:  # orbax raises many types for damaged files
                saved = checkpoints.restore_config(manager, step)
                restored = checkpoints.restore_state(
                    manager, set_ema(template, bool(saved.optim.ema_decay)), step
                )
            except Exception as e:
                reporter.message(
                    f"warning: the sample grids of step {step} are missing or damaged and its "
                    f"checkpoint is unreadable ({type(e).__name__}); they are left as they are"
                )
                continue
            g_variables = restored.sampling_g_variables
        _save_grids(config, reporter, step, g_variables, [z for s, z in todo if s == step])
        reporter.message(f"rewrote the missing or damaged sample grids of step {step}")


def _train_loop(
    config, workdir, runner, manager, reporters, train_step, batches, evaluator, device_state
):
    """Steps from the state's step to num_train_steps, or until a stop signal; returns the device
    state. `reporters`: the run's, then (a population) each member's."""
    saved_config = _saved_config(config)
    reporter, member_reporters = reporters[0], reporters[1:]
    detectors = [
        collapse.CollapseDetector.from_config(config.collapse)
        for _ in reporters[len(reporters) > 1 :]
    ]
    start_step = _step_of(members.host_state(runner, device_state).step)
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
            evaluate_now = evaluator is not None and step % evaluator.every_steps == 0
            checkpoint_now = save or stopping or last or evaluate_now
            if log or checkpoint_now:  # fetching metrics waits for the step: only when needed
                rows = members.host_metrics(runner, metrics, bool(member_reporters))
                members.check_finite(rows, step, manager)  # no non-finite state is saved
            scores = evaluator(step, _host_g(runner, device_state)) if evaluate_now else None
            try:  # the step's outputs before its checkpoint: a resume then leaves no gaps
                if log:
                    for each, row in zip(member_reporters, rows):
                        each.scalars(step, row)
                    reporter.scalars(step, members.mean_row(rows))
                    for i, (detector, row) in enumerate(zip(detectors, rows)):
                        say = _member_say(reporter, i if member_reporters else None)
                        collapse.check_collapse(config.collapse, detector, step, row, manager, say)
                if scores:
                    reporter.evaluation(step, scores)
                if (
                    (step % config.sample_every_steps == 0 or last)
                    and config.num_fixed_samples > 0
                    and jax.process_index() == 0
                ):  # one writer; num_fixed_samples=0: no grids
                    _save_step_grids(config, reporters, step, runner, device_state)
            finally:  # whatever failed above (a full disk, a collapse stop) does not cost it
                if checkpoint_now:
                    kept_by = (
                        {evaluator.best_metric: scores[evaluator.best_metric]} if scores else None
                    )
                    checkpoints.save_or_fail(
                        manager,
                        step,
                        members.host_state(runner, device_state),
                        saved_config,
                        wait=stopping,
                        metrics=kept_by,
                    )
            if stopping:
                reporter.message(
                    f"stopped by {stop.signal_name or 'another host'} at step {step}; checkpoint "
                    f"saved in {run_files.checkpoint_dir(workdir)}; rerun the same command to resume"
                )
                break
    return device_state


def _step_of(step) -> int:
    """A state's step: a plain run's scalar, or a population's (every member's is the same)."""
    return int(np.ravel(step)[0])


def _member_say(reporter, member: int | None):
    if member is None:
        return reporter.message
    return lambda text: reporter.message(f"member {member}: {text}")


def _save_step_grids(config, reporters, step: int, runner, device_state) -> None:
    """The grids of `step`: the run's, or each member's (its own fixed z) in its folder."""
    if len(reporters) == 1:
        _save_grids(config, reporters[0], step, _host_g(runner, device_state), _grid_zs(config))
        return
    host = members.host_state(runner, device_state)
    for i, (each, member) in enumerate(zip(reporters[1:], population.member_configs(config))):
        g_variables = members.member_state(host, i).sampling_g_variables
        _save_grids(member, each, step, g_variables, _grid_zs(config))
