"""Shared fixtures. Helpers (tiny configs, CLI runs) live in tests/helpers.py."""

import os
import sys
import tempfile
import types

# JAX's persistent compilation cache for this process and every command the tests start (they inherit the
# environment): the many short runs of the same tiny models compile once per machine instead of once per process
# (a tiny `main` run: 27 s cold, 8 s warm). Set before JAX is imported; an existing setting wins.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(tempfile.gettempdir(), f"dcgan_jax_tests_jax_cache_{os.getuid()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
from tests.helpers import TEST_XLA_FLAGS  # noqa: E402  (imports JAX; its XLA flags are read at backend start-up)

os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# TensorBoard's readers (EventAccumulator in the tests) use its own TF-free stub rather than TensorFlow: a process
# that has loaded TensorFlow cannot import torch's compiler (it segfaults), and what the tests read is the
# project's TF-free event files. TensorBoard takes the stub when `tensorboard.compat.notf` is importable.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dcgan_jax import train  # noqa: E402
from dcgan_jax.evaluation import classifier  # noqa: E402
from dcgan_jax.nn import latent, models  # noqa: E402
from tests.helpers import eval_config, tiny_config  # noqa: E402


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


@pytest.fixture(scope="session")
def fid_classifier(tmp_path_factory):
    """A tiny FID classifier of the digits at 32px (`eval_config`), trained once into a temporary dir: (config, meta).
    Its config.eval.classifier.dir is the dir; copy the config before changing it."""
    config = eval_config(tmp_path_factory.mktemp("fid_classifier"))
    model = config.model
    return config, classifier.train_and_save(
        config.eval.classifier, config.data, model.image_size, model.num_channels
    )


@pytest.fixture(scope="session")
def untrained_generator():
    """(tiny config, G variables at init, 12 z): for tests of G-layer tools that need no training."""
    config = tiny_config()
    g_vars, _ = models.init_variables(jax.random.PRNGKey(0), config.model)
    z = np.asarray(latent.sample_z(jax.random.PRNGKey(1), 12, config.model.latent_dim))
    return config, g_vars, z


# .ci/run's second path: the tests the newcomer's install skipped (an extra missing) are listed here, one node id a
# line, and run again once every extra is installed, where none may skip.
SKIPPED_LOG = os.environ.get("DCGAN_JAX_SKIPPED_LOG")


def _log_skip(report):
    if SKIPPED_LOG and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        with open(SKIPPED_LOG, "a") as f:
            f.write(f"{report.nodeid}\t{reason}\n")


def pytest_runtest_logreport(report):
    _log_skip(report)


def pytest_collectreport(report):
    _log_skip(report)
