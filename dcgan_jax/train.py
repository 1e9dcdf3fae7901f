"""Train state, the per-device D+G update step, and the training loop."""

import json
import os
import time
from typing import Any, Callable, Dict, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax

from dcgan_jax import checkpointing, generate, input_pipeline, latent, losses, models, parallel, visualize
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
        probe = os.path.join(workdir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"workdir {workdir!r} is not writable ({e.strerror}); pass a writable --workdir") from None


class _Logger:
    """Console lines, TensorBoard scalars/images and metrics.jsonl, written by process 0 only."""

    def __init__(self, workdir: str, config: ml_collections.ConfigDict, start_step: int):
        self.enabled = jax.process_index() == 0
        self.workdir, self.config = workdir, config
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        self.last_time, self.last_step = time.time(), start_step
        self.writer = None
        if self.enabled:
            from flax.metrics import tensorboard  # imports TensorFlow: only where logs are written
            self.writer = tensorboard.SummaryWriter(os.path.join(workdir, "tensorboard"))

    def scalars(self, step: int, metrics: Dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.time()
        rate = (step - self.last_step) * self.config.batch_size / max(now - self.last_time, 1e-9)
        eta = (self.config.num_train_steps - step) * self.config.batch_size / max(rate, 1e-9)
        self.last_time, self.last_step = now, step
        print(f"step {step}/{self.config.num_train_steps} | d_loss {metrics['d_loss']:.3f} "
              f"g_loss {metrics['g_loss']:.3f} D(x) {metrics['d_real']:.2f} D(G(z)) {metrics['d_fake']:.2f} | "
              f"{rate:.0f} img/s | ETA {int(eta) // 60}m{int(eta) % 60:02d}s", flush=True)
        for key, value in metrics.items():
            self.writer.scalar(f"train/{key}", value, step)
        self.writer.scalar("train/images_per_sec", rate, step)
        self.writer.flush()
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")

    def samples(self, step: int, images: np.ndarray) -> None:
        if not self.enabled:
            return
        grid = visualize.make_grid(images)
        visualize.save_image(os.path.join(self.workdir, "samples", f"step_{step:08d}.png"), grid)
        self.writer.image("samples", grid[None], step)
        self.writer.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self.writer.close()
        if os.path.exists(self.metrics_path):
            visualize.plot_losses(self.metrics_path, os.path.join(self.workdir, "loss_curve.png"))


def fixed_z(config: ml_collections.ConfigDict) -> np.ndarray:
    """The z of the sample grids saved during training: the same for the whole run (and for reruns)."""
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A)
    return np.asarray(latent.sample_z(rng, config.num_fixed_samples, config.latent_dim, config.z_distribution))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains from scratch or from the latest checkpoint in workdir; returns the final state (host copy)."""
    validate_config(config)
    prepare_workdir(workdir)
    source = input_pipeline.load_source(config)
    runner = parallel.Parallel(config.parallelism)
    manager = checkpointing.create_manager(workdir, config.keep_checkpoints)
    state = create_train_state(config)
    if manager.latest_step() is not None:
        state = checkpointing.restore_state(manager, state)
        print(f"resumed from step {int(state.step)} in {checkpointing.checkpoint_dir(workdir)}", flush=True)
    start_step = int(state.step)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))

    train_step = runner.compile(make_train_step(config, config.batch_size // runner.num_devices))
    batches = input_pipeline.train_batches(config, source, start_step, len(runner.local_devices))
    logger = _Logger(workdir, config, start_step)
    sample_z = fixed_z(config)
    device_state = runner.replicate(state)
    for step in range(start_step + 1, config.num_train_steps + 1):
        device_state, metrics = train_step(device_state, runner.shard_batch(next(batches)))
        if step % config.log_every_steps == 0 or step == config.num_train_steps:
            logger.scalars(step, {k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()})
        if step % config.sample_every_steps == 0 or step == config.num_train_steps:
            state = jax.device_get(runner.unreplicate(device_state))
            g_vars = {"params": state.g_params, "batch_stats": state.g_batch_stats}
            logger.samples(step, generate.generate(config, g_vars, sample_z))
        if step % config.checkpoint_every_steps == 0 or step == config.num_train_steps:
            checkpointing.save(manager, step, jax.device_get(runner.unreplicate(device_state)), config)
    manager.wait_until_finished()
    logger.close()
    return jax.device_get(runner.unreplicate(device_state))
