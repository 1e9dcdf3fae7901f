"""The README and docs/ against the code: every command they show is parsed as its module would parse
it, so the pages cannot drift from the flags and config fields they name; every relative link and
image path resolves.

Commands come from fenced shell blocks (bash, sh, console, untagged; `$ ` prompts when a block has
them; commands inside a comment too) and from inline code spans that start with `python -m
dcgan_jax.X`, `python -m benchmarks.X`, `python benchmarks/X.py` or a console script of
pyproject.toml. For `python -m dcgan_jax.X` (and its console script, and the launch/ scripts that
run `main`):
- every `--flag`/`--noflag` is parsed by absl's FLAGS with the command module's flags (imported in a
  subprocess, one module after the other; its validators run), so an unknown flag or a bad value
  fails;
- `--config=PATH[:ARGS]` and `--config.a.b=value` are applied as the command applies them (ml_collections'
  config flag, in a fresh FlagValues) and the result is checked by `config_fields.validate` (all but
  the memory estimate, which depends on the machine).
Benchmark scripts must exist and their flags be defined by their argparse parsers (read from their
source), with `--config.*` overrides of configs/fashion_mnist.py for benchmarks/quality.py. Values
written as placeholders (`--member=I`, `--workdir=RUN`) are checked by name only. Inline spans of
flags alone (`--noema`) must be flags of some command, spans of config fields (`--config.a.b=1`)
fields of today's config (or names of earlier versions, which the pages cite as moved), and the
"From Python" script of docs/latent_space.md must call functions that exist with arguments they take.

Fast: no JAX compilation, no training; one subprocess imports the six command modules.
"""

import ast
import dataclasses
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest

from tests.helpers import REPO

PAGES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))
)
MODULES = ("main", "sample", "explore", "evaluate", "prepare", "export")
with open(os.path.join(REPO, "pyproject.toml"), "rb") as _f:
    SCRIPTS = {  # console script -> command module: dcgan-train -> main
        name: target.split(":")[0].rsplit(".", 1)[1]
        for name, target in tomllib.load(_f)["project"]["scripts"].items()
    }
SHELLS = {"", "bash", "sh", "shell", "console"}
STARTS = re.compile(
    r"(python3? -m (?:dcgan_jax|benchmarks)\.\w+|python3? benchmarks/\S+|(?:"
    + "|".join(map(re.escape, SCRIPTS))
    + r")(?=\s|$))"
)
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(\[[^\]]*\])?")  # RUN, DIR, I, PATH[:ARGS]
# Inline spans in the short form the pages use for a command: `sample --class=3`, and on the explore
# page a mode's flags alone, `--mode=walk --zoom=3`.
SHORT = re.compile(r"(?:(" + "|".join(MODULES) + r") |(?=--mode=))(?=--)")
LAUNCH = re.compile(r"launch/[\w.]+\.(?:sh|sbatch)")
MIN_COMMANDS = 100  # the pages show about 110; an extraction that finds few is broken


@dataclasses.dataclass
class Command:
    where: str  # page:line
    text: str
    kind: str  # "cli" (a dcgan_jax command), "benchmark", "error" (unparseable)
    module: str = ""  # cli: main, sample, ...; benchmark: the script's path
    args: list = dataclasses.field(default_factory=list)
    whole: bool = True  # a code block's command; an inline span may leave out required flags


# --- extraction -------------------------------------------------------------------------------


def _fences(text: str):
    """(first line number, info string, lines) of each fenced code block."""
    lines, i = text.split("\n"), 0
    while i < len(lines):
        opening = re.match(r"^\s*(```+)\s*(\S*)", lines[i])
        if opening:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(opening.group(1)):
                body.append(lines[i])
                i += 1
            yield start + 1, opening.group(2).lower(), body
        i += 1


def _without_fences(text: str) -> str:
    """The page with each fenced block's lines blanked (line numbers kept)."""
    lines = text.split("\n")
    for start, _, body in _fences(text):
        for k in range(start - 2, start + len(body)):
            lines[k] = ""
    return "\n".join(lines)


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: the first `#` outside quotes that starts a word."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :]
    return line, ""


def _logical_lines(body: list[str]) -> list[tuple[int, str]]:
    """(offset, line) with backslash continuations joined; only the `$ ` lines of a block that
    shows prompts."""
    prompts = any(line.startswith("$ ") for line in body)
    out, k = [], 0
    while k < len(body):
        offset, line = k, body[k]
        while line.rstrip().endswith("\\") and k + 1 < len(body):
            k += 1
            line = line.rstrip()[:-1] + " " + body[k].strip()
        k += 1
        if prompts:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        out.append((offset, line))
    return out


def _segments(code: str) -> list[list[str]]:
    """Shell words of each command of `code`, split on &&, ||, ;, | and &."""
    lexer = shlex.shlex(code, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    segments = [[]]
    for token in lexer:
        if token and set(token) <= set(";&|"):
            segments.append([])
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def _command(words: list[str], where: str, text: str) -> Command | None:
    """The Command these shell words run, or None for what this test does not check (pip, tfds,
    unzip, tensorboard, ...)."""
    env = {}
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        return None
    head, rest = words[0], words[1:]
    if head in ("python", "python3") and rest[:1] == ["-m"] and len(rest) > 1:
        package, _, name = rest[1].partition(".")
        if package == "dcgan_jax" and not _is_placeholder(name):  # not `dcgan_jax.X`
            return Command(where, text, "cli", name, rest[2:])
        if package == "benchmarks":
            return Command(where, text, "benchmark", f"benchmarks/{name}.py", rest[2:])
        return None
    if head in ("python", "python3") and rest and rest[0].startswith("benchmarks/"):
        return Command(where, text, "benchmark", rest[0], rest[1:])
    if head in SCRIPTS:
        return Command(where, text, "cli", SCRIPTS[head], rest)
    launch = [w for w in words if LAUNCH.fullmatch(w)]
    if launch:  # launch/ scripts run `main` with the arguments they are given
        script = launch[0]
        if head == "sbatch":  # slurm.sbatch: its config comes from $CONFIG
            args = [f"--config={env['CONFIG']}"] if "CONFIG" in env else []
        elif script.endswith("local_multiprocess.sh"):
            args = rest[rest.index("--") + 1 :] if "--" in rest else []
        else:
            args = rest
        return Command(where, text, "cli", "main", args + [f"@exists={script}"])
    return None


def _from_shell(line: str, where: str, whole: bool = True) -> list[Command]:
    code, comment = _split_comment(line)
    found = []
    try:
        segments = _segments(code)
    except ValueError as e:  # unbalanced quotes: an error where a command was meant
        if STARTS.search(code) or LAUNCH.search(code):
            found.append(Command(where, line.strip(), "error", args=[f"cannot parse: {e}"]))
        segments = []
    for words in segments:
        command = _command(words, where, " ".join(words))
        if command:
            command.whole = whole
            found.append(command)
    start = STARTS.search(comment)  # e.g. `# ...: python -m dcgan_jax.export --workdir=...`
    if start:
        found += _from_shell(comment[start.start() :].rstrip(" )"), where, whole)
    return found


def page_commands(page: str, text: str | None = None) -> list[Command]:
    """Every command of a page (`text`: the page's text, read from the repository when None)."""
    if text is None:
        with open(os.path.join(REPO, page), encoding="utf-8") as f:
            text = f.read()
    commands = []
    for start, info, body in _fences(text):
        if info in SHELLS:
            for offset, line in _logical_lines(body):
                commands += _from_shell(line, f"{page}:{start + offset}")
    prose = _without_fences(text)
    for match in re.finditer(r"`([^`]+)`", prose):
        span = " ".join(match.group(1).split())
        short = SHORT.match(span)
        if short:  # `explore --noema`, `--mode=walk --zoom=3`: python -m dcgan_jax.X
            span = f"python -m dcgan_jax.{short.group(1) or 'explore'} {span[short.end() :]}"
        if STARTS.match(span):
            line = prose.count("\n", 0, match.start()) + 1
            commands += _from_shell(span, f"{page}:{line}", whole=False)
    return commands


def flag_spans(page: str) -> list[Command]:
    """Inline spans of flags alone (`--noema`, `--member=I`, `--start/--stop`), outside commands: a
    Command of kind "flag" whose args are the flags, each a flag of some command or benchmark."""
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        prose = _without_fences(f.read())
    found = []
    for match in re.finditer(r"`(--[^`]+)`", prose):
        span = " ".join(match.group(1).split())
        if SHORT.match(span) or span.startswith("--config."):
            continue  # a command (`--mode=...`), or a config field (config_spans)
        names = [
            w.strip("[]").split("=")[0]
            for word in span.split()
            for w in word.split("/")  # `--start/--stop`
            if w.strip("[]").startswith("--")
        ]
        line = prose.count("\n", 0, match.start()) + 1
        found.append(Command(f"{page}:{line}", span, "flag", args=names))
    return found


def config_spans(page: str) -> list[tuple[str, str]]:
    """(page:line, dotted field) of each inline `--config.a.b[=value]` span, outside commands."""
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        prose = _without_fences(f.read())
    return [
        (f"{page}:{prose.count(chr(10), 0, m.start()) + 1}", m.group(1))
        for m in re.finditer(r"`--config\.([\w.]+)(?:=[^`]*)?`", prose)
    ]


# --- checking (in a subprocess: the command modules define their flags in absl's global FLAGS) ---


def _is_placeholder(value: str) -> bool:
    return bool(PLACEHOLDER.fullmatch(value))


def _argparse_flags(path: str) -> dict:
    """{--option: (takes a value, type name or None, choices or None)} of a benchmark's argparse
    parser, read from its source."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    options = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            keywords = {k.arg: k.value for k in node.keywords}
            action = keywords.get("action")
            takes_value = not (
                isinstance(action, ast.Constant) and str(action.value).startswith("store_")
            )
            kind = getattr(keywords.get("type"), "id", None)
            try:
                choices = ast.literal_eval(keywords["choices"]) if "choices" in keywords else None
            except ValueError:
                choices = None
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                    options[arg.value] = (takes_value, kind, choices)
    return options


def _check_config(args: list[str], default: str) -> str | None:
    """Applies `--config=...` and `--config.*` as ml_collections' config flag applies them for the
    command, then validates the result as training does; the error, or None."""
    from absl import flags
    from ml_collections import config_flags

    from dcgan_jax import config_fields, errors

    fresh = flags.FlagValues()
    argv = ["command"] + args
    try:
        config_flags.DEFINE_config_file(
            "config", default, flag_values=fresh, lock_config=True, sys_argv=argv
        )
        fresh(argv)
        config = fresh.config
        config_fields.validate(config)
    except (errors.UserError, flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        return " ".join(f"{type(e).__name__}: {e}".split())[:400]
    except (OSError, SyntaxError, ImportError) as e:
        return f"cannot load the config: {type(e).__name__}: {e}"
    return None


def _check_cli(command: dict, flag_values, own: set) -> list[str]:
    """Errors of a dcgan_jax command against its module's flags (parsed in `flag_values`)."""
    from absl import flags

    from dcgan_jax import defaults

    errors, parsed, config_args = [], [], []
    for arg in command["args"]:
        if arg.startswith("@exists="):
            if not os.path.exists(arg.split("=", 1)[1]):
                errors.append(f"{arg.split('=', 1)[1]} does not exist")
            continue
        arg = arg.strip("[]")  # `[--noema]`: an optional flag
        if not arg.startswith("-"):
            errors.append(f"unexpected argument {arg!r}: every input is a --flag")
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name == "config" or name.startswith("config."):
            if "config" not in own:
                errors.append(f"{arg}: this command takes no --config")
            elif name == "config" and not os.path.isfile(value.split(":", 1)[0]):
                errors.append(f"{arg}: no such config file")
            else:
                config_args.append(arg)
            continue
        if has_value and _is_placeholder(value):
            if name not in flag_values:
                errors.append(f"unknown flag --{name}")
            continue
        parsed.append(arg)
    flag_values.unparse_flags()
    try:
        flag_values(["command"] + parsed)
    except (flags.Error, ValueError) as e:  # absl's `--noema=3`: a ValueError
        message = " ".join(str(e).split())
        if command["whole"] or "must have a value other than None" not in message:
            errors.append(message)  # (a span may mention a command without its required flags)
    finally:
        flag_values.unparse_flags()
    if config_args:
        default = defaults.config_path("digits")
        error = _check_config(config_args, default)
        if error:
            errors.append(error)
    return errors


def _check_benchmark(command: dict) -> list[str]:
    script = command["module"]
    if not os.path.isfile(script):
        return [f"{script} does not exist"]
    options, errors, config_args = _argparse_flags(script), [], []
    for arg in command["args"]:
        name, has_value, value = arg.partition("=")
        if name.startswith("--config.") and script.endswith("quality.py"):
            config_args.append(arg)  # quality.py: overrides of configs/fashion_mnist.py
            continue
        if name not in options:
            errors.append(f"{script} has no flag {name}")
            continue
        takes_value, kind, choices = options[name]
        if has_value and not takes_value:
            errors.append(f"{name} of {script} takes no value")
        elif has_value and not _is_placeholder(value):
            try:
                {"int": int, "float": float}.get(kind, str)(value)
            except ValueError:
                errors.append(f"{arg}: not a {kind}")
            if choices is not None and value not in choices:
                errors.append(f"{arg}: not one of {choices}")
    if config_args:
        error = _check_config(config_args, "configs/fashion_mnist.py")
        if error:
            errors.append(error)
    return errors


def check_all(commands: list[dict]) -> list[list[str]]:
    """Each command's errors (run in the repository root, in a process of its own)."""
    import importlib

    from absl import flags

    from dcgan_jax import memory

    memory.check_device_fits = lambda *args, **kwargs: None  # the machine's memory: not the docs'
    results = [[] for _ in commands]
    every = {"help"}  # the flags of every command and benchmark
    for script in glob.glob(os.path.join("benchmarks", "*.py")):
        every |= {name[2:] for name in _argparse_flags(script)}
    for i, command in enumerate(commands):
        if command["kind"] == "error":
            results[i] = command["args"]
        elif command["kind"] == "benchmark":
            results[i] = _check_benchmark(command)
        elif command["module"] not in MODULES:
            results[i] = [f"there is no command dcgan_jax.{command['module']}"]
    for module in MODULES:
        before = set(flags.FLAGS)
        importlib.import_module(f"dcgan_jax.cli.{module}")
        own = {  # this module's flags; the libraries' (-v, --logtostderr, ...) stay for every command
            name
            for name in set(flags.FLAGS) - before
            if flags.FLAGS.find_module_defining_flag(name, "").startswith("dcgan_jax")
        }
        every |= set(flags.FLAGS) | {
            f"no{name}" for name in flags.FLAGS if flags.FLAGS[name].boolean
        }
        for i, command in enumerate(commands):
            if command["kind"] == "cli" and command["module"] == module:
                results[i] = _check_cli(command, flags.FLAGS, own)
        for name in own:  # the next module defines its own --workdir, --output, ...
            delattr(flags.FLAGS, name)
    for i, command in enumerate(commands):
        if command["kind"] == "flag":
            results[i] = [
                f"no command has a flag {a}" for a in command["args"] if a[2:] not in every
            ]
    return results


def run_checks(commands: list[Command]) -> list[list[str]]:
    """check_all in a fresh process (the commands' modules define flags globally at import)."""
    payload = json.dumps([dataclasses.asdict(c) for c in commands])
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_docs"],
        input=payload,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Commands that must fail: the parser is not allowed to pass everything.
BROKEN = {
    "python -m dcgan_jax.sample --workdir=runs/digits --num_sampels=64": "num_sampels",
    "python -m dcgan_jax.main --workdir=runs/x --config.model.g_widht=64": "g_widht",
    "python -m dcgan_jax.main --config=configs/cifar10.py --config.optim.learning_rat=1e-3": "learning_rat",
    "python -m dcgan_jax.main --config.batch_size=many": "batch_size",
    "python -m dcgan_jax.main --config.objective.loss=wasserstein": "objective.loss",
    "python -m dcgan_jax.main --config=configs/nonexistent.py": "no such config file",
    "python -m dcgan_jax.main --config.g_width=64": "g_width",  # an earlier version's name
    "python -m dcgan_jax.evaluate --workdir=runs/digits --task=clasify": "task",
    "python -m dcgan_jax.explore --workdir=runs/digits --noema=3": "ema",
    "python -m dcgan_jax.explore --workdir=runs/digits --zoom=two": "zoom",
    "python -m dcgan_jax.sample --workdir=runs/digits --config.seed=1": "takes no --config",
    "python -m dcgan_jax.train --workdir=runs/digits": "no command",
    "dcgan-sample --workdir=runs/digits --nosuchflag": "nosuchflag",
    "python benchmarks/train_step.py --batch_size=64": "--batch_size",
    "python benchmarks/quality.py --out=runs/q --config.optim.ema_decy=0": "ema_decy",
    "python benchmarks/no_such_benchmark.py": "does not exist",
    "launch/local_multiprocess.sh 2 2 -- --workdir=/tmp/x --config.num_train_step=2": "num_train_step",
}


@pytest.fixture(scope="module")
def checked():
    """{"docs": [(command, errors)] of every page's commands, "flags": of its flag spans, "broken":
    of BROKEN's commands}, checked in one subprocess."""
    groups = {
        "docs": [c for page in PAGES for c in page_commands(page)],
        "flags": [c for page in PAGES for c in flag_spans(page)]
        + [Command("BROKEN", "--noema --zoom=2 --nosuchflag", "flag", args=["--nosuchflag"])],
        "broken": [
            c for text in BROKEN for c in page_commands("BROKEN", f"```bash\n{text}\n```\n")
        ],
    }
    assert len(groups["broken"]) == len(BROKEN), "a broken command was not extracted"
    errors = iter(run_checks([c for commands in groups.values() for c in commands]))
    return {name: [(c, next(errors)) for c in commands] for name, commands in groups.items()}


def _wrong(results) -> str:
    return "\n".join(f"{c.where}: {c.text}\n    " + "\n    ".join(e) for c, e in results if e)


def test_every_command_in_the_docs_parses(checked):
    results = checked["docs"]
    assert len(results) >= MIN_COMMANDS, f"only {len(results)} commands found in {PAGES}"
    assert sum(c.whole for c, _ in results) >= MIN_COMMANDS // 2  # code blocks' and spans'
    wrong = _wrong(results)
    assert not wrong, "commands in the docs that their code refuses:\n" + wrong


def test_the_checker_refuses_broken_commands(checked):
    for command, errors in checked["broken"]:
        expected = BROKEN[command.text]
        assert errors, f"accepted: {command.text}"
        assert any(expected in e for e in errors), (command.text, errors)


def test_flags_named_in_prose_exist(checked):
    *results, (_, broken) = checked["flags"]
    assert len(results) > 50 and broken == ["no command has a flag --nosuchflag"], broken
    wrong = _wrong(results)
    assert not wrong, "flags in the docs that no command defines:\n" + wrong


def test_every_kind_of_command_is_found():
    commands = [c for page in PAGES for c in page_commands(page)]
    found = {c.module for c in commands if c.kind == "cli"}
    assert found == set(MODULES), found
    assert {c.kind for c in commands} == {"cli", "benchmark"}
    joined = [c.text for c in commands]  # a continuation, a comment's command, an inline span
    assert any(
        "--config.data.data_path=/data/lsun_bedroom_64 --workdir=runs/lsun" in t for t in joined
    )
    assert any(t.startswith("python -m dcgan_jax.export --workdir=runs/study") for t in joined)
    assert any(t == "python -m dcgan_jax.evaluate --task=fid" for t in joined)


def test_config_fields_named_in_prose_exist():
    """Inline `--config.a.b=...` spans name a field of today's config, or an earlier version's
    name that the pages cite as moved."""
    from dcgan_jax import config_fields, defaults

    config = defaults.get_config()

    def exists(dotted):
        node = config
        for part in dotted.split("."):
            if not hasattr(node, "keys") or part not in node:
                return False
            node = node[part]
        return True

    spans = [s for page in PAGES for s in config_spans(page)]
    assert len(spans) > 10
    wrong = [
        f"{w}: --config.{f}" for w, f in spans if not exists(f) and not config_fields.new_name(f)
    ]
    assert not wrong, wrong


def test_the_from_python_script_calls_what_exists():
    """docs/latent_space.md's script: every `module.function(...)` it calls exists and takes the
    keyword arguments given (tests/analysis/test_readme_script.py runs the same script)."""
    import importlib
    import inspect

    with open(os.path.join(REPO, "docs", "latent_space.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## From Python") :]
    (script,) = [body for _, info, body in _fences(section) if info == "python"][:1]
    tree = ast.parse("\n".join(script))
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                try:
                    modules[alias.asname or alias.name] = importlib.import_module(name)
                except ImportError:  # a function imported from a module
                    modules[alias.asname or alias.name] = getattr(
                        importlib.import_module(node.module), alias.name
                    )
    calls = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = modules.get(func.value.id)
            if owner is None:
                continue  # a method of a value (z.shape, ...)
            assert hasattr(owner, func.attr), f"{func.value.id}.{func.attr} does not exist"
            target = getattr(owner, func.attr)
        elif isinstance(func, ast.Name) and func.id in modules:
            target = modules[func.id]
        else:
            continue
        keywords = {k.arg: None for k in node.keywords if k.arg}
        inspect.signature(target).bind_partial(*[None] * len(node.args), **keywords)
        calls += 1
    assert calls >= 8, calls


# --- links ------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lowercased, punctuation but - and _ removed,
    spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        text = _without_fences(f.read())
    seen, found = {}, set()
    for match in re.finditer(r"^#{1,6} +(.+?) *#*$", text, re.MULTILINE):
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: str) -> list[tuple[int, str]]:
    """(line, target) of each Markdown link and image outside code."""
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        prose = re.sub(
            r"`[^`]*`", lambda m: "\n" * m.group(0).count("\n"), _without_fences(f.read())
        )
    return [
        (prose.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    ]


def test_relative_links_and_images_resolve():
    count, wrong = 0, []
    for page in PAGES:
        for line, target in links(page):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            count += 1
            path, _, anchor = target.partition("#")
            resolved = (
                os.path.normpath(os.path.join(REPO, os.path.dirname(page), path))
                if path
                else os.path.join(REPO, page)
            )
            if not os.path.exists(resolved):
                wrong.append(f"{page}:{line}: {target}: no such file")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                wrong.append(f"{page}:{line}: {target}: no heading #{anchor}")
    assert count > 30, count
    assert not wrong, "\n".join(wrong)


def test_every_docs_page_is_linked_from_the_readme_and_has_a_title():
    targets = {os.path.normpath(t.partition("#")[0]) for _, t in links("README.md")}
    for page in PAGES[1:]:
        assert page in targets, f"README.md does not link {page}"
        with open(os.path.join(REPO, page), encoding="utf-8") as f:
            first, blank, statement = (f.readline() for _ in range(3))
        assert first.startswith("# ") and not blank.strip() and statement.strip(), page


def test_the_slugs_are_githubs():
    assert slug("What a run writes (`--workdir`)") == "what-a-run-writes---workdir"
    assert slug("Reliability: what is promised, and the test that checks it") == (
        "reliability-what-is-promised-and-the-test-that-checks-it"
    )
    assert slug("A study: the seeds' tricks over 8 seeds (`configs/fashion_mnist_study.py`)") == (
        "a-study-the-seeds-tricks-over-8-seeds-configsfashion_mnist_studypy"
    )


if __name__ == "__main__":  # the subprocess of run_checks: commands on stdin, errors on stdout
    sys.path.insert(0, REPO)
    print(json.dumps(check_all(json.load(sys.stdin))))
