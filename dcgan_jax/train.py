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

import contextlib
import json
import os
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from dcgan_jax import config_fields, population, progress_bars, run_files
from dcgan_jax.data import datasets, pipeline
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import fid
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

# What a run says while XLA compiles (progress_bars.compile_notice): `compiling ...`, then the time.
INIT_NOTICE = "the initializers of G and D (XLA, once per process)"
STEP_NOTICE = "the train step (XLA, once per run)"


class Evaluator(Protocol):
    """Scores G every `every_steps` steps (e.g. dcgan_jax/evaluation/fid.py's FID/KID); the
    checkpoint of the lowest `best_metric` is kept. A population's takes the list of its members'
    Gs and returns a list of scores, one per member (fid.PopulationEvaluator)."""

    every_steps: int
    best_metric: str

    def __call__(self, step: int, g_variables: Any) -> dict[str, float]: ...


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains (or resumes) in `workdir`; FID/KID every config.eval.every_steps steps when it is >
    0."""
    _prepare(config, workdir)  # before the evaluator, which may first train the FID classifier
    evaluator = None
    if config.eval.every_steps and population.size(config):  # each member scored as its run
        evaluator = fid.make_population_evaluator(
            config.eval, config.model, config.data, population.seeds(config), workdir
        )
    elif config.eval.every_steps:
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
    before a collapse) goes on from any kept checkpoint of any run. A population starts every
    member from it (each with its own rng and values: member i is then the single run of its
    config started from the same checkpoint)."""
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
    num_members = population.size(config)
    run = population.member_config(config, 0) if num_members else config
    config_fields.check_compatible(saved, run, where)
    checkpoints.check_architecture(manager, step, saved.model, where)
    one = members.member_state(fresh, 0) if num_members else fresh
    template = set_ema(jax.eval_shape(lambda: one), bool(saved.optim.ema_decay))
    try:
        restored = checkpoints.restore_state(manager, template, step)
    except Exception as e:  # orbax raises many types for damaged files
        raise UserError(
            f"init_from: checkpoint {where} is unreadable ({type(e).__name__})"
        ) from None
    print(f"initialized from {where}", flush=True)
    restored = set_ema(restored, population.keeps_ema(config))
    if num_members:
        restored = jax.tree.map(lambda x: np.stack([x] * num_members), restored)
    return restored.replace(step=fresh.step, rng=fresh.rng)


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
    if manager.latest_step() is None:  # eager initializers: XLA compiles each shape once
        with progress_bars.compile_notice(INIT_NOTICE, reporting.say):
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
    targets = _grid_targets(config, workdir, [reporter, *member_reporters])
    if start_step and config.num_fixed_samples > 0 and jax.process_index() == 0:
        grids.rewrite_missing(
            targets,
            manager,
            jax.eval_shape(new_state),
            state,
            config.model,
            config.num_fixed_samples,
            config.sample_every_steps,
            _grid_zs(config),
            reporter.message,
        )
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


def _grid_targets(config, workdir, reporters) -> list[grids.Target]:
    """The runs whose grids a sample step draws: the run, or (`reporters`: the population's, then
    each member's) every member, into its own folder with its own seed."""
    if len(reporters) == 1:
        return [grids.Target(workdir, reporters[0], config.seed)]
    seeds = population.seeds(config)
    return [
        grids.Target(population.member_dir(workdir, i), each, seeds[i], i)
        for i, each in enumerate(reporters[1:])
    ]


def _grid_zs(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The grids a sample step writes: of the fixed z, and of fresh z with sample_random_z."""
    return ("fixed", "random") if config.sample_random_z else ("fixed",)


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
    count, targets = config.num_fixed_samples, _grid_targets(config, workdir, reporters)
    nothing = contextlib.nullcontext()
    with preemption.StopRequest() as stop:
        for step in range(start_step + 1, config.num_train_steps + 1):
            first = step == start_step + 1  # compiles the step (any parallelism, a population's)
            with progress_bars.compile_notice(STEP_NOTICE, reporter.message) if first else nothing:
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
            scores = (
                _evaluate(evaluator, step, runner, device_state, targets) if evaluate_now else None
            )
            try:  # the step's outputs before its checkpoint: a resume then leaves no gaps
                if log:
                    for each, row in zip(member_reporters, rows):
                        each.scalars(step, row)
                    reporter.scalars(step, members.mean_row(rows))
                    for i, (detector, row) in enumerate(zip(detectors, rows)):
                        say = _member_say(reporter, i if member_reporters else None)
                        collapse.check_collapse(config.collapse, detector, step, row, manager, say)
                if scores:
                    for each, row in zip(member_reporters, scores["members"]):
                        each.evaluation(step, row)
                    reporter.evaluation(step, scores["run"])
                if (
                    (step % config.sample_every_steps == 0 or last)
                    and count > 0
                    and jax.process_index() == 0
                ):  # one writer; num_fixed_samples=0: no grids
                    host = members.host_state(runner, device_state)
                    for target in targets:
                        g_variables = target.sampling_g(host)
                        grids.save(target, config.model, g_variables, count, step, _grid_zs(config))
            finally:  # whatever failed above (a full disk, a collapse stop) does not cost it
                if checkpoint_now:
                    kept_by = (
                        {evaluator.best_metric: scores["run"][evaluator.best_metric]}
                        if scores
                        else None
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


def _evaluate(evaluator, step: int, runner, device_state, targets) -> dict:
    """The evaluator's scores of `step`: {'run': the run's, 'members': each member's}. A
    population's evaluator scores each member's G ([scores per member]); the population's own row
    (its TensorBoard and console line, and the score its best checkpoint is kept by) is the
    members' mean."""
    host = members.host_state(runner, device_state)
    if targets[0].member is None:
        return {"run": evaluator(step, targets[0].sampling_g(host)), "members": []}
    rows = evaluator(step, [target.sampling_g(host) for target in targets])
    mean = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
    return {"run": mean, "members": rows}


def _step_of(step) -> int:
    """A state's step: a plain run's scalar, or a population's (every member's is the same)."""
    return int(np.ravel(step)[0])


def _member_say(reporter, member: int | None):
    if member is None:
        return reporter.message
    return lambda text: reporter.message(f"member {member}: {text}")
