"""export_member: a population's member written out as a plain single-run workdir, which resumes
training exactly as the member's single run (loop form on CPU: bit-exact)."""

import json
import os
import shutil

import numpy as np
import pytest

from dcgan_jax import population, run_files, train
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints
from dcgan_jax.training.export import PARTIAL_PREFIX, export_member
from dcgan_jax.training.run import open_run
from tests.helpers import TINY_FLAGS, max_abs_diff, run_cli, tiny_config

pytestmark = pytest.mark.slow  # trains a population

VARY = "optim.learning_rate=2e-4,1e-3,5e-4"


def _config(steps):
    return tiny_config(num_train_steps=steps, population=dict(size=3, vary=VARY))


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    """A tiny population of 3 members trained for 4 steps (checkpoints at 2 and 4); read-only."""
    path = str(tmp_path_factory.mktemp("population") / "pop")
    train.train_and_evaluate(_config(4), path)
    return path


def test_export_writes_the_member_as_a_plain_run(pop, tmp_path):
    output = str(tmp_path / "member_2")
    assert export_member(pop, 2, output) == [2, 4]
    manager, config = checkpoints.open_workdir(output)
    assert sorted(manager.all_steps()) == [2, 4]
    expected = population.member_config(checkpoints.open_workdir(pop)[1], 2)
    assert config.to_dict() == expected.to_dict() and population.size(config) == 0
    assert config.seed == 2 and config.optim.learning_rate == 5e-4
    with open(run_files.path(output, run_files.CONFIG)) as f:
        assert json.load(f) == json.loads(expected.to_json())
    for step in (2, 4):
        run, member = open_run(output, step), open_run(pop, step, member=2)
        assert run.config.to_dict() == member.config.to_dict()
        assert max_abs_diff(run.state, member.state) == 0.0
    member_dir = population.member_dir(pop, 2)
    for name in (run_files.METRICS, run_files.LOSS_CURVE):
        with (
            open(os.path.join(output, name), "rb") as a,
            open(os.path.join(member_dir, name), "rb") as b,
        ):
            assert a.read() == b.read()
    assert sorted(os.listdir(os.path.join(output, run_files.TENSORBOARD))) == sorted(
        os.listdir(os.path.join(member_dir, run_files.TENSORBOARD))
    )
    assert [s for s, _ in run_files.grid_files(output, "fixed")] == [2, 4]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(PARTIAL_PREFIX)]


def test_export_refusals_leave_nothing(pop, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "note.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty"):
        export_member(pop, 0, str(taken))
    with pytest.raises(UserError, match="member 3 does not exist"):
        export_member(pop, 3, str(tmp_path / "x"))
    with pytest.raises(UserError, match="inside the population's workdir"):
        export_member(pop, 0, os.path.join(pop, "members", "export"))
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is taken
    export_member(pop, 0, str(empty))
    assert (empty / run_files.CONFIG).exists()
    with pytest.raises(UserError, match="is a single run, not a population"):
        export_member(str(empty), 0, str(tmp_path / "y"))
    assert sorted(os.listdir(tmp_path)) == ["empty", "taken"]


def test_the_exported_member_resumes_as_the_population_would(pop, tmp_path):
    """Export at step 4, `python -m dcgan_jax.main` to step 6 with the member's values: the state
    equals member 1's after the population itself resumed to step 6 (loop form: bit-exact)."""
    exported = str(tmp_path / "member_1")
    export_member(pop, 1, exported)
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={exported}",
        *TINY_FLAGS,
        "--config.num_train_steps=6",
        "--config.seed=1",
        "--config.optim.learning_rate=1e-3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 4" in result.stdout + result.stderr  # not a fresh start
    resumed_pop = shutil.copytree(pop, str(tmp_path / "pop"))
    train.train_and_evaluate(_config(6), resumed_pop)
    single, member = open_run(exported, 6), open_run(resumed_pop, 6, member=1)
    assert max_abs_diff(single.state, member.state) == 0.0
    assert np.asarray(single.state.step) == 6
    rows = [json.loads(line) for line in open(run_files.path(exported, run_files.METRICS))]
    member_rows = [json.loads(line) for line in open(population.metrics_path(resumed_pop, 1))]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert rows[-1]["d_loss"] == member_rows[-1]["d_loss"]


class _MemberScores:
    """A population's evaluator of given FIDs: member m scores 10 m + step."""

    every_steps, best_metric = 2, "fid"

    def __call__(self, step, g_variables):
        return [{"fid": 10.0 * m + step} for m in range(len(g_variables))]


def test_an_exported_members_checkpoints_carry_its_own_fid(tmp_path):
    config = _config(4)
    config.eval.every_steps = 2
    pop, output = str(tmp_path / "pop"), str(tmp_path / "member_2")
    train.train(config, pop, evaluator=_MemberScores())
    scored = checkpoints.create_manager(pop, read_only=True, best_metric="fid")
    assert [scored.metrics(s) for s in (2, 4)] == [{"fid": 12.0}, {"fid": 14.0}]  # the mean
    export_member(pop, 2, output)
    manager = checkpoints.create_manager(output, read_only=True, best_metric="fid")
    assert [manager.metrics(s) for s in (2, 4)] == [{"fid": 22.0}, {"fid": 24.0}]
