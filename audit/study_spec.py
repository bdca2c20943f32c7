"""The study spec: a bias study as a grid or sample of audit scenarios.

An academic bias study asks questions that one audit cannot answer: how large
must a bias be before an audit of *n* cases detects it, does a robot's
disparity hold across seeds, population sizes and guideline variants, what is
the false-alarm rate of the whole pipeline. A *study* answers them by running
one base audit spec many times, changing some of its keys (the *factors*)
from run to run, and repeating every scenario (a *point*) with independent
seeds (the *replicates*).

The study spec is strict like the audit spec (:mod:`audit.spec`): its YAML is
the serialised form of :class:`StudySpec`; an unknown key, a value of the
wrong type, a factor that is not a key path of the audit spec or a path that
does not exist is refused with the file, the key path, what was expected and
what was given::

    name: power                      # the study folder's default name
    seed: 7                          # every run's seed derives from it
    audit: study-base-audit.yaml     # a path to an audit spec, or an inline mapping
    factors:                         # key path of the audit spec -> levels
      population.n: [2000, 5000, 20000]
      population.bias.registry_failure_recent_arrivals: {min: 0, max: 0.1, num: 5}
    design: grid                     # grid | random | latin_hypercube
    points: 20                       # K points (random and latin_hypercube only)
    replicates: 50                   # runs per point
    executor: processes              # processes | inprocess | dask
    workers: 2
    scheduler: tcp://10.0.0.5:8786   # dask only

This module holds the models and their messages only (settings layer);
expanding the design and running it is :mod:`audit.study`.
"""

from __future__ import annotations

import math
import re
import typing
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from audit._paths import resolve_path
from audit.exceptions import SpecError
from audit.spec import AuditSpec, format_validation_error, text_byte

__all__ = ["DESIGNS", "FactorRange", "PATH_KEYS", "StudySpec", "factor_key_problem", "load_study_spec", "read_yaml"]

DESIGNS: tuple[str, ...] = ("grid", "random", "latin_hypercube")
"""The designs a study can use, in the order messages list them."""

PATH_KEYS: frozenset[str] = frozenset({"path", "synthetic", "file", "aggregated", "personas"})
"""Last segments of audit-spec key paths whose string values name files (checked to exist)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactorRange(_Model):
    """A numeric range of factor levels.

    In a grid, ``num`` evenly spaced levels from ``min`` to ``max`` (both
    included; spaced on a log scale with ``log: true``); in a random or
    Latin-hypercube design, values drawn from the range (rounded to integers
    with ``integer: true``).
    """

    min: float
    max: float
    num: int | None = Field(default=None, ge=2)
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _check(self) -> FactorRange:
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.max <= self.min:
            raise ValueError(f"@max must be a number greater than min ({self.min:g}). Got {self.max!r}.")
        if self.log and self.min <= 0:
            raise ValueError(f"@min must be > 0 for a log range. Got {self.min!r}.")
        return self

    def grid(self) -> list[float | int]:
        """The ``num`` levels of this range for a grid design."""
        assert self.num is not None
        lo, hi = (math.log(self.min), math.log(self.max)) if self.log else (self.min, self.max)
        values = [lo + (hi - lo) * i / (self.num - 1) for i in range(self.num)]
        return [self.at_raw(math.exp(v) if self.log else v) for v in values]

    def at(self, u: float) -> float | int:
        """The value at the quantile ``u`` in [0, 1) of this range."""
        if self.log:
            v = math.exp(math.log(self.min) + u * (math.log(self.max) - math.log(self.min)))
        else:
            v = self.min + u * (self.max - self.min)
        return self.at_raw(v)

    def at_raw(self, v: float) -> float | int:
        """``v`` as the level's type (an int when ``integer``, rounded to 12 significant digits otherwise)."""
        return int(round(v)) if self.integer else float(f"{v:.12g}")


class StudySpec(_Model):
    """One bias study: a base audit, the factors that vary, the design and the replicates.

    Build one from YAML with :meth:`from_yaml` (or :func:`load_study_spec`)
    or from a dict with :meth:`from_dict`; every problem is a
    :class:`~audit.exceptions.SpecError` naming the file and the key path.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str | None = None
    seed: int = Field(default=0, ge=0)
    audit: str | dict[str, Any]
    factors: dict[str, list[Any] | FactorRange] = Field(default_factory=dict)
    design: Literal["grid", "random", "latin_hypercube"] = "grid"
    points: int | None = Field(default=None, ge=1)
    replicates: int = Field(default=1, ge=1)
    executor: Literal["processes", "inprocess", "dask"] = "processes"
    workers: int | None = Field(default=None, ge=1)
    scheduler: str | None = None

    _base_dir: Path | None = PrivateAttr(default=None)
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for key, levels in self.factors.items():
            problem = factor_key_problem(key)
            if problem:
                raise ValueError(f"@factors.{key} {problem}")
            if isinstance(levels, list) and not levels:
                raise ValueError(f"@factors.{key} must list at least one level. Got [].")
            if isinstance(levels, FactorRange) and self.design == "grid" and levels.num is None:
                raise ValueError(f"@factors.{key}.num (the number of levels) is required for a range in a grid "
                                 "design.")
        if self.design == "grid" and self.points is not None:
            raise ValueError("@points belongs to a random or latin_hypercube design; a grid has one point per "
                             "combination of levels.")
        if self.design != "grid" and self.points is None:
            raise ValueError(f"@points (the number K of points to sample) is required for design {self.design}.")
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(f"@scheduler needs executor: dask. Got executor {self.executor!r}.")
        return self

    @property
    def base_dir(self) -> Path:
        """The folder that relative paths in this study resolve against."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    @property
    def source(self) -> str:
        """The file this study was read from (``<study>`` when built from a dict)."""
        return self._source or "<study>"

    @classmethod
    def from_dict(cls, data: Any, *, base_dir: str | Path | None = None, source: str | None = None) -> Self:
        """Build a study from a plain dict (the parsed YAML).

        Raises
        ------
        SpecError
            When a key is unknown, missing or has a value of the wrong kind,
            or the audit file does not exist.
        """
        shown = source or "<study>"
        if not isinstance(data, dict):
            raise SpecError(f"{shown}: the study must be a mapping of keys to values. Got {type(data).__name__}.")
        try:
            study = cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(_study_message(format_validation_error(exc, shown, data), shown)) from None
        study._base_dir = Path(base_dir).resolve() if base_dir is not None else None
        study._source = source
        if isinstance(study.audit, str) and not study.audit_path().is_file():
            raise SpecError(f"{shown}: audit must name an audit spec file (YAML) or hold one inline. "
                            f"Got {study.audit!r}, which does not exist.")
        return study

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Read a study spec from a YAML file (``yaml.safe_load``); relative paths resolve against its folder."""
        return cls.from_dict(read_yaml(path, what="study spec"), base_dir=Path(path).parent, source=str(path))

    def audit_path(self) -> Path:
        """The audit spec file this study names (only when ``audit`` is a path)."""
        assert isinstance(self.audit, str)
        return resolve_path(self.audit, self.base_dir)

    def base_audit(self) -> tuple[dict[str, Any], Path, str]:
        """The base audit as a raw dict, the folder its paths resolve against, and its name in messages."""
        if isinstance(self.audit, dict):
            return dict(self.audit), self.base_dir, f"{self.source}: audit"
        path = self.audit_path()
        data = read_yaml(path, what="audit spec")
        if not isinstance(data, dict):
            raise SpecError(f"{path}: the spec must be a mapping of keys to values. Got {type(data).__name__}.")
        return data, path.parent, str(path)

    def to_dict(self) -> dict[str, Any]:
        """The study as a plain dict that :meth:`from_dict` reads back."""
        return self.model_dump(mode="json", exclude_unset=True)


def _study_message(text: str, source: str) -> str:
    """Name the study's own keys (not the audit spec's) in the hints of unknown keys."""
    lines = []
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(source)}: (\S+) is not a known key\.", line)
        if m:
            path = m.group(1)
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            if parent.startswith("factors."):
                keys, where = sorted(FactorRange.model_fields), f" of a range ({parent})"
            else:
                keys, where = sorted(StudySpec.model_fields), " of a study"
            line = f"{source}: {path} is not a known key. Known keys{where}: {', '.join(keys)}."
        lines.append(line)
    return "\n".join(lines)


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Read a YAML file, with every problem a :class:`SpecError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{path}: no such {what} file. Expected a YAML {what}.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: the {what} must be UTF-8 text. Got a byte 0x{text_byte(exc)} at {exc.start}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.") from None
    if data is None:
        raise SpecError(f"{path}: the {what} is empty.")
    return data


def load_study_spec(path: str | Path) -> StudySpec:
    """Read a study spec from YAML (see :class:`StudySpec`)."""
    return StudySpec.from_yaml(path)


def factor_key_problem(key: str) -> str | None:
    """Why ``key`` is not a key path of the audit spec, or None when it is one.

    A key path names nested keys with dots (``statistics.correction``); below
    a free-form mapping of the audit spec (``population.bias``,
    ``engine.options``) any key is accepted here, and the run checks it.
    """
    parts = key.split(".")
    if any(not p for p in parts):
        return f"must be a key path of the audit spec with dots between keys (e.g. population.n). Got {key!r}."
    model: Any = AuditSpec
    for i, part in enumerate(parts):
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return None  # a free-form mapping: any key below it
        if part not in fields:
            where = ".".join(parts[:i]) or "the audit spec"
            return f"is not a key path of the audit spec: {part!r} is not a key of {where} " \
                   f"(known: {', '.join(sorted(fields))})."
        ann = fields[part].annotation
        inner = _inner_model(ann)
        if inner is None:
            if i < len(parts) - 1 and not _is_mapping(ann):
                return f"is not a key path of the audit spec: {'.'.join(parts[:i + 1])} takes a value, not keys."
            return None
        model = inner
    return None


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        if typing.get_origin(arg) is list:
            continue
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def _is_mapping(ann: Any) -> bool:
    if typing.get_origin(ann) is dict:
        return True
    return any(_is_mapping(a) for a in typing.get_args(ann))
