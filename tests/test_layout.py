"""The package's shape: subpackages as floors, each importing only the floors below it; no cycles; the package's
own modules imported at the top of a module, never inside functions; small files."""

import ast
import collections
import os
import subprocess

import pytest

from tests.helpers import REPO

PACKAGE = os.path.join(REPO, "dcgan_jax")
# What each part may import from the package (besides itself). Floors, bottom up: the leaf modules (errors, the
# config's defaults, the rng tag table, the workdir's file names, progress bars), memory, data, visualize | nn,
# config_fields (config knowledge: it builds the models to validate), training | evaluation | analysis (siblings
# that never import each other: analysis works on G's and D's variables, not on runs), train, cli, the shims.
LEAVES = {"errors", "defaults", "progress_bars", "rng_tags", "run_files"}
# What every floor may import: the leaves, but the defaults only on the config's own floors.
# atomic_write sits just above errors (its failures are UserErrors) and below every floor that writes.
BASE = (LEAVES - {"defaults"}) | {"atomic_write"}
ALLOWED = {
    **{leaf: set() for leaf in LEAVES},
    "atomic_write": {"errors"},
    "memory": BASE,
    "data": BASE,
    "visualize": BASE | {"data"},
    "nn": BASE | {"data"},
    "population": BASE | {"memory"},
    "config_fields": BASE | {"defaults", "memory", "nn", "population"},
    "training": BASE | {"data", "nn", "visualize", "config_fields", "population"},
    "evaluation": BASE | {"data", "nn"},
    "analysis": BASE | {"memory", "data", "nn", "visualize"},  # functions of G/D variables
    "train": BASE
    | {"defaults", "config_fields", "population", "data", "nn", "training", "evaluation"},
    "cli": BASE
    | {
        "defaults",
        "config_fields",
        "population",
        "memory",
        "data",
        "nn",
        "visualize",
        "training",
        "evaluation",
        "analysis",
        "train",
    },
    "__init__": set(),
}
ENTRY_POINTS = (
    "main",
    "sample",
    "explore",
    "evaluate",
    "prepare",
    "export",
)  # `python -m dcgan_jax.X` shims over cli/X.py
for name in ENTRY_POINTS:
    ALLOWED[name] = {"cli"}
# The floors that see the whole config; every other part gets its own group or explicit values.
WHOLE_CONFIG = {"defaults", "config_fields", "population", "train", "cli"}
# The names a group of the config goes by when a function below those floors takes one.
GROUPS = {
    "data",
    "model",
    "optim",
    "objective",
    "d_training",
    "collapse",
    "ev",
    "classifier",
    "probe",
    "dedup",
}


def _modules():
    """{dotted module name: parsed tree} of every module of the package."""
    found = {}
    for root, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                relative = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                module = (
                    relative[: -len(".__init__")] if relative.endswith(".__init__") else relative
                )
                with open(path) as f:
                    found[module] = ast.parse(f.read(), path)
    return found


def _imports(module, tree):
    """(imported package module, line, at module level?) for every import of dcgan_jax.* in the tree."""
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcgan_jax"):
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno, id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dcgan_jax"):
                    yield alias.name, node.lineno, id(node) in top_level


def _part(dotted):
    """dcgan_jax.training.step -> 'training'; dcgan_jax.errors.UserError -> 'errors'; dcgan_jax -> '__init__'."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = _modules()


def test_every_part_has_a_floor():
    assert {_part(m) for m in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_floors_below_and_only_at_the_top(module):
    own = _part(module)
    for imported, line, top_level in _imports(module, MODULES[module]):
        target = _part(imported)
        assert top_level, f"{module}:{line} imports {imported} inside a function"
        assert target == own or target in ALLOWED[own], (
            f"{module}:{line}: {own} may not import {target}"
        )


def test_training_and_evaluation_do_not_import_each_other():
    assert "evaluation" not in ALLOWED["training"] and "training" not in ALLOWED["evaluation"]
    for module, tree in MODULES.items():
        for imported, line, _ in _imports(module, tree):
            assert {_part(module), _part(imported)} != {"training", "evaluation"}, (
                f"{module}:{line}"
            )


def test_no_import_cycles_between_modules():
    graph = collections.defaultdict(set)
    for module, tree in MODULES.items():
        for imported, _, _ in _imports(module, tree):
            # `from dcgan_jax.nn import models` names the module dcgan_jax.nn.models; `... import UserError` a symbol
            target = imported if imported in MODULES else imported.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                graph[module].add(target)
    visiting, done = set(), set()

    def visit(node, path):
        assert node not in visiting, f"import cycle: {' -> '.join(path + [node])}"
        if node in done:
            return
        visiting.add(node)
        for nxt in graph[node]:
            visit(nxt, path + [node])
        visiting.discard(node)
        done.add(node)

    for module in MODULES:
        visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_stay_small(module):
    path = os.path.join(REPO, *module.split(".")) + ".py"
    if not os.path.exists(path):
        path = os.path.join(REPO, *module.split("."), "__init__.py")
    with open(path) as f:
        assert len(f.read().splitlines()) <= 400, path


def test_no_grab_bag_modules():
    names = {m.rsplit(".", 1)[-1] for m in MODULES}
    assert not names & {"utils", "util", "helpers", "misc", "common_utils"}


def _takes_config(function):
    """The parameters of a function definition that would hand it the whole config: one named `config`, or one
    annotated ConfigDict whose name is not a group's."""
    args = function.args
    for arg in args.posonlyargs + args.args + args.kwonlyargs:
        annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
        if arg.arg == "config" or (
            annotation.split(".")[-1] == "ConfigDict" and arg.arg not in GROUPS
        ):
            yield arg.arg, arg.lineno


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if _part(m) not in WHOLE_CONFIG | set(ENTRY_POINTS))
)
def test_the_whole_config_stops_at_the_top(module):
    """Below train.py and cli/, functions take a group (config.model, config.data, ...) or explicit values; they
    neither take the whole config nor reach into a Run's (training/run.py, which restores it, excepted)."""
    for node in ast.walk(MODULES[module]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for name, line in _takes_config(node):
                raise AssertionError(
                    f"{module}:{line}: takes `{name}`, the whole config; pass its group "
                    f"({sorted(GROUPS)})"
                )
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "config"
            and module != "dcgan_jax.training.run"
        ):
            assert not isinstance(node.value, ast.Name) or node.value.id in ("jax", "tf"), (
                f"{module}:{node.lineno}: reads {ast.unparse(node)}, the whole config"
            )


def test_the_layout_rule_catches_a_module_that_takes_the_whole_config():
    tree = ast.parse(
        "def f(config, x):\n    pass\ndef g(model: ml_collections.ConfigDict, c: ConfigDict):\n    pass"
    )
    found = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for name, _ in _takes_config(node)
    ]
    assert found == ["config", "c"]


WORKDIR_NAMES = {
    "checkpoints",
    "config.json",
    "metrics.jsonl",
    "loss_curve.png",
    "tensorboard",
    ".lock",
}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) != "run_files"))
def test_workdir_names_live_in_run_files(module):
    """A workdir's file and folder names are written once, in dcgan_jax/run_files.py."""
    for node in ast.walk(MODULES[module]):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in WORKDIR_NAMES, f"{module}:{node.lineno}: {node.value!r}"


def _literal_tags(tree):
    """Line numbers where a random stream is keyed by a bare number: `fold_in(key, 0x5A)` or
    `default_rng([seed, 0x7A1])`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name.endswith("fold_in") and len(node.args) == 2:
            tag = node.args[1]
        elif name.endswith("default_rng") and node.args and isinstance(node.args[0], ast.List):
            tag = node.args[0].elts[-1] if node.args[0].elts else None
        else:
            continue
        if isinstance(tag, ast.Constant) or (
            isinstance(tag, ast.BinOp) and isinstance(tag.left, ast.Constant)
        ):
            yield node.lineno


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) != "rng_tags"))
def test_random_stream_tags_live_in_rng_tags(module):
    """Every fold_in tag (and NumPy seed tag) is a name of dcgan_jax/rng_tags.py, never a number."""
    assert not list(_literal_tags(MODULES[module])), module


def test_the_tag_rule_catches_a_bare_number():
    tree = ast.parse("a = jax.random.fold_in(k, 0x5A)\nb = np.random.default_rng([s, 0xE7A1 + o])")
    assert list(_literal_tags(tree)) == [1, 2]


# Large binaries belong to releases and caches, not to the repository; pictures of the docs and the tests' saved
# workdirs are the exceptions.
LARGE_FILE_BYTES = 1 << 20
LARGE_FILES_MAY_LIVE_IN = ("docs/images/", "tests/fixtures/")


def test_no_large_file_is_tracked_outside_the_docs_images_and_test_fixtures():
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout (an unpacked sdist): no tracked files to check")
    tracked = [name for name in listed.stdout.split("\0") if name]
    assert len(tracked) > 100, tracked
    large = [
        name
        for name in tracked
        if not name.startswith(LARGE_FILES_MAY_LIVE_IN)
        and os.path.isfile(os.path.join(REPO, name))
        and os.path.getsize(os.path.join(REPO, name)) > LARGE_FILE_BYTES
    ]
    assert not large, f"tracked files over 1 MB: {large}"
