"""What every command-line entry point shares: absl start-up and one-line errors for the user's
mistakes."""

import contextlib
import functools
import math
import os
import sys
from collections.abc import Callable

from absl import app, flags, logging

from dcgan_jax import config_fields
from dcgan_jax.errors import AbandonedWork, UserError


def run_main(main: Callable) -> Callable:
    """Wraps an absl main so a UserError (or a config the user mistyped) prints one line and exits
    1."""

    @functools.wraps(main)  # keeps main's module: `start` prints that module's help
    def wrapped(argv):
        if (
            logging.get_verbosity() <= logging.INFO
        ):  # orbax logs every save at INFO and warns on read-only
            logging.set_verbosity(logging.ERROR)  # checkpoint dirs; -v=1 brings it back
        if len(argv) > 1:
            print(
                f"error: unexpected arguments {' '.join(argv[1:])!r}: every input is a --flag "
                f"(e.g. --workdir=DIR); see --help",
                file=sys.stderr,
            )
            sys.exit(2)
        try:
            return main(argv)
        except AbandonedWork as e:  # library threads may still run or hang: end now
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(1)
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
    # ml_collections reports an unknown --config.field as AttributeError("'field'\nDid you mean
    # ..."). Only those are quoted reprs; absl's own messages ("Unknown command line flag 'x'") keep
    # their quotes.
    text = " ".join(text.replace("\\n", " ").split())
    if isinstance(error, (AttributeError, KeyError)):
        field = text.replace("\\'", "").strip("'\"")
        return f"unknown config field in the command line: {field}"
    return text


@contextlib.contextmanager
def flag_errors():
    """Flag and config-file mistakes (unknown --config.field, bad value, missing file) as one line,
    exit 2.

    ml_collections applies --config.* overrides when the flag is defined and loads the file lazily,
    so both the definition and the first use of the config go inside this guard.
    """
    try:
        yield
    except (flags.Error,) + FLAG_ERRORS as e:
        moved = config_fields.old_flags(
            sys.argv[1:]
        )  # a field of an earlier version: say where it lives now
        print(f"error: {moved or _one_line(e)}", file=sys.stderr)
        sys.exit(2)


def require_nonempty(*names: str) -> None:
    """Refuses `--name=` (empty) at flag parsing: an empty --workdir would otherwise mean the
    current directory."""
    for name in names:
        flags.register_validator(
            name,
            lambda value: value is None or bool(str(value).strip()),
            message=f"--{name} is empty; give a path (e.g. --{name}=runs/digits)",
        )


def at_least(low: float, *names: str) -> None:
    """Refuses values of the numeric flags `names` below `low` at flag parsing (None, an unset
    default, passes)."""
    for name in names:
        flags.register_validator(
            name,
            lambda value, low=low: value is None or value >= low,
            message=f"--{name} must be >= {low:g}",
        )


def finite(*names: str) -> None:
    """Refuses nan and inf for the float flags `names` at flag parsing (None, an unset default,
    passes)."""
    for name in names:
        flags.register_validator(
            name,
            lambda value: value is None or math.isfinite(value),
            message=f"--{name} must be a finite number",
        )


def output_file(path: str, flag: str = "output") -> str:
    """A file path the command can write: not empty, not an existing directory, under no path that
    is a file; missing parent folders are created."""
    if not path or not path.strip():
        raise UserError(f"--{flag} is empty; give a file name")
    if os.path.isdir(path):
        raise UserError(
            f"--{flag}={path} is a directory; give a file name inside it, e.g. "
            f"--{flag}={os.path.join(path, 'out' + (os.path.splitext(path)[1] or '.png'))}"
        )
    parent = os.path.dirname(os.path.abspath(path))
    blocker = parent
    while blocker and not os.path.exists(blocker):
        blocker = os.path.dirname(blocker)
    if blocker and not os.path.isdir(blocker):
        raise UserError(f"--{flag}={path}: {blocker} is a file, not a folder; choose another path")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UserError(f"--{flag}={path}: cannot create {parent} ({e.strerror})") from None
    return path


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort", "--helpfull", "-helpfull")


def print_help(module_name: str, full: bool = False) -> None:
    """The command's docstring and its flags (`full`: every flag, those of the libraries too), on
    stdout."""
    module = sys.modules.get(module_name)
    print(((module.__doc__ if module else None) or "").strip() or f"USAGE: {sys.argv[0]} [flags]")
    flag_help = flags.FLAGS.get_help() if full else flags.FLAGS.module_help(module_name)
    print(f"\nflags:\n{flag_help.strip()}" if flag_help.strip() else "")
    if not full:
        print("\nTry --helpfull to list every flag.")


def start(main: Callable) -> None:
    """Parses the flags (absl's errors as one line, not a usage dump) and runs `main`; --help prints
    the command's docstring and flags and exits 0 (absl's own --help exists only under app.run, and
    exits 1)."""
    args = sys.argv[1 : sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    asked = [a for a in args if a in HELP_FLAGS]
    if asked:
        print_help(getattr(main, "__module__", ""), full=any("helpfull" in a for a in asked))
        sys.exit(0)
    with flag_errors():
        argv = flags.FLAGS(
            sys.argv
        )  # the program name and any positional arguments, which `run_main` refuses
    app.run(lambda _: main(argv), argv=sys.argv[:1])
