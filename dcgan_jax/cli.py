"""What every command-line entry point shares: one-line errors for the user's mistakes, quiet TensorFlow."""

import contextlib
import os
import sys
from typing import Callable

from dcgan_jax.errors import UserError


def quiet_tensorflow() -> None:
    """TensorFlow (used for data and TensorBoard only) must neither log noise nor take accelerator memory."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_visible_devices([], "TPU")
    except Exception:  # TensorFlow absent or already initialized: nothing to hide
        pass


def run_main(main: Callable) -> Callable:
    """Wraps an absl main so a UserError (or a config the user mistyped) prints one line and exits 1."""
    def wrapped(argv):
        from absl import logging
        if logging.get_verbosity() == logging.INFO:  # orbax logs every save at INFO; -v=1 brings it back
            logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
    return wrapped


FLAG_ERRORS = (AttributeError, KeyError, TypeError, ValueError, OSError, SyntaxError, ImportError)


def _one_line(error: BaseException) -> str:
    text = str(error)
    if "Failed loading config file" in text or "earlier failure to load" in text:
        return f"cannot load --config: {text.strip().splitlines()[-1].strip()}"
    # ml_collections reports an unknown --config.field as AttributeError("'field'\nDid you mean ...").
    text = " ".join(text.replace("\\n", " ").replace("\\'", "").strip("'\"").split())
    if isinstance(error, (AttributeError, KeyError)):
        return f"unknown config field in the command line: {text}"
    return text


@contextlib.contextmanager
def flag_errors():
    """Flag and config-file mistakes (unknown --config.field, bad value, missing file) as one line, exit 2.

    ml_collections applies --config.* overrides when the flag is defined and loads the file lazily, so both the
    definition and the first use of the config go inside this guard.
    """
    from absl import flags
    try:
        yield
    except (flags.Error,) + FLAG_ERRORS as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)


def parse_flags_or_exit(argv) -> None:
    """absl's flag errors as one line instead of a usage dump."""
    from absl import flags
    with flag_errors():
        flags.FLAGS(argv)
