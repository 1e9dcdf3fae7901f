"""Damaged checkpoints as a class, in every entry point that reads one: truncated, emptied or missing state files,
a missing or broken saved config, a saved config edited to another architecture, a step folder linked to another
run's. Each command ends with one `error:` line naming the checkpoint and the way out, a non-zero exit, no traceback
(orbax's and tensorstore's threads print walls of them), and the workdir unchanged."""

import glob
import json
import os
import shutil

import pytest

from tests.helpers import TINY_FLAGS, one_line_error, run_cli, tree_digest


def _files(pattern):
    return [f for f in glob.glob(pattern, recursive=True) if os.path.isfile(f)]


DAMAGES = {
    "truncated data": lambda c: [
        os.truncate(f, 10) for f in _files(f"{c}/state/ocdbt.process_0/d/*")
    ],
    "emptied state": lambda c: [os.truncate(f, 0) for f in _files(f"{c}/state/**/*")],
    "no state": lambda c: shutil.rmtree(f"{c}/state"),
    "no config": lambda c: shutil.rmtree(f"{c}/config"),
    "broken config": lambda c: open(f"{c}/config/metadata", "w").write("{broken"),
}
COMMANDS = {
    "sample": lambda out: ("dcgan_jax.sample", f"--output={out}/s.png"),
    "explore": lambda out: ("dcgan_jax.explore", f"--output={out}/e.png"),
    "evaluate": lambda out: ("dcgan_jax.evaluate", "--task=fid"),
    "main": lambda out: ("dcgan_jax.main", *TINY_FLAGS, "--config.num_train_steps=6"),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_checkpoint_is_one_line_and_changes_nothing(
    trained_run, tmp_path, command, damage
):
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    DAMAGES[damage](str(workdir / "checkpoints" / "5"))
    before = tree_digest(workdir)
    module, *args = COMMANDS[command](tmp_path)
    result = run_cli(module, f"--workdir={workdir}", *args)
    line = one_line_error(result, "checkpoints/5")
    assert "unreadable" in line or "move it out of the way" in line, line
    assert tree_digest(workdir) == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".png")]


@pytest.mark.parametrize("command", ["sample", "explore", "evaluate"])
def test_a_workdir_without_checkpoints_says_to_train_first(tmp_path, command):
    module, *args = COMMANDS[command](tmp_path)
    result = run_cli(module, f"--workdir={tmp_path / 'empty'}", *args)
    one_line_error(result, "train first")


def _edit_saved_config(checkpoint, **model):
    path = os.path.join(checkpoint, "config", "metadata")
    with open(path) as f:
        saved = json.load(f)
    saved["model"].update(model)
    with open(path, "w") as f:
        json.dump(saved, f)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_checkpoint_whose_saved_config_was_edited_is_one_line(trained_run, tmp_path, command):
    """Every reader opens a checkpoint against its own saved config: params of width 8 under a
    saved g_width of 16 are one line naming the field and both values, before anything is built."""
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    _edit_saved_config(str(workdir / "checkpoints" / "5"), g_width=16)
    before = tree_digest(workdir)
    module, *args = COMMANDS[command](tmp_path)
    if command == "main":  # the run's own flags agree with the edited config
        args.append("--config.model.g_width=16")
    result = run_cli(module, f"--workdir={workdir}", *args)
    one_line_error(
        result,
        "checkpoints/5 does not match the config saved with it",
        "model.g_width: saved config 16 vs checkpoint 8",
    )
    assert tree_digest(workdir) == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".png")]


def test_a_step_folder_linked_to_another_run_is_refused_at_start(trained_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained_run, workdir)
    shutil.rmtree(workdir / "checkpoints" / "5")
    os.symlink(os.path.join(trained_run, "checkpoints", "5"), workdir / "checkpoints" / "5")
    before, theirs = tree_digest(workdir), tree_digest(trained_run)
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={workdir}",
        *TINY_FLAGS,
        "--config.num_train_steps=8",
        "--config.keep_checkpoints=1",
    )
    one_line_error(
        result, "checkpoints/5 is a symbolic link", f"--config.init_from={trained_run}:5"
    )
    assert tree_digest(workdir) == before and tree_digest(trained_run) == theirs
