"""No import cycles inside the package.

Two graphs are checked. The strict one has every import statement, lazy ones inside functions included:
the two cycles issue 15 removed (``cli`` <-> ``cli_evaluate``, ``methods.moxi`` <-> ``methods.discriminative``)
both went through function-level imports, so a module-level graph alone would not have seen them. A lazy
import that breaks a cycle on purpose goes into :data:`ALLOWED_LAZY_CYCLES` with its reason (none today).

The module-level graph must be acyclic without exception. Counted there: imports that run when a module
is imported, i.e. statements at module level and in class bodies, including those under a module-level
``if``/``try`` (but not under ``if TYPE_CHECKING:``, which never runs).
Imports inside functions are not counted: they run only when called, after every module has finished
loading, and they are the usual way to keep a heavy or optional dependency lazy (torch for ``--help``) or
to break a cycle on purpose.

Importing ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a/b/c``, so an edge goes to each of them,
except to the importer's own enclosing packages (already being imported when the importer runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "clearsight"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


#: lazy (function-level) import edges allowed to close a cycle, as (importer, imported): none today
ALLOWED_LAZY_CYCLES: set[tuple[str, str]] = set()


def every_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, wherever it is."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run at import time (see the module docstring)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph(root: Path, package: str = PACKAGE, imports=runtime_imports) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at import time, or by ``imports``' choice)."""
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        enclosing = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for node in imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
                targets = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
            for target in targets:
                if target not in files:
                    continue
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # the enclosing packages run first
                    step = ".".join(parts[:i])
                    if step in files and step not in enclosing and step != name:
                        graph[name].add(step)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_cycle_finder_finds_a_planted_cycle_and_no_other():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"x"}}) == ["x", "x"]


def test_the_graph_resolves_relative_imports_and_skips_lazy_ones(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("from .sub import b\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from . import c\ndef f():\n    from . import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..c import g\n")
    (pkg / "c.py").write_text("import pkg.a\ng = 1\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}  # not c: only lazily or for type checkers
    assert graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]


def test_the_package_has_no_import_cycle():
    graph = import_graph(SRC)
    assert "clearsight.cli.parser" in graph and graph["clearsight.methods.moxi"]  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_not_even_lazy_imports_make_a_cycle():
    graph = import_graph(SRC, imports=every_import)
    for importer, imported in ALLOWED_LAZY_CYCLES:
        graph[importer].discard(imported)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle (through imports inside functions too): " + " -> ".join(cycle)
