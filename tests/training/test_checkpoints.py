"""Checkpoint round trip: what is restored is exactly what was saved, config included; a linked step folder is
refused before a run saves."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from dcgan_jax.errors import UserError
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


def test_a_step_folder_that_is_a_link_is_refused_before_any_save(trained_run, tmp_path):
    """A run deletes old steps as it saves: deleting a linked step fails every save (after the real
    steps before it are gone). A writer refuses the link at start, naming --config.init_from."""
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    shutil.rmtree(workdir / "checkpoints" / "5")
    os.symlink(os.path.join(trained_run, "checkpoints", "5"), workdir / "checkpoints" / "5")
    with pytest.raises(UserError) as error:
        checkpoints.create_manager(str(workdir), keep=1)
    message = str(error.value)
    assert f"{workdir}/checkpoints/5 is a symbolic link" in message and "\n" not in message
    assert f"--config.init_from={trained_run}:5" in message
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4", "5"]
    assert checkpoints.create_manager(str(workdir), read_only=True).all_steps() == [2, 4, 5]
