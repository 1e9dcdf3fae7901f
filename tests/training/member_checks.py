"""Run as a script with 8 simulated CPU devices (test_members.py): prints one OK line per check,
each a population on 8 devices against the same members' single runs on 8 devices."""

import os
import sys

# tests/helpers.xla_flags(8), set before JAX is imported.
os.environ["XLA_FLAGS"] = (
    "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=8"
)
sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)  # the repo root

import jax  # noqa: E402

from tests.training.test_members import member_differences, population_config  # noqa: E402


def main():
    assert jax.device_count() == 8, jax.devices()
    for parallelism in ("pmap", "shard_map"):
        for vectorize, bound in (("loop", 1e-6), ("vmap", 1e-5)):
            diffs = member_differences(
                population_config(), 3, parallelism=parallelism, vectorize=vectorize
            )
            assert max(diffs) <= bound, (parallelism, vectorize, diffs)
            print(
                f"OK 8 devices, {parallelism}, {vectorize}: max |member - single run| {max(diffs):.2e}"
            )


if __name__ == "__main__":
    main()
