"""Run as a script with 2 simulated CPU devices (tests/test_accelerator_lowering.py): lowers the
train step for GPU and TPU, in both parallel forms, with the batch split over a 2-device mesh;
prints one OK line per program."""

import os
import sys

# tests/helpers.xla_flags(2), set before JAX is imported.
os.environ["XLA_FLAGS"] = (
    "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=2"
)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root

import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from dcgan_jax.training import parallel, state, step  # noqa: E402
from tests.helpers import tiny_config  # noqa: E402
from tests.test_accelerator_lowering import PLATFORMS, by_conv_form, check_form, export  # noqa: E402

DEVICES = 2
BATCH = 8  # 4 per device
D_TRAINING = dict(
    pretrain_steps=1,
    steps_per_g_step=2,
    label_noise=0.1,
    label_flip=0.1,
    instance_noise=0.1,
    instance_noise_decay_steps=100,
)
CONCAT = dict(d_form="concat")  # the class code as D's input channels
# The options that change the step's program: (config name, overrides).
CASES = {
    "digits": ("digits", {}),
    "digits_conditional": ("digits_conditional", {}),  # projection D, EMA of G
    "conditional concat D": ("digits_conditional", dict(model=dict(conditional=CONCAT))),
    "ema": ("digits", dict(optim=dict(ema_decay=0.999))),
    "d_training": ("digits", dict(d_training=D_TRAINING)),
    "bfloat16": ("digits", dict(model=dict(compute_dtype="bfloat16"))),
    "per-device batchnorm": ("digits", dict(model=dict(sync_batchnorm=False))),
    "conv_impl=fast": ("digits", dict(model=dict(conv_impl="fast"))),
}


def abstract_inputs(runner: parallel.Parallel, config):
    """(state, batch) as ShapeDtypeStructs laid out as `runner` lays out the real ones: the batch
    [devices, per-device batch, ...] split over the mesh; the state replicated (shard_map) or
    stacked per device (pmap)."""
    model = config.model
    split = NamedSharding(runner.mesh, P(parallel.AXIS))
    abstract = jax.eval_shape(lambda: state.create_train_state(model, config.optim, config.seed))
    if runner.parallelism == "pmap":
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((DEVICES,) + x.shape, x.dtype, sharding=split), abstract
        )
    else:
        replicated = NamedSharding(runner.mesh, P())
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract
        )
    per_device = (DEVICES, BATCH // DEVICES)
    size, channels = model.image_size, model.num_channels
    batch = jax.ShapeDtypeStruct(per_device + (size, size, channels), jnp.float32, sharding=split)
    if model.conditional.num_classes:
        batch = (batch, jax.ShapeDtypeStruct(per_device, jnp.int32, sharding=split))
    return abstract, batch


def lower_step(parallelism: str, config, platforms: tuple[str, ...]) -> jax.export.Exported:
    """The train step as `parallel.Parallel` runs it on GPUs and TPUs, built for `platforms[0]`,
    lowered for `platforms`. A pmap is exported inside a jit (jax.export takes jitted functions);
    in current JAX a pmap is a jitted shard_map, which the jit inlines."""
    runner = parallel.Parallel(parallelism)
    body = step.make_train_step(
        config.model,
        config.optim,
        config.objective,
        config.d_training,
        BATCH // runner.num_devices,
        backend=platforms[0],
    )
    program = runner.program(body)
    program = jax.jit(program) if parallelism == "pmap" else program
    return export(program, *abstract_inputs(runner, config), platforms=platforms)


def main():
    assert jax.device_count() == DEVICES, jax.devices()
    for name, (config_name, overrides) in CASES.items():
        config = tiny_config(config_name, batch_size=BATCH, **overrides)
        # The default config is also lowered for the CPU: the form check tells the two apart.
        platforms = PLATFORMS + ("cpu",) if name == "digits" else PLATFORMS
        for form, group in by_conv_form(config.model.conv_impl, platforms).items():
            for parallelism in parallel.PARALLELISMS:
                start = time.perf_counter()
                exported = lower_step(parallelism, config, group)
                text = exported.mlir_module()
                assert exported.nr_devices == DEVICES, exported.nr_devices
                assert "all_reduce" in text  # the gradient mean over the devices
                check_form(text, form)
                if config.model.compute_dtype == "bfloat16":
                    assert "bf16" in text
                print(
                    f"OK train step '{name}' ({parallelism}) for {','.join(group)}: conv_impl "
                    f"{form}, {time.perf_counter() - start:.1f} s"
                )


if __name__ == "__main__":
    main()
