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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from audit._yaml import load_yaml
from audit._paths import resolve_path
from audit.checks._names import GROUP_KWARGS
from audit.exceptions import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.expectations.expectation import Expectation

__all__ = [
    "GROUPS_PLACEHOLDER",
    "SEVERITIES",
    "Suite",
    "SuiteExpectation",
    "build_expectation",
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
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> Suite:
        """Build a suite from its parsed YAML form, as strictly as :func:`load_suite`.

        Parameters
        ----------
        data : Mapping
            ``{name, description?, groups?, expectations: [{type, kwargs?, meta?}]}``.
        source : str, default "<dict>"
            Where the data came from, for messages.

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
        parsed = tuple(_parse_entry(i, e, where) for i, e in enumerate(entries))
        return cls(
            name=name,
            expectations=parsed,
            description=description,
            groups=tuple(groups),
            source=source,
            _raw=copy.deepcopy(dict(data)),
        )


def load_suite(path: str | Path) -> Suite:
    """Load an expectation suite from a YAML file, strictly.

    Parameters
    ----------
    path : str or Path
        The suite file. A relative path under ``checks/`` that does not exist
        in the current folder falls back to the suites shipped with Insyn.

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
    try:
        data = load_yaml(resolved.read_text(encoding="utf-8"), source=shown)  # duplicate keys, alias bombs: SpecError
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{shown}: not valid YAML{at}: {getattr(exc, 'problem', exc)}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{shown}: cannot read the suite file: {exc}.") from None
    return Suite.from_dict(data, source=shown)


# --------------------------------------------------------------------------
# entries


def _parse_entry(index: int, entry: Any, where: str) -> SuiteExpectation:
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
        config = ExpectationConfiguration(type=etype, kwargs=kwargs, meta=dict(meta) if meta else None)
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
