"""Going back, and knowing when to: milestone and best-FID checkpoints are kept beside the latest ones,
--config.init_from starts a new run from any kept checkpoint of any run, and a collapse (D winning completely) is
reported with the last checkpoint before it."""

import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import population, train
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints, members
from dcgan_jax.training.collapse import CollapseDetector
from dcgan_jax.training.state import create_train_state
from tests.helpers import max_abs_diff, tiny_config, tree_digest


def _kept(workdir):
    return sorted(checkpoints.create_manager(str(workdir), read_only=True).all_steps())


def test_milestones_are_kept_beside_the_latest(tmp_path):
    train.train(
        tiny_config(num_train_steps=8, keep_checkpoints=2, keep_every_steps=4), str(tmp_path)
    )
    assert _kept(tmp_path) == [4, 6, 8]


class _Scores:
    """An evaluator of given FIDs: every 2 steps, the checkpoint of the lowest FID kept."""

    every_steps, best_metric = 2, "fid"

    def __init__(self, fids):
        self.fids = fids

    def __call__(self, step, g_variables):
        return {"fid": self.fids[step]}


def test_the_best_fid_checkpoint_is_kept(tmp_path):
    fids = {2: 5.0, 4: 1.0, 6: 3.0, 8: 4.0}
    config = tiny_config(num_train_steps=8, keep_checkpoints=1)
    config.eval.every_steps = 2
    train.train(config, str(tmp_path), evaluator=_Scores(fids))
    assert _kept(tmp_path) == [4, 8]


def test_the_best_fid_checkpoint_outlives_a_resume(tmp_path):
    # Orbax writes a step's score to disk only when told how to rank it; without it the resumed
    # run forgot step 2's score and dropped the checkpoint at its first save.
    fids = {2: 1.0, 4: 5.0, 6: 3.0, 8: 4.0}
    config = tiny_config(num_train_steps=4, keep_checkpoints=1)
    config.eval.every_steps = 2
    train.train(config, str(tmp_path), evaluator=_Scores(fids))
    assert _kept(tmp_path) == [2, 4]
    config.num_train_steps = 8
    train.train(config, str(tmp_path), evaluator=_Scores(fids))
    assert _kept(tmp_path) == [2, 8]


def test_a_damaged_score_file_is_one_line_and_the_checkpoints_stay(tmp_path):
    fids = {2: 1.0, 4: 5.0, 6: 3.0}
    config = tiny_config(num_train_steps=4, keep_checkpoints=1)
    config.eval.every_steps = 2
    train.train(config, str(tmp_path), evaluator=_Scores(fids))
    path = tmp_path / "checkpoints" / "2" / "metrics" / "metrics"
    config.num_train_steps = 6
    for damaged in ("{damaged", '{"FID": 1.0}', '{"fid": "1.0"}'):  # not JSON; no number to rank
        path.write_text(damaged)
        before = tree_digest(tmp_path / "checkpoints")
        with pytest.raises(
            UserError, match=r"score file .*checkpoints/2/metrics/metrics .* damaged"
        ):
            train.train(config, str(tmp_path), evaluator=_Scores(fids))
        assert tree_digest(tmp_path / "checkpoints") == before
    path.write_text('{"fid": 1.0}')  # the fix the message gives: the score back from metrics.jsonl
    train.train(config, str(tmp_path), evaluator=_Scores(fids))
    assert _kept(tmp_path) == [2, 6]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("source") / "run"
    train.train(tiny_config(num_train_steps=4, keep_checkpoints=3), str(path))
    return path


@pytest.mark.parametrize("spec", ["{run}:2", "{run}/checkpoints:2"])
def test_init_from_takes_that_checkpoints_params_at_step_0(source_run, spec):
    config = tiny_config(init_from=spec.format(run=source_run))
    fresh = create_train_state(config.model, config.optim, config.seed)
    started = train._initial_from(config, fresh)
    manager = checkpoints.create_manager(str(source_run), read_only=True)
    saved = checkpoints.restore_state(manager, fresh, 2)
    assert int(started.step) == 0 and np.array_equal(started.rng, fresh.rng)
    assert (
        max_abs_diff(
            (started.g_params, started.d_params, started.d_opt_state),
            (saved.g_params, saved.d_params, saved.d_opt_state),
        )
        == 0
    )
    assert max_abs_diff(started.g_params, fresh.g_params) > 0


def test_a_population_starts_every_member_from_init_from_as_its_single_run(source_run, tmp_path):
    config = tiny_config(init_from=f"{source_run}:2", num_train_steps=2)
    config.population.size, config.population.seeds = 2, "3,5"
    config.population.vary = "optim.learning_rate=2e-4,1e-3;optim.ema_decay=0,0.9"
    pop = train.train(config, str(tmp_path / "pop"))
    for i in range(2):
        single = train.train(population.member_config(config, i), str(tmp_path / f"single_{i}"))
        member = members.member_state(pop, i)
        fields = ("g_params", "d_params", "g_opt_state", "d_opt_state", "rng")
        assert (
            max_abs_diff([getattr(member, f) for f in fields], [getattr(single, f) for f in fields])
            <= 1e-6
        )
        assert max_abs_diff(member.sampling_g_variables, single.sampling_g_variables) <= 1e-6


def test_init_from_trains_a_new_run(source_run, tmp_path, capsys):
    state = train.train(tiny_config(num_train_steps=2, init_from=str(source_run)), str(tmp_path))
    assert (
        int(state.step) == 2
        and f"initialized from {source_run}/checkpoints/4" in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "spec, overrides, fragment",
    [
        ("{run}:3", {}, "no checkpoint at step 3"),
        ("{run}", {"model": {"d_width": 16}}, "another architecture"),
        ("{run}/nowhere", {}, "no checkpoints in"),
    ],
)
def test_init_from_mistakes_are_one_line(source_run, tmp_path, spec, overrides, fragment):
    config = tiny_config(init_from=spec.format(run=source_run), **overrides)
    with pytest.raises(UserError, match=fragment):
        train.train(config, str(tmp_path / "new"))
    assert not (tmp_path / "new" / "config.json").exists()
    assert not list(
        (tmp_path / "new" / "checkpoints").glob("*")
    )  # nothing saved (the empty folder is orbax's)


def test_the_detector_needs_the_whole_streak():
    detector = CollapseDetector(d_fake_below=0.01, loss_factor=3.0, patience=3)
    normal = {"d_fake": 0.4, "g_loss": 1.0}
    won = {"d_fake": 0.001, "g_loss": 9.0}
    steps = [
        (1, normal),
        (2, normal),
        (3, won),
        (4, won),
        (5, normal),
        (6, won),
        (7, won),
        (8, won),
        (9, won),
    ]
    assert [detector.update(s, m) for s, m in steps] == [None] * 7 + [
        6,
        None,
    ]  # reported once, when it reaches 3
    assert CollapseDetector(0.01, 3.0, 0).update(1, won) is None  # patience 0: off
    fresh = CollapseDetector(0.01, 3.0, 1)
    assert fresh.update(1, won) is None  # no running level yet: nothing to compare with


def _collapsing_step(real_make):
    """The real step, with its reported D(G(z)) and g_loss replaced from step 5 on by those of a collapsed run."""

    def make(*groups_and_batch):
        body = real_make(*groups_and_batch)

        def collapsed(state, batch):
            state, metrics = body(state, batch)
            late = state.step >= 5
            return state, dict(
                metrics,
                d_fake=jnp.where(late, 1e-4, metrics["d_fake"]),
                g_loss=jnp.where(late, 50.0, metrics["g_loss"]),
            )

        return collapsed

    return make


@pytest.mark.parametrize("stop", [False, True])
def test_a_collapse_names_the_last_checkpoint_before_it(tmp_path, monkeypatch, capsys, stop):
    monkeypatch.setattr(train, "make_train_step", _collapsing_step(train.make_train_step))
    config = tiny_config(
        num_train_steps=10, log_every_steps=1, checkpoint_every_steps=2, keep_checkpoints=10
    )
    config.collapse.patience, config.collapse.stop = 3, stop
    if stop:
        with pytest.raises(
            UserError, match="stopped: D has won completely since step 5 .* step 4 in"
        ):
            train.train(config, str(tmp_path))
        assert _kept(tmp_path) == [2, 4, 6]  # stopped at step 7, the streak's third logged step
    else:
        train.train(config, str(tmp_path))
        out = capsys.readouterr().out
        assert out.count("warning: D has won completely since step 5") == 1 and "step 4 in" in out
