"""The train step: equal to a straightforward formulation, and the same on 1 and 8 devices, pmap and shard_map."""

import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dcgan_jax.evaluation import fid
from dcgan_jax.nn import latent, models
from dcgan_jax.training import losses, parallel, step
from dcgan_jax.training.state import create_train_state, make_optimizers
from tests.helpers import digit_batches, max_abs_diff, run_steps, tiny_config

# See multidevice_checks.py: a large Adam eps makes param differences measure gradient differences.
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch
CACHE_REQUEST_EVENT = "/jax/compilation_cache/compile_requests_use_cache"  # jax._src.compiler
COMPARABLE = dict(seed=1, optim=dict(adam_eps=1.0, learning_rate=0.01))


def straightforward_step(config):
    """The step as the reference implementations write it: XLA's convolutions with their own gradients, flax's
    BatchNorm, G run again for its update. Trace it while `use_straightforward_layers` is in effect."""
    config = config.copy_and_resolve_references()
    config.model.conv_impl = (
        "xla"  # XLA's strided and transposed convolutions with their own gradients
    )
    generator, discriminator = models.build_models(config.model)
    g_tx, d_tx = make_optimizers(config.optim)

    def d_apply(params, stats, x):
        logits, new = discriminator.apply(
            {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
        )
        return logits, new["batch_stats"]

    def g_apply(params, stats, z):
        images, new = generator.apply(
            {"params": params, "batch_stats": stats}, z, train=True, mutable=["batch_stats"]
        )
        return images, new["batch_stats"]

    @jax.jit
    def train_step(state, real):
        z = latent.sample_z_for_examples(
            jax.random.fold_in(state.rng, state.step),
            jnp.arange(config.batch_size),
            config.model.latent_dim,
        )
        fake, g_stats = g_apply(state.g_params, state.g_batch_stats, z)

        def d_loss(params):
            real_logits, stats = d_apply(params, state.d_batch_stats, real)
            fake_logits, stats = d_apply(params, stats, jax.lax.stop_gradient(fake))
            return losses.discriminator_loss(real_logits, fake_logits), stats

        (_, d_stats), d_grads = jax.value_and_grad(d_loss, has_aux=True)(state.d_params)
        d_updates, d_opt = d_tx.update(d_grads, state.d_opt_state, state.d_params)
        d_params = optax.apply_updates(state.d_params, d_updates)

        def g_loss(params):
            images, _ = g_apply(params, state.g_batch_stats, z)
            logits, stats = d_apply(d_params, d_stats, images)
            return losses.generator_loss(logits), stats

        (_, d_stats), g_grads = jax.value_and_grad(g_loss, has_aux=True)(state.g_params)
        g_updates, g_opt = g_tx.update(g_grads, state.g_opt_state, state.g_params)
        return state.replace(
            step=state.step + 1,
            g_params=optax.apply_updates(state.g_params, g_updates),
            d_params=d_params,
            g_batch_stats=g_stats,
            d_batch_stats=d_stats,
            g_opt_state=g_opt,
            d_opt_state=d_opt,
        )

    return train_step


def use_straightforward_layers(monkeypatch):
    """Swaps the fast batchnorm for flax.linen.BatchNorm (the convolutions: conv_impl='xla')."""
    monkeypatch.setattr(models.batchnorm, "BatchNorm", nn.BatchNorm)


def test_optimized_step_equals_straightforward_formulation(monkeypatch):
    config = tiny_config(**COMPARABLE, model=dict(conv_impl="fast"))
    batches = digit_batches(config, 3)
    fast, _ = run_steps(config, batches)
    use_straightforward_layers(monkeypatch)
    reference_step = straightforward_step(config)
    reference = create_train_state(config.model, config.optim, config.seed)
    for batch in batches:
        reference = reference_step(reference, jnp.asarray(batch))
    assert max_abs_diff(fast, jax.device_get(reference)) < 1e-5
    assert (
        max_abs_diff(
            fast.g_params, create_train_state(config.model, config.optim, config.seed).g_params
        )
        > 1e-3
    )  # it did train


def test_metrics_are_finite_and_the_state_advances():
    config = tiny_config()
    batches = digit_batches(config, 2)
    state, history = run_steps(config, batches)
    assert int(state.step) == 2
    assert set(history[0]) == {
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "g_grad_norm",
        "d_grad_norm",
        "finite",
    }
    assert all(m["finite"] == 1.0 for m in history)
    for metrics in history:
        assert all(np.isfinite(v) for v in metrics.values())
        assert 0.0 < metrics["d_real"] < 1.0 and 0.0 < metrics["d_fake"] < 1.0
    # At initialization D is undecided, so its loss is near 2 log 2 and G's near log 2.
    assert history[0]["d_loss"] == pytest.approx(2 * np.log(2), abs=0.3)
    assert history[0]["g_loss"] == pytest.approx(np.log(2), abs=0.3)


def test_the_same_z_does_not_depend_on_the_device_split():
    rng = jax.random.PRNGKey(3)
    whole = latent.sample_z_for_examples(rng, jnp.arange(8), 5)
    halves = [latent.sample_z_for_examples(rng, jnp.arange(4) + 4 * i, 5) for i in range(2)]
    np.testing.assert_array_equal(whole, np.concatenate(halves))


@pytest.mark.slow
def test_one_device_eight_devices_pmap_and_shard_map_agree():
    script = os.path.join(os.path.dirname(__file__), "multidevice_checks.py")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count("OK ") == 5, result.stdout


@pytest.mark.parametrize("parallelism", ["pmap", "shard_map"])
def test_the_step_compiles_once(parallelism):
    """Later steps reuse the first step's program (a state layout that differs after step 1 would recompile)."""
    config = tiny_config()
    runner = parallel.Parallel(parallelism)
    train_step = runner.compile(
        step.make_train_step(
            config.model,
            config.optim,
            config.objective,
            config.d_training,
            config.batch_size // runner.num_devices,
        )
    )
    state = runner.replicate(create_train_state(config.model, config.optim, config.seed))
    batches = digit_batches(config, 3)
    compiles = []  # programs compiled, or requested from the persistent compilation cache (tests/conftest.py)
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kwargs: (
            compiles.append(event) if event == BACKEND_COMPILE_EVENT else None
        )
    )
    jax.monitoring.register_event_listener(
        lambda event, **kwargs: compiles.append(event) if event == CACHE_REQUEST_EVENT else None
    )
    for i, batch in enumerate(batches):
        host_batch = np.asarray(batch).reshape((runner.num_devices, -1) + batch.shape[1:])
        state, metrics = train_step(state, runner.shard_batch(host_batch))
        jax.block_until_ready(metrics)
        if i == 0:
            assert compiles, "the listener saw no compilation of the first step"
            compiles.clear()
    assert not compiles


def _float_dtypes(tree):
    return {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}


def test_bfloat16_compute_keeps_params_optimizer_statistics_losses_and_logits_float32():
    config = tiny_config(model=dict(compute_dtype="bfloat16"))
    runner = parallel.Parallel("pmap", jax.devices()[:1])
    train_step = runner.compile(
        step.make_train_step(
            config.model, config.optim, config.objective, config.d_training, config.batch_size
        )
    )
    device_state = runner.replicate(create_train_state(config.model, config.optim, config.seed))
    batch = np.asarray(digit_batches(config, 1)[0])[None]
    device_state, metrics = train_step(device_state, runner.shard_batch(batch))
    state = jax.device_get(runner.unreplicate(device_state))
    for field in (
        "g_params",
        "d_params",
        "g_opt_state",
        "d_opt_state",
        "g_batch_stats",
        "d_batch_stats",
    ):
        assert _float_dtypes(getattr(state, field)) == {"float32"}, field
    assert {k: str(v.dtype) for k, v in metrics.items()} == {k: "float32" for k in metrics}
    generator, discriminator = models.build_models(config.model)
    images = generator.apply(
        state.g_variables, jnp.zeros((2, config.model.latent_dim)), train=False
    )
    logits, updates = discriminator.apply(
        state.d_variables, images, train=True, mutable=["batch_stats"]
    )
    assert images.dtype == logits.dtype == jnp.float32 and _float_dtypes(updates) == {"float32"}
    # The check can fail: inside, the activations are bfloat16.
    _, sown = generator.apply(
        state.g_variables,
        jnp.zeros((2, config.model.latent_dim)),
        train=False,
        mutable=["intermediates"],
    )
    assert _float_dtypes(sown) == {"bfloat16"}


@pytest.mark.slow
def _evaluator(config):
    return fid.make_training_evaluator(config.eval, config.model, config.data, config.seed)


def test_a_short_bfloat16_run_stays_close_to_the_float32_run(fid_classifier):
    """60 tiny digits steps in bfloat16 and in float32 on the same batches: per-step losses within 0.05 on average
    (0.15 at most), and FID (the project's own classifier, 40 samples) within 1.0 of each other, while the untrained
    G is more than 2.0 away from the float32 one (so the distance can show). Measured: losses 0.004/0.007 apart on
    average (max 0.018/0.038), FID 67.152 vs 67.148, untrained 70.81."""
    config = fid_classifier[0].copy_and_resolve_references()
    batches = digit_batches(config, 60)
    runs = {}
    for dtype in ("float32", "bfloat16"):
        run_config = config.copy_and_resolve_references()
        run_config.model.compute_dtype = dtype
        state, history = run_steps(run_config, batches)
        runs[dtype] = (
            np.array([[m["d_loss"], m["g_loss"]] for m in history]),
            _evaluator(run_config)(60, state.g_variables)["fid"],
        )
    untrained = _evaluator(config)(
        0, create_train_state(config.model, config.optim, config.seed).g_variables
    )["fid"]
    loss_gap = np.abs(runs["float32"][0] - runs["bfloat16"][0])
    print(
        f"bfloat16 vs float32: mean |loss diff| {loss_gap.mean(0)}, max {loss_gap.max(0)}; FID "
        f"{runs['bfloat16'][1]:.3f} vs {runs['float32'][1]:.3f} (untrained {untrained:.3f})"
    )
    assert np.all(loss_gap.mean(0) < 0.05) and np.all(loss_gap.max(0) < 0.15), loss_gap
    assert abs(runs["bfloat16"][1] - runs["float32"][1]) < 1.0
    assert abs(untrained - runs["float32"][1]) > 2.0
    assert np.any(loss_gap > 0)  # bfloat16 did run: not bit-identical to float32


@pytest.mark.parametrize("latent_dim,batch_size", [(32, 8), (256, 16), (128, 32)])
def test_the_keras_cards_z_lengths_and_batch_sizes_train(latent_dim, batch_size):
    """Seed 002's knobs: z length 32 to 256, batch size 64 down to 8."""
    config = tiny_config(batch_size=batch_size, model=dict(latent_dim=latent_dim))
    final, history = run_steps(config, digit_batches(config, 2), jax.devices()[:1])
    assert all(h["finite"] == 1.0 for h in history)
    assert final.g_params["project"]["kernel"].shape[2] == latent_dim
    assert (
        max_abs_diff(
            final.g_params, create_train_state(config.model, config.optim, config.seed).g_params
        )
        > 0
    )
