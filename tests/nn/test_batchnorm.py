"""The fast batchnorm against flax.linen.BatchNorm and a float64 numpy formula: values, statistics and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.nn import batchnorm


def _numpy_reference(x, scale, bias, cotangent, epsilon=1e-5):
    """Training-mode batchnorm and its gradients in float64, from the textbook formulas."""
    x, scale, bias, cotangent = (np.asarray(a, np.float64) for a in (x, scale, bias, cotangent))
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    mean, var = x.mean(axes), x.var(axes)
    x_hat = (x - mean) / np.sqrt(var + epsilon)
    dscale, dbias = (cotangent * x_hat).sum(axes), cotangent.sum(axes)
    dx = scale / np.sqrt(var + epsilon) * (cotangent - dbias / count - x_hat * dscale / count)
    return x_hat * scale + bias, mean, var, dx, dscale, dbias


def _run(module, x, scale, bias, cotangent):
    variables = {
        "params": {"scale": scale, "bias": bias},
        "batch_stats": {"mean": jnp.zeros_like(scale), "var": jnp.ones_like(scale)},
    }

    def loss(x, params):
        y, updates = module.apply({**variables, "params": params}, x, mutable=["batch_stats"])
        return jnp.sum(y * cotangent), (y, updates["batch_stats"])

    (_, (y, stats)), (dx, dparams) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        x, variables["params"]
    )
    return y, stats, dx, dparams


@pytest.mark.parametrize(
    "shape, offset", [((8, 4, 4, 16), 0.0), ((64, 16, 16, 8), 0.0), ((16, 8, 8, 4), 30.0)]
)
def test_training_mode_matches_flax_and_float64(shape, offset):
    """offset: activations whose mean is far from zero (one-pass variance and float32 sums stay accurate)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape) * 2 + offset, jnp.float32)
    scale = jnp.asarray(rng.normal(size=shape[-1]), jnp.float32)
    bias = jnp.asarray(rng.normal(size=shape[-1]), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=shape), jnp.float32)
    ours = _run(batchnorm.BatchNorm(momentum=0.9), x, scale, bias, cotangent)
    flax_ = _run(nn.BatchNorm(use_running_average=False, momentum=0.9), x, scale, bias, cotangent)
    y, mean, var, dx, dscale, dbias = _numpy_reference(x, scale, bias, cotangent)

    for got in (ours, flax_):
        np.testing.assert_allclose(got[0], y, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[1]["mean"], 0.1 * mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[1]["var"], 0.9 + 0.1 * var, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours[2], dx, rtol=1e-3, atol=1e-4 * np.abs(dx).max())
    np.testing.assert_allclose(ours[3]["scale"], dscale, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ours[3]["bias"], dbias, rtol=1e-4, atol=1e-3)


def test_inference_mode_uses_the_running_averages_like_flax():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(4, 3, 3, 6)), jnp.float32)
    variables = {
        "params": {
            "scale": jnp.asarray(rng.normal(size=6), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=6), jnp.float32),
        },
        "batch_stats": {
            "mean": jnp.asarray(rng.normal(size=6), jnp.float32),
            "var": jnp.asarray(rng.uniform(0.5, 2.0, size=6), jnp.float32),
        },
    }
    ours = batchnorm.BatchNorm(use_running_average=True).apply(variables, x)
    theirs = nn.BatchNorm(use_running_average=True).apply(variables, x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_same_variables_as_flax_batchnorm():
    x = jnp.ones((2, 4, 4, 5))
    ours = batchnorm.BatchNorm().init(jax.random.PRNGKey(0), x)
    theirs = nn.BatchNorm(use_running_average=False).init(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, theirs)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ours, theirs))


@pytest.mark.parametrize("map_devices", ["vmap", "pmap"])
def test_synced_statistics_and_gradients_cover_all_devices(map_devices):
    """With axis_name, each shard's outputs and input gradient equal those of the whole batch normalized at once.

    vmap with an axis name runs the same collectives as pmap over 4 simulated devices; pmap uses the real devices.
    """
    shards = 4 if map_devices == "vmap" else jax.local_device_count()
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(3 * shards, 2, 2, 3)) + 1, jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    scale, bias = jnp.asarray([1.0, 2.0, -0.5]), jnp.asarray([0.0, 0.3, 0.1])

    def per_shard(x, cotangent):
        def loss(x):
            y, stats = batchnorm.batch_norm_train(x, scale, bias, 1e-5, "devices")
            return jnp.sum(y * cotangent), (y, stats)

        return jax.grad(loss, has_aux=True)(x)

    mapped = (jax.vmap if map_devices == "vmap" else jax.pmap)(per_shard, axis_name="devices")
    dx, (y, (mean, var)) = mapped(
        x.reshape((shards, 3) + x.shape[1:]), cotangent.reshape((shards, 3) + x.shape[1:])
    )
    y_ref, mean_ref, var_ref, dx_ref, _, _ = _numpy_reference(x, scale, bias, cotangent)
    np.testing.assert_allclose(y.reshape(x.shape), y_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, np.broadcast_to(mean_ref, mean.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, np.broadcast_to(var_ref, var.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx.reshape(x.shape), dx_ref, rtol=1e-4, atol=1e-5)
