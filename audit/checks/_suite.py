"""Expectation suites as YAML files, loaded strictly.

A suite is the data contract of one stage of an audit (the application
intake, what an engine may receive, the decisions it returns, a historical
decision log). It lives in ``checks/<name>.yaml`` so that an auditor can read
and change it without touching code::

    name: application
    description: The assistance case frame as it enters an audit.
    groups: [sex, birth_region]        # optional: default group columns
    expectations:
      - type: expect_column_values_to_be_between
        kwargs: {column: applicant_age, min_value: 18, max_value: 110}
        meta: {why: applicants are adults}
      - type: expect_column_proxy_strength_to_be_at_most
        kwargs: {column: years_in_sweden, max_cramers_v: 0.4}
        severity: warning                # critical (default) | warning | info

Loading is strict, because a typo in a data contract must not silently switch
a check off (great-expectations itself only logs an unknown type and drops
it): an unknown top-level key, an unknown expectation type, an unknown,
missing or badly typed argument is a :class:`audit.exceptions.SpecError` that
names the file, the entry and what was expected, e.g.::

    checks/application.yaml: expectations[3] (expect_column_values_to_be_betwen)
    is not a known expectation type. Did you mean expect_column_values_to_be_between?

The YAML is kept exactly as written (:meth:`Suite.to_dict`), because
great-expectations' own serialisation drops arguments equal to their default
and turns integers into floats.

``severity`` follows great-expectations: a failed ``critical`` expectation
(the default) fails its step and is what the step's policy acts on; a failed
``warning`` or ``info`` expectation is reported and nothing more. The shipped
suites mark the fairness-aware expectations ``warning``: a gap in the data is a
finding for the report, not a reason to stop the audit that measures it.

Fairness-aware expectations need a group column. A suite may leave it out or
write the placeholder ``"{groups}"``; :func:`audit.checks.validate` then runs
the expectation once per group column it is given (or, failing that, per
column of the suite's ``groups`` key).
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from audit._yaml import load_yaml
from audit._paths import resolve_path, sha256_file
from audit.checks._catalogue import GROUP_KWARGS, SHIPPED_SUITE_SHA256
from audit.exceptions import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.expectations.expectation import Expectation

__all__ = [
    "GROUPS_PLACEHOLDER",
    "SEVERITIES",
    "Suite",
    "SuiteExpectation",
    "build_expectation",
    "convert_suite",
    "expand_entry",
    "known_expectation_types",
    "load_suite",
    "register_expectations",
]

GROUPS_PLACEHOLDER = "{groups}"
"""A kwarg value that :func:`audit.checks.validate` replaces by each group column."""

_SUITE_KEYS = ("name", "description", "groups", "expectations")
_ENTRY_KEYS = ("type", "kwargs", "meta", "severity")
SEVERITIES = ("critical", "warning", "info")
"""Severity of an expectation: only a failed ``critical`` one fails its step."""
_MANAGED_KWARGS = {
    "result_format": "the result format is set by audit.checks.validate",
    "catch_exceptions": "exceptions are always caught and reported per expectation",
    "batch_id": "the batch is the frame given to audit.checks.validate",
    "id": "expectations are identified by their position in the suite",
    "rendered_content": "rendering is not used",
    "windows": "windows need a stored history, which an ephemeral run does not have",
    "meta": "write meta next to kwargs, not inside it",
    "severity": "write severity next to kwargs, not inside it",
}
_BASE_FIELDS = frozenset(
    {"id", "meta", "notes", "result_format", "description", "catch_exceptions", "rendered_content",
     "severity", "windows", "batch_id"}
)


@dataclass(frozen=True)
class SuiteExpectation:
    """One entry of a suite, as written.

    Attributes
    ----------
    index : int
        Position in the suite's ``expectations`` list (0-based).
    type : str
        The great-expectations type, e.g. ``expect_column_values_to_be_between``.
    kwargs : Mapping
        The arguments exactly as written in the YAML.
    meta : Mapping or None
        Free-form notes that travel into the results.
    severity : str
        ``critical`` (the default), ``warning`` or ``info``.
    group_kwarg : str or None
        For fairness-aware expectations, the argument that names the group
        column (``group_column``, ``sensitive_column`` or ``column``).
    """

    index: int
    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any] | None = None
    severity: str = "critical"
    group_kwarg: str | None = None

    @property
    def label(self) -> str:
        """``expectations[<index>] (<type>)``, as used in messages."""
        return f"expectations[{self.index}] ({self.type})"

    def needs_groups(self) -> bool:
        """True when the group column is left out or written as ``"{groups}"``."""
        if self.group_kwarg is not None and self.kwargs.get(self.group_kwarg) is None:
            return True
        return any(v == GROUPS_PLACEHOLDER for v in self.kwargs.values())


@dataclass(frozen=True)
class Suite:
    """An expectation suite loaded from YAML (see :func:`load_suite`).

    Attributes
    ----------
    name : str
        The suite's name (``application``, ``decisions``, ...).
    expectations : tuple of SuiteExpectation
        The entries in file order.
    description : str or None
        What the suite guards.
    groups : tuple of str
        Default group columns for fairness-aware expectations that do not name
        one; used when :func:`audit.checks.validate` gets no ``groups``.
    source : str
        Where the suite came from, as given (a path, or ``<dict>``); used in
        messages.
    """

    name: str
    expectations: tuple[SuiteExpectation, ...]
    description: str | None = None
    groups: tuple[str, ...] = ()
    source: str = "<dict>"
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the suite exactly as written (a deep copy of the parsed YAML)."""
        return copy.deepcopy(dict(self._raw))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>", checked: bool = False) -> Suite:
        """Build a suite from its parsed YAML form, as strictly as :func:`load_suite`.

        Parameters
        ----------
        data : Mapping
            ``{name, description?, groups?, expectations: [{type, kwargs?, meta?}]}``.
        source : str, default "<dict>"
            Where the data came from, for messages.
        checked : bool, default False
            True when these exact entries already passed great-expectations'
            strict check (a shipped suite, :data:`SHIPPED_SUITE_SHA256`): the
            structure is still checked here, great-expectations is not imported.

        Raises
        ------
        audit.exceptions.SpecError
            Naming the source, the entry and what was expected.
        """
        where = f"{source}:"
        if not isinstance(data, Mapping):
            raise SpecError(
                f"{where} a suite must be a mapping with keys {', '.join(_SUITE_KEYS)}. "
                f"Got {type(data).__name__}."
            )
        unknown = [k for k in data if k not in _SUITE_KEYS]
        if unknown:
            raise SpecError(
                f"{where} unknown key {unknown[0]!r}. A suite has the keys {', '.join(_SUITE_KEYS)}."
                + _did_you_mean(str(unknown[0]), _SUITE_KEYS)
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{where} name must be a non-empty string. Got {name!r}.")
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            raise SpecError(f"{where} description must be a string. Got {description!r}.")
        groups = data.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise SpecError(f"{where} groups must be a list of column names. Got {groups!r}.")
        entries = data.get("expectations")
        if not isinstance(entries, list) or not entries:
            raise SpecError(f"{where} expectations must be a non-empty list. Got {entries!r}.")
        parsed = tuple(_parse_entry(i, e, where, gx=not checked) for i, e in enumerate(entries))
        return cls(
            name=name,
            expectations=parsed,
            description=description,
            groups=tuple(groups),
            source=source,
            _raw=copy.deepcopy(dict(data)),
        )


    # ------------------------------------------------------------------ great-expectations JSON
    def to_gx_dict(self, *, groups: Sequence[str] | None = None) -> dict[str, Any]:
        """The suite in great-expectations' own JSON form (what ``ExpectationSuite.to_json_dict`` writes).

        ``{name, id, expectations: [{type, kwargs, meta, severity, id}], meta, notes}``;
        ``gx.ExpectationSuite(**data)`` reads it, and so does
        :meth:`from_gx_dict`. Arguments are written exactly as in the YAML
        (great-expectations' own serialisation would turn integers into
        floats). The suite's description, default groups and each entry's
        place in the suite travel in ``meta["insyn"]``.

        Parameters
        ----------
        groups : sequence of str, optional
            Fill the group column of fairness-aware expectations that leave
            it out (one expectation per column, as :func:`audit.checks.validate`
            does), so that the suite runs in plain great-expectations. Without
            it they are written as in the YAML and need their group column
            before they can run.
        """
        import great_expectations as gx

        expectations: list[dict[str, Any]] = []
        for entry in self.expectations:
            filled = expand_entry(entry, self, list(groups)) if groups else [(dict(entry.kwargs), None)]
            for kwargs, _problem in filled:
                meta = copy.deepcopy(dict(entry.meta)) if entry.meta else {}
                meta["insyn"] = {"suite": self.name, "index": entry.index}
                expectations.append({"type": entry.type, "kwargs": copy.deepcopy(kwargs), "meta": meta,
                                     "severity": entry.severity, "id": None})
        insyn: dict[str, Any] = {"source": self.source}
        if self.groups:
            insyn["groups"] = list(self.groups)
        if groups:
            insyn["expanded_for"] = list(groups)
        return {
            "name": self.name,
            "id": None,
            "expectations": expectations,
            "meta": {"great_expectations_version": gx.__version__, "insyn": insyn},
            "notes": self.description,
        }

    def to_gx(self, *, groups: Sequence[str] | None = None) -> Any:
        """The suite as a ``great_expectations.ExpectationSuite`` (see :meth:`to_gx_dict`)."""
        import great_expectations as gx

        import audit.checks._expectations  # noqa: F401  (registers the custom expectations)

        return gx.ExpectationSuite(**self.to_gx_dict(groups=groups))

    @classmethod
    def from_gx_dict(cls, data: Any, *, source: str = "<gx json>") -> Suite:
        """Read a suite in great-expectations' JSON form, as strictly as :func:`load_suite` reads YAML.

        Each expectation keeps its ``type``, ``kwargs``, ``meta`` and
        ``severity``; ``id``, ``rendered_content`` and a ``batch_id`` argument
        are dropped (an audit sets them), and an expectation's ``notes`` and
        ``description`` move into its ``meta``. A suite written by
        :meth:`to_gx_dict` comes back with its description, default groups
        and entries as they were (expanded group columns stay expanded).

        Raises
        ------
        audit.exceptions.SpecError
            Naming the source, the entry and what was expected.
        """
        where = f"{source}:"
        if not isinstance(data, Mapping) or not isinstance(data.get("expectations"), list):
            got = type(data).__name__ if not isinstance(data, Mapping) else f"keys {', '.join(map(str, data))}"
            raise SpecError(f"{where} a great-expectations suite must be a mapping with name and a list of "
                            f"expectations. Got {got}.")
        meta = data.get("meta") if isinstance(data.get("meta"), Mapping) else {}
        insyn = meta.get("insyn") if isinstance(meta.get("insyn"), Mapping) else {}
        entries: list[dict[str, Any]] = []
        for i, item in enumerate(data["expectations"]):
            if not isinstance(item, Mapping):
                raise SpecError(f"{where} expectations[{i}] must be a mapping with type and kwargs. Got {item!r}.")
            kwargs = {k: v for k, v in dict(item.get("kwargs") or {}).items() if k != "batch_id"}
            entry_meta = {k: v for k, v in dict(item.get("meta") or {}).items() if k != "insyn"}
            for key in ("notes", "description"):
                if item.get(key):
                    entry_meta[key] = item[key]
            entry: dict[str, Any] = {"type": item.get("type"), "kwargs": kwargs}
            if entry_meta:
                entry["meta"] = entry_meta
            severity = item.get("severity", "critical")
            if severity != "critical":
                entry["severity"] = severity
            entries.append(entry)
        suite: dict[str, Any] = {"name": data.get("name"), "expectations": entries}
        if data.get("notes"):
            suite["description"] = data["notes"] if isinstance(data["notes"], str) else "\n".join(data["notes"])
        if insyn.get("groups"):
            suite["groups"] = list(insyn["groups"])
        return cls.from_dict(suite, source=source)


def load_suite(path: str | Path) -> Suite:
    """Load an expectation suite from a YAML file (or great-expectations' JSON), strictly.

    Parameters
    ----------
    path : str or Path
        The suite file: Insyn's YAML, or a ``.json`` suite in
        great-expectations' own form (see :meth:`Suite.from_gx_dict`). A
        relative path under ``checks/`` that does not exist in the current
        folder falls back to the suites shipped with Insyn.

    Returns
    -------
    Suite
        The suite, with every entry checked against great-expectations.

    Raises
    ------
    audit.exceptions.SpecError
        When the file is missing or not YAML, a key is unknown, an expectation
        type is unknown, or an argument is unknown, missing or invalid. The
        message names the file, the entry index and type, and what was
        expected.
    """
    shown = str(path)
    resolved = resolve_path(path, None)
    if not resolved.is_file():
        raise SpecError(f"{shown}: suite file not found (looked at {resolved}).")
    stat = resolved.stat()
    return _load_suite_file(shown, resolved, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load_suite_file(shown: str, resolved: Path, mtime_ns: int, size: int) -> Suite:
    """Load one suite file; cached by path, modification time and size (a Suite is frozen)."""
    if resolved.suffix.lower() == ".json":
        try:
            data = json.loads(resolved.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SpecError(f"{shown}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{shown}: cannot read the suite file: {exc}.") from None
        return Suite.from_gx_dict(data, source=shown)
    try:
        data = load_yaml(resolved.read_text(encoding="utf-8"), source=shown)  # duplicate keys, alias bombs: SpecError
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{shown}: not valid YAML{at}: {getattr(exc, 'problem', exc)}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{shown}: cannot read the suite file: {exc}.") from None
    checked = SHIPPED_SUITE_SHA256.get(resolved.name) == sha256_file(resolved)
    return Suite.from_dict(data, source=shown, checked=checked)


# --------------------------------------------------------------------------
# entries


def _parse_entry(index: int, entry: Any, where: str, *, gx: bool = True) -> SuiteExpectation:
    """Check one ``expectations[i]`` entry and return it as written."""
    if not isinstance(entry, Mapping):
        raise SpecError(
            f"{where} expectations[{index}] must be a mapping with keys {', '.join(_ENTRY_KEYS)}. Got {entry!r}."
        )
    etype = entry.get("type")
    if not isinstance(etype, str) or not etype:
        raise SpecError(f"{where} expectations[{index}].type must be an expectation type name. Got {etype!r}.")
    label = f"expectations[{index}] ({etype})"
    unknown = [k for k in entry if k not in _ENTRY_KEYS]
    if unknown:
        raise SpecError(
            f"{where} {label}: unknown key {unknown[0]!r}. An entry has the keys {', '.join(_ENTRY_KEYS)}."
            + _did_you_mean(str(unknown[0]), _ENTRY_KEYS)
        )
    kwargs = entry.get("kwargs", {})
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise SpecError(f"{where} {label}: kwargs must be a mapping of argument names to values. Got {kwargs!r}.")
    meta = entry.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise SpecError(f"{where} {label}: meta must be a mapping. Got {meta!r}.")
    severity = entry.get("severity", "critical")
    if severity not in SEVERITIES:
        raise SpecError(f"{where} {label}: severity must be one of {', '.join(SEVERITIES)}. Got {severity!r}.")
    for key in kwargs:
        if key in _MANAGED_KWARGS:
            raise SpecError(f"{where} {label}: kwargs.{key} cannot be set in a suite: {_MANAGED_KWARGS[key]}.")
    if gx:
        impl = _expectation_class(etype, where=where, index=index)
        build_expectation(etype, dict(kwargs), where=f"{where} {label}", impl=impl)
    return SuiteExpectation(
        index=index,
        type=etype,
        kwargs=copy.deepcopy(dict(kwargs)),
        meta=copy.deepcopy(dict(meta)) if meta is not None else None,
        severity=severity,
        group_kwarg=GROUP_KWARGS.get(etype),
    )


@functools.cache
def register_expectations() -> None:
    """Import great-expectations and register Insyn's own expectation types with it (once per process).

    great-expectations costs seconds to import, so it is loaded here, when a
    suite is first built or validated, not by ``import audit``. The module
    that defines Insyn's expectation classes is loaded by name for the same
    reason: it is a great-expectations plugin and imports great-expectations
    at its top.
    """
    importlib.import_module("audit.checks._expectations")


def known_expectation_types() -> list[str]:
    """Every expectation type great-expectations knows, including Insyn's own, sorted."""
    register_expectations()
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return sorted(list_registered_expectation_implementations())


def _expectation_class(etype: str, *, where: str, index: int) -> type[Expectation]:
    register_expectations()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        return get_expectation_impl(etype)
    except ExpectationNotFoundError:
        raise SpecError(
            f"{where} expectations[{index}] ({etype}) is not a known expectation type."
            + _did_you_mean(etype, known_expectation_types())
        ) from None


def build_expectation(
    etype: str,
    kwargs: dict[str, Any],
    *,
    where: str,
    meta: Mapping[str, Any] | None = None,
    impl: type[Expectation] | None = None,
    severity: str | None = None,
) -> Expectation:
    """Build a great-expectations expectation, turning its validation errors into a SpecError.

    Parameters
    ----------
    etype : str
        The expectation type.
    kwargs : dict
        Its arguments.
    where : str
        Prefix of error messages (``"<file>: expectations[i] (<type>)"``).
    meta : Mapping, optional
        Meta attached to the expectation.
    impl : type, optional
        The expectation class, when already looked up.
    severity : str, optional
        ``critical``, ``warning`` or ``info`` (great-expectations' default:
        critical).

    Raises
    ------
    audit.exceptions.SpecError
        When an argument is unknown, missing or invalid.
    """
    register_expectations()
    from great_expectations.compatibility.pydantic import ValidationError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if impl is None:
        from great_expectations.expectations.registry import get_expectation_impl

        impl = get_expectation_impl(etype)
    try:
        config = ExpectationConfiguration(type=etype, kwargs=kwargs, meta=dict(meta) if meta else None,
                                          **({"severity": severity} if severity else {}))
        return config.to_domain_obj()
    except ValidationError as exc:
        raise SpecError(f"{where}: {_describe_validation_error(exc, kwargs, impl)}") from None
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: invalid arguments: {exc}.") from None


def _argument_names(impl: type[Expectation]) -> list[str]:
    fields = getattr(impl, "__fields__", {})
    return sorted(k for k in fields if k not in _BASE_FIELDS or k in ("notes", "description"))


_PHRASES = {
    "type_error.float": "must be a number",
    "type_error.integer": "must be an integer",
    "type_error.list": "must be a list",
    "type_error.set": "must be a list",
    "type_error.bool": "must be true or false",
    "type_error.str": "must be a string",
    "type_error.none.not_allowed": "must not be empty",
    "type_error.dict": "must be a mapping",
    "value_error.any_str.min_length": "must be a non-empty string",
}


def _describe_validation_error(exc: Any, kwargs: Mapping[str, Any], impl: type[Expectation]) -> str:
    """One sentence per invalid argument: what was expected and what was given."""
    by_field: dict[str, list[dict[str, Any]]] = {}
    roots: list[str] = []
    for err in exc.errors():
        loc = err.get("loc") or ("__root__",)
        if loc[0] == "__root__":
            roots.append(str(err.get("msg", "")))
        else:
            by_field.setdefault(str(loc[0]), []).append(err)
    sentences: list[str] = []
    names = _argument_names(impl)
    for name, errs in by_field.items():
        main = next((e for e in errs if e.get("type") != "type_error.dict"), errs[0])
        etype = str(main.get("type", ""))
        given = kwargs.get(name)
        if etype == "value_error.missing":
            sentences.append(f"kwargs.{name} is required.")
            continue
        if etype == "value_error.extra":
            sentences.append(
                f"kwargs.{name} is not an argument of {impl.expectation_type}."
                + _did_you_mean(name, names)
                + f" Arguments: {', '.join(names)}."
            )
            continue
        ctx = main.get("ctx") or {}
        if etype.startswith("value_error.number.not_"):
            op = {"not_ge": ">=", "not_gt": ">", "not_le": "<=", "not_lt": "<"}.get(etype.rsplit(".", 1)[-1], "")
            phrase = f"must be a number {op} {ctx.get('limit_value')}"
        else:
            phrase = _PHRASES.get(etype) or str(main.get("msg", "is invalid"))
            if phrase.startswith(("value is not", "ensure", "unexpected value")):
                phrase = f"is invalid ({phrase})"
            elif not phrase.startswith(("must", "is ")):
                phrase = f"is invalid: {phrase}"
        sentences.append(f"kwargs.{name} {phrase}. Got {given!r}.")
    if not sentences:
        sentences = [f"{msg}." if not msg.endswith(".") else msg for msg in roots] or ["invalid arguments."]
    return " ".join(sentences)


def _did_you_mean(word: str, options: Any) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return f" Did you mean {match[0]}?" if match else ""


def expand_entry(
    entry: SuiteExpectation, suite: Suite, groups: Sequence[str]
) -> list[tuple[dict[str, Any], str | None]]:
    """The concrete arguments of one entry: one set per group column it needs, or a problem.

    A fairness-aware entry that leaves its group column out (or writes
    ``"{groups}"``) is filled with each column of ``groups`` (or, without
    them, of the suite's ``groups`` key); a column compared with itself is
    skipped. Other entries come back as they are.

    Returns
    -------
    list of (kwargs, problem)
        ``problem`` is None, or says why the entry cannot run.
    """
    kwargs = dict(entry.kwargs)
    if not entry.needs_groups():
        return [(kwargs, None)]
    columns = list(groups) or list(suite.groups)
    if not columns:
        what = f"kwargs.{entry.group_kwarg}" if entry.group_kwarg else "a group column"
        return [
            (
                kwargs,
                f"needs {what}: name it in the suite, pass groups (insyn check --groups COL), "
                "or list default groups in the suite's groups key.",
            )
        ]
    out: list[tuple[dict[str, Any], str | None]] = []
    for g in columns:
        filled = {k: (g if v == GROUPS_PLACEHOLDER else v) for k, v in kwargs.items()}
        if entry.group_kwarg is not None and filled.get(entry.group_kwarg) is None:
            filled[entry.group_kwarg] = g
        if entry.group_kwarg not in (None, "column") and filled.get(entry.group_kwarg) == filled.get("column"):
            continue  # a column compared with itself (proxy of birth_region for birth_region) says nothing
        out.append((filled, None))
    return out


def convert_suite(source: str | Path, dest: str | Path, *, groups: Sequence[str] | None = None) -> Path:
    """Convert a suite between Insyn's YAML and great-expectations' JSON (``insyn suite SOURCE DEST``).

    Parameters
    ----------
    source : str or Path
        A ``.yaml``/``.yml`` (Insyn) or ``.json`` (great-expectations) suite.
    dest : str or Path
        The file to write; its suffix chooses the form.
    groups : sequence of str, optional
        When writing JSON, fill the group column of fairness-aware
        expectations (see :meth:`Suite.to_gx_dict`).

    Returns
    -------
    Path
        ``dest``.
    """
    suite = load_suite(source)
    out = Path(dest)
    suffix = out.suffix.lower()
    if suffix == ".json":
        text = json.dumps(suite.to_gx_dict(groups=groups), indent=2, ensure_ascii=False) + "\n"
    elif suffix in (".yaml", ".yml"):
        if groups:
            raise SpecError(f"{dest}: --groups fills group columns in great-expectations JSON only. "
                            "Expected a .json destination, or no --groups.")
        text = yaml.safe_dump(suite.to_dict(), sort_keys=False, allow_unicode=True)
    else:
        raise SpecError(f"{dest}: cannot write a suite as {suffix or 'a suffix-less file'}. "
                        "Expected .json (great-expectations) or .yaml (Insyn).")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
