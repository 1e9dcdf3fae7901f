"""Argument validation as a class, in every entry point: an empty path, a non-finite or out-of-range number, an
--output that is a directory or lies under a file, a bad z file: one `error:` line naming the flag, a non-zero exit,
and nothing written."""

import os

import numpy as np
import pytest

from tests.helpers import one_line_error, run_cli

COMMANDS = ("main", "sample", "explore", "evaluate")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_workdir_is_refused(command, tmp_path):
    result = run_cli(f"dcgan_jax.{command}", "--workdir=", cwd=str(tmp_path))
    one_line_error(result, "--workdir is empty")
    assert os.listdir(tmp_path) == []  # nothing trained or written into the current directory


@pytest.mark.parametrize(
    "command, flag, fragment",
    [
        ("explore", "--start=nan", "--start must be a finite number"),
        ("explore", "--stop=inf", "--stop must be a finite number"),
        ("explore", "--noise_scale=-1", "--noise_scale must be >= 0"),
        ("evaluate", "--labels_per_class=-3", "--labels_per_class must be >= 0"),
        ("evaluate", "--num_samples=1", "--num_samples must be >= 2"),
        ("evaluate", "--classifier_steps=0", "--classifier_steps must be >= 1"),
        ("sample", "--num_samples=0", "--num_samples must be >= 1"),
        ("sample", "--batch_size=-5", "--batch_size must be >= 1"),
        ("sample", "--step=-1", "--step must be >= 0"),
        ("sample", "--seed=99999999999999999999", "--seed must be an integer in [0, 4294967295]"),
        ("explore", "--seed=-1", "--seed must be an integer in [0, 4294967295]"),
        ("main", "--num_processes=-2", "--num_processes must be >= 0"),
        (
            "main",
            "--config.optim.learning_rate=-0.0002",
            "learning_rate=-0.0002 must be a positive number",
        ),
        (
            "main",
            "--config.model.compute_dtype=int32",
            "compute_dtype='int32' must be a floating type",
        ),
        ("prepare", "--config.model.image_size=48", "image_size=48"),
    ],
)
def test_a_bad_number_is_one_line_naming_the_flag(command, flag, fragment, tmp_path):
    args = (
        [f"--workdir={tmp_path / 'run'}"]
        if command != "prepare"
        else [f"--output={tmp_path / 'cache'}"]
    )
    result = run_cli(f"dcgan_jax.{command}", *args, flag, cwd=str(tmp_path))
    one_line_error(result, fragment)
    assert not os.path.exists(tmp_path / "run" / "checkpoints") and not os.path.exists(
        tmp_path / "cache"
    )


@pytest.mark.parametrize("command", ["sample", "explore"])
def test_an_output_that_is_a_directory_or_under_a_file_is_refused(command, trained_run, tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.png").mkdir()
    for output, fragment in (
        (tmp_path / "a_dir.png", "is a directory"),
        (tmp_path / "a_file" / "out.png", "is a file, not a folder"),
    ):
        result = run_cli(f"dcgan_jax.{command}", f"--workdir={trained_run}", f"--output={output}")
        one_line_error(result, fragment)
    assert (tmp_path / "a_file").read_text() == "x" and os.listdir(tmp_path / "a_dir.png") == []


def test_a_z_file_with_nan_is_refused(trained_run, tmp_path):
    z = np.zeros((4, 16), np.float32)
    z[1, 3] = np.nan
    np.savez(tmp_path / "z.npz", z=z)
    result = run_cli(
        "dcgan_jax.explore",
        f"--workdir={trained_run}",
        f"--z_file={tmp_path / 'z.npz'}",
        f"--output={tmp_path / 'out.png'}",
    )
    one_line_error(result, "non-finite")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "flag, fragment",
    [
        ("--config.seed=99999999999999999999", "seed=99999999999999999999 must be an integer in"),
        ("--config.num_train_steps=2147483648", "num_train_steps=2147483648 must be an integer in"),
        ("--config.model.latent_dim=2000000000", "lower model.latent_dim=2000000000"),
    ],
)
def test_a_config_integer_past_its_use_is_refused_before_the_workdir_exists(
    flag, fragment, tmp_path
):
    """Seeds past 32 bits, steps past int32 and runs no memory holds: refused by validation, before
    the workdir, its lock or any folder is made."""
    result = run_cli("dcgan_jax.main", f"--workdir={tmp_path / 'run'}", flag, cwd=str(tmp_path))
    one_line_error(result, fragment)
    assert os.listdir(tmp_path) == []


CONFIG_FILES = {
    "RuntimeError": "def get_config():\n    raise RuntimeError('no GPU quota left')\n",
    "ZeroDivisionError": "SCALE = 1 / 0\n",
    "NameError": "def get_config():\n    return undefined_name\n",
    "ValueError": "def get_config():\n    raise ValueError('bad split')\n",
    "SyntaxError": "def get_config(:\n",
}


@pytest.mark.parametrize("command", ["main", "prepare"])
@pytest.mark.parametrize("kind", CONFIG_FILES)
def test_any_exception_of_a_config_file_is_one_line_naming_the_file(command, kind, tmp_path):
    path = tmp_path / "my_config.py"
    path.write_text(CONFIG_FILES[kind])
    where = "--workdir" if command == "main" else "--output"
    result = run_cli(
        f"dcgan_jax.{command}", f"--config={path}", f"{where}={tmp_path / 'out'}", cwd=str(tmp_path)
    )
    line = one_line_error(result, f"cannot load the config file {path}: it raised {kind}")
    assert result.returncode == 2 and "pass another --config" in line
    assert sorted(os.listdir(tmp_path)) == ["my_config.py"]


def test_a_config_file_returning_no_config_dict_is_one_line(tmp_path):
    path = tmp_path / "my_config.py"
    path.write_text("def get_config():\n    return {'seed': 1}\n")
    result = run_cli("dcgan_jax.main", f"--config={path}", f"--workdir={tmp_path / 'run'}")
    one_line_error(result, f"the config file {path} gave no ml_collections.ConfigDict")


@pytest.mark.parametrize(
    "text, suffix, fragment",
    [
        ("x = 1\n", "", "{path} has no get_config(); define `def get_config():`"),
        # ml_collections also logs a warning saying this; the error line is the only line
        ("def get_config():\n    pass\n", "", "{path} gave no ml_collections.ConfigDict"),
        (
            "from dcgan_jax import defaults\nget_config = defaults.get_config\n",
            ":large",
            "--config={path}:large passes 'large' to get_config(), which takes no argument; "
            "drop ':large'",
        ),
    ],
)
def test_a_config_file_mistake_is_the_only_line_and_names_its_fix(text, suffix, fragment, tmp_path):
    """No get_config, a get_config returning None, or arguments after ':' that get_config does not
    take: one line saying which, not an 'unknown field' or 'fix the file'."""
    path = tmp_path / "my_config.py"
    path.write_text(text)
    result = run_cli("dcgan_jax.main", f"--config={path}{suffix}", f"--workdir={tmp_path / 'run'}")
    one_line_error(result, fragment.format(path=path))
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
