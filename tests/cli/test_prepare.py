"""`python -m dcgan_jax.prepare`: --dedup on a folder with planted near duplicates, and the config checks training
would make, before anything is written."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from dcgan_jax.data.prepare import write_cache
from tests.data.image_files import data_config, load, random_images, write_folder
from tests.data.processes import children, command_line, wait_gone
from tests.helpers import REPO, one_line_error, planted_duplicates, run_cli, tree_digest


def test_dedup_removes_planted_near_duplicates_and_keeps_their_list(tmp_path):
    """Measured when written: 90/90 planted copies removed (JPEG q75, shifted up to 2 px, recoloured +-7%), 0/300
    distinct images removed (tests/data/test_dedup.py has the method's own test)."""
    images, originals = planted_duplicates(distinct=300, copies=90, seed=0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    output = tmp_path / "cache"
    result = run_cli(
        "dcgan_jax.prepare",
        "--config=configs/celeba.py",
        "--config.model.image_size=64",
        "--config.data.dataset=image_folder",
        f"--config.data.data_path={folder}",
        f"--output={output}",
        "--dedup",
        "--config.dedup.steps=400",
        "--config.dedup.batch_size=128",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output / "duplicates.json") as f:
        removed = {int(k): v for k, v in json.load(f)["removed"].items()}
    copies = set(range(300, 390))
    assert len(copies & set(removed)) >= 0.95 * len(copies)
    assert sum(1 for i in removed if i < 300) <= 3  # at most 1% of the distinct images
    assert (
        f"removed {len(removed)} near duplicates" in result.stdout
        and "duplicates.json" in result.stdout
    )
    cache = load(
        data_config(dataset="prepared", data_path=str(output), image_size=64, num_channels=3)
    )
    kept = [i for i in range(390) if i not in removed]
    assert len(cache) == len(kept)
    np.testing.assert_array_equal(cache.read_many(np.arange(len(kept))), images[kept])


def test_a_config_training_would_refuse_writes_nothing(tmp_path):
    result = run_cli(
        "dcgan_jax.prepare", "--config.model.image_size=48", f"--output={tmp_path / 'cache'}"
    )
    one_line_error(result, "image_size=48")
    assert not os.path.exists(tmp_path / "cache")


def test_dedup_removing_too_much_stops_and_keeps_the_old_cache(tmp_path):
    output = tmp_path / "cache"
    assert (
        run_cli("dcgan_jax.prepare", f"--output={output}").returncode == 0
    )  # the digits, no dedup
    before = tree_digest(str(output))
    result = run_cli(
        "dcgan_jax.prepare",
        f"--output={output}",
        "--dedup",
        "--config.dedup.steps=50",
        "--config.dedup.max_hamming=128",
    )  # every code within 128 bits: all but one "duplicates"
    one_line_error(result, "--dedup would remove", "max_removed_fraction=0.5")
    assert tree_digest(str(output)) == before and sorted(os.listdir(tmp_path)) == ["cache"]


def _folder_flags(folder):
    return (
        "--config=configs/celeba.py",
        "--config.model.image_size=64",
        "--config.data.dataset=image_folder",
        f"--config.data.data_path={folder}",
        "--config.data.num_data_workers=2",
    )


def test_unreadable_images_are_reported_by_kind_at_the_default_verbosity(tmp_path):
    folder = tmp_path / "photos"
    write_folder(str(folder), random_images(4, 70, 70))
    with open(folder / "img000.png", "rb") as f:
        head = f.read()[:300]
    for name in ("cut1.png", "cut2.png"):
        (folder / name).write_bytes(head)
    Image.new("L", (1, 1_000_000)).save(folder / "tall.png")
    result = run_cli("dcgan_jax.prepare", *_folder_flags(folder), f"--output={tmp_path / 'cache'}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = sorted(line for line in result.stderr.splitlines() if line.startswith("left out"))
    assert len(lines) == 2, result.stderr[-3000:]
    assert lines[0].startswith("left out 1 unreadable image: too elongated; first: ")
    assert "tall.png" in lines[0] and "1 x 1000000 pixels" in lines[0]
    assert lines[1].startswith("left out 2 unreadable images: truncated file; first: ")
    assert "cut1.png" in lines[1]
    assert "(3 unreadable left out)" in result.stdout


def test_sigterm_stops_prepare_cleanly(tmp_path):
    """SIGTERM mid-way: one line, exit 143, the partial cache removed, the old cache unchanged, no worker left."""
    output = tmp_path / "cache"
    write_folder(str(tmp_path / "old"), random_images(6, 40, 40))
    write_cache(
        data_config(dataset="image_folder", data_path=str(tmp_path / "old")).data,
        32,
        3,
        str(output),
    )
    before = tree_digest(str(output))
    folder = (
        tmp_path / "big"
    )  # 2000 links to one 1024 px image: ~25 ms each to decode, a minute in all
    folder.mkdir()
    y, x = np.mgrid[0:1024, 0:1024]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(
        folder / "0.png"
    )
    for i in range(1, 2000):
        os.link(folder / "0.png", folder / f"{i}.png")
    command = [
        sys.executable,
        "-m",
        "dcgan_jax.prepare",
        *_folder_flags(folder),
        f"--output={output}",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers = []
    try:
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline and process.poll() is None
        ):  # decoding: the partial cache, 2 workers
            workers = [p for p in children(process.pid) if "spawn_main" in command_line(p)]
            if len(workers) == 2 and (tmp_path / f"cache.partial-{process.pid}").exists():
                break
            time.sleep(0.2)
        assert len(workers) == 2, process.communicate()
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == (
        f"stopped by SIGTERM before the cache was complete: the partial cache was removed and the cache at "
        f"{output} is unchanged; run the same command again to prepare it"
    )
    assert tree_digest(str(output)) == before and sorted(os.listdir(tmp_path)) == [
        "big",
        "cache",
        "old",
    ]
    assert wait_gone(workers, timeout=30) == []
