"""The training loop: from the latest checkpoint (or scratch) to num_train_steps, saving, logging and sampling.

Data order and every random draw are functions of (seed, step), so an interrupted run rerun with the same command
ends with the same params as an uninterrupted one. SIGTERM/SIGINT stop after the current step with a checkpoint.
"""

import os
from typing import Any, Callable, Dict, Optional

import jax
import ml_collections
import numpy as np

from dcgan_jax.data import datasets, pipeline
from dcgan_jax.errors import UserError
from dcgan_jax.nn import generate, latent
from dcgan_jax.training import checkpoints, collapse, distributed, parallel, preemption, reporting, validation
from dcgan_jax.training import workdir as workdir_lib
from dcgan_jax.training.state import TrainState, create_train_state, set_ema
from dcgan_jax.training.step import make_train_step

# (step, G variables) -> scores, e.g. {'fid': ...}; called every config.eval.every_steps (dcgan_jax/evaluation).
Evaluator = Callable[[int, Any], Dict[str, float]]


def grid_columns(config: ml_collections.ConfigDict) -> Optional[int]:
    """Columns of the training sample grids: None (square) for an unconditional run; for a conditional one, one row
    per class with num_fixed_samples // num_classes columns (at least 1)."""
    num_classes = config.conditional.num_classes
    return max(1, config.num_fixed_samples // num_classes) if num_classes else None


def _grid_inputs(config: ml_collections.ConfigDict, rng: jax.Array, fresh_per_row: bool) -> np.ndarray:
    num_classes, columns = config.conditional.num_classes, grid_columns(config)
    if not num_classes:
        return np.asarray(latent.sample_z(rng, config.num_fixed_samples, config.latent_dim, config.z_distribution))
    rows = num_classes if fresh_per_row else 1  # fixed grids: the same z in every row, so a column holds one style
    z = np.asarray(latent.sample_z(rng, rows * columns, config.latent_dim, config.z_distribution))
    z = np.tile(z, (num_classes // rows, 1))
    return latent.with_class(z, np.repeat(np.arange(num_classes), columns), num_classes)


def fixed_z(config: ml_collections.ConfigDict) -> np.ndarray:
    """G's inputs for the sample grids saved during training: the same for the whole run (and for reruns)."""
    return _grid_inputs(config, jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A), fresh_per_row=False)


def random_z(config: ml_collections.ConfigDict, step: int) -> np.ndarray:
    """Fresh G inputs for the random-z grid of `step`: a function of (seed, step), so reruns draw the same."""
    rng = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x52), step)
    return _grid_inputs(config, rng, fresh_per_row=True)


class DivergenceError(UserError):
    """Non-finite losses or params: training stops and the last good checkpoint is kept."""


def _check_finite(metrics: Dict[str, float], step: int, manager) -> None:
    if metrics["finite"] != 1.0:
        manager.wait_until_finished()
        last_good = manager.latest_step()
        kept = (f"the last good checkpoint is step {last_good} in {manager.directory} (kept)" if last_good is not None
                else "no checkpoint was saved before it")
        raise DivergenceError(f"training diverged: non-finite loss or params at step {step} "
                              f"(d_loss {metrics['d_loss']}, g_loss {metrics['g_loss']}); {kept}; "
                              f"lower learning_rate or change the seed, then rerun")


def _host_g(runner, device_state):
    return jax.device_get(runner.unreplicate(device_state)).sampling_g_variables


def _check_collapse(config, detector, step, metrics, manager, reporter) -> None:
    """Warns (or, with config.collapse.stop, stops) once D has won completely for collapse.patience logged steps."""
    began = detector.update(step, metrics)
    if began is None:
        return
    before = [s for s in manager.all_steps() if s < began]
    kept = (f"the last checkpoint before it is step {max(before)} in {manager.directory}" if before
            else "no checkpoint predates it")
    text = (f"D has won completely since step {began} (D(G(z)) < {config.collapse.d_fake} and g_loss > "
            f"{config.collapse.loss_factor}x its running level for {config.collapse.patience} logged steps): G is "
            f"no longer learning; {kept}; restart from it (--config.init_from=DIR:STEP) with a lower learning rate "
            f"or label smoothing")
    if config.collapse.stop:
        raise UserError(f"stopped: {text}")
    reporter.message(f"warning: {text}")


def _train_loop(config, workdir, runner, manager, reporter, train_step, batches, evaluator, device_state):
    """Steps from the state's step to num_train_steps, or until a stop signal; returns the device state."""
    sample_z = fixed_z(config)
    detector = collapse.CollapseDetector.from_config(config)
    start_step = int(jax.device_get(runner.unreplicate(device_state.step)))
    with preemption.StopRequest() as stop:
        for step in range(start_step + 1, config.num_train_steps + 1):
            device_state, metrics = train_step(device_state, runner.shard_batch(next(batches)))
            last = step == config.num_train_steps
            log, save = step % config.log_every_steps == 0 or last, step % config.checkpoint_every_steps == 0
            stopping = stop.requested(at_sync_step=log or save)  # hosts compare flags only where they sync anyway
            if log or save or stopping or last:  # fetching metrics waits for the step: only when needed
                host_metrics = {k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()}
                _check_finite(host_metrics, step, manager)
            evaluate_now = evaluator is not None and step % config.eval.every_steps == 0
            scores = evaluator(step, _host_g(runner, device_state)) if evaluate_now else None
            if save or stopping or last or evaluate_now:  # before logs and samples: their failure must not cost it
                checkpoints.save_or_fail(manager, step, jax.device_get(runner.unreplicate(device_state)), config,
                                         wait=stopping, metrics={"fid": scores["fid"]} if scores else None)
            if log:
                reporter.scalars(step, host_metrics)
                _check_collapse(config, detector, step, host_metrics, manager, reporter)
            if scores:
                reporter.evaluation(step, scores)
            if ((step % config.sample_every_steps == 0 or last) and config.num_fixed_samples > 0
                    and jax.process_index() == 0):  # one writer; num_fixed_samples=0: no grids
                g_vars = _host_g(runner, device_state)
                columns = grid_columns(config)
                reporter.samples(step, generate.generate(config, g_vars, sample_z), num_cols=columns)
                if config.sample_random_z:
                    reporter.samples(step, generate.generate(config, g_vars, random_z(config, step)), z="random",
                                     num_cols=columns)
            if stopping:
                reporter.message(f"stopped by {stop.signal_name or 'another host'} at step {step}; checkpoint "
                                 f"saved in {checkpoints.checkpoint_dir(workdir)}; rerun the same command to resume")
                break
    return device_state


def train(config: ml_collections.ConfigDict, workdir: str, evaluator: Optional[Evaluator] = None) -> TrainState:
    """Trains from scratch or from the latest checkpoint in workdir; returns the final state (host copy).

    `evaluator` (if given) runs every config.eval.every_steps steps on the current G; its scores are logged.
    """
    validation.validate_config(config)
    workdir_lib.prepare_workdir(workdir)
    with workdir_lib.locked(workdir):
        return _train_locked(config, workdir, evaluator)


def _initial_from(config: ml_collections.ConfigDict, fresh: TrainState) -> TrainState:
    """config.init_from ('DIR' or 'DIR:STEP'): that checkpoint's params, batchnorm statistics and Adam moments, at
    step 0 and with this run's own rng, so a new run (fine-tuning, a restart from before a collapse) goes on from
    any kept checkpoint of any run."""
    source, _, step = config.init_from.rpartition(":")
    if not (source and step.isdigit()):
        source, step = config.init_from, ""
    if os.path.basename(os.path.normpath(source)) == checkpoints.CHECKPOINT_SUBDIR:
        source = os.path.dirname(os.path.normpath(source))
    manager, saved = checkpoints.open_workdir(source)
    step = int(step) if step else manager.latest_step()
    if step not in manager.all_steps():
        raise UserError(f"init_from: no checkpoint at step {step} in {checkpoints.checkpoint_dir(source)}; "
                        f"available: {sorted(manager.all_steps())}")
    where = os.path.join(checkpoints.checkpoint_dir(source), str(step))
    checkpoints.check_compatible(saved, config, where)
    try:
        restored = checkpoints.restore_state(manager, set_ema(jax.eval_shape(lambda: fresh), bool(saved.ema_decay)),
                                             step)
    except Exception as e:  # orbax raises many types for damaged files
        raise UserError(f"init_from: checkpoint {where} is unreadable ({type(e).__name__})") from None
    print(f"initialized from {where}", flush=True)
    return set_ema(restored, bool(config.ema_decay)).replace(step=fresh.step, rng=fresh.rng)


def _train_locked(config, workdir, evaluator):
    """`train` once the workdir is ours. Every check (checkpoint, step count, data) comes before the first write
    to the workdir (config.json, TensorBoard, metrics.jsonl), so a run that cannot start changes nothing."""
    manager = checkpoints.create_manager(workdir, config.keep_checkpoints, keep_every=config.keep_every_steps,
                                         keep_best=bool(evaluator is not None and config.eval.every_steps))
    # Restoring needs only shapes; a fresh state only when there is nothing to resume.
    state = checkpoints.restore_for_training(manager, jax.eval_shape(lambda: create_train_state(config)), config,
                                             workdir)
    if manager.latest_step() is None:
        state = create_train_state(config)
        if config.init_from:
            state = _initial_from(config, state)
    start_step = int(state.step)
    if start_step > config.num_train_steps:
        raise UserError(f"the checkpoint in {checkpoints.checkpoint_dir(workdir)} is already at step {start_step}, "
                        f"past num_train_steps={config.num_train_steps}; pass a larger --config.num_train_steps to "
                        f"train on, or another --workdir")
    source = datasets.load_source(config)
    if config.conditional.num_classes:
        datasets.load_labels(config, source)  # data without labels is refused here, before anything is written
    if start_step == config.num_train_steps:
        if jax.process_index() == 0:
            print(f"already trained to step {start_step} in {workdir}: nothing to do", flush=True)
        return jax.device_get(state)

    reporter = reporting.Reporter(workdir, config, start_step)
    reporter.message(distributed.backend_report())  # backend, devices, processes; a CPU-only jaxlib on a GPU host
    if start_step:
        reporter.message(f"resumed from step {start_step} in {checkpoints.checkpoint_dir(workdir)}")
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json(indent=2))
    runner = parallel.Parallel(config.parallelism)
    train_step = runner.compile(make_train_step(config, config.batch_size // runner.num_devices))
    batches = pipeline.train_batches(config, source, start_step, len(runner.local_devices))
    if not config.eval.every_steps:
        evaluator = None
    device_state = runner.replicate(state)
    try:
        device_state = _train_loop(config, workdir, runner, manager, reporter, train_step, batches, evaluator,
                                   device_state)
    finally:
        manager.wait_until_finished()
    reporter.close()
    return jax.device_get(runner.unreplicate(device_state))
