"""The layer contract of the ``audit`` package: imports only point down, and no file imports itself back.

Insyn is built in layers (docs/architecture.md). From low to high:

ground
    errors, the privacy gate, paths, JSON, column names, the version;
settings
    the audit spec (models and messages only);
domain
    populations, synthetic data, the law's baseline, checks, engines,
    journeys, metrics, counterfactuals, the engine conformance suite;
execution
    one run: human review and the runner's table of steps;
results
    the frozen result, the report renderers, the run folder;
uses
    what people call: ``Audit.run``, the monitor, the command line, and the
    package facade ``audit/__init__.py``.

A module may import modules of its own layer or of lower ones, never of a
higher one: the spec knows nothing of running, the runner builds no result,
nothing below the report renders. This test reads every module's source with
:mod:`ast` and checks every import of an ``audit`` module, at module level
*and* inside functions (a function-level import is still a dependency; it
only hides it). Imports under ``if TYPE_CHECKING:`` are ignored: they are
never executed and only name types for annotations.

It also checks that the file-level import graph has no circle at all, within
a layer or a package too (``journey/_step.py`` and ``journey/_journey.py``
importing each other would be one). An import of a package counts as an
import of its ``__init__.py``; ``from pkg import name`` counts as an import
of the submodule ``pkg.name`` when that is a module. The parent packages that
Python imports implicitly before a submodule (``audit/__init__.py`` before
``audit.spec``) are not edges: every module would otherwise import the
facade.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "audit"

LAYERS: dict[str, tuple[str, ...]] = {
    "ground": ("audit.exceptions", "audit._privacy", "audit._distributions", "audit._ids", "audit._background", "audit._memory",
               "audit._parquet", "audit._arrays",
               "audit._paths", "audit._json", "audit._columns",
               "audit._version", "audit._cells", "audit._schema", "audit._yaml"),
    "settings": ("audit.spec", "audit.study_spec", "audit.reference"),
    "domain": ("audit.population", "audit.synth", "audit.norms", "audit.checks", "audit.engine", "audit.journey",
               "audit.metrics", "audit.counterfactual", "audit.testing", "audit.attribution",
               "audit.public_values"),
    "execution": ("audit.review", "audit.runner", "audit._steps", "audit._funnelrun", "audit.execution"),
    "results": ("audit.result", "audit.finding", "audit.report", "audit.record", "audit.runfolder"),
    "uses": ("audit.audit", "audit.chunked", "audit.evidence", "audit.monitor", "audit.study", "audit.console",
             "audit.scaffold", "audit.cli", "audit"),
}
"""Each layer's modules and packages, low to high (a package covers its submodules).

``audit._steps`` holds the runner's work on frames (execution); ``audit.runfolder``
reads a finished run folder back (results); ``audit.reference`` derives the spec's
JSON Schema and reference from the spec models (settings); ``audit.console`` (what the
command line prints) and ``audit.scaffold`` (``insyn init``, shipped examples) are uses;
``audit`` itself, the package facade, is the top of the uses layer.
"""


# --------------------------------------------------------------------------
# the checker


def module_name(path: Path, root: Path) -> str:
    """The dotted name of a module file below ``root`` (``audit/x/__init__.py`` -> ``audit.x``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_file(module: str, root: Path) -> Path | None:
    """The file of a module or package below ``root``, or None when it is not one."""
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import under ``node``, at any depth, except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def imported_modules(path: Path, root: Path, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` for each module of ``package`` that the file at ``path`` imports.

    Relative imports are resolved; ``from m import n`` is module ``m.n`` when
    that is a module, else ``m``.
    """
    current = module_name(path, root)
    is_init = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
            continue
        if node.level:
            base = current.split(".") if is_init else current.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            found.append((node.lineno, sub if module_file(sub, root) is not None else module))
    mine = [(line, m) for line, m in found if m == package or m.startswith(package + ".")]
    return list(dict.fromkeys(mine))


def layer_of(module: str, layers: Mapping[str, Sequence[str]]) -> str | None:
    """The layer of a module: that of the longest entry of the map that is the module or a package above it.

    The top-level package (an entry without a dot, the facade) places only
    itself, so that a module left off the map is not placed by it.
    """
    best: tuple[int, str] | None = None
    for layer, entries in layers.items():
        for entry in entries:
            covers = module == entry or ("." in entry and module.startswith(entry + "."))
            if covers and (best is None or len(entry) > best[0]):
                best = (len(entry), layer)
    return None if best is None else best[1]


def project_files(root: Path, package: str) -> list[Path]:
    """Every Python file of the package, sorted."""
    return sorted((root / package).rglob("*.py"))


def unplaced_modules(root: Path, package: str, layers: Mapping[str, Sequence[str]]) -> list[str]:
    """Modules that the layer map does not place."""
    return [m for m in (module_name(p, root) for p in project_files(root, package)) if layer_of(m, layers) is None]


def upward_imports(root: Path, package: str, layers: Mapping[str, Sequence[str]]) -> list[str]:
    """Every import that points to a higher layer, as ``file:line: module (layer) imports module (layer)``."""
    rank = {layer: i for i, layer in enumerate(layers)}
    problems = []
    for path in project_files(root, package):
        source = module_name(path, root)
        own = layer_of(source, layers)
        if own is None:
            continue
        for line, target in imported_modules(path, root, package):
            other = layer_of(target, layers)
            if other is not None and rank[other] > rank[own]:
                problems.append(
                    f"{path.relative_to(root)}:{line}: {source} ({own}) imports {target} ({other})"
                )
    return problems


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """File -> files it imports (paths relative to ``root``), packages resolved to their ``__init__.py``."""
    graph: dict[str, set[str]] = {}
    for path in project_files(root, package):
        me = path.relative_to(root).as_posix()
        edges = graph.setdefault(me, set())
        for _, target in imported_modules(path, root, package):
            file = module_file(target, root)
            if file is not None and file != path:
                edges.add(file.relative_to(root).as_posix())
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one file (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return sorted(found)


# --------------------------------------------------------------------------
# the checker on a planted tree: it must be able to fail


def _plant(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


PLANTED_LAYERS = {"ground": ("pkg.base",), "settings": ("pkg.spec",), "execution": ("pkg.run",),
                  "uses": ("pkg.app", "pkg")}


def test_the_checker_finds_an_upward_import_at_module_and_function_level(tmp_path: Path) -> None:
    _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "import json\n",
        "pkg/spec.py": (
            "from typing import TYPE_CHECKING\n"
            "from pkg import base\n"                 # down: fine
            "if TYPE_CHECKING:\n"
            "    from pkg.app import App\n"          # never executed: ignored
            "def run():\n"
            "    from pkg.run import go\n"           # up, inside a function: caught
            "    return go()\n"
        ),
        "pkg/run/__init__.py": "from .steps import go\n",
        "pkg/run/steps.py": "from ..app import App\n",   # up, relative: caught
        "pkg/app.py": "import pkg.spec\nclass App: ...\n",
    })
    assert upward_imports(tmp_path, "pkg", PLANTED_LAYERS) == [
        "pkg/run/steps.py:1: pkg.run.steps (execution) imports pkg.app (uses)",
        "pkg/spec.py:6: pkg.spec (settings) imports pkg.run (execution)",
    ]
    assert unplaced_modules(tmp_path, "pkg", PLANTED_LAYERS) == []
    _plant(tmp_path, {"pkg/extra.py": ""})
    assert unplaced_modules(tmp_path, "pkg", {"ground": ("pkg.base",)}) == [
        "pkg", "pkg.app", "pkg.extra", "pkg.run", "pkg.run.steps", "pkg.spec"]


def test_the_checker_finds_a_planted_circle_between_files(tmp_path: Path) -> None:
    _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/j/__init__.py": "from pkg.j._journey import Journey\n",
        "pkg/j/_step.py": "def f():\n    from pkg.j._journey import Journey\n",   # function level: counts
        "pkg/j/_journey.py": "from pkg.j._step import f\nclass Journey: ...\n",
        "pkg/j/_cases.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.j._journey import Journey\n"        # ignored
        ),
        "pkg/x.py": "from pkg import j\n",                                           # the package's __init__
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg/x.py"] == {"pkg/j/__init__.py"}
    assert graph["pkg/j/_cases.py"] == set()
    assert cycles(graph) == [["pkg/j/_journey.py", "pkg/j/_step.py"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# --------------------------------------------------------------------------
# the real package


def test_every_module_is_placed_on_the_layer_map() -> None:
    unplaced = unplaced_modules(ROOT, PACKAGE, LAYERS)
    assert not unplaced, f"modules missing from the layer map in tests/test_layers.py: {unplaced}"


def test_imports_only_point_down() -> None:
    problems = upward_imports(ROOT, PACKAGE, LAYERS)
    assert not problems, "imports that point to a higher layer:\n" + "\n".join(problems)


def test_no_import_circle_between_files() -> None:
    found = cycles(import_graph(ROOT, PACKAGE))
    assert not found, "import circles between files:\n" + "\n".join(" <-> ".join(c) for c in found)
