"""The layering of ARCHITECTURE.md, checked on the source with `ast` (nothing is imported).

Every module of `arface_repro` is parsed; every import is collected, at module level and inside functions,
absolute or relative (`from . import x`, `from ..io import pairs`), plus `importlib.import_module` calls whose
module name is written in the source (the literal part of an f-string names the package it reaches into). A
module name computed at run time (a registry importing its members from a tuple of names) is not seen: the
registries of this package only import modules of their own layer or below. `from pkg import name` is an
import of `pkg.name` when that is a module, else of `pkg` (its `__init__`). The checks:

(a) no import cycle between modules of the package, function-local imports included (an import under
    `if TYPE_CHECKING:` never runs and makes no cycle);
(b) no import against the layer order (`LAYERS`, lowest first): a module may import its own layer and the
    layers below; every module of the package must belong to a layer;
(c) no torch / torchvision / cv2 anywhere in `arface_repro/io/` (file formats are numpy-only);
(d) no script in scripts/ and no test in tests/ inserts into `sys.path` (`sys.path.insert/append/extend`,
    assignment to `sys.path`, `site.addsitedir`, pytest's `monkeypatch.syspath_prepend`): scripts and tests
    import the installed package, and what they share lives in the package;
(e) a function-local `import` / `from ... import` of a module of the package is allowed only when that
    module's module-level import closure (the same graph: module-level, not type-only imports, plus the
    `__init__` of every package on the way) reaches a heavy dependency (`HEAVY_DEPENDENCIES`), and only
    with a comment on the import's lines or the line above saying why. Any other function-local import of a
    package module belongs at module level. `importlib.import_module` in a function is a registry
    discovering its members (ARCHITECTURE.md), not an import statement, and is not subject to (e).

Each failure names the importing file, the line and the imported module.

`SYS_PATH_ALLOWED` names the files that must put a folder on sys.path, each with its reason; nothing else is
exempt.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tokenize
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "arface_repro"

# Lowest first. A module may import modules of its own layer and of the layers below it, never above.
# Each entry is a module or a package (its whole subtree); the longest matching entry wins.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("arface_repro", "arface_repro.errors", "arface_repro.utils", "arface_repro.shared_data"),
    ("arface_repro.io",),
    ("arface_repro.data",),
    ("arface_repro.backbones",),
    ("arface_repro.method",),
    ("arface_repro.models",),
    ("arface_repro.eval",),
    ("arface_repro.train",),
    ("arface_repro.paper",),
    ("arface_repro.commands",),
    ("arface_repro.cli", "arface_repro.__main__"),
)
# The root entry "arface_repro" (the package's __init__) matches that module only, not its subtree.
ROOT_MODULE_ONLY = {"arface_repro"}

# Heavy libraries a numpy-only file-format layer must not import.
IO_FORBIDDEN = ("torch", "torchvision", "cv2")

# A function-local import of a package module is allowed only when the module's module-level imports reach
# one of these (top-level names): the dependencies kept out of `arface --help` and the numpy-only paths.
HEAVY_DEPENDENCIES = ("torch", "torchvision", "cv2", "onnxruntime", "matplotlib", "numba", "sklearn", "scipy",
                      "tensorflow", "tflite_runtime", "ai_edge_litert")

# The only files that put a folder on sys.path, each with the reason it must (file -> reason).
SYS_PATH_ALLOWED: dict[str, str] = {
    "tests/test_model_kinds.py": "an importable module must exist to prove a spec never imports what it names",
    "scripts/gpu_check.py": "on an offline GPU machine it installs the dependency wheels it carries into a "
                            "scratch folder and checks they import; that folder is not package code",
}


@dataclass(frozen=True)
class Import:
    file: str  # path relative to the checked root, posix
    line: int
    importer: str  # dotted module name of the file
    target: str  # the imported module: a module of the package when it is one, else the name as written
    local: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`
    end_line: int = 0  # last line of the statement (an import wrapped over several lines)
    dynamic: bool = False  # an `importlib.import_module(...)` call, not an import statement


@dataclass(frozen=True)
class Violation:
    kind: str
    file: str
    module: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.file, self.module)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package under `root`: dotted name -> file."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of `name` that is a module of the package (`name` itself when none is)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return name


def _dynamic_import_name(node: ast.Call) -> str | None:
    """The module an `importlib.import_module(...)` call names in the source, or None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name != "import_module" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        prefix = str(arg.values[0].value)  # f"pkg.sub.{name}": the package it reaches into
        return prefix.rsplit(".", 1)[0] if "." in prefix else None
    return None


def file_imports(path: Path, root: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of one file, module-level and function-local, relative ones resolved."""
    rel = path.relative_to(root).as_posix()
    importer = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    found: list[Import] = []

    def add(node: ast.stmt | ast.expr, name: str, local: bool, type_only: bool, dynamic: bool = False) -> None:
        end = node.end_lineno or node.lineno
        found.append(Import(rel, node.lineno, importer, _resolve(name, modules), local, type_only, end, dynamic))

    def visit(node: ast.AST, local: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name, local, type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = importer.split(".") if is_package else importer.split(".")[:-1]
                if node.level - 1 > len(base) - 1:
                    raise SyntaxError(f"{rel}:{node.lineno}: relative import beyond the top-level package")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                add(node, submodule if submodule in modules else source, local, type_only)
        elif isinstance(node, ast.Call) and (name := _dynamic_import_name(node)) is not None:
            add(node, name, local, type_only, dynamic=True)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, local, True)
            for child in node.orelse:
                visit(child, local, type_only)
            return
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(tree, False, False)
    return found


def layer_of(module: str, layers=LAYERS) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, entries in enumerate(layers):
        for entry in entries:
            whole = entry in ROOT_MODULE_ONLY
            if module == entry or (not whole and module.startswith(entry + ".")):
                if best is None or len(entry) > best[0]:
                    best = (len(entry), index)
    return None if best is None else best[1]


def _layer_label(index: int, layers=LAYERS) -> str:
    return "/".join(e.split(".")[-1] if e != PACKAGE else PACKAGE for e in layers[index])


def _cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges that lie on some cycle: both ends in one strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    counter = 0

    def strongconnect(v: str) -> None:  # iterative would be longer; the package is far below the recursion limit
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component[w] = v
                if w == v:
                    break

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return {(a, b) for a, targets in graph.items() for b in targets if component.get(a) == component.get(b)}


def _path_back(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """A shortest import path start -> ... -> goal."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            break
        for w in sorted(graph.get(v, ())):
            if w not in previous:
                previous[w] = v
                queue.append(w)
    path, v = [], goal
    while v is not None:
        path.append(v)
        v = previous[v]
    return path[::-1]


def sys_path_edits(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, what) for every statement of a file that puts a folder on sys.path."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=path.relative_to(root).as_posix())
    found = []

    def is_sys_path(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
            and node.value.id == "sys"

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if is_sys_path(func.value) and func.attr in ("insert", "append", "extend", "__setitem__"):
                found.append((node.lineno, f"sys.path.{func.attr}"))
            elif func.attr in ("addsitedir", "syspath_prepend"):
                found.append((node.lineno, func.attr))
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)):
                    found.append((node.lineno, "assignment to sys.path"))
    return sorted(found)


def comment_lines(path: Path) -> set[int]:
    """The line numbers of a file that hold a comment."""
    with path.open("rb") as f:
        return {tok.start[0] for tok in tokenize.tokenize(f.readline) if tok.type == tokenize.COMMENT}


def heavy_reach(imports: list[Import], modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the heavy dependencies its module-level import closure reaches (empty set: none)."""
    graph: dict[str, set[str]] = defaultdict(set)
    direct: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if imp.local or imp.type_only:
            continue
        if imp.target in modules:
            graph[imp.importer].add(imp.target)
        elif imp.target.split(".")[0] in HEAVY_DEPENDENCIES:
            direct[imp.importer].add(imp.target.split(".")[0])
    for module in modules:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = module.split(".")
        graph[module].update(".".join(parts[:n]) for n in range(1, len(parts)) if ".".join(parts[:n]) in modules)
    reach: dict[str, set[str]] = {}
    for module in modules:
        seen, todo = {module}, [module]
        while todo:
            for w in graph[todo.pop()] - seen:
                seen.add(w)
                todo.append(w)
        reach[module] = set().union(*(direct[m] for m in seen))
    return reach


def check_tree(root: Path, package: str = PACKAGE, layers=LAYERS) -> list[Violation]:
    """Every violation of (a)-(e) in the tree under `root` (the package, scripts/ and tests/)."""
    modules = package_modules(root, package)
    imports = [imp for path in modules.values() for imp in file_imports(path, root, modules)]
    violations: list[Violation] = []

    internal = [imp for imp in imports if imp.target in modules]
    by_edge: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in internal:
        if not imp.type_only:
            by_edge[(imp.importer, imp.target)].append(imp)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in by_edge:
        graph[a].add(b)
    for a, b in sorted(_cycle_edges(graph)):
        first = by_edge[(a, b)][0]
        lines = ",".join(str(n) for n in sorted({i.line for i in by_edge[(a, b)]}))
        loop = " -> ".join([a] + _path_back(graph, b, a))
        violations.append(Violation("cycle", first.file, b, f"{first.file}:{lines}: imports {b}, an import cycle: {loop}"))

    for module, path in modules.items():
        if layer_of(module, layers) is None:
            rel = path.relative_to(root).as_posix()
            violations.append(Violation("layer", rel, module, f"{rel}:1: module {module} belongs to no layer of LAYERS"))
    seen: set[tuple[str, str]] = set()
    for imp in internal:
        mine, theirs = layer_of(imp.importer, layers), layer_of(imp.target, layers)
        if mine is not None and theirs is not None and theirs > mine and (imp.file, imp.target) not in seen:
            seen.add((imp.file, imp.target))
            where = "function-local " if imp.local else ""
            violations.append(Violation("layer", imp.file, imp.target,
                                        f"{imp.file}:{imp.line}: {where}import of {imp.target} (layer "
                                        f"{_layer_label(theirs, layers)}) from layer {_layer_label(mine, layers)}"))

    for imp in imports:
        if imp.importer.startswith(f"{package}.io.") or imp.importer == f"{package}.io":
            top = imp.target.split(".")[0]
            if top in IO_FORBIDDEN and ("io-heavy", imp.file, top) not in {v.key for v in violations}:
                violations.append(Violation("io-heavy", imp.file, top,
                                            f"{imp.file}:{imp.line}: imports {imp.target} in io/ (numpy-only)"))

    reach = heavy_reach(imports, modules)
    comments: dict[str, set[int]] = {}
    reported: set[tuple[str, int, str]] = set()
    for imp in imports:
        if not imp.local or imp.dynamic or imp.type_only or imp.target not in modules:
            continue
        if (imp.file, imp.line, imp.target) in reported:  # `from m import a, b` is one import of m
            continue
        reported.add((imp.file, imp.line, imp.target))
        if imp.file not in comments:
            comments[imp.file] = comment_lines(root / imp.file)
        heavy = sorted(reach[imp.target])
        if not heavy:
            message = (f"{imp.file}:{imp.line}: function-local import of {imp.target}, whose module-level imports "
                       f"reach no heavy dependency: import it at module level")
        elif not comments[imp.file] & set(range(imp.line - 1, imp.end_line + 1)):
            message = (f"{imp.file}:{imp.line}: function-local import of {imp.target} (reaches "
                       f"{', '.join(heavy)}) without a comment saying why, on its line or the line above")
        else:
            continue
        violations.append(Violation("local-import", imp.file, imp.target, message))

    for folder in ("scripts", "tests"):
        for path in sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else []:
            edits = sys_path_edits(path, root)
            if edits:
                rel = path.relative_to(root).as_posix()
                where = ", ".join(f"{rel}:{line} {what}" for line, what in edits)
                violations.append(Violation("sys.path", rel, "", f"{where}: a script or test inserts into sys.path"))
    return violations


@pytest.fixture(scope="module")
def violations() -> list[Violation]:
    return check_tree(ROOT)


def _unlisted(violations: list[Violation], kind: str) -> list[str]:
    def listed(v: Violation) -> bool:
        return v.kind == "sys.path" and v.file in SYS_PATH_ALLOWED

    return [v.message for v in violations if v.kind == kind and not listed(v)]


def test_no_import_cycle(violations):
    found = _unlisted(violations, "cycle")
    assert not found, "import cycles (ARCHITECTURE.md):\n" + "\n".join(found)


def test_imports_follow_the_layers(violations):
    found = _unlisted(violations, "layer")
    assert not found, "imports against the layer order (ARCHITECTURE.md):\n" + "\n".join(found)


def test_io_is_numpy_only(violations):
    found = _unlisted(violations, "io-heavy")
    assert not found, "torch/cv2 in the file-format layer:\n" + "\n".join(found)


def test_no_script_or_test_inserts_into_sys_path(violations):
    found = _unlisted(violations, "sys.path")
    assert not found, "sys.path edited (import the package; shared code lives in it):\n" + "\n".join(found)


def test_sys_path_exceptions_are_still_needed(violations):
    """An exception whose file no longer touches sys.path must leave SYS_PATH_ALLOWED."""
    present = {v.file for v in violations if v.kind == "sys.path"}
    assert not set(SYS_PATH_ALLOWED) - present, "no longer needed: " + ", ".join(set(SYS_PATH_ALLOWED) - present)


def test_function_local_imports_only_for_heavy_dependencies_with_a_reason(violations):
    found = _unlisted(violations, "local-import")
    assert not found, ("function-local imports of package modules (ARCHITECTURE.md, Imports):\n"
                       + "\n".join(found))


def test_help_imports_no_heavy_dependency():
    """`arface --help` (argument parsing of every subcommand) stays free of the heavy dependencies."""
    code = textwrap.dedent(f"""\
        import contextlib, io, sys
        from arface_repro.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
        print("heavy:" + ",".join(sorted(m for m in {HEAVY_DEPENDENCIES!r} if m in sys.modules)))
        """)
    # `python -c` puts its working folder first on sys.path: the checkout under test is the one imported
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("heavy:"), done.stderr
    loaded = done.stdout.strip().removeprefix("heavy:")
    assert loaded == "", f"`arface --help` imports {loaded}"


def test_every_package_module_parses_and_has_a_layer():
    modules = package_modules(ROOT)
    assert len(modules) > 100, f"only {len(modules)} modules found under {ROOT / PACKAGE}"
    assert [m for m in modules if layer_of(m) is None] == []


# --- the checker itself, on synthetic trees -----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


CLEAN_TREE = {
    "arface_repro/__init__.py": "",
    "arface_repro/errors.py": "class ConfigError(Exception):\n    pass\n",
    "arface_repro/utils/__init__.py": "",
    "arface_repro/utils/atomic.py": "from ..errors import ConfigError\n",
    "arface_repro/io/__init__.py": "from . import pairs\n",
    "arface_repro/io/pairs.py": "import numpy as np\nfrom arface_repro.utils import atomic\n",
    "arface_repro/eval/__init__.py": "",
    "arface_repro/eval/roc.py": """\
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from ..io.pairs import np
        if TYPE_CHECKING:
            from arface_repro.eval.kfold import Folds
        def f():
            import importlib
            import torch
            from arface_repro.data import faces  # cv2: loaded when f runs
            # models/__init__ imports data.faces (cv2)
            from arface_repro.models import light
            importlib.import_module("arface_repro.io.pairs")  # a registry's discovery, not an import statement
        """,
    "arface_repro/data/__init__.py": "",
    "arface_repro/data/faces.py": "import cv2\n",
    "arface_repro/models/__init__.py": "from arface_repro.data import faces\n",
    "arface_repro/models/light.py": "",
    "arface_repro/eval/kfold.py": "from .roc import f\n",
    "arface_repro/cli.py": "import importlib\nimportlib.import_module(f'arface_repro.eval.{name}')\n",
    "scripts/run.py": "import sys\nfrom arface_repro.cli import main\n",
    "tests/test_x.py": "import sys\nprint(sys.path)\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    _write(tmp_path, CLEAN_TREE)
    assert check_tree(tmp_path) == []


def test_checker_reports_cycle_upward_import_io_torch_and_sys_path(tmp_path):
    files = dict(CLEAN_TREE)
    files["arface_repro/io/pairs.py"] = """\
        import numpy as np


        def read():
            from ..eval import roc
            import cv2
        """
    files["arface_repro/eval/kfold.py"] = "from .roc import f\nfrom arface_repro import cli\n"
    files["arface_repro/cli.py"] = "def main():\n    from arface_repro.eval import kfold\n"
    files["arface_repro/extra.py"] = ""
    files["arface_repro/train/__init__.py"] = ""
    files["arface_repro/train/loop.py"] = """\
        def run():
            from arface_repro.data import faces


        def run2():
            from arface_repro.data import (  # cv2: loaded when run2 runs
                faces as f,
            )
        """
    files["scripts/run.py"] = "import sys\nsys.path.insert(0, 'x')\n"
    files["tests/test_x.py"] = "import sys\n\n\ndef test(monkeypatch):\n    monkeypatch.syspath_prepend('y')\n"
    files["tests/test_y.py"] = "import sys\nsys.path[:0] = ['z']\n"
    _write(tmp_path, files)
    messages = sorted(v.message for v in check_tree(tmp_path))
    assert messages == sorted([
        # io -> eval -> io (pairs -> roc -> pairs) and eval.kfold -> cli -> eval.kfold
        "arface_repro/io/pairs.py:5: imports arface_repro.eval.roc, an import cycle: "
        "arface_repro.io.pairs -> arface_repro.eval.roc -> arface_repro.io.pairs",
        "arface_repro/eval/roc.py:3,12: imports arface_repro.io.pairs, an import cycle: "
        "arface_repro.eval.roc -> arface_repro.io.pairs -> arface_repro.eval.roc",
        "arface_repro/eval/kfold.py:2: imports arface_repro.cli, an import cycle: "
        "arface_repro.eval.kfold -> arface_repro.cli -> arface_repro.eval.kfold",
        "arface_repro/cli.py:2: imports arface_repro.eval.kfold, an import cycle: "
        "arface_repro.cli -> arface_repro.eval.kfold -> arface_repro.cli",
        "arface_repro/io/pairs.py:5: function-local import of arface_repro.eval.roc (layer eval) from layer io",
        "arface_repro/eval/kfold.py:2: import of arface_repro.cli (layer cli/__main__) from layer eval",
        "arface_repro/extra.py:1: module arface_repro.extra belongs to no layer of LAYERS",
        "arface_repro/io/pairs.py:6: imports cv2 in io/ (numpy-only)",
        "arface_repro/io/pairs.py:5: function-local import of arface_repro.eval.roc, whose module-level imports "
        "reach no heavy dependency: import it at module level",
        "arface_repro/cli.py:2: function-local import of arface_repro.eval.kfold, whose module-level imports "
        "reach no heavy dependency: import it at module level",
        "arface_repro/train/loop.py:2: function-local import of arface_repro.data.faces (reaches cv2) without a "
        "comment saying why, on its line or the line above",
        "scripts/run.py:2 sys.path.insert: a script or test inserts into sys.path",
        "tests/test_x.py:5 syspath_prepend: a script or test inserts into sys.path",
        "tests/test_y.py:2 assignment to sys.path: a script or test inserts into sys.path",
    ])


def test_checker_resolves_relative_imports(tmp_path):
    _write(tmp_path, {
        "arface_repro/__init__.py": "",
        "arface_repro/eval/__init__.py": "from . import roc\nfrom .roc import f\n",
        "arface_repro/eval/roc.py": "from .. import errors\nfrom ..io import pairs\nfrom . import kfold as k\n",
        "arface_repro/eval/kfold.py": "",
        "arface_repro/errors.py": "",
        "arface_repro/io/__init__.py": "",
        "arface_repro/io/pairs.py": "",
    })
    modules = package_modules(tmp_path)
    init = [(i.line, i.target) for i in file_imports(tmp_path / "arface_repro/eval/__init__.py", tmp_path, modules)]
    roc = [(i.line, i.target) for i in file_imports(tmp_path / "arface_repro/eval/roc.py", tmp_path, modules)]
    assert init == [(1, "arface_repro.eval.roc"), (2, "arface_repro.eval.roc")]
    assert roc == [(1, "arface_repro.errors"), (2, "arface_repro.io.pairs"), (3, "arface_repro.eval.kfold")]
