"""What every command-line entry point shares: one-line errors for the user's mistakes, quiet TensorFlow."""

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


def parse_flags_or_exit(argv) -> None:
    """absl's flag errors (unknown config field, bad --config path) as one line instead of a usage dump."""
    from absl import flags
    try:
        flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
