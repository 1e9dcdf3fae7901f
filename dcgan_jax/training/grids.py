"""The sample grids saved during training: G's inputs (the same fixed z for the whole run, and fresh
z at each sampled step, both functions of (seed, step) so that a resumed run draws exactly what an
uninterrupted one would), drawing them, and redrawing at a resume those a failed write lost. A
population draws each member's grids into the member's folder, from its own seed."""

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from dcgan_jax import population, rng_tags, run_files, visualize
from dcgan_jax.nn import generate, latent
from dcgan_jax.training import checkpoints, members
from dcgan_jax.training.state import TrainState, set_ema


class Target(NamedTuple):
    """One run whose grids a sample step draws: a plain run, or member `member` of a population
    (its folder, reporter and seed)."""

    workdir: str
    reporter: Any  # training/reporting.Reporter
    seed: int
    member: int | None = None

    def sampling_g(self, state: TrainState) -> Any:
        """This run's sampling G (its moving average when kept) in a host state: the run's, or the
        member's slice of a population's."""
        return (
            state if self.member is None else members.member_state(state, self.member)
        ).sampling_g_variables


def grid_columns(num_samples: int, num_classes: int) -> int | None:
    """Columns of the training sample grids: None (square) for an unconditional run; for a
    conditional one, one row per class with num_samples // num_classes columns (at least 1)."""
    return max(1, num_samples // num_classes) if num_classes else None


def _grid_inputs(
    model: ml_collections.ConfigDict, num_samples: int, rng: jax.Array, fresh_per_row: bool
) -> np.ndarray:
    num_classes = model.conditional.num_classes
    if not num_classes:
        return np.asarray(latent.sample_z(rng, num_samples, model.latent_dim, model.z_distribution))
    columns = grid_columns(num_samples, num_classes)
    rows = (
        num_classes if fresh_per_row else 1
    )  # fixed grids: the same z in every row, so a column holds one style
    z = np.asarray(latent.sample_z(rng, rows * columns, model.latent_dim, model.z_distribution))
    z = np.tile(z, (num_classes // rows, 1))
    return latent.with_class(z, np.repeat(np.arange(num_classes), columns), num_classes)


def fixed_z(model: ml_collections.ConfigDict, num_samples: int, seed: int) -> np.ndarray:
    """G's inputs for the fixed-z grids: the same for the whole run (and for reruns)."""
    return _grid_inputs(
        model,
        num_samples,
        jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.FIXED_GRID_Z),
        fresh_per_row=False,
    )


def random_z(
    model: ml_collections.ConfigDict, num_samples: int, seed: int, step: int
) -> np.ndarray:
    """Fresh G inputs for the random-z grid of `step`: a function of (seed, step), so reruns draw
    the same."""
    rng = jax.random.fold_in(
        jax.random.fold_in(jax.random.PRNGKey(seed), rng_tags.RANDOM_GRID_Z), step
    )
    return _grid_inputs(model, num_samples, rng, fresh_per_row=True)


def to_rewrite(
    workdir: str, kept_steps: Iterable[int], every: int, zs: Sequence[str]
) -> list[tuple[int, str]]:
    """(step, z) of the grids of the kept checkpoint steps `kept_steps` that a resumed run rewrites
    from those checkpoints: a grid of a sample step (a multiple of `every`) that is missing (a run
    killed between a checkpoint and its grids, as versions that saved the checkpoint first could
    be), and any grid that exists but is empty or unreadable (a failed write)."""
    found = []
    for step in sorted(kept_steps):
        for z in zs:
            path = run_files.grid_file(workdir, z, step)
            if os.path.exists(path):
                if visualize.read_grid(path) is None:
                    found.append((step, z))
            elif step % every == 0:
                found.append((step, z))
    return found


def save(
    target: Target,
    model: ml_collections.ConfigDict,
    g_variables: Any,
    count: int,
    step: int,
    zs: Sequence[str],
) -> None:
    """The grids `zs` ('fixed' and/or 'random') of `step`, `count` images each, drawn by G's
    `g_variables` into the target's folder and TensorBoard."""
    columns = grid_columns(count, model.conditional.num_classes)
    for z in zs:
        inputs = (
            fixed_z(model, count, target.seed)
            if z == "fixed"
            else random_z(model, count, target.seed, step)
        )
        images = generate.generate(model, g_variables, inputs)
        target.reporter.samples(step, images, z=z, num_cols=columns)


def rewrite_missing(
    targets: Sequence[Target],
    manager,
    template: TrainState,
    state: TrainState,
    model: ml_collections.ConfigDict,
    count: int,
    every: int,
    zs: Sequence[str],
    say: Callable[[str], None],
) -> None:
    """At a resume, rewrites each target's grids of the kept checkpoints that are missing (a run
    killed between a checkpoint and its grids, before grids were written first) or empty or
    unreadable (a failed write), each from its own checkpoint: the resume step's from the restored
    host `state`, an earlier one's restored from its step (in the layout it was saved with,
    `template` giving the shapes), once for all the members that need it. Grids of steps whose
    checkpoint is gone cannot be redrawn and are left as they are; so are an earlier step's in a
    multi-process run, where only process 0 draws and orbax's reads are collective."""
    start_step = int(np.ravel(state.step)[0])
    kept = [s for s in manager.all_steps() if s == start_step or jax.process_count() == 1]
    todo = [to_rewrite(target.workdir, kept, every, zs) for target in targets]
    for step in sorted({s for found in todo for s, _ in found}):
        source = state
        if step != start_step:
            try:  # orbax raises many types for damaged files
                saved = checkpoints.restore_config(manager, step)
                source = checkpoints.restore_state(
                    manager, set_ema(template, population.keeps_ema(saved)), step
                )
            except Exception as e:
                say(
                    f"warning: the sample grids of step {step} are missing or damaged and its "
                    f"checkpoint is unreadable ({type(e).__name__}); they are left as they are"
                )
                continue
        for target, found in zip(targets, todo):
            missing = [z for s, z in found if s == step]
            if missing:
                save(target, model, target.sampling_g(source), count, step, missing)
                where = "" if target.member is None else f" of member {target.member}"
                say(f"rewrote the missing or damaged sample grids{where} of step {step}")
