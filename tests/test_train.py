"""train_and_evaluate: the loop gets an FID evaluator exactly when config.eval.every_steps asks for one, built from
the config's eval, model and data groups; the evaluator carries its own schedule."""

import json
import os

import numpy as np
import pytest

from dcgan_jax import population, train
from dcgan_jax.evaluation import fid


def _eval_rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [row for row in map(json.loads, f) if "eval_fid" in row]


def test_no_evaluator_is_built_when_every_steps_is_0(tmp_path, monkeypatch, tiny):
    def refuse(*args):
        raise AssertionError("an evaluator was built although eval.every_steps == 0")

    monkeypatch.setattr(fid, "make_training_evaluator", refuse)
    state = train.train_and_evaluate(tiny(num_train_steps=2), str(tmp_path))
    assert int(state.step) == 2 and not _eval_rows(str(tmp_path))


def test_the_evaluator_runs_every_n_steps_on_the_current_generator(tmp_path, monkeypatch, tiny):
    calls = []

    class Recorder:
        every_steps, best_metric = (
            2,
            "fid",
        )  # the evaluator's own schedule, not read from the config by the loop

        def __call__(self, step, g_variables):
            calls.append((step, g_variables))
            return {"fid": float(step)}

    def make(ev, model, data, seed, workdir):
        assert (ev, model, data, seed, workdir) == (
            config.eval,
            config.model,
            config.data,
            0,
            str(tmp_path),
        )
        return Recorder()

    monkeypatch.setattr(fid, "make_training_evaluator", make)
    config = tiny(num_train_steps=4)
    config.eval.every_steps = 3  # only asks for an evaluator: it says when it runs
    state = train.train_and_evaluate(config, str(tmp_path))
    assert [step for step, _ in calls] == [2, 4]
    np.testing.assert_array_equal(
        calls[-1][1]["params"]["project"]["kernel"], state.g_params["project"]["kernel"]
    )
    assert [(row["step"], row["eval_fid"]) for row in _eval_rows(str(tmp_path))] == [
        (2, 2.0),
        (4, 4.0),
    ]


@pytest.mark.slow
def test_fid_during_training_with_the_projects_classifier(tmp_path, fid_classifier):
    config = fid_classifier[0].copy_and_resolve_references()
    config.num_train_steps, config.eval.every_steps = 2, 2
    train.train_and_evaluate(config, str(tmp_path / "run"))
    (row,) = _eval_rows(str(tmp_path / "run"))
    assert (
        row["step"] == 2
        and np.isfinite(row["eval_fid"])
        and row["eval_fid"] > 0
        and "eval_kid" in row
    )


def _kept_steps(workdir):
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


@pytest.mark.slow
def test_a_population_scores_each_member_during_training_as_its_single_run(
    tmp_path, fid_classifier
):
    config = fid_classifier[0].copy_and_resolve_references()
    config.num_train_steps, config.eval.every_steps, config.keep_checkpoints = 6, 2, 1
    config.population.size, config.population.seeds = 2, "3,5"
    config.population.vary = "optim.learning_rate=2e-4,1e-3;optim.ema_decay=0,0.9"
    pop = str(tmp_path / "pop")
    train.train_and_evaluate(config, pop)
    members = [_eval_rows(population.member_dir(pop, i)) for i in range(2)]
    for i, rows in enumerate(members):
        single = str(tmp_path / f"single_{i}")
        train.train_and_evaluate(population.member_config(config, i), single)
        expected = _eval_rows(single)
        assert [row["step"] for row in rows] == [row["step"] for row in expected] == [2, 4, 6]
        for row, want in zip(rows, expected):
            for metric in ("eval_fid", "eval_kid"):  # the loop form: each member's params to 1e-7
                assert row[metric] == pytest.approx(want[metric], rel=1e-4, abs=1e-6)
    # The population's own rows are the members' mean; its best checkpoint is kept by that mean.
    means = {
        step: np.mean([rows[k]["eval_fid"] for rows in members]) for k, step in enumerate((2, 4, 6))
    }
    rows = _eval_rows(pop)
    assert [row["step"] for row in rows] == list(means)
    assert [row["eval_fid"] for row in rows] == pytest.approx(list(means.values()), rel=1e-6)
    assert _kept_steps(pop) == sorted({min(means, key=means.get), 6})
