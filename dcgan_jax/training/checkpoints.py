"""Orbax checkpoints of the train state, with the resolved config stored beside each step.

Orbax writes a step into a temporary folder renamed when complete: a step cut mid-write is never
read. Saves are synchronous: a failing asynchronous save (full disk) surfaces only later, as
tracebacks from orbax's non-daemon threads that can keep the process alive; a DCGAN checkpoint
(tens of MB) takes well under a second. The config saved with the state lets the tools rebuild
the models (`run.open_run`).
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

from dcgan_jax import config_fields, population, run_files
from dcgan_jax.errors import AbandonedWork, UserError
from dcgan_jax.nn import models
from dcgan_jax.training import members as members_lib
from dcgan_jax.training import workdir as workdir_lib
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
    checkpoint of its lowest value among those saved with one (`save(metrics=)`). A writer refuses
    step folders that are links (`workdir.refuse_linked_steps`); any reader, damaged score files
    (`workdir.check_scores`)."""
    if not read_only:
        workdir_lib.refuse_linked_steps(workdir)
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
        # orbax writes a step's metrics to disk only with a best_fn; without them a resumed run
        # forgets which checkpoint was best, and the BestN policy drops it at the next save
        best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
        best_mode="min",
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=False,
    )
    workdir_lib.check_scores(workdir, best_metric)
    return ocp.CheckpointManager(
        run_files.checkpoint_dir(workdir), options=options, item_names=("state", "config")
    )


class StepVanished(AbandonedWork):
    """A checkpoint deleted while it was being read: a run training in the workdir deletes old
    steps as it saves new ones. Readers of the latest step retry (`run.open_run`); reported, it
    ends the process at once, as orbax's threads of the failed read may hang."""

    def __init__(self, workdir: str, step: int | str):
        self.where = os.path.join(run_files.checkpoint_dir(workdir), str(step))
        super().__init__(
            f"checkpoint {self.where} vanished while it was being read: a run training in "
            f"{workdir} deletes old checkpoints as it saves new ones; rerun, pass --step of a kept "
            f"checkpoint, or read a copy of the workdir"
        )


def vanished(workdir: str, step: int | None, error: BaseException) -> StepVanished | None:
    """The StepVanished that explains `error`, raised while reading `step` (None: while listing the
    steps), or None when the checkpoint is still there (damaged, not deleted)."""
    directory = os.path.abspath(run_files.checkpoint_dir(workdir))
    if step is not None:
        gone = not os.path.isdir(os.path.join(directory, str(step)))
        return StepVanished(workdir, step) if gone else None
    missing = os.path.abspath(str(getattr(error, "filename", None) or ""))
    if isinstance(error, FileNotFoundError) and missing.startswith(directory + os.sep):
        return StepVanished(workdir, os.path.relpath(missing, directory).split(os.sep)[0])
    return None


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
    check_architecture(manager, step, saved_config.model, where, population.size(saved_config))
    try:  # in the layout it was saved with; then EMA on or off as the config says (turned on: it starts from G)
        restored = restore_state(
            manager, set_ema(template, population.keeps_ema(saved_config)), step
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


_MODEL_ENTRIES = ("g_params", "g_batch_stats", "d_params", "d_batch_stats")


def saved_shapes(manager: ocp.CheckpointManager, step: int) -> dict | None:
    """{path of each array of G and D: shape} as saved at `step`, from orbax's metadata (no array is
    read); None when the metadata cannot be read (a damaged checkpoint: restoring it says so)."""
    try:  # the manager's directory is absolute, as orbax's readers need
        with quiet_orbax():
            tree = ocp.StandardCheckpointHandler().metadata(manager.directory / str(step) / "state")
        return _flat_shapes({k: dict(tree[k]) for k in _MODEL_ENTRIES if k in tree})
    except Exception:  # orbax raises many types for damaged files
        return None


def _flat_shapes(tree: Any) -> dict[str, tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))[0]
    return {jax.tree_util.keystr(p): tuple(leaf.shape) for p, leaf in leaves}


def _model_shapes(model: ml_collections.ConfigDict) -> dict[str, tuple]:
    """The shapes of G's and D's variables that `model` (config.model) builds; abstract."""
    g, d = jax.eval_shape(lambda: models.init_variables(jax.random.PRNGKey(0), model))
    return _flat_shapes({k: (g if k[0] == "g" else d)[k[2:]] for k in _MODEL_ENTRIES})


def _differences(model: ml_collections.ConfigDict, saved: dict[str, tuple]) -> list[str]:
    expected = _model_shapes(model)
    return [k for k in sorted(set(expected) | set(saved)) if expected.get(k) != saved.get(k)]


def _fields_behind(
    model: ml_collections.ConfigDict, saved: dict[str, tuple]
) -> tuple[dict[str, tuple], int]:
    """({architecture field: (config's value, the value the saved shapes show)}, arrays still
    differing): best first, the field set to the value (among the sizes in the saved shapes) that
    leaves the fewest differing arrays, until none differ (three fields at most)."""
    fields = config_fields.ARCHITECTURE_FIELDS + config_fields.CLASS_FIELDS[:1]
    dims = sorted({d for shape in saved.values() for d in shape} | {0})
    best, left, found = model, len(_differences(model, saved)), {}
    while left and len(found) < 3:
        trials = []
        for field in fields:
            name = field.removeprefix("model.")
            for value in models.SUPPORTED_IMAGE_SIZES if name == "image_size" else dims:
                trial = best.copy_and_resolve_references()
                config_fields.set_field(trial, name, value)
                try:
                    trials.append((len(_differences(trial, saved)), field, value, trial))
                except (ValueError, TypeError):  # a value the models refuse
                    continue
        count, field, value, trial = min(trials, key=lambda t: t[0], default=(left, 0, 0, 0))
        if count >= left:
            break
        best, left = trial, count
        found[field] = (config_fields.get(model, field.removeprefix("model.")), value)
    return found, left


def check_architecture(
    manager: ocp.CheckpointManager,
    step: int,
    model: ml_collections.ConfigDict,
    where: str,
    members: int = 0,
) -> None:
    """Refuses, with one line naming the field and both values, a checkpoint whose arrays do not
    have the shapes its saved config's model builds (a saved config edited by hand), before
    anything is restored. A population's arrays have a leading axis of `members` first."""
    saved = saved_shapes(manager, step)
    if not saved:
        return
    saved = members_lib.without_member_axis(saved, members)
    differ = _differences(model, saved)
    if not differ:
        return
    found, left = _fields_behind(model, saved)
    said = [f"{f}: saved config {old} vs checkpoint {new}" for f, (old, new) in found.items()]
    if left or not found:  # not (only) an architecture field: name an array too
        shape = _model_shapes(model).get(differ[0])
        said.append(f"{differ[0]}: saved config {shape} vs checkpoint {saved.get(differ[0])}")
    raise UserError(
        f"checkpoint {where} does not match the config saved with it ({'; '.join(said)}); was "
        f"{where}/config edited? set the checkpoint's values back there, or retrain"
    )


def open_workdir(workdir: str):
    """(manager, config) of a trained workdir, read-only; a clear error when it holds no
    checkpoint."""
    train_first = f"train first with `python -m dcgan_jax.main --workdir={workdir}`"
    if not os.path.isdir(run_files.checkpoint_dir(workdir)):
        raise UserError(f"no checkpoints in {run_files.checkpoint_dir(workdir)}: {train_first}")
    try:
        manager = create_manager(workdir, read_only=True)
    except FileNotFoundError as e:  # a step deleted while orbax listed the steps
        raise vanished(workdir, None, e) or UserError(
            f"cannot list the checkpoints in {run_files.checkpoint_dir(workdir)} ({e}); rerun"
        ) from None
    if manager.latest_step() is None:
        raise UserError(
            f"no complete checkpoint in {run_files.checkpoint_dir(workdir)}: {train_first}"
        )
    try:
        config = restore_config(manager)
    except Exception as e:  # orbax raises many types for damaged files
        raise vanished(workdir, manager.latest_step(), e) or UserError(
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
