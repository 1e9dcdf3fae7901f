"""A population's train state and step (config.population; dcgan_jax/population.py): every leaf
of the state carries a leading member axis, and one compiled program steps every member.

Member i's step is the single-run step (training/step.py) with the member's varied hyperparameters
given as traced numbers instead of constants; each member reads the data order of its own seed
(`member_batches`), so member i computes what the single run of `population.member_config(i)`
computes: tests/training/test_members.py compares them. Sharing one data order would save the
input pipeline's work, but then a member would not be any single run.

Two forms (population.vectorize):
- 'vmap': one program over all members (`jax.vmap` of the step): their convolutions become one
  grouped convolution each. Accelerators run it as one wide program; XLA:CPU ran it 2x slower per
  member than the single step (benchmarks/population.py).
- 'loop': the step compiled once with the member's values as inputs, called member after member,
  each member's state its own device tree (`to_device`; stacked only on the host, for checkpoints
  and grids). Per member it is the single step, bit for bit where nothing varies; it saves the
  N-1 compilations, processes and input pipelines of separate runs. 'auto' picks loop on CPU, vmap
  elsewhere.
"""

import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax import population
from dcgan_jax.training import collapse
from dcgan_jax.training.state import TrainState, create_train_state, set_ema
from dcgan_jax.training.step import make_train_step

GROUPS = ("optim", "objective", "d_training")  # the groups whose fields can vary (TRACED)


def resolve_vectorize(vectorize: str, backend: str = "") -> str:
    """'vmap' or 'loop' for population.vectorize on `backend` ('' = JAX's default)."""
    if vectorize != "auto":
        return vectorize
    return "loop" if (backend or jax.default_backend()) == "cpu" else "vmap"


def create_state(
    model: ml_collections.ConfigDict,
    optims: Sequence[ml_collections.ConfigDict],
    seeds: Sequence[int],
) -> TrainState:
    """Every member's fresh state (its own optim group and seed) stacked on a leading axis; all
    keep a moving average of G when one does (population.keeps_ema)."""
    ema = any(optim.ema_decay for optim in optims)
    states = [
        set_ema(create_train_state(model, optim, seed), ema) for optim, seed in zip(optims, seeds)
    ]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def member_state(state: TrainState, member: int) -> TrainState:
    """Member `member`'s slice of a population state (host or device arrays)."""
    return jax.tree.map(lambda x: x[member], state)


def without_member_axis(shapes: dict[str, tuple], members: int) -> dict[str, tuple]:
    """A population's saved shapes (a leading axis of `members`) as one member's; unchanged for a
    plain run (members 0)."""
    if not members:
        return shapes
    return {k: s[1:] if s[:1] == (members,) else ("no member axis", *s) for k, s in shapes.items()}


def varied_values(varied: dict[str, list]) -> dict[str, np.ndarray]:
    """population.varied's {field: one value per member} as the arrays the step reads (float32;
    int32 for counts)."""
    return {
        field: np.asarray(values, np.int32 if population.TRACED[field] is int else np.float32)
        for field, values in varied.items()
    }


def _with_values(fields: dict[str, Any], name: str, values: dict[str, Any]):
    """An attribute view of config group `name` (its `fields`) with the varied fields replaced by
    `values` (traced numbers inside the step); ConfigDicts take no arrays."""
    fields = dict(fields)
    for field, value in values.items():
        group_name, _, field_name = field.partition(".")
        if group_name == name:
            fields[field_name] = value
    return types.SimpleNamespace(**fields)


def make_member_step(
    model: ml_collections.ConfigDict,
    groups: dict[str, Any],
    per_device_batch: int,
) -> Callable[[TrainState, Any, dict[str, jax.Array]], tuple[TrainState, dict]]:
    """(member state, member batch, member values) -> (state, metrics): the single-run step with
    the varied fields as traced inputs (built inside the trace, where the values exist)."""

    def step(state, batch, values):
        views = {name: _with_values(groups[name].items(), name, values) for name in GROUPS}
        body = make_train_step(
            model, views["optim"], views["objective"], views["d_training"], per_device_batch
        )
        return body(state, batch)

    return step


def compile_step(
    runner,
    model: ml_collections.ConfigDict,
    groups: dict[str, Any],
    per_device_batch: int,
    values: dict[str, np.ndarray],
    vectorize: str,
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """`step(population state, batch [local devices, members, per-device batch, ...])` -> (state,
    metrics) compiled by `runner` (training/parallel.Parallel) in `vectorize`'s form. Metrics:
    `host_metrics` reads them."""
    member_step = make_member_step(model, groups, per_device_batch)
    if resolve_vectorize(vectorize) == "vmap":
        return runner.compile(
            lambda state, batch: jax.vmap(member_step)(
                state, batch, jax.tree.map(jnp.asarray, values)
            )
        )

    compiled = runner.compile(member_step, num_replicated=1)

    def step(states, batch):
        new_states, metrics = [], []
        for i, state in enumerate(states):  # each member's own state: no slicing in the program
            state, m = compiled(state, member_batch(batch, i), {k: v[i] for k, v in values.items()})
            new_states.append(state)
            metrics.append(m)
        return new_states, metrics

    return step


def to_device(runner, state: TrainState, vectorize: str, num_members: int) -> Any:
    """A host state in the layout the step takes: a plain run's or a vmapped population's
    replicated as one tree; in the loop form a list of each member's own device state (calling
    the compiled step on a slice of one stacked state and writing it back ran 15-35% slower per
    member on CPU than the single step)."""
    if not num_members or resolve_vectorize(vectorize) == "vmap":
        return runner.replicate(state)
    return [runner.replicate(member_state(state, i)) for i in range(num_members)]


def host_state(runner, device_state: Any) -> TrainState:
    """The host copy of `to_device`'s layout: the stacked population state, or a plain run's."""
    if isinstance(device_state, list):
        parts = [jax.device_get(runner.unreplicate(s)) for s in device_state]
        return jax.tree.map(lambda *leaves: np.stack(leaves), *parts)
    return jax.device_get(runner.unreplicate(device_state))


def member_batch(batch: Any, member: int) -> Any:
    """Member `member`'s [local devices, per-device batch, ...] of a population batch."""
    return jax.tree.map(lambda x: x[:, member], batch)


def member_batches(iterators: Sequence[Iterator[Any]]) -> Iterator[Any]:
    """Each member's batches (its own data order) stacked on axis 1: [local devices, members,
    per-device batch, ...]."""
    for batches in zip(*iterators):
        yield jax.tree.map(lambda *parts: np.stack(parts, axis=1), *batches)


def host_metrics(runner, metrics: Any, is_population: bool) -> list[dict[str, float]]:
    """A step's metrics on the host: one dict per member, in either form (one for a plain run)."""
    if not is_population:
        return [{k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()}]
    if isinstance(metrics, list):  # loop: one dict per member
        fetched = [jax.device_get(runner.unreplicate(m)) for m in metrics]
        return [{k: float(v) for k, v in m.items()} for m in fetched]
    fetched = jax.device_get(runner.unreplicate(metrics))  # vmap: [members] per metric
    n = len(next(iter(fetched.values())))
    return [{k: float(v[i]) for k, v in fetched.items()} for i in range(n)]


def mean_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """A plain run's metrics, or a population's averaged over its members (`finite`: the
    smallest): the run's own console line, metrics.jsonl and TensorBoard."""
    if len(rows) == 1:
        return rows[0]
    mean = {k: sum(row[k] for row in rows) / len(rows) for k in rows[0]}
    return {**mean, "finite": min(row["finite"] for row in rows)}


def check_finite(rows: list[dict[str, float]], step: int, manager) -> None:
    """collapse.check_finite of each member, naming the member that diverged."""
    for i, row in enumerate(rows):
        try:
            collapse.check_finite(row, step, manager)
        except collapse.DivergenceError as e:
            if len(rows) == 1:
                raise
            raise collapse.DivergenceError(f"population member {i}: {e}") from None
