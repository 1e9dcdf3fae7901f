"""`python -m dcgan_jax.prepare`: --dedup on a folder with planted near duplicates, and the config checks training
would make, before anything is written."""

import json
import os

import numpy as np
from PIL import Image

from tests.data.image_files import data_config, load
from tests.helpers import one_line_error, planted_duplicates, run_cli


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
    from tests.helpers import tree_digest

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
