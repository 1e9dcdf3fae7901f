"""TensorFlow (and TFDS) are the optional `tfds` extra: everything else works with their imports blocked, and asking
for a TFDS dataset without them is a one-line error naming the install command."""

import os
import subprocess
import sys
import textwrap

from tests.helpers import REPO, one_line_error, run_cli

# Imported by Python at start-up from PYTHONPATH: makes `import tensorflow` / `import tensorflow_datasets` fail as
# if they were not installed, in the process and in every process it starts (data workers, subprocesses).
BLOCKER = """
import sys
for name in ("tensorflow", "tensorflow_datasets"):
    sys.modules[name] = None
"""

SCRIPT = textwrap.dedent("""
    import io, os, sys
    import lmdb
    import numpy as np
    from PIL import Image
    from dcgan_jax import train
    from dcgan_jax.analysis import sampling
    from dcgan_jax.data import datasets, prepare
    from dcgan_jax.training.run import open_run
    from tests.helpers import tiny_config

    root = sys.argv[1]
    train.train_and_evaluate(tiny_config(num_train_steps=2), os.path.join(root, "digits_run"))
    run = open_run(os.path.join(root, "digits_run"))
    images, _ = sampling.sample(run.config.model, run.sampling_g_variables, 3)
    assert images.shape == (3, 32, 32, 1)
    assert os.listdir(os.path.join(root, "digits_run", "tensorboard"))

    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(5)]
    os.makedirs(os.path.join(root, "folder"))
    env = lmdb.open(os.path.join(root, "lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, picture in enumerate(pictures):
            Image.fromarray(picture).save(os.path.join(root, "folder", f"{i}.png"))
            buffer = io.BytesIO()
            Image.fromarray(picture).save(buffer, "WEBP", lossless=True)
            txn.put(f"{i:04x}".encode(), buffer.getvalue())
    env.close()
    config = tiny_config(model=dict(image_size=32, num_channels=3), data=dict(num_data_workers=2))
    for dataset, path in (("image_folder", "folder"), ("lsun_lmdb", "lmdb")):
        config.data.dataset, config.data.data_path = dataset, os.path.join(root, path)
        source = datasets.load_source(config.data, 32, 3)
        assert len(source) == 5 and source[4].shape == (32, 32, 3), dataset
    prepare.write_cache(config.data, 32, 3, os.path.join(root, "cache"))
    config.data.dataset, config.data.data_path = "prepared", os.path.join(root, "cache")
    assert len(datasets.load_source(config.data, 32, 3)) == 5
    config.data.dataset, config.data.data_path = "idx", "/usr/share/datasets/fashion-mnist"
    source = datasets.load_source(config.data, 32, 3, "test")
    assert len(source) == 10_000 and source[9_999].shape == (32, 32, 3)
    assert sys.modules["tensorflow"] is None and sys.modules["tensorflow_datasets"] is None
    assert "torch" not in sys.modules
    print("OK without TensorFlow")
""")


def _blocked_env(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": os.pathsep.join([str(blocker), REPO, os.environ.get("PYTHONPATH", "")])}


def test_training_sampling_and_every_local_source_work_without_tensorflow(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **_blocked_env(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK without TensorFlow" in result.stdout


def test_a_tfds_dataset_without_tensorflow_names_the_install_command(tmp_path):
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={tmp_path}/run",
        "--config=configs/mnist.py",
        env=_blocked_env(tmp_path),
    )
    line = one_line_error(result, "mnist", 'pip install "dcgan_jax[tfds]"')
    assert "tensorflow" in line
