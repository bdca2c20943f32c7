"""The reference of the audit spec: a JSON Schema and a Markdown page, generated from the spec models.

An auditor writes an audit spec by hand, in YAML, often far from the code
that reads it. What each key means, its type, its default and its allowed
values must therefore be written down where the auditor looks, and stay true
as the spec grows. Both forms are generated from one source, the pydantic
models of :mod:`audit.spec` (types, defaults, bounds, allowed values) plus a
sentence or two per key in ``audit/schemas/spec-keys.yaml``:

``audit/schemas/audit-spec.schema.json``
    a JSON Schema (draft 2020-12) of the spec, shipped in the package and
    printed by ``insyn schema``. Editors that speak the YAML language server
    (VS Code, Neovim, JetBrains) validate a spec while it is typed when its
    first line is ``# yaml-language-server: $schema=<path to the schema>``;
    ``insyn init`` writes that line. The per-kind keys of ``engine:`` are
    expressed with ``if``/``then``, so an editor flags ``url`` under a
    ``rules`` engine as the loader does.
``docs/spec.md``
    every key of every section with its type, default, allowed values, a
    description and an example (``insyn schema --format markdown``).

A test regenerates both and compares them with the committed files, so a key
added to the models without a description, or a description of a key that
is gone, fails the build. Regenerate with ``python -m audit.reference``.

The study spec (:mod:`audit.study_spec`, ``insyn study``) is the second kind:
``audit/schemas/study-spec.schema.json`` and ``docs/study-spec.md``, with its
key texts in ``audit/schemas/study-keys.yaml``. A further kind is one more
entry in :data:`SPECS` and :data:`KEY_FILES`.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo, PydanticUndefined

from audit.exceptions import SpecError
from audit.spec import ENGINE_KEYS, ENGINE_REQUIRED, AuditSpec, EngineSpec
from audit.study_spec import StudySpec

__all__ = [
    "KEY_FILES",
    "SCHEMA_DIALECT",
    "SPECS",
    "json_schema",
    "key_docs",
    "markdown_reference",
    "schema_file",
    "schema_text",
    "spec_models",
    "write_reference",
]

SPECS: dict[str, type[BaseModel]] = {"audit": AuditSpec, "study": StudySpec}
"""The spec kinds with a schema, by name, and their root model."""

KEY_FILES: dict[str, str] = {"audit": "spec-keys.yaml", "study": "study-keys.yaml"}
"""Per spec kind, the file in ``audit/schemas/`` with a description of every key."""

_MODULES = {"audit": "audit/spec.py", "study": "audit/study_spec.py"}
_DOCS = {"audit": "spec.md", "study": "study-spec.md"}

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of the generated schemas."""

_TITLES = {"audit": "Insyn audit spec", "study": "Insyn study spec"}


def _check_kind(kind: str) -> type[BaseModel]:
    try:
        return SPECS[kind]
    except KeyError:
        raise SpecError(f"There is no schema of a {kind!r} spec. Expected one of {', '.join(SPECS)}.") from None


def schema_file(kind: str = "audit") -> Path:
    """Return the path of the shipped JSON Schema of a spec kind (``audit-spec.schema.json``)."""
    _check_kind(kind)
    return Path(str(resources.files("audit").joinpath("schemas", f"{kind}-spec.schema.json")))


@cache
def key_docs(kind: str = "audit") -> dict[str, dict[str, Any]]:
    """The descriptions and examples of a spec kind's key file (``audit/schemas/spec-keys.yaml``), by model name."""
    _check_kind(kind)
    name = KEY_FILES[kind]
    text = resources.files("audit").joinpath("schemas", name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):  # pragma: no cover - guarded by the tests
        raise SpecError(f"audit/schemas/{name} must be a mapping of model names to entries.")
    return data


# --------------------------------------------------------------------------
# walking the models


def _inner_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _inner_models(arg)


def spec_models(kind: str = "audit") -> list[tuple[type[BaseModel], list[str]]]:
    """Every model of a spec kind, root first, with the key paths where it appears.

    Returns
    -------
    list of (model, paths)
        ``paths`` are dotted key paths such as ``population.derive.*.bins``
        (``*`` stands for a mapping key or a list position); the root's path
        is ``""``.
    """
    root = _check_kind(kind)
    order: list[type[BaseModel]] = []
    paths: dict[type[BaseModel], list[str]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        if model in paths:
            paths[model].append(path)
            return
        order.append(model)
        paths[model] = [path]
        for name, field in model.model_fields.items():
            star = ".*" if _is_container(field.annotation) else ""
            for inner in _inner_models(field.annotation):
                walk(inner, f"{path}.{name}{star}".lstrip("."))

    walk(root, "")
    return [(m, paths[m]) for m in order]


def _is_container(annotation: Any) -> bool:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) in (list, dict):
            return True
    return False


# --------------------------------------------------------------------------
# JSON Schema


def json_schema(kind: str = "audit") -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a spec kind, with a description for every key.

    Parameters
    ----------
    kind : str, default "audit"
        A key of :data:`SPECS`.

    Returns
    -------
    dict
        The schema; ``audit/schemas/<kind>-spec.schema.json`` holds the same
        dict as JSON.
    """
    root = _check_kind(kind)
    schema = root.model_json_schema(mode="validation")
    docs = key_docs(kind)
    defs = schema.get("$defs", {})
    for model, _ in spec_models(kind):
        node = schema if model is root else defs[model.__name__]
        entry = docs.get(model.__name__, {})
        for key, prop in node.get("properties", {}).items():
            text = entry.get("keys", {}).get(key)
            if text:
                prop["description"] = text
                prop["markdownDescription"] = text
        if model is not root and entry.get("title"):
            node["title"] = entry["title"]
    if "EngineSpec" in defs:
        defs["EngineSpec"]["allOf"] = [
            {
                "if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                "then": {
                    "propertyNames": {"enum": sorted(ENGINE_KEYS[k])},
                    **({"required": list(ENGINE_REQUIRED[k])} if ENGINE_REQUIRED[k] else {}),
                },
            }
            for k in ENGINE_KEYS
        ]
    return {"$schema": SCHEMA_DIALECT, "$id": f"{kind}-spec.schema.json", "title": _TITLES.get(kind, kind), **{
        k: v for k, v in schema.items() if k != "title"}}


# --------------------------------------------------------------------------
# Markdown


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading (lower case; punctuation but ``-`` and ``_`` dropped; spaces to ``-``)."""
    out = []
    for ch in heading.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def _type_text(annotation: Any, titles: dict[type[BaseModel], str]) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        title = titles[annotation]
        return f"mapping ([{title}](#{_slug(title)}))"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        kinds = {type(a) for a in args}
        return "string" if kinds == {str} else " or ".join(sorted(t.__name__ for t in kinds))
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a, titles) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is list:
        return f"list of {_plural(_type_text(args[0], titles))}" if args else "list"
    if origin is dict:
        key, value = args if args else (str, Any)
        return f"mapping of {_type_text(key, titles)} to {_type_text(value, titles)}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation is Any:
        return "any value"
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(text: str) -> str:
    if text.startswith(("list of", "mapping")) or " or " in text:
        return f"({text})" if " or " in text else text
    return text + "s"


def _literals(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    out: list[Any] = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(annotation) is not dict:
            out.extend(_literals(arg))
    return out


def _yaml_value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "(the section's defaults)"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return _yaml_value(value) if isinstance(value, BaseModel) else f"`{_yaml_value(value)}`"
    if field.default is PydanticUndefined:
        return "**required**"
    if field.default is None:
        return "none"
    return f"`{_yaml_value(field.default)}`"


def _allowed_text(field: FieldInfo) -> str:
    parts: list[str] = []
    choices = _literals(field.annotation)
    if choices:
        parts.append(", ".join(f"`{c}`" for c in choices))
    for meta in _constraints(field):  # annotated-types constraints (Ge, Gt, Le, Lt, MinLen, MaxLen) and patterns
        for attr, text in (("ge", "≥ {:g}"), ("gt", "> {:g}"), ("le", "≤ {:g}"), ("lt", "< {:g}")):
            if getattr(meta, attr, None) is not None:
                parts.append(text.format(getattr(meta, attr)))
        if getattr(meta, "min_length", None) is not None:
            n = meta.min_length
            parts.append(f"at least {n} item{'s' if n != 1 else ''}")
        if getattr(meta, "max_length", None) is not None:
            parts.append(f"at most {meta.max_length} characters")
        if getattr(meta, "pattern", None):
            parts.append(f"pattern `{meta.pattern}`")
    return "; ".join(parts)


def _constraints(field: FieldInfo) -> list[Any]:
    out = list(field.metadata)
    for arg in typing.get_args(field.annotation):  # Optional[int] with ge=1 keeps its bound on the field
        out.extend(getattr(arg, "__metadata__", ()))
    return out


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown_reference(kind: str = "audit") -> str:
    """Return the Markdown reference of a spec kind (the text of ``docs/spec.md``).

    Every section (model) has its keys in a table (key, type, default,
    allowed values, description) and an example that loads.
    """
    root = _check_kind(kind)
    docs = key_docs(kind)
    models = spec_models(kind)
    titles = {m: docs.get(m.__name__, {}).get("title", m.__name__) for m, _ in models}
    lines = [
        f"# {_TITLES.get(kind, kind)} reference",
        "",
        f"<!-- Generated by `python -m audit.reference` from the models in {_MODULES[kind]} and the texts in",
        f"     audit/schemas/{KEY_FILES[kind]}. Do not edit: tests/test_reference.py compares it with a new "
        "rendering. -->",
        "",
        f"A{'n' if kind[0] in 'aeiou' else ''} {kind} spec is a YAML file. Every key is listed below, with its "
        "type, its default and the values it",
        "allows; a key that is not listed, or a value of the wrong kind, is an error that names the file, the key",
        "and what was expected. Relative paths resolve against the spec's folder; a path under `datasets/`,",
        "`checks/` or `examples/` that is not there falls back to the files shipped with Insyn.",
        "",
        f"The same rules as a JSON Schema: `audit/schemas/{kind}-spec.schema.json` in the package, printed by",
        f"`insyn schema{'' if kind == 'audit' else ' ' + kind}`. With the schema next to a spec, editors that use "
        "the YAML language server validate",
        "the spec while it is typed; `insyn init` writes the first line that tells them where the schema is:"
        if kind == "audit" else "the spec while it is typed when its first line tells them where the schema is:",
        "",
        "```yaml",
        f"# yaml-language-server: $schema=schemas/{kind}-spec.schema.json",
        "```",
        "",
        "Sections:",
        "",
    ]
    for model, paths in models:
        lines.append(f"- [{titles[model]}](#{_slug(titles[model])})")
    lines.append("")
    for model, paths in models:
        entry = docs.get(model.__name__, {})
        title = titles[model]
        lines += [f"## {title}", ""]
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", doc.replace("``", "`"))
        lines += [" ".join(doc.split()), ""]
        if model is not root and len(paths) > 1:
            lines += ["Appears at " + ", ".join(f"`{p}`" for p in paths) + ".", ""]
        lines += ["| key | type | default | allowed values | description |", "| --- | --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"`{name}`",
                        _cell(_type_text(field.annotation, titles)),
                        _cell(_default_text(field)),
                        _cell(_allowed_text(field)),
                        _cell(str(entry.get("keys", {}).get(name, ""))),
                    ]
                )
                + " |"
            )
        lines.append("")
        if model is EngineSpec:
            lines += ["Keys per kind (a key of another kind is an error):", "", "| kind | keys | required |",
                      "| --- | --- | --- |"]
            for k, keys in ENGINE_KEYS.items():
                required = ", ".join(f"`{r}`" for r in ENGINE_REQUIRED[k]) or "–"
                lines.append(f"| `{k}` | {', '.join(f'`{x}`' for x in sorted(keys))} | {required} |")
            lines.append("")
        example = str(entry.get("example", "")).rstrip()
        if example:
            lines += ["Example:", "", "```yaml", example, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------
# files


def schema_text(kind: str = "audit") -> str:
    """The JSON Schema of a spec kind as the text of its file (indented, sorted keys, final newline)."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_reference(root: str | Path) -> list[Path]:
    """Write every spec kind's schema into ``<root>/audit/schemas/`` and its Markdown into ``<root>/docs/``.

    Parameters
    ----------
    root : str or Path
        The repository root.

    Returns
    -------
    list of Path
        The files written.
    """
    base = Path(root)
    written = []
    for kind in SPECS:
        path = base / "audit" / "schemas" / f"{kind}-spec.schema.json"
        path.write_text(schema_text(kind), encoding="utf-8")
        written.append(path)
        doc = base / "docs" / _DOCS[kind]
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(markdown_reference(kind), encoding="utf-8")
        written.append(doc)
    return written


if __name__ == "__main__":  # pragma: no cover - python -m audit.reference
    for written_path in write_reference(Path(__file__).resolve().parents[1]):
        sys.stdout.write(f"wrote {written_path}\n")
