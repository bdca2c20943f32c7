"""Read YAML written by people, safely: no duplicate keys, no alias bombs, bounded size and depth.

Every file an auditor writes (the audit spec, rule sets, expectation suites,
population specs, personas) is YAML. PyYAML's ``safe_load`` builds no
arbitrary objects, but it accepts three things that turn a user's slip or a
hostile file into a wrong audit or an exhausted machine:

* a key written twice in one mapping: the last one silently wins, so a
  threshold or a path the author believes is in force is not;
* aliases (``*a``) that refer to anchors holding aliases: a 2 KB file (the
  "billion laughs") expands to gigabytes once the spec is validated or
  written back;
* nesting thousands of levels deep.

:func:`load_yaml` refuses each of them with a :class:`audit.exceptions.SpecError`
that names the file, the line and the limit, before any work starts. The
limits (:data:`MAX_YAML_BYTES`, :data:`MAX_YAML_NODES`, :data:`MAX_YAML_DEPTH`)
are far above what any real spec needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from audit.exceptions import SpecError

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "load_yaml", "read_yaml"]

MAX_YAML_BYTES = 4 * 1024 * 1024
"""Largest YAML file read (bytes)."""

MAX_YAML_NODES = 200_000
"""Most values a YAML document may hold once every alias is expanded."""

MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists."""

_Loader: Any = yaml.SafeLoader  # the pure-Python loader: its messages are the ones users and tests know
_FastLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: same documents, ten times faster


def _expanded_size(node: yaml.Node, source: str) -> None:
    """Count the values of ``node`` with every alias expanded; raise past the limits."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            raise SpecError(f"{source}: YAML nested deeper than {MAX_YAML_DEPTH} levels at line "
                            f"{n.start_mark.line + 1}. Expected a spec of ordinary depth.")
        key = id(n)
        if key in memo:
            return memo[key]
        if key in active:
            raise SpecError(f"{source}: a YAML alias refers to itself at line {n.start_mark.line + 1}. "
                            "Expected anchors that do not contain themselves.")
        active.add(key)
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v, depth + 1) for v in n.value)
        else:
            total = 1
        active.discard(key)
        memo[key] = total
        if total > MAX_YAML_NODES:
            raise SpecError(f"{source}: the YAML expands to more than {MAX_YAML_NODES:,} values once its aliases "
                            f"(*name) are resolved (near line {n.start_mark.line + 1}). Expected a spec without "
                            "nested aliases (an 'alias bomb').")
        return total

    size(node, 0)


def _check_duplicates(node: yaml.Node, source: str) -> None:
    """Raise when a mapping repeats a key (PyYAML would keep the last silently)."""
    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: dict[Any, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    if k.value in keys:
                        raise SpecError(
                            f"{source}: the key {k.value!r} appears twice in one mapping (lines {keys[k.value]} "
                            f"and {k.start_mark.line + 1}). Expected each key once; YAML would keep only the last."
                        )
                    keys[k.value] = k.start_mark.line + 1
                stack.extend((k, v))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


def _compose_checked(text: str, source: str, loader_class: Any) -> Any:
    """Parse ``text`` once into nodes, check them, then build the document from the same nodes."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source)
        _check_duplicates(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text safely; see the module docstring for what is refused.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        The file name, for messages.

    Returns
    -------
    object
        The document (``yaml.safe_load``'s result).

    Raises
    ------
    SpecError
        On a YAML syntax error, a duplicated key, an alias bomb, too deep
        nesting or too much text.
    """
    if len(text) > MAX_YAML_BYTES:
        raise SpecError(f"{source}: {len(text):,} characters of YAML. Expected at most {MAX_YAML_BYTES:,}.")
    try:
        return _compose_checked(text, source, _FastLoader)
    except (yaml.YAMLError, RecursionError):
        pass  # parse again with the pure-Python loader, whose messages (and marks) users know
    try:
        return _compose_checked(text, source, _Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}: not valid YAML{where}: {problem}.") from None
    except RecursionError:
        raise SpecError(f"{source}: YAML nested too deeply. Expected at most {MAX_YAML_DEPTH} levels.") from None


def read_yaml(path: str | Path, *, source: str | None = None) -> Any:
    """Read a YAML file with :func:`load_yaml`, checking its size before reading it.

    Raises
    ------
    SpecError
        When the file is too large, not UTF-8, or refused by :func:`load_yaml`.
    """
    p = Path(path)
    shown = source or str(path)
    size = p.stat().st_size
    if size > MAX_YAML_BYTES:
        raise SpecError(f"{shown}: a YAML file of {size:,} bytes. Expected at most {MAX_YAML_BYTES:,}.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{shown}: the file must be UTF-8 text. Got a byte that is not at {exc.start}.") from None
    return load_yaml(text, source=shown)
