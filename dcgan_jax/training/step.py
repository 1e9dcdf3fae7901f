"""The per-device D+G update step, a pure `(state, batch) -> (state, metrics)`; run it with
`parallel.Parallel`."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from dcgan_jax import rng_tags
from dcgan_jax.nn import latent, models
from dcgan_jax.training import d_training as d_training_lib
from dcgan_jax.training import ema, losses
from dcgan_jax.training.parallel import AXIS, varying
from dcgan_jax.training.state import TrainState, make_optimizers

Metrics = dict[str, jax.Array]


def make_train_step(
    model: ml_collections.ConfigDict,
    optim: ml_collections.ConfigDict,
    objective: ml_collections.ConfigDict,
    d_training: ml_collections.ConfigDict,
    per_device_batch: int,
    backend: str = "",
) -> Callable[[TrainState, jax.Array], tuple[TrainState, Metrics]]:
    """The per-device body `(state, batch) -> (state, metrics)`: a D update, then a G update against
    the new D.

    Gradients, batchnorm statistics and metrics are averaged over `AXIS`; run it with
    `parallel.Parallel`. `backend`: the one it runs on ('' = JAX's default), as
    `models.build_models` takes it.
    """
    generator, discriminator = models.build_models(model, axis_name=AXIS, backend=backend)
    g_tx, d_tx = make_optimizers(optim)

    def pmean(tree):
        return lax.pmean(tree, AXIS)

    num_classes = model.conditional.num_classes

    def apply_d(params, batch_stats, images, class_code):
        logits, updates = discriminator.apply(
            {"params": params, "batch_stats": batch_stats},
            images,
            train=True,
            class_code=class_code,
            mutable=["batch_stats"],
        )
        return logits, updates["batch_stats"]

    def train_step(state: TrainState, batch) -> tuple[TrainState, Metrics]:
        """`batch`: real images, or (images, int labels) for a class-conditional run."""
        step_rng = jax.random.fold_in(state.rng, state.step)
        example_ids = lax.axis_index(AXIS) * per_device_batch + jnp.arange(per_device_batch)
        z = latent.sample_z_for_examples(
            step_rng, example_ids, model.latent_dim, model.z_distribution
        )
        real, real_code, fake_code = batch, None, None
        if (
            num_classes
        ):  # fake examples' classes: uniform, a function of (seed, step, example index) like z
            real, real_labels = batch
            fake_labels = jax.vmap(
                lambda i: jax.random.randint(
                    jax.random.fold_in(jax.random.fold_in(step_rng, rng_tags.FAKE_CLASSES), i),
                    (),
                    0,
                    num_classes,
                )
            )(example_ids)
            real_code, fake_code = (
                latent.class_code(y, num_classes) for y in (real_labels, fake_labels)
            )
            z = jnp.concatenate([z, fake_code], axis=-1)
        real_targets, fake_targets = d_training_lib.d_targets(
            d_training, objective.label_smoothing, step_rng, example_ids
        )

        # G runs forward once; its vjp is reused for the G update after D's update.
        def g_forward(g_params):
            fake, updates = generator.apply(
                {"params": g_params, "batch_stats": state.g_batch_stats},
                z,
                train=True,
                mutable=["batch_stats"],
            )
            return fake, updates["batch_stats"]

        fake, g_vjp, g_batch_stats = jax.vjp(g_forward, varying(state.g_params), has_aux=True)
        # D's inputs. Instance noise, when on, is added to both; being added, it passes G's gradient
        # unchanged, so the gradient with respect to the noisy fakes is the one G's vjp takes.
        d_real, d_fake = d_training_lib.add_instance_noise(
            d_training, step_rng, state.step, example_ids, real, fake
        )

        # D sees the real and the fake batch in separate calls, as the reference implementations do.
        def d_loss_fn(d_params):
            real_logits, batch_stats = apply_d(d_params, state.d_batch_stats, d_real, real_code)
            fake_logits, batch_stats = apply_d(d_params, batch_stats, d_fake, fake_code)
            loss = losses.discriminator_loss(
                real_logits,
                fake_logits,
                objective.loss,
                objective.label_smoothing,
                real_targets,
                fake_targets,
            )
            return loss, (batch_stats, real_logits, fake_logits)

        (d_loss, (d_batch_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(varying(state.d_params))
        d_grads = pmean(d_grads)
        d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
        d_params = optax.apply_updates(state.d_params, d_updates)

        def update_g(d_batch_stats):
            def g_loss_fn(fake_images):
                logits, batch_stats = apply_d(d_params, d_batch_stats, fake_images, fake_code)
                return losses.generator_loss(logits, objective.loss), batch_stats

            (g_loss, d_batch_stats), fake_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
                d_fake
            )
            (g_grads,) = g_vjp(fake_grads.astype(fake.dtype))
            g_grads = pmean(g_grads)
            g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
            g_params = optax.apply_updates(state.g_params, g_updates)
            # Already identical across devices with synced batchnorm; averaged otherwise (per-device
            # statistics).
            return (
                g_params,
                pmean(g_batch_stats),
                g_opt_state,
                d_batch_stats,
                g_loss,
                optax.tree.norm(g_grads),
            )

        def keep_g(
            d_batch_stats,
        ):  # a D-only step: G, its statistics, its Adam state and D's statistics untouched
            # by G's update
            return (
                state.g_params,
                state.g_batch_stats,
                state.g_opt_state,
                d_batch_stats,
                losses.generator_loss(fake_logits, objective.loss),
                jnp.float32(0.0),
            )

        updated = update_g(d_batch_stats)
        if not d_training_lib.is_plain(
            d_training
        ):  # a select, not lax.cond: XLA:CPU ran the cond's G branch 12x slower
            updated = jax.tree.map(
                functools.partial(jnp.where, d_training_lib.g_updates_at(d_training, state.step)),
                updated,
                keep_g(d_batch_stats),
            )
        g_params, g_batch_stats, g_opt_state, d_batch_stats, g_loss, g_grad_norm = updated

        new_step = state.step + 1
        new_ema = (
            None
            if state.ema is None
            else ema.update(
                state.ema,
                {"params": g_params, "batch_stats": g_batch_stats},
                ema.decay_at(optim.ema_decay, new_step),
            )
        )
        new_state = state.replace(
            step=new_step,
            g_params=g_params,
            d_params=d_params,
            g_batch_stats=g_batch_stats,
            d_batch_stats=pmean(d_batch_stats),
            g_opt_state=g_opt_state,
            d_opt_state=d_opt_state,
            ema=new_ema,
        )
        metrics = pmean(
            {
                "d_loss": d_loss,
                "g_loss": g_loss,
                "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
            }
        )
        metrics["g_grad_norm"] = g_grad_norm
        metrics["d_grad_norm"] = optax.tree.norm(d_grads)
        # One flag for the divergence guard: NaN/inf anywhere in the losses or the new params shows
        # up here.
        metrics["finite"] = (
            pmean(  # averaged so it is replicated (shard_map's out_specs); < 1 if any device fails
                jnp.isfinite(d_loss + g_loss + optax.tree.norm((g_params, d_params))).astype(
                    jnp.float32
                )
            )
        )
        return new_state, metrics

    return train_step
