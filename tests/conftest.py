"""Shared test helpers: tiny configs and running the CLIs in subprocesses."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**overrides):
    """The digits config shrunk so a step takes milliseconds."""
    from configs import digits
    config = digits.get_config()
    config.g_width = 8
    config.d_width = 8
    config.batch_size = 16
    config.latent_dim = 16
    config.num_fixed_samples = 16
    config.num_train_steps = 4
    config.log_every_steps = 2
    config.sample_every_steps = 2
    config.checkpoint_every_steps = 2
    config.update(overrides)
    return config


def run_cli(module: str, *args: str, devices: int = 1, timeout: float = 600, env=None):
    """Runs `python -m module args` with `devices` simulated CPU devices; returns the CompletedProcess."""
    full_env = dict(os.environ, JAX_PLATFORMS="cpu",
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


TINY_FLAGS = ("--config.g_width=8", "--config.d_width=8", "--config.batch_size=16", "--config.latent_dim=16",
              "--config.num_fixed_samples=16", "--config.log_every_steps=2", "--config.sample_every_steps=2",
              "--config.checkpoint_every_steps=2")


@pytest.fixture
def tiny():
    return tiny_config
