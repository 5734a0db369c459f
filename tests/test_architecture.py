"""Guards for the package's shape: no import cycles, a complete architecture map, a self-contained
test suite.

* Import graph: every ``mmcli/**/*.py`` is parsed with ``ast``. An edge is each
  ``import mmcli.x`` / ``from mmcli.x import y`` / relative import, wherever it is written
  (module top level or inside a function: a lazy import still ties the two modules together),
  except in the body of an ``if TYPE_CHECKING:`` block (never run). ``from mmcli.x import y``
  counts ``mmcli.x`` and also ``mmcli.x.y`` when that is a module. Imports by string
  (``importlib.import_module``, the ``"module:Class"`` registries) are not edges. A strongly
  connected component of more than one module is a cycle.
* ``docs/ARCHITECTURE.md`` names every module by its path relative to ``mmcli/`` (``cli/app.py``,
  ``api.py``). Package ``__init__.py`` files are exempt: a package is documented by the files
  in it; the doc may still name one (``tasks/__init__.py``). Every ``*.py`` path the doc names
  must exist, under ``mmcli/`` or the repository root (``tests/test_imports.py``); paths with a
  placeholder (``cli/<area>.py``) or a glob (``tasks/*.py``) are patterns, not names.
* No test reads the sibling ``../shared`` folder: test media live in ``tests/media``, so a fresh
  clone tests itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGE = "mmcli"
Edge = tuple[str, str, str]  # (importer, imported, "file:line")


def module_names(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """``{"mmcli.cli.app": path, "mmcli.cli": .../cli/__init__.py, ...}`` under ``root``."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import node, at any depth, outside ``if TYPE_CHECKING:`` bodies."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch does run
        else:
            stack.extend(ast.iter_child_nodes(node))


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names this import statement loads (before filtering to known modules)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    return [origin] + [f"{origin}.{alias.name}" for alias in node.names]


def import_edges(root: Path, package: str = PACKAGE) -> list[Edge]:
    """Intra-package import edges of ``root/package`` (self-imports dropped)."""
    modules = module_names(root, package)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _imports(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target in modules and target != module:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    edges.append((module, target, where))
    return edges


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        graph.setdefault(src, set()).add(dst)
        graph.setdefault(dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe(found: list[list[str]], edges: list[Edge]) -> str:
    """Each cycle's members and the import lines that tie them together."""
    lines = []
    for members in found:
        lines.append("cycle: " + ", ".join(members))
        inside = set(members)
        lines += [f"    {src} -> {dst}  ({where})" for src, dst, where in sorted(edges)
                  if src in inside and dst in inside]
    return "\n".join(lines)


def test_mmcli_import_graph_has_no_cycle() -> None:
    edges = import_edges(REPO)
    assert edges, "no intra-package import found: the scanner is broken"
    found = cycles(edges)
    assert not found, "import cycles in mmcli/ (break them; see docs/ARCHITECTURE.md):\n" + \
        describe(found, edges)


def test_the_cycle_finder_sees_lazy_relative_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")  # lazy, b is a module
    (pkg / "sub" / "b.py").write_text("from .. import a\n")  # relative, two levels
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
        "else:\n    import pkg.e\n")
    (pkg / "d.py").write_text("import pkg.sub.c\n")  # only a type-checking edge comes back
    (pkg / "e.py").write_text("x = 1\n")
    edges = import_edges(tmp_path, "pkg")
    assert {(s, d) for s, d, _ in edges} == {
        ("pkg.sub", "pkg.sub.c"), ("pkg.a", "pkg.sub"), ("pkg.a", "pkg.sub.b"),
        ("pkg.sub.b", "pkg"), ("pkg.sub.b", "pkg.a"), ("pkg.sub.c", "pkg.e"),
        ("pkg.d", "pkg.sub.c")}
    assert cycles(edges) == [["pkg.a", "pkg.sub.b"]]
    assert "pkg.a -> pkg.sub.b  (pkg/a.py:2)" in describe(cycles(edges), edges)


DOC_PATH = re.compile(r"[\w<>*./-]+\.py\b")


def named_paths(doc: str) -> set[str]:
    """``*.py`` paths a document names, relative to ``mmcli/`` when written with that prefix."""
    names = set()
    for token in DOC_PATH.findall(doc):
        token = token.removeprefix("./").removeprefix(f"{PACKAGE}/")
        if not any(ch in token for ch in "<>*"):
            names.add(token)
    return names


def test_architecture_doc_names_every_module_and_only_real_files() -> None:
    named = named_paths((REPO / "docs" / "ARCHITECTURE.md").read_text())
    files = {p.relative_to(REPO / PACKAGE).as_posix() for p in (REPO / PACKAGE).rglob("*.py")}
    unnamed = sorted(f for f in files if f not in named and not f.endswith("__init__.py"))
    stale = sorted(n for n in named
                   if not (REPO / PACKAGE / n).is_file() and not (REPO / n).is_file())
    assert not unnamed and not stale, (
        f"docs/ARCHITECTURE.md does not name (by path under mmcli/): {unnamed}\n"
        f"docs/ARCHITECTURE.md names files that do not exist: {stale}")


def test_doc_path_names_are_read_as_paths() -> None:
    doc = ("cli/app.py   api.py, `tasks/__init__.py`; cli/<area>.py tasks/*.py "
           "mmcli/outputs.py tests/test_imports.py")
    assert named_paths(doc) == {"cli/app.py", "api.py", "tasks/__init__.py", "outputs.py",
                                "tests/test_imports.py"}


def test_no_test_reads_the_shared_folder() -> None:
    this = Path(__file__).resolve()
    offenders = []
    for path in sorted((REPO / "tests").rglob("*")):
        if path == this or not path.is_file() or path.suffix not in {
                ".py", ".toml", ".json", ".txt", ".md", ".cfg", ".ini", ".sh", ".yaml", ".yml"}:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if "../shared" in line or "/shared/" in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "tests must use tests/media, not ../shared:\n" + "\n".join(offenders)
