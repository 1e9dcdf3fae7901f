"""Orbax checkpoints of the train state, with the resolved config stored beside each step.

Orbax writes a step into a temporary directory and renames it when complete, so a step interrupted
mid-write is never listed or read. Saves are synchronous: an asynchronous save that fails (full
disk, read-only volume) surfaces only later, as a wall of tracebacks from orbax's background
threads, and those non-daemon threads can keep the process alive; a DCGAN checkpoint (tens of MB)
takes well under a second to write, once per checkpoint_every_steps steps. The config saved with the
state lets tools (sample, explore, evaluate) rebuild the models; `run.open_run` opens a trained run
for them.
"""

import contextlib
import io
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from flax import serialization

from dcgan_jax import config_fields, run_files
from dcgan_jax.errors import AbandonedWork, UserError
from dcgan_jax.nn import models
from dcgan_jax.training.state import set_ema


def create_manager(
    workdir: str,
    keep: int = 3,
    read_only: bool = False,
    keep_every: int = 0,
    best_metric: str | None = None,
) -> ocp.CheckpointManager:
    """A manager for workdir/checkpoints keeping the latest `keep` steps, every `keep_every`-th step
    (milestones to go back to, 0: none) and, with `best_metric` (e.g. 'fid', lower is better), the
    checkpoint of its lowest value among those saved with one (`save(metrics=)`)."""
    policies = [ocp.checkpoint_managers.LatestN(keep)]
    if keep_every:
        policies.append(ocp.checkpoint_managers.EveryNSteps(keep_every))
    if best_metric:
        policies.append(
            ocp.checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: -metrics[best_metric],
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=False,
    )
    return ocp.CheckpointManager(
        run_files.checkpoint_dir(workdir), options=options, item_names=("state", "config")
    )


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    saved_config: Mapping[str, Any],
    metrics: dict | None = None,
) -> None:
    """Saves `state` with the run's config as JSON data (and `metrics`, e.g. {'fid': ...}, which the
    best-score policy ranks)."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_saved_entries(state)),
            config=ocp.args.JsonSave(dict(saved_config)),
        ),
        metrics=metrics,
        force=True,
    )


def restore_for_training(
    manager: ocp.CheckpointManager,
    template: Any,
    workdir: str,
    ema: bool,
    accept: Callable[[ml_collections.ConfigDict, str], None],
) -> Any:
    """The latest complete checkpoint's state if there is one, else `template`. `accept(saved
    config, where)` raises when the checkpoint cannot be resumed with this run's config; `ema`:
    whether this run keeps a moving average."""
    step = manager.latest_step()
    if step is None:
        return template
    where = os.path.join(run_files.checkpoint_dir(workdir), str(step))
    try:
        saved_config = restore_config(manager, step)
    except Exception as e:  # orbax raises many types for damaged files
        raise _unreadable(manager, step, where, e) from None
    accept(saved_config, where)
    try:  # in the layout it was saved with; then EMA on or off as the config says (turned on: it starts from G)
        restored = restore_state(
            manager, set_ema(template, bool(saved_config.optim.ema_decay)), step
        )
    except Exception as e:
        raise _unreadable(manager, step, where, e) from None
    return set_ema(restored, ema)


def _unreadable(
    manager: ocp.CheckpointManager, step: int, where: str, error: Exception
) -> AbandonedWork:
    older = [s for s in manager.all_steps() if s < step]
    hint = (
        f"move it out of the way to resume from step {max(older)}"
        if older
        else "move it out of the way to start afresh"
    )
    reason = " ".join(str(error).split())[:200]
    return AbandonedWork(
        f"checkpoint {where} is unreadable ({type(error).__name__}: {reason}); {hint}"
    )


def _state_bytes(state: Any) -> int:
    return sum(int(getattr(leaf, "nbytes", 0)) for leaf in jax.tree.leaves(state))


def check_room(directory: str, state: Any, step: int) -> None:
    """Refuses, before writing, a checkpoint the disk cannot hold (twice the state's bytes, for
    orbax's temporary copy), or a directory that cannot be written: the one-line error a failed
    write would otherwise bury."""
    needed, free = 2 * _state_bytes(state), shutil.disk_usage(directory).free
    if free < needed:
        raise UserError(
            f"not enough disk space for the checkpoint of step {step}: {free / 2**20:.0f} MiB free in "
            f"{directory}, about {needed / 2**20:.0f} MiB needed; free space and rerun (training resumes "
            f"from the last complete checkpoint)"
        )
    if not os.access(directory, os.W_OK):
        raise UserError(
            f"cannot write checkpoints to {directory} (permission denied); fix its permissions and rerun"
        )


def save_or_fail(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    saved_config: Mapping[str, Any],
    wait: bool = False,
    metrics: dict | None = None,
) -> None:
    """`save`, turning a failed write (disk full, permissions, file size limits) into one line and
    ending the process (AbandonedWork): orbax's writer threads print tracebacks and may not finish,
    so what they print while the write fails is dropped, and nothing waits for them. A failed write
    leaves only an orbax temporary directory, which is never read; earlier steps stay intact.
    (`wait` is kept for callers; saves are synchronous.)
    """
    del wait
    check_room(str(manager.directory), state, step)
    try:
        with quiet_orbax():
            save(manager, step, state, saved_config, metrics)
            manager.wait_until_finished()
    except Exception as e:
        complete = [s for s in manager.all_steps() if s != step]
        kept = (
            f"step {max(complete)} is the last complete checkpoint (intact)"
            if complete
            else "no earlier checkpoint"
        )
        raise AbandonedWork(
            f"could not write the checkpoint of step {step} to {manager.directory} "
            f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); {kept}; free space or fix "
            f"permissions and rerun: training resumes from the last complete checkpoint"
        ) from None


@contextlib.contextmanager
def quiet_orbax():
    """Runs an orbax read or write with what it prints held back: when the files are damaged or the
    disk is full, orbax's threads log the failure with tracebacks and tensorstore's callbacks print
    more, a wall of text around the one line the caller reports. On success whatever was printed
    passes through."""
    printed, verbosity = io.StringIO(), logging.get_verbosity()
    logging.set_verbosity(logging.FATAL)
    try:
        with contextlib.redirect_stderr(printed):
            try:
                yield
            except Exception:
                time.sleep(
                    0.5
                )  # tensorstore's callbacks keep printing for a moment after the failure
                raise
    finally:
        logging.set_verbosity(verbosity)
    sys.stderr.write(printed.getvalue())


def _saved_entries(state: Any) -> dict:
    """The state's entries as saved: those that are None (an off option, e.g. no EMA) are left out,
    so checkpoints without them keep the layout of earlier versions."""
    return {k: v for k, v in serialization.to_state_dict(state).items() if v is not None}


def restore_state(manager: ocp.CheckpointManager, template: Any, step: int | None = None) -> Any:
    """The state saved at `step` (default: latest), in the structure of `template` (its None entries
    stay None)."""
    step = manager.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _saved_entries(template))
    with quiet_orbax():
        restored = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
    absent = {k: None for k, v in serialization.to_state_dict(template).items() if v is None}
    return serialization.from_state_dict(template, {**absent, **restored["state"]})


def restore_config(
    manager: ocp.CheckpointManager, step: int | None = None
) -> ml_collections.ConfigDict:
    """The config saved with `step` (default: latest), mapped onto today's fields
    (`config_fields.from_saved`)."""
    step = manager.latest_step() if step is None else step
    with quiet_orbax():
        restored = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return config_fields.from_saved(restored["config"])


def open_workdir(workdir: str):
    """(manager, config) of a trained workdir, read-only; a clear error when it holds no
    checkpoint."""
    if not os.path.isdir(run_files.checkpoint_dir(workdir)):
        raise UserError(
            f"no checkpoints in {run_files.checkpoint_dir(workdir)}: train first with "
            f"`python -m dcgan_jax.main --workdir={workdir}`"
        )
    manager = create_manager(workdir, read_only=True)
    if manager.latest_step() is None:
        raise UserError(
            f"no complete checkpoint in {run_files.checkpoint_dir(workdir)}: train first with "
            f"`python -m dcgan_jax.main --workdir={workdir}`"
        )
    try:
        config = restore_config(manager)
    except Exception as e:  # orbax raises many types for damaged files
        raise UserError(
            f"the config saved in {run_files.checkpoint_dir(workdir)}/{manager.latest_step()} is unreadable "
            f"({type(e).__name__}: {' '.join(str(e).split())[:200]})"
        ) from None
    try:
        models.build_models(config.model)
    except (ValueError, TypeError, AttributeError) as e:
        raise UserError(
            f"the config saved in {run_files.checkpoint_dir(workdir)} cannot build the models ({e}); was it written "
            f"by another version of dcgan_jax?"
        ) from None
    return manager, config
