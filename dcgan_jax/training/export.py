"""A population's member written out as a plain single-run workdir: every kept checkpoint with the
member's slice of the state and its single-run config (population.member_config), config.json, and
the member's own metrics, TensorBoard, grids and tables; a checkpoint the population scored during
training (eval.every_steps) carries the member's own FID, as its single run's would, so FID-kept
checkpoints go on being chosen by the member's scores. Every tool opens it without --member, and
`python -m dcgan_jax.main` resumes it as the member's single run would be resumed (training member i
in a population gives the params its single run gives: dcgan_jax/training/members.py).

    export_member("runs/pop", 2, "runs/pop_member2")
"""

import contextlib
import json
import os
import shutil

from dcgan_jax import population, run_files, visualize
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints, reporting
from dcgan_jax.training.run import open_run
from dcgan_jax.training.state import set_ema

# The temporary folder the export is built in, beside the output, renamed into place when complete.
PARTIAL_PREFIX = ".partial-export-"


def check_output(output: str, workdir: str) -> None:
    """Refuses an output folder that exists and holds anything (an export never mixes with other
    files), a path that is a file, or one inside the population's workdir; before any work."""
    if not output or not output.strip():
        raise UserError("--output is empty; give a folder for the exported run")
    inside = os.path.relpath(os.path.realpath(output), os.path.realpath(workdir))
    if inside == "." or not inside.startswith(".."):
        raise UserError(
            f"--output={output} is inside the population's workdir {workdir}; give a folder "
            f"outside it"
        )
    if os.path.lexists(output) and not os.path.isdir(output):
        raise UserError(f"--output={output} is a file; give a new folder for the exported run")
    if os.path.isdir(output) and os.listdir(output):
        raise UserError(f"--output={output} exists and is not empty; give a new (or empty) folder")


def export_member(workdir: str, member: int, output: str) -> list[int]:
    """Writes member `member` of the population in `workdir` as a single-run workdir `output`
    (a new or empty folder), built in a sibling temporary folder and renamed into place, so an
    interrupted export leaves no half run. Returns the checkpoint steps written."""
    check_output(output, workdir)
    manager, saved = checkpoints.open_workdir(workdir)
    if not population.size(saved):
        raise UserError(
            f"{workdir} is a single run, not a population: it is already a plain workdir (copy it)"
        )
    population.member_config(saved, member)  # one past the last member: one line, before work
    steps = sorted(manager.all_steps())
    parent = os.path.dirname(os.path.abspath(os.path.normpath(output)))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.normpath(output))
    temp = os.path.join(parent, f"{PARTIAL_PREFIX}{os.getpid()}-{name}")
    try:
        _write_checkpoints(workdir, member, steps, temp)
        _copy_member_files(population.member_dir(workdir, member), temp)
        config = population.member_config(saved, member)  # the latest step's, as the run's start
        reporting.write_config(temp, config.to_json(indent=2))
        os.replace(temp, output)  # an empty folder there (check_output) is replaced
    except OSError as e:
        raise UserError(
            f"cannot write the exported run to {output} ({e.strerror or type(e).__name__}); "
            f"free space or fix permissions and rerun"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(temp)
    return steps


def _write_checkpoints(workdir: str, member: int, steps: list[int], folder: str) -> None:
    """Every step of `steps` as the member's single run saves it: its slice of the state (with a
    moving average of G only if its own config keeps one) and that step's member config (as JSON
    data, as train.py saves a config)."""
    source, _ = checkpoints.open_workdir(workdir)
    fids = _member_fids(workdir, member)
    manager = checkpoints.create_manager(  # keeps every step written
        folder, keep=len(steps), best_metric="fid" if fids else None
    )
    for step in steps:
        member_config = population.member_config(checkpoints.restore_config(source, step), member)
        state = set_ema(open_run(workdir, step, member).state, bool(member_config.optim.ema_decay))
        scores = {"fid": fids[step]} if step in fids else None  # as train.py saves a scored step
        saved_config = json.loads(member_config.to_json())
        checkpoints.save_or_fail(manager, step, state, saved_config, metrics=scores)
    manager.close()


def _member_fids(workdir: str, member: int) -> dict[int, float]:
    """{step: FID} of the member's scores during training (its metrics.jsonl's eval rows); the
    population's checkpoints carry the members' mean instead."""
    path = population.metrics_path(workdir, member)
    if not os.path.exists(path):
        return {}
    rows = visualize.read_metrics(path)
    return {int(row["step"]): float(row["eval_fid"]) for row in rows if "eval_fid" in row}


def _copy_member_files(member_dir: str, folder: str) -> None:
    """The member's own run files (metrics.jsonl, tensorboard/, samples/, loss_curve.png, its
    evaluation tables), a single run's layout already; absent ones (a population trained before
    member folders existed) are skipped."""
    if not os.path.isdir(member_dir):
        return
    for name in sorted(os.listdir(member_dir)):
        if name in (run_files.CHECKPOINTS, run_files.CONFIG, run_files.LOCK):
            continue  # written above / a run's own
        source, target = os.path.join(member_dir, name), os.path.join(folder, name)
        if os.path.isdir(source):
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
