"""open_run: a trained workdir's config, a checkpoint's state and the run's random init, or a one-line error (a
damaged checkpoint, one whose saved config was edited, a step deleted by a training run while it is read)."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from dcgan_jax import run_files
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints
from dcgan_jax.training import run as run_lib
from dcgan_jax.training.run import open_run
from dcgan_jax.training.state import create_train_state
from tests.helpers import max_abs_diff, tiny_config


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def _one_line_error(workdir, step=None):
    with pytest.raises(UserError) as error:
        open_run(workdir, step)
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


def test_the_latest_checkpoint_by_default(trained_run):
    run = open_run(trained_run)
    assert run.workdir == trained_run and run.step == 5 and int(run.state.step) == 5
    assert json.loads(run.config.to_json()) == json.loads(
        tiny_config(num_train_steps=5, keep_checkpoints=3).to_json()
    )
    manager, _ = checkpoints.open_workdir(trained_run)
    _assert_trees_equal(
        run.state,
        checkpoints.restore_state(
            manager, create_train_state(run.config.model, run.config.optim, run.config.seed), 5
        ),
    )


def test_a_given_step(trained_run):
    run = open_run(trained_run, step=2)
    assert run.step == 2 and int(run.state.step) == 2
    assert (
        max_abs_diff(run.sampling_g_variables, open_run(trained_run).g_variables) > 0
    )  # another checkpoint's params


def test_variables_are_the_states(trained_run):
    run = open_run(trained_run)
    _assert_trees_equal(
        run.sampling_g_variables,
        {"params": run.state.g_params, "batch_stats": run.state.g_batch_stats},
    )
    _assert_trees_equal(
        run.d_variables, {"params": run.state.d_params, "batch_stats": run.state.d_batch_stats}
    )


def test_the_initial_state_is_the_runs_random_init(trained_run):
    run = open_run(trained_run)
    initial = (
        run.initial_state
    )  # compiled in one program: the eager build's values up to float rounding
    eager = create_train_state(run.config.model, run.config.optim, run.config.seed)
    assert jax.tree.structure(initial) == jax.tree.structure(eager)
    assert max_abs_diff(initial, eager) < 1e-6
    assert int(initial.step) == 0
    assert max_abs_diff(initial.g_params, run.state.g_params) > 0  # training moved the params


def test_a_missing_step_names_the_available_ones(trained_run):
    message = _one_line_error(trained_run, step=3)
    assert "no checkpoint at step 3" in message and "[2, 4, 5]" in message


def test_a_workdir_without_checkpoints_says_to_train_first(tmp_path):
    message = _one_line_error(str(tmp_path))
    assert "no checkpoints in" in message and "train first" in message
    os.makedirs(run_files.checkpoint_dir(str(tmp_path)))  # created, but nothing completed in it
    message = _one_line_error(str(tmp_path))
    assert "no complete checkpoint" in message and "train first" in message


def test_a_damaged_checkpoint_is_a_one_line_error(trained_run, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    for root, _, files in os.walk(os.path.join(run_files.checkpoint_dir(workdir), "5", "state")):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.write(b"garbage!" * 4)
    message = _one_line_error(workdir)
    assert "unreadable" in message and "/5" in message
    assert open_run(workdir, step=4).step == 4  # the others still open


def _edit_saved_config(workdir, step, **model):
    """Edits the config saved with a checkpoint (orbax's JSON of the `config` item), as a user
    might."""
    path = os.path.join(run_files.checkpoint_dir(workdir), str(step), "config", "metadata")
    with open(path) as f:
        saved = json.load(f)
    saved["model"].update(model)
    with open(path, "w") as f:
        json.dump(saved, f)


def test_a_checkpoint_whose_saved_config_was_edited_is_one_line(trained_run, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    _edit_saved_config(workdir, 5, g_width=16)
    message = _one_line_error(workdir)
    assert "checkpoints/5 does not match the config saved with it" in message
    assert "model.g_width: saved config 16 vs checkpoint 8" in message
    assert open_run(workdir, step=4).config.model.g_width == 8  # each step opens with its own
    _edit_saved_config(workdir, 4, latent_dim=20, d_width=16)
    message = _one_line_error(workdir, step=4)
    assert "model.latent_dim: saved config 20 vs checkpoint 16" in message
    assert "model.d_width: saved config 16 vs checkpoint 8" in message


def _deleting(monkeypatch, steps_to_delete):
    """Makes each restore first delete the next of `steps_to_delete`, as a training run's clean-up
    does between a reader's listing of the steps and its restore."""
    restore, pending = checkpoints.restore_state, list(steps_to_delete)

    def racing(manager, template, step=None):
        if pending:
            shutil.rmtree(os.path.join(str(manager.directory), str(pending.pop(0))))
        return restore(manager, template, step)

    monkeypatch.setattr(checkpoints, "restore_state", racing)


def test_a_reader_racing_the_clean_up_reads_the_latest_again(trained_run, tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    _deleting(monkeypatch, [5])
    run = open_run(workdir)
    assert run.step == 4 and int(run.state.step) == 4


def test_a_given_step_that_vanishes_is_one_line(trained_run, tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    _deleting(monkeypatch, [4])
    message = _one_line_error(workdir, step=4)
    assert "checkpoints/4 vanished while it was being read" in message
    assert "deletes old checkpoints as it saves new ones" in message


def test_a_reader_gives_up_after_a_few_tries_with_one_line(trained_run, tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    monkeypatch.setattr(run_lib, "VANISHED_TRIES", 2)
    _deleting(monkeypatch, [5, 4])
    message = _one_line_error(workdir)
    assert "checkpoints/4 vanished while it was being read" in message


def test_a_step_vanishing_while_the_steps_are_listed_is_retried(trained_run, tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    create, calls = checkpoints.create_manager, []

    def listing(*args, **kwargs):  # orbax stats each step folder it lists
        calls.append(1)
        if len(calls) == 1:
            shutil.rmtree(os.path.join(run_files.checkpoint_dir(workdir), "5"))
            raise FileNotFoundError(2, "No such file or directory", f"{workdir}/checkpoints/5")
        return create(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "create_manager", listing)
    assert open_run(workdir).step == 4 and len(calls) == 2
