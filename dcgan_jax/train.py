"""Train state, the per-device D+G update step, and the training loop."""

import os
from typing import Any, Callable, Dict, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax

from dcgan_jax import (checkpointing, generate, input_pipeline, latent, losses, models, parallel, preemption,
                       reporting)
from dcgan_jax.errors import UserError

Metrics = Dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; nothing hides in module state."""

    step: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: Any
    d_opt_state: Any
    rng: jax.Array  # raw uint32 key data; per-step keys are fold_in(rng, step)


def make_optimizers(config: ml_collections.ConfigDict) -> Tuple[optax.GradientTransformation, ...]:
    """Adam for G and for D (the paper: lr 2e-4, beta1 0.5)."""
    def adam():
        return optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)
    return adam(), adam()


def create_train_state(config: ml_collections.ConfigDict) -> TrainState:
    """A fresh state on the host, identical for any device count; params in float32."""
    init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    g_vars, d_vars = models.init_variables(init_rng, config)
    g_tx, d_tx = make_optimizers(config)
    return TrainState(step=jnp.zeros((), jnp.int32),
                      g_params=g_vars["params"], g_batch_stats=g_vars["batch_stats"],
                      d_params=d_vars["params"], d_batch_stats=d_vars["batch_stats"],
                      g_opt_state=g_tx.init(g_vars["params"]), d_opt_state=d_tx.init(d_vars["params"]),
                      rng=train_rng)


def make_train_step(config: ml_collections.ConfigDict, per_device_batch: int
                    ) -> Callable[[TrainState, jax.Array], Tuple[TrainState, Metrics]]:
    """The per-device body `(state, batch) -> (state, metrics)`: a D update, then a G update against the new D.

    Gradients, batchnorm statistics and metrics are averaged over `parallel.AXIS`; run it with `parallel.Parallel`.
    """
    generator, discriminator = models.build_models(config, axis_name=parallel.AXIS)
    g_tx, d_tx = make_optimizers(config)
    pmean = lambda tree: lax.pmean(tree, parallel.AXIS)

    def apply_d(params, batch_stats, images):
        logits, updates = discriminator.apply({"params": params, "batch_stats": batch_stats}, images, train=True,
                                              mutable=["batch_stats"])
        return logits, updates["batch_stats"]

    def train_step(state: TrainState, real: jax.Array) -> Tuple[TrainState, Metrics]:
        step_rng = jax.random.fold_in(state.rng, state.step)
        first_example = lax.axis_index(parallel.AXIS) * per_device_batch
        z = latent.sample_z_for_examples(step_rng, first_example + jnp.arange(per_device_batch),
                                         config.latent_dim, config.z_distribution)

        # G runs forward once; its vjp is reused for the G update after D's update.
        def g_forward(g_params):
            fake, updates = generator.apply({"params": g_params, "batch_stats": state.g_batch_stats}, z,
                                            train=True, mutable=["batch_stats"])
            return fake, updates["batch_stats"]

        fake, g_vjp, g_batch_stats = jax.vjp(g_forward, parallel.varying(state.g_params), has_aux=True)

        # D sees the real and the fake batch in separate calls, as the reference implementations do.
        def d_loss_fn(d_params):
            real_logits, batch_stats = apply_d(d_params, state.d_batch_stats, real)
            fake_logits, batch_stats = apply_d(d_params, batch_stats, fake)
            loss = losses.discriminator_loss(real_logits, fake_logits, config.loss, config.label_smoothing)
            return loss, (batch_stats, real_logits, fake_logits)

        (d_loss, (d_batch_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True)(parallel.varying(state.d_params))
        d_grads = pmean(d_grads)
        d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
        d_params = optax.apply_updates(state.d_params, d_updates)

        def g_loss_fn(fake_images):
            logits, batch_stats = apply_d(d_params, d_batch_stats, fake_images)
            return losses.generator_loss(logits, config.loss), batch_stats

        (g_loss, d_batch_stats), fake_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
        (g_grads,) = g_vjp(fake_grads.astype(fake.dtype))
        g_grads = pmean(g_grads)
        g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)

        new_state = state.replace(
            step=state.step + 1, g_params=g_params, d_params=d_params,
            # Already identical across devices with synced batchnorm; averaged otherwise (per-device statistics).
            g_batch_stats=pmean(g_batch_stats), d_batch_stats=pmean(d_batch_stats),
            g_opt_state=g_opt_state, d_opt_state=d_opt_state)
        metrics = pmean({
            "d_loss": d_loss, "g_loss": g_loss,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)), "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        })
        metrics["g_grad_norm"] = optax.tree.norm(g_grads)
        metrics["d_grad_norm"] = optax.tree.norm(d_grads)
        # One flag for the divergence guard: NaN/inf anywhere in the losses or the new params shows up here.
        metrics["finite"] = pmean(  # averaged so it is replicated (shard_map's out_specs); < 1 if any device fails
            jnp.isfinite(d_loss + g_loss + optax.tree.norm((g_params, d_params))).astype(jnp.float32))
        return new_state, metrics

    return train_step


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Config values the code cannot run with, as one UserError naming the field and the fix."""
    try:
        models.build_models(config)
        losses.check_loss(config.loss)
        latent.sample_z(jax.random.PRNGKey(0), 1, 1, config.z_distribution)
        parallel.Parallel(config.parallelism)
        jnp.dtype(config.compute_dtype)
    except (ValueError, TypeError) as e:
        raise UserError(f"invalid config: {e}") from None
    if config.eval_every_steps < 0:
        raise UserError(f"invalid config: eval_every_steps={config.eval_every_steps} must be >= 0 (0 disables)")
    for field in ("batch_size", "num_train_steps", "latent_dim", "g_width", "d_width", "log_every_steps",
                  "sample_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
        if int(config[field]) <= 0:
            raise UserError(f"invalid config: {field}={config[field]} must be a positive integer")
    if config.batch_size % jax.device_count():
        raise UserError(f"invalid config: batch_size={config.batch_size} is not divisible by the "
                        f"{jax.device_count()} devices; use a multiple of {jax.device_count()}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UserError(f"invalid config: label_smoothing={config.label_smoothing} must be in [0, 1)")


def prepare_workdir(workdir: str) -> None:
    """Creates workdir and checks it is writable, before any work is done."""
    try:
        os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
        probe = os.path.join(workdir, f".write_test.{jax.process_index()}")  # every host checks; no two share a name
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"workdir {workdir!r} is not writable ({e.strerror}); pass a writable --workdir") from None


def fixed_z(config: ml_collections.ConfigDict) -> np.ndarray:
    """The z of the sample grids saved during training: the same for the whole run (and for reruns)."""
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A)
    return np.asarray(latent.sample_z(rng, config.num_fixed_samples, config.latent_dim, config.z_distribution))


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


def _train_loop(config, workdir, runner, manager, reporter, train_step, batches, evaluator, device_state):
    """Steps from the state's step to num_train_steps, or until a stop signal; returns the device state."""
    sample_z = fixed_z(config)
    start_step = int(jax.device_get(runner.unreplicate(device_state.step)))
    with preemption.StopRequest() as stop:
        for step in range(start_step + 1, config.num_train_steps + 1):
            device_state, metrics = train_step(device_state, runner.shard_batch(next(batches)))
            last = step == config.num_train_steps
            stopping = stop.requested()
            log, save = step % config.log_every_steps == 0 or last, step % config.checkpoint_every_steps == 0
            if log or save or stopping or last:  # fetching metrics waits for the step: only when needed
                host_metrics = {k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()}
                _check_finite(host_metrics, step, manager)
                if log:
                    reporter.scalars(step, host_metrics)
            sample = (step % config.sample_every_steps == 0 or last) and jax.process_index() == 0  # one writer
            evaluate_now = evaluator is not None and step % config.eval_every_steps == 0
            if sample or evaluate_now:
                host_state = jax.device_get(runner.unreplicate(device_state))
                g_vars = {"params": host_state.g_params, "batch_stats": host_state.g_batch_stats}
                if sample:
                    reporter.samples(step, generate.generate(config, g_vars, sample_z))
                if evaluate_now:
                    reporter.evaluation(step, evaluator(step, g_vars))
            if save or stopping or last:
                checkpointing.save_or_fail(manager, step, jax.device_get(runner.unreplicate(device_state)), config,
                                           wait=stopping)
            if stopping:
                reporter.message(f"stopped by {stop.signal_name or 'another host'} at step {step}; checkpoint "
                                 f"saved in {checkpointing.checkpoint_dir(workdir)}; rerun the same command to resume")
                break
    return device_state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains from scratch or from the latest checkpoint in workdir; returns the final state (host copy).

    Data order and every random draw are functions of (seed, step), so an interrupted run rerun with the same command
    ends with the same params as an uninterrupted one. SIGTERM/SIGINT stop after the current step with a checkpoint.
    """
    validate_config(config)
    prepare_workdir(workdir)
    manager = checkpointing.create_manager(workdir, config.keep_checkpoints)
    state = checkpointing.restore_for_training(manager, create_train_state(config), config, workdir)
    start_step = int(state.step)
    reporter = reporting.Reporter(workdir, config, start_step)
    if start_step:
        reporter.message(f"resumed from step {start_step} in {checkpointing.checkpoint_dir(workdir)}")
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json(indent=2))

    source = input_pipeline.load_source(config)
    runner = parallel.Parallel(config.parallelism)
    train_step = runner.compile(make_train_step(config, config.batch_size // runner.num_devices))
    batches = input_pipeline.train_batches(config, source, start_step, len(runner.local_devices))
    evaluator = None
    if config.eval_every_steps:
        from dcgan_jax import evaluate  # scikit-learn and the FID feature extractor: only when asked for
        evaluator = evaluate.make_training_evaluator(config, workdir)
    device_state = runner.replicate(state)
    try:
        device_state = _train_loop(config, workdir, runner, manager, reporter, train_step, batches, evaluator,
                                   device_state)
    finally:
        manager.wait_until_finished()  # an error must not lose the checkpoint being written in the background
    reporter.close()
    return jax.device_get(runner.unreplicate(device_state))
