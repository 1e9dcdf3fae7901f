"""open_run: a trained workdir's config, a checkpoint's state and the run's random init, or a one-line error."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from dcgan_jax import run_files
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints
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
