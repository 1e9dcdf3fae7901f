"""Progress bars (dcgan_jax/progress_bars.py): drawn on a terminal, silent when stderr is captured or piped."""

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

from dcgan_jax import progress_bars
from tests.helpers import REPO

# A long command in miniature: the FID classifier's training loop and the SVM's C path, both behind bars.
SNIPPET = """
import numpy as np
from dcgan_jax.data.labelled import load_labelled
from dcgan_jax.evaluation import classifier, probe
from tests.helpers import eval_config
config = eval_config('/tmp/unused')
config.eval.classifier.steps = 3
images, labels = load_labelled('digits', 'train', 32, 1, '')
classifier.train_classifier(images[:64], labels[:64], config.eval.classifier)
x = np.random.default_rng(0).normal(size=(60, 5)); y = np.arange(60) % 3; x[:, 0] += 3 * y
config.eval.probe.svm_c_values = (1e-2, 1e-1)
print(probe.linear_svm(x, y, x, y, config.eval.probe)['test_accuracy'])
"""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bars_are_silent_when_stderr_is_not_a_terminal(capsys):
    for _ in progress_bars.bar(range(5), desc="work"):
        pass
    with progress_bars.bar(total=3, desc="manual") as bar:
        bar.update(3)
    assert not progress_bars.enabled()  # pytest captures stderr
    assert capsys.readouterr().err == ""


def test_bars_are_drawn_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert progress_bars.enabled()
    with progress_bars.bar(total=4, desc="extracting", unit="img") as bar:
        bar.update(4)
    drawn = terminal.getvalue()
    assert "extracting" in drawn and "0/4" in drawn and "\r" in drawn


def test_a_stream_without_isatty_or_closed_disables_bars(monkeypatch):
    monkeypatch.setattr(sys, "stderr", object())
    assert not progress_bars.enabled()
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert not progress_bars.enabled()


def test_long_library_calls_leave_no_bar_in_captured_stderr_but_draw_one_on_a_terminal():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    captured = subprocess.run(
        [sys.executable, "-c", SNIPPET], cwd=REPO, capture_output=True, env=env, timeout=300
    )
    assert captured.returncode == 0, captured.stderr[-2000:]
    err = captured.stderr.decode()
    assert "\r" not in err and "FID classifier" not in err and "SVM" not in err, err[-2000:]
    leader, follower = (
        pty.openpty()
    )  # stderr a pseudo-terminal: the same calls draw their bars there
    fcntl.ioctl(
        follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0)
    )  # 100 columns, as a terminal has
    child = subprocess.Popen(
        [sys.executable, "-c", SNIPPET],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    drawn = b""
    try:
        while True:  # read while it runs (a full terminal buffer would block the child)
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child has exited and closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert child.wait(timeout=300) == 0, drawn[-2000:]
    assert b"FID classifier" in drawn and b"SVM" in drawn and b"\r" in drawn
