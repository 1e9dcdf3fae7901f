"""The run's folder: created and checked writable before any work is done."""

import os

import jax

from dcgan_jax.errors import UserError


def prepare_workdir(workdir: str) -> None:
    """Creates workdir and checks it is writable, before any work is done."""
    try:
        os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
        probe = os.path.join(workdir, f".write_test.{jax.process_index()}")  # every host checks; no two share a name
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"workdir {workdir!r} is not writable ({e.strerror}); pass a writable --workdir") from None
