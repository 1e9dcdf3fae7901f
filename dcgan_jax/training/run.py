"""A trained run, opened once for every tool: its config, a checkpoint's train state and the run's
random init.

run = open_run("runs/digits")            # the latest checkpoint; open_run(workdir, step=2000) for another
images = generate.generate(run.config.model, run.sampling_g_variables, z)
"""

import dataclasses
import functools
import time
from typing import Any

import jax
import ml_collections

from dcgan_jax import population, progress_bars, run_files
from dcgan_jax.errors import AbandonedWork, UserError
from dcgan_jax.training import checkpoints, members
from dcgan_jax.training.state import TrainState, create_train_state

# What a tool says while XLA compiles `Run.initial_state` (progress_bars.compile_notice).
INITIAL_STATE_NOTICE = "the run's initial state, the untrained baseline (XLA -O0, once per run)"


@dataclasses.dataclass(frozen=True)
class Run:
    """A checkpoint of a training workdir, restored on the host."""

    workdir: str
    config: ml_collections.ConfigDict
    step: int
    state: TrainState

    @property
    def g_variables(self) -> dict[str, Any]:
        """The trained G itself, as `TrainState.g_variables`."""
        return self.state.g_variables

    @property
    def sampling_g_variables(self) -> dict[str, Any]:
        """G as samples and evaluations use it: its moving average when the run kept one
        (optim.ema_decay), else the trained G; as `TrainState.sampling_g_variables`."""
        return self.state.sampling_g_variables

    @property
    def d_variables(self) -> dict[str, Any]:
        return self.state.d_variables

    @functools.cached_property
    def initial_state(self) -> TrainState:
        """The run's own random init (step 0): the paper's untrained baselines.

        One program compiled at XLA's lowest optimization level: it runs once, and building the
        initializers op by op (eagerly) or compiling them optimized takes 10-20 s on a CPU. The
        values are those of the eager build (tested)."""
        config = self.config
        with progress_bars.compile_notice(INITIAL_STATE_NOTICE):
            lowered = jax.jit(
                lambda: create_train_state(config.model, config.optim, config.seed)
            ).lower()
            compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
        return compiled()


# Tries of a reader of the latest checkpoint whose step vanished (a training run deleting old ones):
# each lists the steps again and reads the latest; a run saves far less often than a read takes.
VANISHED_TRIES = 5


def open_run(workdir: str, step: int | None = None, member: int | None = None) -> Run:
    """The checkpoint at `step` (default: the latest) of a training workdir, read-only, with the
    config saved beside it. A population's workdir (config.population) opens one `member`: its
    slice of the state and its single-run config (population.member_config), so every tool sees
    the run it stands for; `member` is required there and refused elsewhere.

    A workdir without checkpoints, a missing step, a damaged checkpoint or one that does not match
    its saved config is a one-line UserError. A run training in the workdir deletes old steps as it
    saves new ones: the latest is then looked up again (VANISHED_TRIES times), and a given `step`
    that vanished is one line saying so.
    """
    for attempt in range(VANISHED_TRIES - 1):
        try:
            return _open_run(workdir, step, member)
        except checkpoints.StepVanished:
            if step is not None:
                raise
            time.sleep(0.1 * (attempt + 1))
    return _open_run(workdir, step, member)


def _open_run(workdir: str, step: int | None, member: int | None) -> Run:
    manager, config = checkpoints.open_workdir(workdir)
    population.require_member(config, member, workdir)
    if member is not None:  # one past the last: its one line before anything is read
        population.member_config(config, member)
    available = sorted(manager.all_steps())
    step = manager.latest_step() if step is None else step
    if step not in available:
        raise UserError(f"no checkpoint at step {step} in {workdir}; available: {available}")
    where = f"{run_files.checkpoint_dir(workdir)}/{step}"
    try:
        if step != manager.latest_step():  # this step's own config (open_workdir's: latest's)
            config = checkpoints.restore_config(manager, step)
        checkpoints.check_architecture(manager, step, config.model, where, population.size(config))
        # an abstract template: restoring needs shapes only, and a real init costs seconds
        template = jax.eval_shape(
            lambda: (
                members.create_state(
                    config.model,
                    *zip(*((m.optim, m.seed) for m in population.member_configs(config))),
                )
                if member is not None
                else create_train_state(config.model, config.optim, config.seed)
            )
        )
        state = checkpoints.restore_state(manager, template, step)
    except UserError:  # a mismatch with the saved config
        raise
    except Exception as e:  # orbax raises many types for damaged files
        raise checkpoints.vanished(workdir, step, e) or AbandonedWork(
            f"checkpoint {where} is unreadable ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            f"pick another with --step ({available}) or retrain"
        ) from None
    if member is not None:
        config, state = (
            population.member_config(config, member),
            members.member_state(state, member),
        )
    return Run(workdir, config, step, state)
