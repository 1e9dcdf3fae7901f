"""The moving average of G (config.optim.ema_decay): its closed forms, the step's average against a recursion written out
here, what uses it, and checkpoints with and without it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import config_fields, train
from dcgan_jax.data.images import as_uint8
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import fid
from dcgan_jax.nn import generate
from dcgan_jax.training import checkpoints, ema, parallel, step
from dcgan_jax.training.run import open_run
from dcgan_jax.training.state import create_train_state
from tests.helpers import digit_batches, eval_config, max_abs_diff, run_cli, tiny_config


def test_decay_ramps_up_then_holds():
    got = [float(ema.decay_at(0.999, s)) for s in (0, 1, 10, 100, 10_000)]
    np.testing.assert_allclose(got, [0.1, 2 / 11, 11 / 20, 101 / 110, 0.999], rtol=1e-6)


def test_update_of_a_constant_converges_geometrically():
    average, current, d = {"w": jnp.full(3, 5.0)}, {"w": jnp.full(3, 1.0)}, 0.9
    for _ in range(7):
        average = ema.update(average, current, jnp.float32(d))
    np.testing.assert_allclose(
        np.asarray(average["w"]), 1.0 + d**7 * (5.0 - 1.0), rtol=1e-6
    )  # c + d^n (a0 - c)


def test_the_step_keeps_the_average_of_g_and_its_statistics():
    config = tiny_config(optim=dict(ema_decay=0.8))
    batches = digit_batches(config, 4)
    runner = parallel.Parallel("pmap", jax.devices()[:1])
    train_step = runner.compile(
        step.make_train_step(
            config.model, config.optim, config.objective, config.d_training, config.batch_size
        )
    )
    state = create_train_state(config.model, config.optim, config.seed)
    expected = jax.tree.map(
        np.asarray, {"params": state.g_params, "batch_stats": state.g_batch_stats}
    )
    device_state = runner.replicate(state)
    for n, batch in enumerate(batches, start=1):
        device_state, _ = train_step(device_state, batch[None])
        host = jax.device_get(runner.unreplicate(device_state))
        d = min(0.8, (1 + n) / (10 + n))
        expected = jax.tree.map(
            lambda a, g, d=d: d * a + (1 - d) * np.asarray(g),
            expected,
            {"params": host.g_params, "batch_stats": host.g_batch_stats},
        )
        assert max_abs_diff(host.ema, expected) < 1e-6
    assert max_abs_diff(host.ema["params"], host.g_params) > 1e-4  # an average, not a copy
    assert host.sampling_g_variables["params"] is host.ema["params"]


def test_off_keeps_no_average_and_the_old_layout():
    config = tiny_config()
    state = create_train_state(config.model, config.optim, config.seed)
    assert state.ema is None and state.sampling_g_variables == state.g_variables


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("ema") / "run")
    config = tiny_config(num_fixed_samples=0, optim=dict(ema_decay=0.5))
    train.train(config, workdir)
    return workdir


def test_tools_use_the_average(ema_run, tmp_path):
    run = open_run(ema_run)
    assert run.state.ema is not None and run.sampling_g_variables == dict(run.state.ema)
    assert max_abs_diff(run.g_variables["params"], run.sampling_g_variables["params"]) > 0
    output = str(tmp_path / "s.npz")
    result = run_cli(
        "dcgan_jax.sample",
        f"--workdir={ema_run}",
        "--num_samples=4",
        "--seed=3",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = np.load(output)
    from_average = generate.generate(run.config.model, run.sampling_g_variables, saved["z"])
    from_trained = generate.generate(run.config.model, run.g_variables, saved["z"])
    np.testing.assert_array_equal(saved["images"], as_uint8(from_average))
    assert (
        np.abs(from_average - from_trained).max() > 1e-5
    )  # 4 tiny steps: images near 0, but another G
    result = run_cli(
        "dcgan_jax.sample",
        f"--workdir={ema_run}",
        "--num_samples=4",
        "--seed=3",
        "--noema",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(output)["images"], as_uint8(from_trained))


def test_the_fid_table_scores_the_average_and_the_trained_g(ema_run, tmp_path):
    run = open_run(ema_run)
    config = eval_config(tmp_path / "classifier", optim=dict(ema_decay=0.5))
    rows, _ = fid.fid_table(
        config.eval,
        config.model,
        config.data,
        config.seed,
        run.sampling_g_variables,
        run.initial_state.g_variables,
        run.step,
        run.g_variables,
        config.optim.ema_decay,
    )
    assert [r["images"] for r in rows[:2]] == [
        "generator, EMA 0.5 (step 4)",
        "generator without EMA (step 4)",
    ]
    assert len(rows) == 4 and rows[0]["fid"] != rows[1]["fid"]


def test_turning_the_average_on_at_a_resume_starts_it_from_g_and_off_drops_it(tmp_path):
    workdir = str(tmp_path / "run")
    config = tiny_config(num_fixed_samples=0)
    train.train(config, workdir)  # 4 steps without an average
    config.num_train_steps, config.optim.ema_decay = 5, 0.9
    before = open_run(workdir).state
    after = train.train(config, workdir)
    d = min(0.9, 6 / 15)  # step 5's decay, from an average that started as G at step 4
    expected = jax.tree.map(
        lambda a, g: d * np.asarray(a) + (1 - d) * np.asarray(g),
        before.g_variables,
        after.g_variables,
    )
    assert max_abs_diff(after.ema, expected) < 1e-6
    config.num_train_steps, config.optim.ema_decay = 6, 0.0
    assert train.train(config, workdir).ema is None
    manager, _ = checkpoints.open_workdir(workdir)
    assert sorted(manager.all_steps())[-3:] == [4, 5, 6]


def test_a_decay_of_one_is_refused():
    with pytest.raises(UserError, match=r"ema_decay=1.0 must be in \[0, 1\)"):
        config_fields.validate(tiny_config(optim=dict(ema_decay=1.0)))
