"""Images/s per member of a population of N (config.population.size) against the same N members
trained as single runs one after another, on this machine's CPU, for the digits and Fashion-MNIST
configs.

  python benchmarks/population.py [--configs=digits,fashion_mnist] [--members=8]
      [--forms=loop,vmap] [--block_steps=2] [--blocks=3] [--steps=20]
      [--whole_runs|--no_whole_runs] [--overrides=FIELD=VALUE,...] [--compilation_cache] [--json]

Two measurements per config:

Steady state (one process, one device, random input batches of the config's shape: 32 px grey,
digits batch 64 widths 32, fashion_mnist batch 128 widths 64). The single-run step
(`training.step.make_train_step` compiled by `training.parallel.Parallel`, as training runs it) and
the population step (`training.members.compile_step`) in each of `--forms` ('loop': the member step
called member after member, each on its own state; 'vmap': one program over every member) are
compiled, then timed in alternating blocks of `--block_steps` steps (single, loop, vmap, single,
...: the load of other processes hits them alike); figures are medians over `--blocks` blocks.
One population step advances every member by one step. Reported per runner: ms per step, images/s
per member (batch / step time: how fast each member trains) and the speedup
  N x (single ms/step) / (population ms/step) = the population's images/s over all members
                                                 / a single run's images/s,
i.e. how much faster the population trains N members than N single runs one after another
(1.0: no gain; the goal is >= 1.5). "compile s" is the first step's wall time.

Whole runs (`--whole_runs`, the default): wall time of `python -m dcgan_jax.main --config=CONFIG
--config.num_train_steps=S --config.population.size=N` (vectorize 'auto', the loop form on CPU)
against N runs of `python -m dcgan_jax.main --config=CONFIG --config.num_train_steps=S
--config.seed=i` (i = 0..N-1, the members' seeds), one after another, each a fresh process in a
fresh workdir: start-up, data loading, compilation, the input pipeline, checkpoints and sample
grids included, as a user would run them (JAX's persistent compilation cache is switched off for
them: every process compiles; `--compilation_cache`, the smoke test's setting, leaves
$JAX_COMPILATION_CACHE_DIR on, so that runs of the same programs compile once and their times
leave compilation out). Speedup = (sum of the N single runs' seconds) / (population's
seconds). A whole run's time is roughly a fixed cost (start-up, data, compile) plus S steps, so its
speedup falls towards the steady-state one as S grows: the table also gives each side's fixed cost
(wall time less S x its steady-state step time, when the steady state was measured) and the
speedup extrapolated to the config's own num_train_steps.

How to read it: the speedups are measured on this machine at the load printed (`os.getloadavg()`
before and after; the machine may be shared); ms/step and images/s are medians. The single-run
step's speed is the train-step benchmark's (benchmarks/train_step.py); the population's loop form
is that step N times, so its steady-state speedup should be ~1.0, its gain being the fixed costs
it pays once instead of N times.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dcgan_jax import config_fields, defaults, population  # noqa: E402  (from this checkout)
from dcgan_jax.training import members, parallel  # noqa: E402
from dcgan_jax.training.state import create_train_state  # noqa: E402
from dcgan_jax.training.step import make_train_step  # noqa: E402

CONFIGS = ("digits", "fashion_mnist")
FORMS = ("loop", "vmap")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="shipped config names")
    parser.add_argument("--members", type=int, default=8, help="population size N")
    parser.add_argument("--forms", default=",".join(FORMS), help=f"population forms of {FORMS}")
    parser.add_argument("--block_steps", type=int, default=2, help="steady-state steps per block")
    parser.add_argument("--blocks", type=int, default=3, help="alternating blocks; medians")
    parser.add_argument("--steps", type=int, default=20, help="S: num_train_steps of whole runs")
    parser.add_argument(
        "--whole_runs", action="store_true", default=True, help="also time whole runs (default)"
    )
    parser.add_argument(
        "--no_whole_runs", dest="whole_runs", action="store_false", help="steady state only"
    )
    parser.add_argument(
        "--overrides",
        default="",
        help="comma-separated FIELD=VALUE config overrides for every run (e.g. the smoke test's "
        "model.g_width=8,batch_size=16); none by default: the configs as shipped",
    )
    parser.add_argument(
        "--compilation_cache",
        action="store_true",
        help="whole runs keep $JAX_COMPILATION_CACHE_DIR (default: removed, every run compiles)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no tables")
    args = parser.parse_args(argv)
    args.overrides = [o.split("=", 1) for o in args.overrides.split(",") if o]
    args.configs = [c for c in args.configs.split(",") if c]
    args.forms = [f for f in args.forms.split(",") if f]
    bad = sorted(set(args.forms) - set(FORMS))
    if any(len(o) != 2 for o in args.overrides):
        parser.exit(2, "error: --overrides must be FIELD=VALUE,FIELD=VALUE,...\n")
    if bad or args.members < 1 or min(args.block_steps, args.blocks, args.steps) < 1:
        parser.exit(
            2,
            f"error: --forms must be a subset of {FORMS} (got {bad or args.forms}); --members, "
            f"--block_steps, --blocks and --steps must be >= 1\n",
        )
    return args


# ---------------------------------------------------------------- steady state


def _config(name: str, overrides: list, size: int = 0):
    """The shipped config `name` with `overrides` ([FIELD, VALUE] pairs), population.size `size`."""
    config = defaults.load_config(name)
    for field, value in overrides:
        kind = type(config_fields.get(config, field))
        config_fields.set_field(config, field, kind(float(value)) if kind is int else kind(value))
    config.population.size = size
    return config


def single_runner(config, runner):
    """(step, sync) of the single-run step on a random batch of the config's shape."""
    per_device = config.batch_size // runner.num_devices
    compiled = runner.compile(
        make_train_step(config.model, config.optim, config.objective, config.d_training, per_device)
    )
    holder = {"state": runner.replicate(create_train_state(config.model, config.optim, 0))}
    batch = runner.shard_batch(_random_batch(config, runner, ()))

    def step():
        holder["state"], holder["metrics"] = compiled(holder["state"], batch)

    return step, lambda: jax.block_until_ready(holder["state"])


def population_runner(config, runner, form: str):
    """(step, sync) of the population step in `form` on random member batches."""
    configs = population.member_configs(config)
    compiled = members.compile_step(
        runner,
        config.model,
        {group: config[group] for group in members.GROUPS},
        config.batch_size // runner.num_devices,
        members.varied_values(population.varied(config)),
        form,
    )
    state = members.create_state(config.model, [m.optim for m in configs], population.seeds(config))
    holder = {"state": members.to_device(runner, state, form, len(configs))}
    batch = runner.shard_batch(_random_batch(config, runner, (len(configs),)))

    def step():
        holder["state"], holder["metrics"] = compiled(holder["state"], batch)

    return step, lambda: jax.block_until_ready(holder["state"])


def _random_batch(config, runner, member_axis: tuple):
    """[devices, *member_axis, per-device batch, H, W, C] uniform in [-1, 1]."""
    model = config.model
    per_device = config.batch_size // runner.num_devices
    shape = (runner.num_devices, *member_axis, per_device, model.image_size, model.image_size)
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (*shape, model.num_channels)).astype(np.float32)


def _timed(step, sync, steps: int) -> float:
    """Seconds per step over `steps` steps, synchronized once at the end."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def steady_state(name: str, args) -> dict:
    """Compile the single step and each form of the population step, then time them in turn."""
    single, pop = _config(name, args.overrides), _config(name, args.overrides, args.members)
    runner = parallel.Parallel(single.parallelism, jax.devices()[:1])
    runners = {"single": single_runner(single, runner)}
    runners.update({f: population_runner(pop, runner, f) for f in args.forms})
    compile_s = {n: _timed(step, sync, 1) for n, (step, sync) in runners.items()}
    times = {n: [] for n in runners}
    for _ in range(args.blocks):
        for n, (step, sync) in runners.items():
            times[n].append(_timed(step, sync, args.block_steps))
    batch, single_s = single.batch_size, statistics.median(times["single"])
    rows = {}
    for n, block_times in times.items():
        seconds = statistics.median(block_times)
        count = 1 if n == "single" else args.members
        rows[n] = {
            "ms_per_step": 1000 * seconds,
            "images_per_sec_per_member": batch / seconds,
            "speedup": count * single_s / seconds,
            "compile_seconds": compile_s[n],
            "ms_per_block_step": [round(1000 * t, 1) for t in block_times],
        }
    return {"batch_size": batch, "runners": rows}


# ---------------------------------------------------------------- whole runs


def _main_run(name: str, workdir: str, flags: list, keep_cache: bool) -> float:
    """Wall seconds of one `python -m dcgan_jax.main` run (its own process); JAX's persistent
    compilation cache is off for it unless `keep_cache`."""
    env = {k: v for k, v in os.environ.items() if keep_cache or k != "JAX_COMPILATION_CACHE_DIR"}
    command = [
        sys.executable,
        "-m",
        "dcgan_jax.main",
        f"--config={os.path.join(REPO, 'configs', name + '.py')}",
        f"--workdir={workdir}",
        *flags,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def whole_runs(name: str, args, steady: dict | None) -> dict:
    """The population as one run against its members' single runs one after another."""
    flags = [f"--config.num_train_steps={args.steps}"]
    flags += [f"--config.{field}={value}" for field, value in args.overrides]
    with tempfile.TemporaryDirectory(prefix="population_bench_") as tmp:
        population = f"--config.population.size={args.members}"
        keep = args.compilation_cache
        pop_s = _main_run(name, os.path.join(tmp, "population"), [*flags, population], keep)
        singles = [
            _main_run(name, os.path.join(tmp, f"single_{i}"), [*flags, f"--config.seed={i}"], keep)
            for i in range(args.members)
        ]
    batch = _config(name, args.overrides).batch_size
    out = {
        "steps": args.steps,
        "population_seconds": pop_s,
        "single_seconds": [round(s, 2) for s in singles],
        "singles_total_seconds": sum(singles),
        "speedup": sum(singles) / pop_s,
        "images_per_sec_per_member": {
            "population": args.steps * batch / pop_s,
            "singles": args.steps * batch / sum(singles),
        },
    }
    if steady and "loop" in steady["runners"]:
        out.update(_extrapolated(name, args, steady, pop_s, singles))
    return out


def _extrapolated(name: str, args, steady: dict, pop_s: float, singles: list) -> dict:
    """Each side's fixed cost (wall time less S steady steps) and the speedup at the config's own
    num_train_steps, assuming fixed cost + steps x steady step time."""
    single_step = steady["runners"]["single"]["ms_per_step"] / 1000
    loop_step = steady["runners"]["loop"]["ms_per_step"] / 1000
    pop_fixed = pop_s - args.steps * loop_step
    single_fixed = statistics.mean(singles) - args.steps * single_step
    full = _config(name, args.overrides).num_train_steps
    return {
        "population_fixed_seconds": pop_fixed,
        "single_fixed_seconds": single_fixed,
        "config_num_train_steps": full,
        "speedup_at_config_steps": args.members
        * (single_fixed + full * single_step)
        / (pop_fixed + full * loop_step),
    }


# ---------------------------------------------------------------- report


def run(args) -> dict:

    load_before, results = os.getloadavg(), {}
    for name in args.configs:
        steady = steady_state(name, args)
        results[name] = {"steady_state": steady}
        if args.whole_runs:
            results[name]["whole_runs"] = whole_runs(name, args, steady)
    return {
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "members": args.members,
        "block_steps": args.block_steps,
        "blocks": args.blocks,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "configs": results,
    }


def print_tables(result) -> None:
    n = result["members"]
    print(
        f"population of {n} vs {n} single runs one after another, {result['backend']} "
        f"({result['cpu_count']} cores); load average "
        f"{tuple(round(x, 2) for x in result['loadavg_before'])} -> "
        f"{tuple(round(x, 2) for x in result['loadavg_after'])}"
    )
    for name, r in result["configs"].items():
        steady = r["steady_state"]
        print(
            f"\n{name} steady state (batch {steady['batch_size']}, medians of "
            f"{result['blocks']} blocks of {result['block_steps']} steps)\n"
            f"| runner | ms/step | img/s per member | speedup vs {n} singles | compile s | "
            f"ms/step per block |\n|---|---|---|---|---|---|"
        )
        for runner, row in steady["runners"].items():
            label = runner if runner == "single" else f"population {runner} ({n})"
            print(
                f"| {label} | {row['ms_per_step']:.0f} | {row['images_per_sec_per_member']:.1f} "
                f"| {row['speedup']:.2f} | {row['compile_seconds']:.1f} | "
                f"{row['ms_per_block_step']} |"
            )
        whole = r.get("whole_runs")
        if whole:
            rates = whole["images_per_sec_per_member"]
            print(
                f"\n{name} whole runs, {whole['steps']} steps each: population "
                f"{whole['population_seconds']:.1f} s ({rates['population']:.1f} img/s per "
                f"member) vs {n} singles {whole['singles_total_seconds']:.1f} s "
                f"({rates['singles']:.1f} img/s per member; each {whole['single_seconds']}): "
                f"speedup {whole['speedup']:.2f}"
            )
            if "speedup_at_config_steps" in whole:
                print(
                    f"  fixed cost: population {whole['population_fixed_seconds']:.1f} s, a "
                    f"single run {whole['single_fixed_seconds']:.1f} s; extrapolated speedup at "
                    f"the config's {whole['config_num_train_steps']} steps: "
                    f"{whole['speedup_at_config_steps']:.2f}"
                )


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
