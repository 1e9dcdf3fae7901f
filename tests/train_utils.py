"""Running a few train steps directly (no loop, no files), shared by the step tests."""

import jax
import numpy as np

from dcgan_jax import input_pipeline, parallel, train


def digit_batches(config, num_steps):
    """Global batches [batch, H, W, C] in [-1, 1] of the digits data, as the loop would read them."""
    source = input_pipeline.load_source(config)
    seed = config.seed + config.shuffle_seed_offset
    return [input_pipeline.to_model_range(source.read_many(
        input_pipeline.global_batch_indices(s, config.batch_size, len(source), seed))) for s in range(num_steps)]


def run_steps(config, batches, devices=None, parallelism="pmap", step_body=None):
    """Final host state and per-step metrics after training on `batches` with the given devices."""
    runner = parallel.Parallel(parallelism, devices)
    body = step_body or train.make_train_step(config, config.batch_size // runner.num_devices)
    step = runner.compile(body)
    state = runner.replicate(train.create_train_state(config))
    history = []
    for batch in batches:
        host_batch = np.asarray(batch).reshape((runner.num_devices, -1) + batch.shape[1:])
        state, metrics = step(state, runner.shard_batch(host_batch))
        history.append({k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()})
    return jax.device_get(runner.unreplicate(state)), history


def max_abs_diff(tree_a, tree_b):
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
                         tree_a, tree_b)
    return max(jax.tree.leaves(diffs))
