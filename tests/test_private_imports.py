"""No module imports another module's private name.

A name with a leading underscore is private to the module that defines it:
its author may rename or remove it without notice. When another module needs
it, the name is made public where it lives (a private module ``_x.py`` may
hold public names) instead of being reached into. This test scans every
``from ... import ...`` in ``audit/`` and ``benchmarks/``, at module level
and inside functions, and fails on an imported name that starts with ``_``
(except ``__version__``) unless that name is itself a module: importing a
private *module* (``from audit.engine import _protocol``) is how private
modules are meant to be used.

Out of scope (kept simple): reaching into a module object for a private
attribute after importing it (``import audit.x._y as z`` then ``z._name``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("audit", "benchmarks")
ALLOWED = frozenset({"__version__"})


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted module name of a file below ``root`` (``audit/x/__init__.py`` -> ``audit.x``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(dotted: str, root: Path = ROOT) -> bool:
    """True when ``dotted`` names a module or package of the project (a file or folder below ``root``)."""
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def absolute_module(node: ast.ImportFrom, current: str, *, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` reads from (relative imports resolved against ``current``)."""
    if not node.level:
        return node.module or ""
    package = current.split(".") if is_package else current.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_imports(source: str, current: str, *, is_package: bool = False, root: Path = ROOT) -> list[str]:
    """Every private name that ``source`` (the text of module ``current``) imports from another module.

    Parameters
    ----------
    source : str
        Python source text.
    current : str
        Its dotted module name (for relative imports and to skip self-imports).
    is_package : bool
        True when the source is a package's ``__init__.py``.
    root : Path
        The folder that holds the project's packages (to tell modules from names).

    Returns
    -------
    list of str
        ``"<line>: from <module> import <name>"`` for each violation.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = absolute_module(node, current, is_package=is_package)
        if module == current:
            continue
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or name in ALLOWED:
                continue
            if is_module(f"{module}.{name}", root):
                continue
            found.append(f"{node.lineno}: from {module} import {name}")
    return found


def test_the_checker_finds_a_planted_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "sub/__init__.py", "sub/_impl.py", "sub/_other.py"):
        (pkg / f).write_text("", encoding="utf-8")
    source = (
        "from pkg.sub._impl import helper, _secret\n"       # a private name: caught
        "from pkg.sub import _impl\n"                        # a private module: allowed
        "from pkg import __version__\n"                      # allowed by name
        "def f():\n"
        "    from ._impl import _hidden as h\n"              # relative, inside a function: caught
        "    from scipy.stats import _stats_py\n"            # third-party private name: caught
    )
    found = private_imports(source, "pkg.sub._other", root=tmp_path)
    assert found == [
        "1: from pkg.sub._impl import _secret",
        "5: from pkg.sub._impl import _hidden",
        "6: from scipy.stats import _stats_py",
    ]
    assert private_imports("from pkg.sub._impl import helper\n", "pkg.sub._other", root=tmp_path) == []
    assert private_imports("from . import _impl\n", "pkg.sub", is_package=True, root=tmp_path) == []


def test_no_module_imports_another_modules_private_name() -> None:
    problems = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            current = module_name(path)
            for hit in private_imports(text, current, is_package=path.name == "__init__.py"):
                problems.append(f"{path.relative_to(ROOT)}:{hit}")
    assert not problems, "private names imported across modules:\n" + "\n".join(problems)
