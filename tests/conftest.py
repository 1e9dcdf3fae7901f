"""Shared fixtures. Helpers (tiny configs, CLI runs) live in tests/helpers.py."""

import pytest

from dcgan_jax import train
from tests.helpers import tiny_config


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A workdir trained for 5 tiny steps (checkpoints at 2, 4 and 5, sample grids at 2, 4 and 5), shared by the
    tests that read a trained run; they must not modify it (copy it first)."""
    path = str(tmp_path_factory.mktemp("trained_run"))
    train.train_and_evaluate(tiny_config(num_train_steps=5, keep_checkpoints=3), path)
    return path
