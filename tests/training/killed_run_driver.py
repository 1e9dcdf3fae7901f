"""A run killed inside step 4's writes (test_run_outputs.py), run forked by tests/helpers.run_cli:
`python -m tests.training.killed_run_driver WORKDIR CONFIG_JSON` trains `tiny_config(**CONFIG)`
and dies (os._exit(9): no handler, no clean-up runs) after step 4's metrics row, TensorBoard
scalars and fixed-z grid, before its random-z grid and its checkpoint."""

import json
import os
import sys

from dcgan_jax import train
from dcgan_jax.training import reporting
from tests.helpers import tiny_config

real = reporting.Reporter.samples


def dying(self, step, images, z="fixed", num_cols=None):
    if step == 4 and z == "random":
        os._exit(9)
    real(self, step, images, z, num_cols)


reporting.Reporter.samples = dying
train.train_and_evaluate(tiny_config(**json.loads(sys.argv[2])), sys.argv[1])
