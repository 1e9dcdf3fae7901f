"""Checkpoint round trip: what is restored is exactly what was saved, config included."""

import json

import jax
import numpy as np

from dcgan_jax.training import checkpoints
from dcgan_jax.training.state import create_train_state
from tests.helpers import digit_batches, run_steps, tiny_config


def test_save_restore_round_trip_is_identical(tmp_path):
    config = tiny_config()
    state, _ = run_steps(config, digit_batches(config, 2))
    manager = checkpoints.create_manager(str(tmp_path), keep=2)
    checkpoints.save(manager, 2, state, json.loads(config.to_json()))
    manager.wait_until_finished()

    reader, restored_config = checkpoints.open_workdir(str(tmp_path))
    fresh = create_train_state(restored_config.model, restored_config.optim, restored_config.seed)
    restored = checkpoints.restore_state(reader, fresh)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
    assert json.loads(restored_config.to_json()) == json.loads(config.to_json())


def test_only_the_latest_checkpoints_are_kept(tmp_path):
    config = tiny_config()
    state = create_train_state(config.model, config.optim, config.seed)
    manager = checkpoints.create_manager(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        checkpoints.save(
            manager, step, state.replace(step=np.int32(step)), json.loads(config.to_json())
        )
    manager.wait_until_finished()
    assert manager.all_steps() == [2, 3]
