"""Populations (config.population): N members trained side by side by one compiled step, each the
single run of its own seed and hyperparameter values.

    --config.population.size=8                                  # seeds seed, seed+1, ..., seed+7
    --config.population.seeds=0,1,2,3 --config.population.size=4
    --config.population.vary="optim.learning_rate=1e-4,2e-4;objective.label_smoothing=0,0.1"

`member_config(config, i)` is the plain single-run config member i stands for: its seed, its values,
the population off. Training member i in a population gives the params that single run gives
(dcgan_jax/training/members.py: the same step, its values as traced inputs; each member reads the
data order of its own seed, so nothing but the compiled program is shared). Only values the step
takes as numbers can differ between members (TRACED); a field that changes the state's shapes or
the program (widths, latent_dim, image size, batch size, the loss) cannot, and is refused in one
line.
"""

import os
from typing import Any

import ml_collections

from dcgan_jax import memory, run_files
from dcgan_jax.errors import UserError

# The fields a member may set for itself: numbers the step reads as traced values. Types are the
# defaults' (a member's value is converted to it).
TRACED = {
    "optim.learning_rate": float,
    "optim.beta1": float,
    "optim.beta2": float,
    "optim.adam_eps": float,
    "optim.ema_decay": float,
    "objective.label_smoothing": float,
    "d_training.pretrain_steps": int,
    "d_training.steps_per_g_step": int,
    "d_training.label_noise": float,
    "d_training.label_flip": float,
    "d_training.instance_noise": float,
    "d_training.instance_noise_decay_steps": int,
}
VECTORIZE = ("auto", "vmap", "loop")
SEED_LIMIT = 2**32  # config_fields.SEEDS: PRNGKey keeps a seed's low 32 bits
MEMBERS_DIR = "members"  # WORKDIR/members/member_<i>/: a member's metrics, TensorBoard and grids


def size(config: Any) -> int:
    """Members of a population config; 0 for a plain run (and configs saved before populations)."""
    population = config.get("population") if hasattr(config, "get") else None
    return int(population.get("size") or 0) if population is not None else 0


def member_dir(workdir: str, member: int) -> str:
    """Where member `member`'s metrics.jsonl, tensorboard/ and samples/ go: a single run's layout,
    so `tensorboard --logdir=WORKDIR/members` shows one run per member."""
    return os.path.join(workdir, MEMBERS_DIR, f"member_{member}")


def seeds(config: ml_collections.ConfigDict) -> list[int]:
    """Each member's seed: population.seeds, or seed, seed + 1, ..."""
    n, text = size(config), config.population.seeds.strip()
    if not text:
        values = [config.seed + i for i in range(n)]
    else:
        try:
            values = [int(s) for s in text.replace(" ", "").split(",")]
        except ValueError:
            raise UserError(
                f"invalid config: population.seeds={text!r} is not a comma-separated list of "
                f"integers; give one seed per member, e.g. '0,1,2'"
            ) from None
        if len(values) != n:
            raise UserError(
                f"invalid config: population.seeds has {len(values)} seeds for population.size="
                f"{n}; give one per member"
            )
    bad = [s for s in values if not 0 <= s < SEED_LIMIT]
    if bad:
        raise UserError(
            f"invalid config: member seed {bad[0]} is outside [0, 2**32); lower seed or "
            f"population.seeds"
        )
    return values


def _parse_value(field: str, text: str) -> Any:
    kind = TRACED[field]
    try:
        return kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
    except ValueError:
        raise UserError(
            f"invalid config: population.vary gives {field} the value {text!r}, not "
            f"{'an int' if kind is int else 'a float'}"
        ) from None


def varied(config: ml_collections.ConfigDict) -> dict[str, list]:
    """{field: one value per member} of population.vary ("field=v1,v2,...;field=..."): a single
    value is every member's."""
    n, out = size(config), {}
    for part in (p.strip() for p in config.population.vary.split(";")):
        if not part:
            continue
        field, sep, values = (s.strip() for s in part.partition("="))
        if not sep or not values:
            raise UserError(
                f"invalid config: population.vary part {part!r} is not FIELD=V1,V2,...; e.g. "
                f"'optim.learning_rate=1e-4,2e-4'"
            )
        _check_traced(config, field)
        if field in out:
            raise UserError(f"invalid config: population.vary gives {field} twice; give it once")
        parsed = [_parse_value(field, v.strip()) for v in values.split(",")]
        if len(parsed) not in (1, n):
            raise UserError(
                f"invalid config: population.vary gives {field} {len(parsed)} values for "
                f"population.size={n}; give one per member, or one for all"
            )
        out[field] = parsed * n if len(parsed) == 1 else parsed
    return out


def _check_traced(config: ml_collections.ConfigDict, field: str) -> None:
    if field in TRACED:
        return
    if field == "seed":
        raise UserError(
            "invalid config: population.vary cannot set seeds; give the members' seeds as "
            "population.seeds=s0,s1,..."
        )
    group, _, name = field.partition(".")
    exists = group in config and (not name or name in config[group])
    if not exists:
        raise UserError(
            f"invalid config: population.vary names {field}, which is not a config field; it can "
            f"vary {', '.join(TRACED)}"
        )
    raise UserError(
        f"invalid config: {field} cannot vary within a population: one compiled step runs every "
        f"member, and it fixes {field} (shapes, the program); train one population per value, or "
        f"vary one of {', '.join(TRACED)}"
    )


def member_config(config: ml_collections.ConfigDict, member: int) -> ml_collections.ConfigDict:
    """The plain single-run config member `member` stands for: its seed and values, no
    population."""
    n = size(config)
    if not 0 <= member < n:
        raise UserError(
            f"member {member} does not exist: the population has {n} members (0 to {n - 1})"
        )
    out = config.copy_and_resolve_references()
    out.seed = seeds(config)[member]
    for field, values in varied(config).items():
        group, name = field.split(".")
        out[group][name] = values[member]
    out.population.size, out.population.seeds, out.population.vary = 0, "", ""
    return out


def member_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
    """Every member's single-run config (member_config), in member order."""
    return [member_config(config, i) for i in range(size(config))]


def check(config: ml_collections.ConfigDict) -> None:
    """The population fields alone (config_fields.validate validates every member as a run)."""
    if config.population.vectorize not in VECTORIZE:
        raise UserError(
            f"invalid config: population.vectorize={config.population.vectorize!r} is not "
            f"supported; use one of {', '.join(VECTORIZE)}"
        )
    if not size(config) and (config.population.seeds.strip() or config.population.vary.strip()):
        raise UserError(
            "invalid config: population.seeds or population.vary without population.size; set "
            "--config.population.size=N"
        )
    seeds(config)
    varied(config)


def distinct_members(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
    """One member config per distinct combination of varied values (seeds aside): what
    validation and the memory estimate need to see, whatever the population's size."""
    values = varied(config)
    firsts = {}
    for i in range(size(config)):
        firsts.setdefault(tuple(v[i] for v in values.values()), i)
    return [member_config(config, i) for i in firsts.values()]


def keeps_ema(config: Any) -> bool:
    """Whether the run's state holds a moving average of G: any member's optim.ema_decay > 0 (a
    member with decay 0 then carries one equal to its G). Saved configs included."""
    values = varied(config).get("optim.ema_decay") if size(config) else None
    return any(values) if values else bool(config.optim.ema_decay)


def check_fits(members: int, member_bytes: int) -> None:
    """Refuses, before anything is allocated, a population whose training memory (`members` times
    the largest member's as a run: the vmapped step holds every member's activations at once)
    exceeds one device's, naming the largest population that fits."""
    budget, _ = memory.device_budget()
    largest = int(budget // member_bytes)
    memory.check_device_fits(
        members * member_bytes,
        f"invalid config: a population of {members} members",
        lambda: (
            f"the largest population of these members that fits is {largest}; lower "
            f"population.size to {largest}"
            if largest
            else "no member fits alone"
        ),
    )


def require_member(config: Any, member: int | None, workdir: str) -> None:
    """A tool opening `workdir` names a member exactly when the run is a population."""
    n = size(config)
    if n and member is None:
        raise UserError(
            f"{workdir} holds a population of {n} members; pass --member=I (0 to {n - 1})"
        )
    if not n and member is not None:
        raise UserError(f"{workdir} is a single run, not a population; leave out --member")


def metrics_path(workdir: str, member: int) -> str:
    return run_files.path(member_dir(workdir, member), run_files.METRICS)
