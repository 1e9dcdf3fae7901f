"""Trains a DCGAN: `python -m dcgan_jax.main --config=configs/lsun.py --workdir=runs/lsun`.

With no --config, trains the embedded default (scikit-learn's digits, offline, minutes on a CPU).
Any config field can be overridden, e.g. --config.batch_size=64. Rerunning the same command resumes
from the latest checkpoint.
"""

import os

import numpy as np
from absl import flags
from ml_collections import config_flags

from dcgan_jax import defaults, population, run_files, train
from dcgan_jax.cli import common
from dcgan_jax.training import distributed, peers

_WORKDIR = flags.DEFINE_string(
    "workdir", "workdir", "Directory for checkpoints, samples, logs and the config."
)
common.require_nonempty("workdir")
# Several processes (hosts): see dcgan_jax/training/distributed.py and launch/. SLURM and Cloud TPU
# are detected.
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0, for a multi-process run."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", 0, "Number of processes of a multi-process run."
)
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index in [0, num_processes).")
_COORDINATOR_TIMEOUT = flags.DEFINE_integer(
    "coordinator_timeout_s", 300, "Seconds to wait for all processes to join before failing."
)
common.at_least(0, "num_processes")
common.at_least(-1, "process_id")
common.at_least(1, "coordinator_timeout_s")
with common.flag_errors():  # --config.* overrides are applied here, at definition
    _CONFIG = config_flags.DEFINE_config_file(
        "config", defaults.config_path("digits"), "Training configuration file.", lock_config=True
    )


@common.run_main
def main(argv):
    del argv
    distributed.initialize(
        _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _COORDINATOR_TIMEOUT.value
    )
    with common.flag_errors():  # the config file is loaded on first use
        config = _CONFIG.value
        config.seed  # noqa: B018 (a first use: loads the file inside the guard)
    print(
        f"training {config.data.dataset} at {config.model.image_size}px for {config.num_train_steps} steps "
        f"in {os.path.abspath(_WORKDIR.value)}",
        flush=True,
    )
    with peers.guarded(_WORKDIR.value):  # a lost peer: one line naming it and the checkpoint
        state = train.train_and_evaluate(config, _WORKDIR.value)
    if int(np.ravel(state.step)[0]) >= config.num_train_steps:  # a population: one per member
        samples = (
            os.path.join(_WORKDIR.value, population.MEMBERS_DIR, "member_*", run_files.SAMPLES)
            if population.size(config)
            else run_files.path(_WORKDIR.value, run_files.SAMPLES)
        )
        print(
            f"done: samples in {samples}, checkpoints in "
            f"{run_files.path(_WORKDIR.value, run_files.CHECKPOINTS)}",
            flush=True,
        )


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
