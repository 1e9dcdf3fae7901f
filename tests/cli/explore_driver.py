"""Runs `dcgan_jax.explore`'s main on several command lines in one process, so the tests pay Python and JAX start-up
once rather than once per mode: `python -m tests.cli.explore_driver RESULTS.json COMMANDS.json`.

COMMANDS.json is a list of argument lists; RESULTS.json gets, per command, its exit code, stdout and stderr, as a
subprocess of its own would have had them (flag errors and UserErrors exit through `common.run_main`). Flags are reset
to their defaults between commands. The full entry point (`common.start`) is covered by the tests' real runs.
"""

import contextlib
import io
import json
import sys

from absl import flags

from dcgan_jax.cli import explore


def run_commands(commands):
    results = []
    for args in commands:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["explore", *args])
        stdout, stderr, code = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                explore.main(["explore"])
            except SystemExit as e:
                code = e.code
        results.append(
            {"returncode": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        )
    return results


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        results = run_commands(json.load(f))
    with open(sys.argv[1], "w") as f:
        json.dump(results, f)
