"""Checkpoint round trip: what is restored is exactly what was saved, config included."""

import json

import jax
import numpy as np

from conftest import tiny_config
from dcgan_jax import checkpointing, train
from train_utils import digit_batches, run_steps


def test_save_restore_round_trip_is_identical(tmp_path):
    config = tiny_config()
    state, _ = run_steps(config, digit_batches(config, 2))
    manager = checkpointing.create_manager(str(tmp_path), keep=2)
    checkpointing.save(manager, 2, state, config)
    manager.wait_until_finished()

    reader, restored_config = checkpointing.open_workdir(str(tmp_path))
    restored = checkpointing.restore_state(reader, train.create_train_state(restored_config))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
    assert json.loads(restored_config.to_json()) == json.loads(config.to_json())


def test_only_the_latest_checkpoints_are_kept(tmp_path):
    config = tiny_config()
    state = train.create_train_state(config)
    manager = checkpointing.create_manager(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        checkpointing.save(manager, step, state.replace(step=np.int32(step)), config)
    manager.wait_until_finished()
    assert manager.all_steps() == [2, 3]
