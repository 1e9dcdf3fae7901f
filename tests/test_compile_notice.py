"""What a run and the tools say while XLA compiles (progress_bars.compile_notice): `compiling WHAT ...` before the
wait, `compiled in X s` after it and before the first result, nothing when nothing compiles."""

import re

import jax
import jax.numpy as jnp
import pytest

from dcgan_jax import progress_bars, train
from dcgan_jax.training.run import INITIAL_STATE_NOTICE, open_run
from tests.helpers import tiny_config

DONE = re.compile(r"^compiled in (\d+\.\d) s( \(.* read from the persistent compilation cache\))?$")


def _said(lines, text):
    """The index of the line `compiling {text} ...`, checking the next `compiled ...` line is a done line with a
    number; returns (index of the compiling line, index of its done line)."""
    start = lines.index(f"compiling {text} ...")
    done = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("compiled"))
    assert DONE.match(lines[done]), lines[done]
    assert float(DONE.match(lines[done]).group(1)) >= 0
    return start, done


def test_a_block_that_compiles_says_what_and_how_long():
    said = []
    with progress_bars.compile_notice("a doubling (XLA)", said.append):
        said.append("before the first compile")
        jax.jit(lambda x: 2 * x + 1)(jnp.ones(3))
    assert said[:2] == ["before the first compile", "compiling a doubling (XLA) ..."]
    assert len(said) == 3 and DONE.match(said[2]), said


def test_nothing_is_said_when_nothing_compiles_and_no_done_line_when_the_block_raises():
    square = jax.jit(lambda x: x * x - 1)
    square(jnp.ones(2))
    said = []
    with progress_bars.compile_notice("a square", said.append):
        square(jnp.ones(2))  # compiled already in this process
    assert said == []
    with pytest.raises(ValueError), progress_bars.compile_notice("a cube", said.append):
        jax.jit(lambda x: x * x * x)(jnp.ones(2))
        raise ValueError
    assert said == ["compiling a cube ..."]


def test_a_notice_inside_another_is_counted_by_the_outer_one():
    said = []
    with progress_bars.compile_notice("outer", said.append):
        with progress_bars.compile_notice("inner", said.append):
            jax.jit(lambda x: x + 5)(jnp.ones(2))
        jax.jit(lambda x: x - 5)(jnp.ones(2))
    assert said[0] == "compiling outer ..." and len(said) == 2 and DONE.match(said[1]), said


def test_a_program_read_from_the_persistent_cache_is_said_to_be():
    if not jax.config.jax_compilation_cache_dir:  # tests/conftest.py sets one
        pytest.skip("no persistent compilation cache")
    f = lambda x: jnp.cos(x) * 3  # noqa: E731
    jax.jit(f)(jnp.ones(4))  # in the persistent cache now (the tests cache every program)
    jax.clear_caches()
    said = []
    with progress_bars.compile_notice("a cosine", said.append):
        jax.jit(f)(jnp.ones(4))
    assert said[0] == "compiling a cosine ..."
    assert said[1].endswith("(its programs read from the persistent compilation cache)"), said


def _lines(capsys):
    return [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "parallelism, members, vectorize",
    [("pmap", 0, "auto"), ("shard_map", 0, "auto"), ("pmap", 2, "loop"), ("shard_map", 2, "vmap")],
    ids=["pmap", "shard_map", "population_loop", "population_vmap_shard_map"],
)
def test_a_run_says_it_compiles_its_step_before_the_first_steps_line(
    tmp_path, capsys, parallelism, members, vectorize
):
    config = tiny_config(parallelism=parallelism, num_train_steps=4)
    if members:
        config.population.size, config.population.vectorize = members, vectorize
    train.train(config, str(tmp_path))
    lines = _lines(capsys)
    start, done = _said(lines, train.STEP_NOTICE)
    backend = next(i for i, line in enumerate(lines) if line.startswith("backend "))
    first_step = next(i for i, line in enumerate(lines) if line.startswith("step 2/4"))
    assert backend < start < done < first_step, lines
    assert sum(line.startswith("compiling ") for line in lines[backend:]) == 1  # the step, once


def test_a_fresh_run_says_it_compiles_the_initializers_and_a_resumed_one_does_not(tmp_path, capsys):
    # A G/D width no other test initializes: its initializers are compiled in this process now.
    config = tiny_config(num_train_steps=2, model=dict(g_width=5, d_width=3))
    train.train(config, str(tmp_path))
    lines = _lines(capsys)
    init_start, init_done = _said(lines, train.INIT_NOTICE)
    step_start, _ = _said(lines, train.STEP_NOTICE)
    backend = next(i for i, line in enumerate(lines) if line.startswith("backend "))
    assert init_start < init_done < backend < step_start, lines

    config.num_train_steps = 4  # resumed: restored, nothing initialized; its step compiled again
    train.train(config, str(tmp_path))
    lines = _lines(capsys)
    assert not any(train.INIT_NOTICE in line for line in lines), lines
    start, done = _said(lines, train.STEP_NOTICE)
    resumed = next(i for i, line in enumerate(lines) if line.startswith("resumed from step 2"))
    assert resumed < start < done < lines.index(next(x for x in lines if x.startswith("step 4/4")))


def test_a_tool_says_it_compiles_the_untrained_baseline(trained_run, capsys):
    """evaluate --task=fid's untrained row, classify's random-init D and explore's guided_backprop take it."""
    run = open_run(trained_run)
    capsys.readouterr()
    state = run.initial_state
    lines = _lines(capsys)
    start, done = _said(lines, INITIAL_STATE_NOTICE)
    assert (start, done, len(lines)) == (0, 1, 2)
    assert int(state.step) == 0
    run.initial_state  # noqa: B018 (cached: nothing compiled, nothing said)
    assert _lines(capsys) == []


def test_explore_says_it_compiles_before_its_picture(trained_run, tmp_path):
    """One notice for the mode's programs, the untrained D's (guided_backprop) included, before the mode's notes."""
    from tests.cli import explore_driver  # defines explore's flags in this process

    (result,) = explore_driver.run_commands(
        [
            [
                f"--workdir={trained_run}",
                "--mode=guided_backprop",
                "--num_images=64",
                f"--output={tmp_path}/gb.png",
            ]
        ]
    )
    assert result["returncode"] == 0, result["stderr"]
    lines = [line.strip() for line in result["stdout"].splitlines() if line.strip()]
    start, done = _said(lines, "--mode=guided_backprop's programs (XLA, once per shape)")
    assert (start, done) == (0, 1), lines
    assert lines[-1] == f"wrote guided_backprop to {tmp_path}/gb.png"
    assert not any(INITIAL_STATE_NOTICE in line for line in lines)
