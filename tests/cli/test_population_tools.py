"""The tools on a population's workdir: `sample`, `explore` and `evaluate` take --member=I (member I as
its single run), `evaluate --task=fid` without it scores every member, and `export` writes a member
out as a plain run that every tool opens without --member."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dcgan_jax import population, run_files
from tests.helpers import TINY_FLAGS, one_line_error, run_cli

pytestmark = pytest.mark.slow  # each command opens the run in a fresh process

VARY = "optim.learning_rate=2e-4,1e-3,2e-4"  # members 0 and 2: one variant, two seeds


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    """A tiny population of 3 members trained for 4 steps (checkpoints at 2 and 4), shared by the
    module; tests that write into it write only what the tools write (tables, exports elsewhere)."""
    path = str(tmp_path_factory.mktemp("population") / "pop")
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={path}",
        *TINY_FLAGS,
        "--config.num_train_steps=4",
        "--config.population.size=3",
        f"--config.population.vary={VARY}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def exported(pop, tmp_path_factory):
    """Member 1 of `pop` exported as a plain run."""
    path = str(tmp_path_factory.mktemp("exported") / "member_1")
    result = run_cli("dcgan_jax.export", f"--workdir={pop}", "--member=1", f"--output={path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--config.seed=1 --config.optim.learning_rate=0.001" in result.stdout
    return path


def _sample(workdir, output, *flags):
    result = run_cli(
        "dcgan_jax.sample", f"--workdir={workdir}", "--num_samples=8", f"--output={output}", *flags
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(output) as saved:
        return saved["images"]


def test_a_member_samples_as_its_exported_run(pop, exported, tmp_path):
    member_1 = _sample(pop, tmp_path / "pop_1.npz", "--member=1")
    assert np.array_equal(member_1, _sample(exported, tmp_path / "exported.npz"))
    assert not np.array_equal(member_1, _sample(pop, tmp_path / "pop_2.npz", "--member=2"))


@pytest.mark.parametrize("tool", ["sample", "explore", "evaluate"])
def test_member_mistakes_are_one_line(pop, exported, tmp_path, tool):
    output = {"sample": ["--output=x.png"], "explore": ["--output=x.png"], "evaluate": []}[tool]
    args = ["--task=classify"] if tool == "evaluate" else []
    common = [*output, *args]
    one_line_error(
        run_cli(f"dcgan_jax.{tool}", f"--workdir={pop}", *common, cwd=tmp_path),
        "holds a population of 3 members",
        "--member=I (0 to 2)",
    )
    one_line_error(
        run_cli(f"dcgan_jax.{tool}", f"--workdir={pop}", "--member=3", *common, cwd=tmp_path),
        "member 3 does not exist",
    )
    one_line_error(
        run_cli(f"dcgan_jax.{tool}", f"--workdir={exported}", "--member=0", *common, cwd=tmp_path),
        "is a single run, not a population; leave out --member",
    )


def test_training_gif_reads_the_member_grids(pop, tmp_path):
    output = tmp_path / "member.gif"
    result = run_cli(
        "dcgan_jax.explore",
        f"--workdir={pop}",
        "--member=2",
        "--mode=training_gif",
        f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.exists()
    one_line_error(
        run_cli(
            "dcgan_jax.explore", f"--workdir={pop}", "--mode=training_gif", f"--output={output}"
        ),
        "pass --member=I",
    )


def _evaluate_fid(workdir, classifier_dir, *flags):
    return run_cli(
        "dcgan_jax.evaluate",
        f"--workdir={workdir}",
        "--task=fid",
        "--num_samples=30",
        f"--classifier_dir={classifier_dir}",
        *flags,
    )


def _fid(workdir, classifier_dir, *flags):
    result = _evaluate_fid(workdir, classifier_dir, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_fid_scores_every_member_as_its_single_run(pop, exported, fid_classifier, tmp_path):
    classifier_dir = fid_classifier[0].eval.classifier.dir
    result = _fid(pop, classifier_dir)
    with open(run_files.eval_table(pop, "fid")) as f:
        table = json.load(f)
    rows, summary = table["rows"], table["summary"]
    assert [row["member"] for row in rows] == [0, 1, 2] and table["step"] == 4
    assert [row["optim.learning_rate"] for row in rows] == [2e-4, 1e-3, 2e-4]
    fids = [row["fid"] for row in rows]
    assert summary["mean"] == pytest.approx(np.mean(fids))
    assert summary["std"] == pytest.approx(np.std(fids, ddof=1))
    assert summary["min"] == min(fids) and summary["best_member"] == int(np.argmin(fids))
    assert f"best: member {summary['best_member']}" in result.stdout
    # per variant (members sharing their varied values, seeds as replicas), as fid.summarize
    # gives it for the variant's members alone
    lr_2e4, lr_1e3 = summary["groups"]
    assert lr_2e4["optim.learning_rate"] == 2e-4 and lr_2e4["members"] == 2
    assert lr_2e4["mean"] == pytest.approx((fids[0] + fids[2]) / 2)
    assert lr_2e4["std"] == pytest.approx(abs(fids[0] - fids[2]) / np.sqrt(2))
    assert lr_2e4["best_member"] == (0 if fids[0] <= fids[2] else 2)
    assert lr_1e3["members"] == 1 and lr_1e3["mean"] == fids[1] and lr_1e3["std"] == 0.0
    assert "fid by variant (optim.learning_rate):" in result.stdout
    with Image.open(os.path.join(pop, run_files.eval_fid_plot("fid"))) as plot:
        assert plot.format == "PNG" and plot.size[0] > 300
    # a member's row is its single run's score: --member=1, and the exported run
    _fid(pop, classifier_dir, "--member=1")
    with open(run_files.eval_table(population.member_dir(pop, 1), "fid")) as f:
        assert json.load(f)["rows"][0]["fid"] == fids[1]
    _fid(exported, classifier_dir)
    with open(run_files.eval_table(exported, "fid")) as f:
        assert json.load(f)["rows"][0]["fid"] == fids[1]
    # --member=best reads the table
    best = tmp_path / "best"
    result = run_cli("dcgan_jax.export", f"--workdir={pop}", "--member=best", f"--output={best}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote member {summary['best_member']} of" in result.stdout


def test_export_refusals_are_one_line(pop, exported, tmp_path):
    one_line_error(
        run_cli("dcgan_jax.export", f"--workdir={pop}", "--member=1", f"--output={exported}"),
        "exists and is not empty",
    )
    one_line_error(
        run_cli("dcgan_jax.export", f"--workdir={pop}", "--member=7", f"--output={tmp_path}/x"),
        "member 7 does not exist",
    )
    one_line_error(
        run_cli(
            "dcgan_jax.export", f"--workdir={exported}", "--member=0", f"--output={tmp_path}/y"
        ),
        "is a single run, not a population",
    )
    fresh = tmp_path / "fresh"
    os.makedirs(fresh / "members" / "member_0")  # a population workdir without a FID table
    one_line_error(
        run_cli(
            "dcgan_jax.export", f"--workdir={fresh}", "--member=best", f"--output={tmp_path}/z"
        ),
        "--member=best needs the population's FID table",
    )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_each_member_has_its_own_tensorboard_run(pop):
    for i in range(3):
        accumulator = EventAccumulator(
            os.path.join(population.member_dir(pop, i), run_files.TENSORBOARD),
            size_guidance={"scalars": 0},
        )
        accumulator.Reload()
        scalars = accumulator.Scalars("train/d_loss")
        with open(population.metrics_path(pop, i)) as f:
            rows = [json.loads(line) for line in f]
        assert [s.step for s in scalars] == [r["step"] for r in rows] == [2, 4]
        assert [s.value for s in scalars] == pytest.approx([r["d_loss"] for r in rows], rel=1e-6)


def test_noema_scores_every_members_trained_g_into_its_own_table(pop, fid_classifier, tmp_path):
    """Members with a moving average are scored on it by default; --noema scores their trained Gs,
    each equal to the 'without EMA' row of that member's own table, and leaves eval_fid.json be."""
    classifier_dir = fid_classifier[0].eval.classifier.dir
    averaged = str(tmp_path / "averaged")
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={averaged}",
        *TINY_FLAGS,
        "--config.num_train_steps=4",
        "--config.population.size=2",
        "--config.population.vary=optim.ema_decay=0.5,0",  # member 1 keeps no average
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _fid(averaged, classifier_dir)
    with open(run_files.eval_table(averaged, "fid")) as f:
        first = f.read()
    result = _fid(averaged, classifier_dir, "--noema")
    assert "(each its trained G)" in result.stdout
    with open(run_files.eval_table(averaged, "fid")) as f:
        assert f.read() == first
    with open(run_files.eval_table(averaged, "fid_noema")) as f:
        noema = [row["fid"] for row in json.load(f)["rows"]]
    with Image.open(os.path.join(averaged, run_files.eval_fid_plot("fid_noema"))) as plot:
        assert plot.format == "PNG"
    sampled = [row["fid"] for row in json.loads(first)["rows"]]
    _fid(averaged, classifier_dir, "--member=0")
    with open(run_files.eval_table(population.member_dir(averaged, 0), "fid")) as f:
        rows = {row["images"]: row["fid"] for row in json.load(f)["rows"]}
    assert rows["generator, EMA 0.5 (step 4)"] == sampled[0] != noema[0]
    assert rows["generator without EMA (step 4)"] == noema[0]
    assert sampled[1] == noema[1]  # member 1's sampled G is its trained G
    one_line_error(_evaluate_fid(averaged, classifier_dir, "--noema", "--member=0"), "--noema")
    member_0 = str(tmp_path / "member_0")  # a single run: its table has both rows
    assert (
        run_cli(
            "dcgan_jax.export", f"--workdir={averaged}", "--member=0", f"--output={member_0}"
        ).returncode
        == 0
    )
    one_line_error(_evaluate_fid(member_0, classifier_dir, "--noema"), "--noema applies to")
    one_line_error(_evaluate_fid(pop, classifier_dir, "--noema"), "keep no moving average of G")
