"""What every command-line entry point shares: absl start-up and one-line errors for the user's
mistakes."""

import contextlib
import functools
import json
import math
import os
import sys
from collections.abc import Callable

from absl import app, flags, logging

from dcgan_jax import atomic_write, config_fields, population, run_files
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


def _config_value() -> str:
    """What --config was given (`--config=PATH[:ARGS]` or `--config PATH`), '' when the command's
    default config is used."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        name, has_value, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name == "config":
            return value if has_value else (args[i + 1] if i + 1 < len(args) else "")
    return ""


def _config_file() -> str | None:
    """The file given by --config, None when the command's default config is used."""
    return _config_value().split(":", 1)[0] or None


def _raised_in(error: BaseException, path: str) -> BaseException | None:
    """The exception that running the file `path` raised, found in `error`'s chain (absl and
    ml_collections wrap what a config file raises, flattening its traceback into text): the deepest
    one with a frame of `path` in its traceback, or a syntax error in it. None when `path` raised
    nothing."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    target, found = os.path.realpath(path), None
    for outer, inner in zip(chain, chain[1:] + [None]):
        files = [outer.filename] if isinstance(outer, SyntaxError) and outer.filename else []
        tb = outer.__traceback__
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        if any(os.path.realpath(f) == target for f in files):
            found = outer
        elif inner is not None and str(outer).startswith("Error whilst parsing config file"):
            found = inner  # ml_collections' wrapper of what calling get_config raised
    return found


def _one_line(error: BaseException) -> str:
    path = _config_file()
    raised = path and _raised_in(error, path)
    _, colon, config_args = _config_value().partition(":")
    if colon and isinstance(raised, TypeError) and "get_config()" in str(raised):
        return (
            f"--config={path}:{config_args} passes {config_args!r} to get_config(), which takes "
            f"no argument; drop ':{config_args}' or give {path}'s get_config a parameter"
        )
    if raised:  # a bug in the user's config file: name the file and what it raised
        reason = " ".join(str(raised).split())[:300]
        return (
            f"cannot load the config file {path}: it raised {type(raised).__name__}"
            f"{': ' + reason if reason else ''}; fix the file or pass another --config"
        )
    text = str(error)
    if path and isinstance(error, AttributeError) and "has no attribute 'get_config'" in text:
        return (
            f"the config file {path} has no get_config(); define `def get_config():` returning an "
            f"ml_collections.ConfigDict (as configs/*.py do)"
        )
    if path and (
        (isinstance(error, AttributeError) and " object has no attribute " in text)
        or text.startswith("Unexpected None value for flag config")
    ):  # get_config() returned None or another type
        return (
            f"the config file {path} gave no ml_collections.ConfigDict ({text}); its get_config() "
            f"must return one"
        )
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
    """Flag and config-file mistakes (unknown --config.field, bad value, missing file, any
    exception raised by running the config file, named with it) as one line, exit 2; other
    exceptions keep their traceback.

    ml_collections applies --config.* overrides when the flag is defined and loads the file lazily,
    so both the definition and the first use of the config go inside this guard.
    """
    absl_logger = logging.get_absl_logger()
    absl_logger.addFilter(_said_in_one_line)
    try:
        yield
    except Exception as e:  # a config file may raise anything
        config_file = _config_file()
        if not isinstance(e, (flags.Error,) + FLAG_ERRORS) and not (
            config_file and _raised_in(e, config_file)
        ):
            raise  # not the user's flags or config file: a bug, with its traceback
        moved = config_fields.old_flags(
            sys.argv[1:]
        )  # a field of an earlier version: say where it lives now
        print(f"error: {moved or _one_line(e)}", file=sys.stderr)
        sys.exit(2)
    finally:
        absl_logger.removeFilter(_said_in_one_line)


def _said_in_one_line(record) -> bool:
    """False for ml_collections' warning that get_config() returned None, which the error line
    that follows says again (a logging filter, on while the flags are parsed)."""
    return "get_config() returned None" not in str(record.msg)


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


def seeds(*names: str) -> None:
    """Refuses seed flags outside [0, 2**32): PRNGKey keeps a seed's low 32 bits (so 2**32 would
    repeat seed 0, and -1 be seed 2**32 - 1) and NumPy refuses negative seeds."""
    high = config_fields.SEEDS - 1
    for name in names:
        flags.register_validator(
            name,
            lambda value: value is None or 0 <= value <= high,
            message=f"--{name} must be an integer in [0, {high}]",
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


def define_member() -> flags.FlagHolder:
    """--member=I, for the tools that open one run: a population's workdir (config.population)
    holds N runs, and the tool opens member I as the single run it stands for (required there,
    refused on a plain run: population.require_member; past the last member: one line)."""
    holder = flags.DEFINE_integer(
        "member",
        None,
        "A population workdir (trained with --config.population.size=N): the member to open, "
        "0 to N-1, as the single run it stands for. Required there; a plain run takes none.",
    )
    at_least(0, "member")
    return holder


def member_folder(workdir: str, member: int | None) -> str:
    """Where the run files (metrics, grids, tables) of `workdir`, or of its `member`, lie: the
    workdir itself, or population.member_dir. Decided from workdir/config.json, so it works
    before (and without) opening a checkpoint; a workdir without one is taken as a plain run."""
    try:
        with open(run_files.path(workdir, run_files.CONFIG)) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = {}
    population.require_member(saved, member, workdir)
    if member is None:
        return workdir
    size = population.size(saved)
    if member >= size:
        raise UserError(
            f"member {member} does not exist: the population has {size} members (0 to {size - 1})"
        )
    return population.member_dir(workdir, member)


def output_file(path: str, flag: str = "output") -> str:
    """A file path the command can write: not empty, not an existing directory, under no path that
    is a file, in a folder it can write (not read-only, not full) and of a name its file system
    allows; missing parent folders are created. Called before any work, so a bad --output costs
    nothing."""
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
    atomic_write.check_writable(path)
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
