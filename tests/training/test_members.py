"""Populations (config.population): member i of a population is the single run of its seed and
values, in both step forms, on 1 and 8 devices, through a kill and a SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from dcgan_jax import population, train
from dcgan_jax.training import checkpoints, members, parallel
from dcgan_jax.training.run import open_run
from tests.helpers import (
    REPO,
    TINY_FLAGS,
    digit_batches,
    max_abs_diff,
    run_cli,
    run_steps,
    tiny_config,
    xla_flags,
)

# Every traced kind at once: Adam's rate and beta1, EMA on for one member only, one-sided smoothing,
# label noise and flips, instance noise with and without decay, D pre-training and k D steps per G.
VARY = (
    "optim.learning_rate=2e-4,1e-3,5e-4;optim.beta1=0.5,0.5,0.9;optim.ema_decay=0,0.9,0;"
    "objective.label_smoothing=0,0.1,0;d_training.label_noise=0,0,0.1;"
    "d_training.label_flip=0,0.05,0;d_training.instance_noise=0,0.1,0.2;"
    "d_training.instance_noise_decay_steps=0,0,3;d_training.pretrain_steps=0,1,0;"
    "d_training.steps_per_g_step=1,1,2"
)
STATE_FIELDS = (
    "g_params",
    "d_params",
    "g_batch_stats",
    "d_batch_stats",
    "g_opt_state",
    "d_opt_state",
)


def population_config(size=3, vary=VARY, **overrides):
    config = tiny_config(**overrides)
    config.population.size, config.population.vary = size, vary
    config.population.seeds = ",".join(str(s) for s in (3, 7, 1, 5, 0, 2, 4, 6)[:size])
    return config


def run_population(config, num_steps, devices=None, parallelism="pmap", vectorize="loop"):
    """The population's host state after `num_steps` steps, each member on its own data order."""
    runner = parallel.Parallel(parallelism, devices)
    member_configs = population.member_configs(config)
    step = members.compile_step(
        runner,
        config.model,
        {group: config[group] for group in members.GROUPS},
        config.batch_size // runner.num_devices,
        members.varied_values(population.varied(config)),
        vectorize,
    )
    per_member = [digit_batches(m, num_steps) for m in member_configs]
    state = members.to_device(
        runner,
        members.create_state(
            config.model, [m.optim for m in member_configs], [m.seed for m in member_configs]
        ),
        vectorize,
        len(member_configs),
    )
    for s in range(num_steps):
        batch = np.stack(
            [
                np.asarray(b[s]).reshape((runner.num_devices, -1) + b[s].shape[1:])
                for b in per_member
            ],
            axis=1,
        )
        state, metrics = step(state, runner.shard_batch(batch))
    rows = members.host_metrics(runner, metrics, True)
    return members.host_state(runner, state), rows, member_configs


_single_runs = {}


def single_run(member, num_steps, devices=None, parallelism="pmap"):
    """`run_steps` of the member's config on its own data order, computed once per process for each
    (config, steps, devices, parallelism): the loop and vmap forms compare against the same runs."""
    key = (member.to_json(), num_steps, tuple(devices or ()), parallelism)
    if key not in _single_runs:
        _single_runs[key] = run_steps(
            member, digit_batches(member, num_steps), devices, parallelism
        )
    return _single_runs[key]


def member_differences(config, num_steps, **kwargs):
    """Max |population member - its single run| over the state, per member."""
    state, rows, member_configs = run_population(config, num_steps, **kwargs)
    diffs = []
    for i, member in enumerate(member_configs):
        single, history = single_run(
            member, num_steps, kwargs.get("devices"), kwargs.get("parallelism", "pmap")
        )
        mine = members.member_state(state, i)
        diffs.append(max(max_abs_diff(getattr(single, f), getattr(mine, f)) for f in STATE_FIELDS))
        assert abs(history[-1]["d_loss"] - rows[i]["d_loss"]) < 1e-4
        if member.optim.ema_decay:
            assert max_abs_diff(single.ema, mine.ema) < 1e-5
    return diffs


def test_member_configs_are_single_runs_with_their_seed_and_values():
    config = population_config()
    first, second, third = population.member_configs(config)
    assert [m.seed for m in (first, second, third)] == [3, 7, 1]
    assert (second.optim.learning_rate, second.optim.ema_decay) == (1e-3, 0.9)
    assert (third.d_training.steps_per_g_step, third.d_training.instance_noise) == (2, 0.2)
    assert all(population.size(m) == 0 for m in (first, second, third))
    assert first.model.to_dict() == config.model.to_dict()


def test_the_loop_form_gives_each_member_its_single_run():
    """The loop form runs the single-run step with the member's values as traced inputs instead of
    constants. Measured after 4 steps, every traced kind varying: members 0 and 1 bit-identical,
    member 2 within 7e-8 (a single run divides by its constant decay steps, which XLA may fold into
    a multiplication; the member divides by a traced value). Bound 1e-6."""
    diffs = member_differences(population_config(), 4, vectorize="loop")
    assert max(diffs) < 1e-6 and diffs[0] == 0.0, diffs


def test_the_vmap_form_gives_each_member_its_single_run_to_float_rounding():
    """vmap batches each member's convolutions into one grouped convolution, summing in another
    order: after 4 steps the states differ by float32 rounding only (measured up to ~1e-7; bound
    1e-5, far below one Adam step of 2e-4)."""
    diffs = member_differences(population_config(), 4, vectorize="vmap")
    assert max(diffs) < 1e-5, diffs


def test_eight_devices_pmap_and_shard_map_in_both_forms():
    script = os.path.join(os.path.dirname(__file__), "member_checks.py")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(8))
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=900, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count("OK ") == 4, result.stdout


POP_FLAGS = TINY_FLAGS + (
    "--config.population.size=3",
    "--config.population.vary=optim.learning_rate=2e-4,1e-3,5e-4;objective.label_smoothing=0,0.1,0",
)


def _states(workdir):
    manager, config = checkpoints.open_workdir(workdir)
    return {
        (step, i): open_run(workdir, step, member=i).state
        for step in manager.all_steps()
        for i in range(population.size(config))
    }


def _pop_config(num_train_steps):
    """The config of POP_FLAGS, for a run in this process."""
    config = tiny_config(num_train_steps=num_train_steps)
    config.population.size = 3
    config.population.vary = POP_FLAGS[-1].split("=", 1)[1]
    return config


@pytest.mark.slow
def test_a_killed_population_resumes_bit_identical(tmp_path, capsys):
    """A population run stopped at step 4 and run again to 6 ends bit-identical to one run straight
    to 6, every checkpoint of every member. (In this process: the command's own behaviour with a
    population, a signal's checkpoint, is test_sigterm_saves_a_population's.)"""
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train.train_and_evaluate(_pop_config(6), straight)
    train.train_and_evaluate(_pop_config(4), resumed)
    capsys.readouterr()
    train.train_and_evaluate(_pop_config(6), resumed)
    assert "resumed from step 4" in capsys.readouterr().out
    a, b = _states(straight), _states(resumed)
    assert sorted(a) == sorted(b) and (6, 2) in a
    for key in a:
        for x, y in zip(jax.tree.leaves(a[key]), jax.tree.leaves(b[key])):
            np.testing.assert_array_equal(x, y)
    for i in range(3):  # each member's own files, a single run's layout
        folder = population.member_dir(resumed, i)
        steps = [
            int(line.split(",")[0].split(":")[1])
            for line in open(os.path.join(folder, "metrics.jsonl"))
        ]
        assert steps == [2, 4, 6]
        assert "step_00000006.png" in os.listdir(os.path.join(folder, "samples"))


@pytest.mark.slow
def test_sigterm_saves_a_population(tmp_path):
    workdir = str(tmp_path / "run")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dcgan_jax.main",
            f"--workdir={workdir}",
            *POP_FLAGS,
            "--config.num_train_steps=400",
            "--config.checkpoint_every_steps=10",
            "--config.sample_every_steps=1000",
            "--config.log_every_steps=50",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = os.path.join(workdir, "checkpoints")
    while not (os.path.isdir(ckpt) and any(n.isdigit() for n in os.listdir(ckpt))):
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.02)  # leaves the CPU to the run
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    line = [row for row in stdout.splitlines() if row.startswith("stopped by SIGTERM at step")][0]
    stopped_at = int(line.split("at step ")[1].split(";")[0])
    assert checkpoints.create_manager(workdir, read_only=True).latest_step() == stopped_at < 400
    assert int(open_run(workdir, member=2).state.step) == stopped_at


def test_a_field_that_changes_shapes_cannot_vary():
    result = run_cli(
        "dcgan_jax.main",
        "--workdir=/nonexistent/never",
        "--config.population.size=2",
        "--config.population.vary=model.g_width=8,16",
    )
    assert result.returncode != 0
    assert "model.g_width cannot vary within a population" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
