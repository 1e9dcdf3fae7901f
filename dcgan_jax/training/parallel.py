"""Running one per-device step body under `jax.pmap` or `jax.shard_map` over a 1-D mesh of all
devices.

The body is written once with named-axis collectives (`lax.pmean(..., AXIS)`,
`lax.axis_index(AXIS)`). Under pmap the train state carries a leading device axis; under shard_map
it is one replicated global array. Batches always arrive from the host as numpy arrays shaped
[local_devices, per_device_batch, ...].
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"
PARALLELISMS = ("pmap", "shard_map")
# XLA:CPU hands convolutions to YNNPACK by default; its own (Eigen) convolutions run this project's
# train step 1.4x faster (benchmarks/train_step.py, 64 px: 0.65 vs 0.93 s/step on 2 cores).
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def varying(tree: Any) -> Any:
    """Marks replicated values as per-device before differentiating with respect to them.

    Under shard_map, AD sums the gradient of a replicated (invariant) input over the axis by itself;
    as a per-device value its gradient stays local, and `lax.pmean` then gives the global-batch mean
    under pmap and shard_map alike.
    """
    return jax.tree.map(lambda x: lax.pcast(x, AXIS, to="varying"), tree)


class Parallel:
    """Compiles a step and moves state and batches in the layout the chosen parallelism wants."""

    def __init__(self, parallelism: str = "pmap", devices: Sequence[jax.Device] | None = None):
        """`devices` (default: all devices of all hosts) lets tests compare runs on fewer
        devices."""
        if parallelism not in PARALLELISMS:
            raise ValueError(
                f"parallelism={parallelism!r} is not supported; use one of {PARALLELISMS}"
            )
        self.parallelism = parallelism
        self.devices = list(devices) if devices is not None else jax.devices()
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        self.mesh = Mesh(np.asarray(self.devices), (AXIS,))

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def compile(
        self, body: Callable[..., tuple[Any, Any]], num_replicated: int = 0
    ) -> Callable[..., tuple[Any, Any]]:
        """`body(state, per_device_batch, *replicated) -> (state, metrics)` as one compiled program;
        the state buffer is donated. The `num_replicated` trailing arguments (host values, the same
        on every device: a population member's index and values) are passed whole to every
        device."""
        options = CPU_COMPILER_OPTIONS if all(d.platform == "cpu" for d in self.devices) else None
        program = self.program(body, num_replicated, options)
        # pmap takes no compiler options: on CPU it is compiled with them ahead of time, at the
        # first call (single host only: ahead-of-time pmap takes global shapes).
        if self.parallelism == "shard_map" or options is None or jax.process_count() > 1:
            return program
        compiled = []

        def step(state, batch, *replicated):
            if not compiled:
                lowered = program.lower(state, batch, *replicated)
                compiled.append(lowered.compile(compiler_options=options))
            return compiled[0](state, batch, *replicated)

        return step

    def program(
        self,
        body: Callable[..., tuple[Any, Any]],
        num_replicated: int = 0,
        compiler_options: dict[str, Any] | None = None,
    ) -> Callable[..., tuple[Any, Any]]:
        """`body` mapped over the devices, as `compile` runs it on GPUs and TPUs: a jitted
        shard_map (with `compiler_options`) or a pmap. Traceable, unlike `compile`'s ahead-of-time
        pmap on CPU, so a CPU machine can lower a GPU's or TPU's step with jax.export
        (tests/test_accelerator_lowering.py)."""
        if self.parallelism == "shard_map":

            def per_shard(state, batch, *replicated):
                # The local block of the [devices, ...] batch (images, or images and labels) has a
                # leading axis of 1.
                return body(state, jax.tree.map(lambda x: x[0], batch), *replicated)

            mapped = jax.shard_map(
                per_shard,
                mesh=self.mesh,
                in_specs=(P(), P(AXIS)) + (P(),) * num_replicated,
                out_specs=(P(), P()),
            )
            return jax.jit(mapped, donate_argnums=0, compiler_options=compiler_options)
        return jax.pmap(
            body,
            axis_name=AXIS,
            in_axes=(0, 0) + (None,) * num_replicated,
            donate_argnums=0,
            devices=self.devices,
        )

    def replicate(self, tree: Any) -> Any:
        """Host (or single-device) pytree -> the step's state layout, identical on every device."""
        if self.parallelism == "pmap":
            n = len(self.local_devices)
            stacked = jax.tree.map(
                lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), jax.device_get(tree)
            )
            return jax.pmap(lambda x: x, devices=self.devices)(stacked)
        # From host copies: each host fills its own devices (device_put of a device array would be a
        # cross-host copy).
        sharding = NamedSharding(self.mesh, P())
        return jax.tree.map(
            lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda index: x[index]),
            jax.device_get(tree),
        )

    def unreplicate(self, tree: Any) -> Any:
        """The step's state layout -> one copy (still on device; `jax.device_get` it for the
        host)."""
        if self.parallelism == "pmap":
            # The first local copy: x[0] would be a program over all hosts' devices, compiled for
            # every leaf.
            return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)
        return tree

    def shard_batch(self, batch: Any) -> Any:
        """Host batch [local_devices, per_device_batch, ...] -> device arrays (global over all hosts
        for shard_map)."""
        if self.parallelism == "pmap":
            return batch
        sharding = NamedSharding(self.mesh, P(AXIS))
        return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
