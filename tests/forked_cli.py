"""A process that imports JAX, Flax, orbax and the project once and then runs each command the tests
give it (`python -m dcgan_jax.X ARGS`) in a forked child: the child is a fresh process as far as
the command can tell (its own argv, environment, working directory, stdout/stderr, exit code, exit
handlers and JAX backend, which the parent never starts), without paying the ~3 CPU-seconds of
imports that each `python -m` spends before it reads a flag. tests/helpers.py's `run_cli` talks to
one per pytest worker over its stdin/stdout, one JSON line each way.

The parent stays single-threaded (checked at start-up), which is what makes the fork safe; the
commands' own threads are started in the children."""

import json
import os
import sys
import threading
import time

# What the commands import before their first flag: loaded here once, shared by every child.
import flax.linen  # noqa: F401
import jax  # noqa: F401
import optax  # noqa: F401
import orbax.checkpoint  # noqa: F401
from tensorboard.backend.event_processing import event_accumulator  # noqa: F401

import dcgan_jax.cli.common  # noqa: F401
import dcgan_jax.evaluation.fid  # noqa: F401
import dcgan_jax.train  # noqa: F401


def _serve(requests, replies) -> dict | None:
    """Answers requests until stdin closes (returns None) or, in a forked child, returns the request
    the child is to run."""
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return request
        deadline = time.monotonic() + request["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                replies.write(json.dumps({"timeout": True}) + "\n")
                break
            time.sleep(0.005)
        replies.flush()
    return None


def _become(request: dict) -> None:
    """Turns this forked child into `python -m module args` run in `cwd` with `env`."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = [request["module"], *request["args"]]
    sys.path[0] = request["cwd"]  # what `python -m` puts first


if __name__ == "__main__":
    if threading.active_count() != 1:  # a thread would be lost, its locks held, in every child
        sys.exit(f"forked_cli: {threading.active_count()} threads after the imports; cannot fork")
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # nothing the parent prints may corrupt the reply stream
    job = _serve(sys.stdin, replies)
    if job is not None:
        replies.close()
        _become(job)
        del job, replies
        import runpy

        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
