"""benchmarks/train_step.py runs end to end at a tiny size and reports its JSON figures (no timing assertions)."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "train_step.py")


@pytest.mark.slow
def test_train_step_benchmark_reports_positive_figures():
    pytest.importorskip("torch", reason="the PyTorch reference needs the 'bench' extra: pip install -e .[bench]")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--image_size=32", "--batch_size=8", "--steps=2", "--blocks=1", "--warmup=0",
         "--json"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("jax_images_per_sec", "torch_images_per_sec", "ratio", "compile_seconds"):
        assert report[key] > 0, key
    assert report["ratio"] == pytest.approx(report["jax_images_per_sec"] / report["torch_images_per_sec"])
    assert (report["image_size"], report["batch_size"], report["upsample"]) == (32, 8, "subpixel")
    assert len(report["jax_seconds_per_step"]) == len(report["torch_seconds_per_step"]) == 1


def test_bad_device_count_is_a_one_line_error():
    result = subprocess.run([sys.executable, SCRIPT, "--batch_size=7", "--devices=2", "--json"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "divisible" in result.stderr and "Traceback" not in result.stderr
