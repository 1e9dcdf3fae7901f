"""Trains with evaluation during training: the library function `python -m dcgan_jax.main` calls.

    from dcgan_jax import defaults, train
    state = train.train_and_evaluate(defaults.load_config("configs/lsun.py"), "runs/lsun")

The one module that sees both training and evaluation: it builds the FID evaluator when config.eval.every_steps
asks for one and hands it to the loop, which knows nothing of evaluation.
"""

import ml_collections

from dcgan_jax.evaluation import fid
from dcgan_jax.training import loop, validation
from dcgan_jax.training import workdir as workdir_lib
from dcgan_jax.training.state import TrainState


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains (or resumes) in `workdir`; FID/KID every config.eval.every_steps steps when it is > 0."""
    validation.validate_config(config)
    workdir_lib.prepare_workdir(workdir)  # before the evaluator, which may first train the FID classifier
    evaluator = fid.make_training_evaluator(config, workdir) if config.eval.every_steps else None
    return loop.train(config, workdir, evaluator)
