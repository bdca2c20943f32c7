"""The audit spec: what to audit, with what data, and how to judge it.

An audit of an automated decision system is only worth something if someone
else can repeat it. The *audit spec* is the complete, declarative description
of one audit: which population of cases to use (synthetic, a file, a database
query or a published aggregated table), which sensitive features define the
groups to compare, which engine makes the decisions and what it may see, what
counts as the correct decision (the law's baseline or a recorded truth), which
outcomes are favourable, which data-quality suites guard each step, which
statistics to use and which thresholds turn a disparity into a finding.

The spec is a tree of pydantic models; YAML is its serialised form. Every key
is checked: a key that is not known, a value of the wrong type or a reference
to a column that is not declared is refused with a message that names the
file, the key path and what was expected, e.g.::

    examples/demo.yaml: engine.kind must be one of python, sklearn, rules,
    http, subprocess, recorded, reference. Got 'rpa'.

Relative paths in a spec resolve against the folder of the spec file. A path
under ``datasets/``, ``checks/`` or ``examples/`` that does not exist there
falls back to the defaults that ship with Insyn, so that an installed
``insyn`` works outside a clone of the project.

``AuditSpec`` is the root model: configuration only, validated and frozen.
This module holds nothing but the spec models, their validation and their
messages. Following scikit-learn, running lives elsewhere: the public
:class:`audit.Audit` (in :mod:`audit.audit`, the uses layer) is an
``AuditSpec`` with a ``run`` method that returns a frozen
:class:`audit.result.AuditResult`. Path resolution lives in
:mod:`audit._paths`.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from audit._paths import missing_spec_message, resolve_path
from audit._yaml import MAX_YAML_BYTES, load_yaml
from audit.exceptions import SpecError

__all__ = [
    "AggregatedCells",
    "AttributionSpec",
    "AuditSpec",
    "CheckStep",
    "ChecksSpec",
    "CounterfactualSpec",
    "DeriveSpec",
    "DiscoverSpec",
    "ENGINE_KEYS",
    "ENGINE_KINDS",
    "ENGINE_REQUIRED",
    "EngineSpec",
    "EvidenceSpec",
    "ExecutionSpec",
    "LineageSpec",
    "MAX_CASES",
    "MonitorSpec",
    "OutcomesSpec",
    "PopulationSpec",
    "QuantileBins",
    "ReportSpec",
    "ReviewSpec",
    "SelectionSpec",
    "StatisticsSpec",
    "Threshold",
    "TruthSpec",
    "load_spec",
]

MAX_CASES = 10_000_000
"""Most cases a synthetic population may ask for (``population.n``): checked before any work starts, so that a
typo such as ``n: 1000000000000`` is a spec error, not an exhausted machine."""

ENGINE_KINDS: tuple[str, ...] = (
    "python",
    "sklearn",
    "rules",
    "http",
    "subprocess",
    "recorded",
    "reference",
)
"""The engine adapters, in the order error messages list them."""

_COMMON_ENGINE_KEYS = frozenset(
    {"kind", "name", "sees_sensitive", "features", "error_budget", "batch_size", "workers", "batch_timeout_s"}
)
_ENGINE_KEYS: dict[str, frozenset[str]] = {
    "python": frozenset({"target", "options"}),
    "sklearn": frozenset({"path", "threshold", "labels", "method", "score"}),
    "rules": frozenset({"path", "options"}),
    "http": frozenset(
        {"url", "timeout_s", "retries", "retry_max_s", "concurrency", "protocol", "mapping", "headers", "decision"}
    ),
    "subprocess": frozenset({"command", "format", "timeout_s"}),
    "recorded": frozenset({"outcome", "amount", "reasons", "score", "path"}),
    "reference": frozenset({"options"}),
}
_ENGINE_REQUIRED: dict[str, tuple[str, ...]] = {
    "python": ("target",),
    "sklearn": ("path",),
    "rules": ("path",),
    "http": ("url",),
    "subprocess": ("command",),
    "recorded": ("outcome",),
    "reference": (),
}

ENGINE_KEYS: dict[str, frozenset[str]] = {k: _COMMON_ENGINE_KEYS | v for k, v in _ENGINE_KEYS.items()}
"""The keys an ``engine:`` (or ``compare:``) section may hold, per kind."""

ENGINE_REQUIRED: dict[str, tuple[str, ...]] = dict(_ENGINE_REQUIRED)
"""The keys an engine section must hold, per kind."""


class _Model(BaseModel):
    """Base of every spec model: unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------
# population


class QuantileBins(_Model):
    """Bin a numeric column at its quantiles (``pandas.qcut``)."""

    column: str
    q: list[float] = Field(min_length=2)
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> QuantileBins:
        if any(b < 0 or b > 1 for b in self.q) or self.q != sorted(self.q):
            raise ValueError(f"@q must be increasing quantiles between 0 and 1. Got {self.q}.")
        if self.labels is not None and len(self.labels) != len(self.q) - 1:
            raise ValueError(
                f"@labels must have one label per bin ({len(self.q) - 1}). Got {len(self.labels)}."
            )
        return self


class FixedBins(_Model):
    """Bin a numeric column at fixed edges (``pandas.cut``, right-closed)."""

    column: str
    edges: list[float] = Field(min_length=2)
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> FixedBins:
        if self.edges != sorted(self.edges):
            raise ValueError(f"@edges must be increasing. Got {self.edges}.")
        if self.labels is not None and len(self.labels) != len(self.edges) - 1:
            raise ValueError(
                f"@labels must have one label per bin ({len(self.edges) - 1}). Got {len(self.labels)}."
            )
        return self


class DeriveSpec(_Model):
    """How to derive one new column; exactly one method is given."""

    quantile_bins: QuantileBins | None = None
    bins: FixedBins | None = None
    count_items: str | None = Field(
        default=None, description="count the ';'-separated items of a column, e.g. child_ages"
    )
    equals: dict[str, Any] | None = Field(
        default=None, description="{column: value}: True where the column equals the value"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DeriveSpec:
        given = [k for k in ("quantile_bins", "bins", "count_items", "equals") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "must name exactly one method of quantile_bins, bins, count_items, equals. "
                f"Got {', '.join(given) if given else 'none'}."
            )
        return self


class AggregatedCells(_Model):
    """Columns of an aggregated table that hold the confusion cells."""

    tp: str
    fp: str
    fn: str
    tn: str


class PopulationSpec(_Model):
    """Where the cases come from: exactly one of synthetic, file, sql, aggregated."""

    synthetic: str | None = None
    n: int | None = Field(default=None, ge=1, le=MAX_CASES)
    bias: dict[str, Any] | None = None
    file: str | None = None
    sheet: str | int | None = None
    sql: str | None = None
    url: str | None = None
    aggregated: str | None = None
    where: dict[str, Any] | None = None
    attribute: str | None = None
    group: str | None = None
    cells: AggregatedCells | None = None
    units: Literal["count", "percent"] = "count"
    group_size: str | None = None
    suppressed: list[str] | None = None
    case_id: str = "case_id"
    rename: dict[str, str] = Field(default_factory=dict)
    recode: dict[str, dict[str, Any]] = Field(default_factory=dict)
    derive: dict[str, DeriveSpec] = Field(default_factory=dict)
    provenance: dict[str, str] = Field(default_factory=dict)

    @property
    def source_kind(self) -> str:
        """The kind of source: ``synthetic``, ``file``, ``sql`` or ``aggregated``."""
        for k in ("synthetic", "file", "sql", "aggregated"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated population has a source")  # pragma: no cover

    @model_validator(mode="after")
    def _one_source(self) -> PopulationSpec:
        given = [k for k in ("synthetic", "file", "sql", "aggregated") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "must name exactly one source of synthetic, file, sql, aggregated. "
                f"Got {', '.join(given) if given else 'none'}."
            )
        kind = given[0]
        own = {
            "synthetic": {"n", "bias"},
            "file": {"sheet"},
            "sql": {"url"},
            "aggregated": {"where", "attribute", "group", "cells", "units", "group_size", "sheet", "suppressed"},
        }
        mine = own[kind]
        for k, keys in own.items():
            if k == kind:
                continue
            stray = sorted(key for key in keys - mine if key in self.model_fields_set)
            if stray:
                raise ValueError(f"@{stray[0]} belongs to a {k} source, but this population is {kind}.")
        if kind == "synthetic" and self.n is None:
            raise ValueError("@n (the number of cases to generate) is required for a synthetic source.")
        if kind == "sql" and self.url is None:
            raise ValueError("@url (e.g. duckdb:///path.duckdb) is required for a sql source.")
        if kind == "aggregated":
            missing = [k for k in ("attribute", "group", "cells") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"@{missing[0]} is required for an aggregated source.")
            if self.units == "percent" and self.group_size is None:
                raise ValueError("@group_size is required when units is percent.")
        return self


# --------------------------------------------------------------------------
# engine


class EngineSpec(_Model):
    """The engine under audit (or, under ``compare:``, the one it is compared with).

    Keys depend on ``kind``; a key that belongs to another kind is an error.
    """

    kind: Literal["python", "sklearn", "rules", "http", "subprocess", "recorded", "reference"]
    name: str | None = None
    sees_sensitive: bool = False
    features: list[str] | None = None
    error_budget: float = Field(default=0.01, ge=0.0, le=1.0)
    batch_size: int | None = Field(default=None, ge=1)
    workers: int = Field(default=1, ge=1)
    batch_timeout_s: float | None = Field(default=None, gt=0)
    # python
    target: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # sklearn
    path: str | None = None
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    labels: dict[int | str, str] | None = None
    method: Literal["predict", "predict_proba"] | None = None
    # http
    url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=4, ge=1)
    protocol: Literal["insyn", "dmn"] = "insyn"
    mapping: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    decision: str | None = None
    # subprocess
    command: list[str] | None = None
    format: Literal["csv", "jsonl"] = "jsonl"
    # recorded
    outcome: str | None = None
    amount: str | None = None
    reasons: str | None = None
    score: str | None = None

    @field_validator("target")
    @classmethod
    def _target_form(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", v):
            raise ValueError(f"must have the form 'package.module:attr'. Got {v!r}.")
        return v

    @model_validator(mode="after")
    def _keys_for_kind(self) -> EngineSpec:
        allowed = _COMMON_ENGINE_KEYS | _ENGINE_KEYS[self.kind]
        stray = sorted(k for k in self.model_fields_set if k not in allowed)
        if stray:
            raise ValueError(
                f"@{stray[0]} is not a key of engine kind {self.kind!r}. "
                f"Keys for {self.kind!r}: {', '.join(sorted(allowed))}."
            )
        for k in _ENGINE_REQUIRED[self.kind]:
            if getattr(self, k) is None:
                raise ValueError(f"@{k} is required when kind is {self.kind!r}.")
        return self


# --------------------------------------------------------------------------
# truth, outcomes, review, compare


class TruthSpec(_Model):
    """What counts as the correct decision."""

    reference: bool = False
    column: str | None = None
    amount: str | None = None
    positive: str | None = None
    basis: Literal["recorded", "true_circumstances"] = "recorded"

    @model_validator(mode="after")
    def _one(self) -> TruthSpec:
        if self.reference and self.column is not None:
            raise ValueError("give either reference: true or column, not both.")
        if self.basis == "true_circumstances" and not self.reference:
            raise ValueError("@basis true_circumstances computes the law's baseline; it needs reference: true.")
        return self


class OutcomesSpec(_Model):
    """Outcome labels and what they mean."""

    labels: list[str] = Field(default_factory=lambda: ["grant", "partial", "deny", "refer"])
    favourable: list[str] = Field(default_factory=lambda: ["grant", "partial"])
    review: list[str] = Field(default_factory=lambda: ["refer"])
    positive: list[str] | None = None

    @model_validator(mode="after")
    def _subsets(self) -> OutcomesSpec:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"@labels must be unique. Got {self.labels}.")
        if "error" in self.labels:
            raise ValueError("@labels: 'error' is reserved for cases the engine could not decide; use another label.")
        for key in ("favourable", "review", "positive"):
            values = getattr(self, key) or []
            unknown = [v for v in values if v not in self.labels]
            if unknown:
                raise ValueError(
                    f"@{key} must name outcome labels ({', '.join(self.labels)}). Got {unknown[0]!r}."
                )
        return self


class ReviewModel(_Model):
    """A caseworker model for synthetic studies."""

    kind: Literal["python"] = "python"
    target: str
    options: dict[str, Any] = Field(default_factory=dict)


class ReviewSpec(_Model):
    """How referred cases are resolved by a human in the loop."""

    recorded: str | None = None
    amount: str | None = None
    model: ReviewModel | None = None

    @model_validator(mode="after")
    def _one(self) -> ReviewSpec:
        if (self.recorded is None) == (self.model is None):
            raise ValueError("must name exactly one of recorded (a column) or model.")
        return self


class CounterfactualSpec(_Model):
    """Counterfactual twins and paired personas."""

    attributes: list[str] = Field(min_length=1)
    personas: str | None = None
    examples: int = Field(default=10, ge=0)


class SelectionSpec(_Model):
    """A selection audit: cases picked by a model next to a random control sample."""

    column: str
    random: str = "random"
    selected: str | None = None
    population_size: int = Field(ge=1)


# --------------------------------------------------------------------------
# checks, statistics, thresholds, report, monitor, lineage


class CheckStep(_Model):
    """Suites to run on one step's input and what to do when they fail."""

    suites: list[str] = Field(min_length=1)
    policy: Literal["fail", "warn", "quarantine"] = "warn"


class ChecksSpec(_Model):
    """Data-quality suites per step of a run."""

    intake: CheckStep | None = None
    engine_input: CheckStep | None = None
    decisions: CheckStep | None = None
    final: CheckStep | None = None


class StatisticsSpec(_Model):
    """Statistical options of the measurement step."""

    min_group_size: int = Field(default=10, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["holm", "bh", "bonferroni", "none"] = "holm"
    bootstrap: int = Field(default=2000, ge=0)


class Threshold(_Model):
    """A rule that turns a measured disparity into a finding."""

    metric: str
    attributes: list[str] | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    difference_min: float | None = None
    difference_max: float | None = None
    value_min: float | None = None
    value_max: float | None = None
    severity: Literal["fail", "warn"] = "fail"

    @model_validator(mode="after")
    def _some_bound(self) -> Threshold:
        bounds = ("ratio_min", "ratio_max", "difference_min", "difference_max", "value_min", "value_max")
        if all(getattr(self, b) is None for b in bounds):
            raise ValueError(f"a threshold needs at least one bound of {', '.join(bounds)}.")
        for kind in ("ratio", "difference", "value"):
            low, high = getattr(self, f"{kind}_min"), getattr(self, f"{kind}_max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{kind}_min ({low:g}) is above {kind}_max ({high:g}): no value can pass. "
                                 f"Expected {kind}_min <= {kind}_max.")
        if self.ratio_min is not None and self.ratio_min < 0:
            raise ValueError(f"ratio_min must be >= 0 (a ratio of rates is never negative). Got {self.ratio_min:g}.")
        return self


class DiscoverSpec(_Model):
    """Subgroup discovery: search the cases for the groups nobody named (see :mod:`audit.metrics`).

    ``outcome`` is ``deny`` (alias ``refusal``), ``refer`` (``routing``),
    ``wrongful`` (a wrongful decision), ``shortfall`` (paid too little) or the
    name of a rate metric; ``features`` the columns to search (default: the
    engine's features and the sensitive columns); ``max_conditions`` the most
    conditions in one subgroup; ``min_size`` the fewest cases in a subgroup
    (and in its rest), over all cases; ``bins`` the quantile bins of a
    numeric column; ``top`` how many subgroups to report and test.
    """

    outcome: str = "deny"
    features: list[str] | None = Field(default=None, min_length=1)
    max_conditions: int = Field(default=2, ge=1, le=4)
    min_size: int = Field(default=200, ge=1)
    bins: int = Field(default=4, ge=2, le=20)
    top: int = Field(default=5, ge=1, le=50)

    @field_validator("outcome")
    @classmethod
    def _outcome_name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(
                "must be deny, refusal, refer, routing, wrongful, shortfall or the snake_case name of a rate "
                f"metric (e.g. wrongful_denial_rate). Got {v!r}."
            )
        return v


class ReportSpec(_Model):
    """Which report formats to write and in which language."""

    formats: list[Literal["html", "md", "json"]] = Field(default_factory=lambda: ["html", "md", "json"])
    language: Literal["en", "sv"] = "en"


class MonitorSpec(_Model):
    """How a periodic monitoring job chooses its baseline and controls false alarms.

    ``arl`` is the in-control average run length of the whole monitor, in
    periods (about one false alarm in ``arl`` months over every monitored
    stream together); ``k`` the CUSUM reference value in standard errors;
    ``min_periods`` the earlier periods a stream needs before it is scored;
    ``approved`` the months (``YYYY-MM``) that raised a change or sequential
    alert and may nevertheless serve later baselines (a reviewed, accepted
    change). See :mod:`audit.monitor`.
    """

    baseline: str = "trailing"
    periods: int = Field(default=6, ge=1)
    metrics: list[str] | None = None
    arl: float = Field(default=200.0, ge=2.0, le=1e12)
    k: float = Field(default=1.0, ge=0.0, le=10.0)
    min_periods: int = Field(default=3, ge=1)
    retention_days: int | None = Field(default=184, ge=184)
    """Days a run folder's log (journey.parquet, lineage.jsonl) is kept before insyn monitor prunes it.

    At least 184, the longest six calendar months: deployers keep the logs of
    a high-risk system for at least six months (AI Act Art. 26(6)). ``null``
    keeps them for ever. See :func:`audit.evidence.prune_logs`.
    """
    approved: list[str] = Field(default_factory=list)

    @field_validator("approved")
    @classmethod
    def _months(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", p)]
        if bad:
            raise ValueError(f"must list months in the form YYYY-MM (e.g. 2026-03). Got {bad[0]!r}.")
        return list(dict.fromkeys(v))


class EvidenceSpec(_Model):
    """What an evidence bundle (``insyn bundle``) may carry besides the run folder, spec, engine and suites.

    ``include_data`` puts the input data files in the bundle; otherwise only
    their SHA-256 is recorded. Data that holds personal data stays out even
    then, hash only, unless ``include_personal_data`` is true; that also
    keeps the case-level artifacts (``decisions.parquet``,
    ``journey.parquet``) out. ``personal_data`` says whether the input data
    holds personal data; by default a decision log (a ``file`` or ``sql``
    source) does, a synthetic population or a published aggregated table
    does not.
    """

    include_data: bool = False
    personal_data: bool | None = None
    include_personal_data: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> EvidenceSpec:
        if self.include_personal_data and not self.include_data:
            raise ValueError(
                "@include_personal_data needs include_data: true as well (personal data goes into a bundle only "
                "with the other input data). Got include_data: false."
            )
        return self


class ExecutionSpec(_Model):
    """How a run is executed: in memory, or in chunks on an executor (:mod:`audit.execution`).

    ``mode: auto`` (the default, also without this section) runs a
    population of more than ``auto_above`` cases in chunks and a smaller
    one in memory (:func:`audit.execution.plan_execution`); a
    ``chunk_size`` or ``scheduler`` given here asks for chunks.
    """

    mode: Literal["auto", "memory", "chunks"] = "auto"
    auto_above: int = Field(default=500_000, ge=0)
    chunk_size: int | None = Field(default=None, ge=1)
    executor: Literal["inprocess", "processes", "dask"] = "processes"
    workers: int | None = Field(default=None, ge=1)
    scheduler: str | None = None

    @model_validator(mode="after")
    def _memory_has_no_chunks(self) -> ExecutionSpec:
        if self.mode == "memory":
            given = [k for k in ("chunk_size", "workers", "scheduler") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"@{given[0]} belongs to a run in chunks, but mode is memory. Expected mode auto "
                                 f"or chunks, or no {given[0]}.")
        return self


class AttributionSpec(_Model):
    """Attribution of a disparity to the stages of the data journey and to the rules (:mod:`audit.attribution`)."""

    metric: Literal["refer_rate", "automation_rate"] = "refer_rate"
    attribute: str
    group: str
    reference: str | None = None
    scale: Literal["ratio", "difference"] = "ratio"
    stages: list[str] = Field(default_factory=lambda: ["applicant", "registry", "caseworker"],
                              min_length=1, max_length=5)
    columns: dict[str, list[str]] = Field(default_factory=dict)
    bootstrap: int | None = Field(default=None, ge=0, le=100_000)

    @model_validator(mode="after")
    def _stages(self) -> AttributionSpec:
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"@stages must be unique. Got {self.stages}.")
        unknown = [k for k in self.columns if k not in self.stages]
        if unknown:
            raise ValueError(f"@columns names the stage {unknown[0]!r}, which is not in stages ({', '.join(self.stages)}).")
        return self


class LineageSpec(_Model):
    """Where OpenLineage events go besides ``lineage.jsonl``.

    ``transport`` chooses openlineage-python's transport: ``http`` (to
    ``url``, e.g. Marquez; the default when ``url`` is given), ``file``
    (JSON lines appended to ``path``) or ``console``. Without a transport
    here, ``OPENLINEAGE_URL`` or an ``openlineage.yml`` configure it.
    """

    url: str | None = None
    namespace: str = "insyn"
    timeout_s: float = Field(default=2.0, gt=0)
    api_key: str | None = None
    transport: Literal["http", "file", "console"] | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _transport_keys(self) -> LineageSpec:
        kind = self.transport or ("http" if self.url is not None else None)
        if kind == "http" and self.url is None:
            raise ValueError("@url is required when transport is http.")
        if kind == "file" and self.path is None:
            raise ValueError("@path (the JSON lines file) is required when transport is file.")
        if kind != "file" and self.path is not None:
            raise ValueError("@path belongs to the file transport; set transport: file.")
        if kind in ("file", "console") and self.url is not None:
            raise ValueError(f"@url belongs to the http transport, but transport is {kind}.")
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
            raise ValueError(f"must be an http:// or https:// URL of an OpenLineage endpoint. Got {v!r}.")
        return v


# --------------------------------------------------------------------------
# the root


class AuditSpec(_Model):
    """One audit's configuration: validated, frozen, and nothing else.

    Parameters are the keys of the YAML spec (see DESIGN.md); all are
    keyword-only. Build one from YAML with :meth:`from_yaml` or
    :func:`load_spec`, or from a dict with :meth:`from_dict`. The
    constructors build an instance of the class they are called on, so
    ``audit.Audit.from_yaml(path)`` (the subclass that adds ``run``) returns
    an ``Audit`` and :func:`load_spec` an ``AuditSpec``.

    Examples
    --------
    >>> from audit import Audit
    >>> audit = Audit.from_yaml("examples/demo.yaml")  # doctest: +SKIP
    >>> result = audit.run()                            # doctest: +SKIP
    >>> result.findings                                 # doctest: +SKIP
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str | None = None
    seed: int = Field(default=0, ge=0)
    population: PopulationSpec
    sensitive_features: list[str] = Field(min_length=1)
    intersections: list[list[str]] = Field(default_factory=list)
    reference_groups: dict[str, str] = Field(default_factory=dict)
    engine: EngineSpec | None = None
    truth: TruthSpec = Field(default_factory=TruthSpec)
    outcomes: OutcomesSpec = Field(default_factory=OutcomesSpec)
    review: ReviewSpec | None = None
    compare: EngineSpec | None = None
    counterfactual: CounterfactualSpec | None = None
    selection: SelectionSpec | None = None
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec)
    thresholds: list[Threshold] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    monitor: MonitorSpec | None = None
    discover: DiscoverSpec | None = None
    lineage: LineageSpec = Field(default_factory=LineageSpec)
    evidence: EvidenceSpec = Field(default_factory=EvidenceSpec)
    execution: ExecutionSpec | None = None
    attribution: AttributionSpec | None = None

    _base_dir: Path | None = PrivateAttr(default=None)
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        sens = self.sensitive_features
        if len(set(sens)) != len(sens):
            raise ValueError(f"@sensitive_features must be unique. Got {sens}.")
        for i, inter in enumerate(self.intersections):
            if len(inter) < 2:
                raise ValueError(f"@intersections[{i}] must name at least two sensitive features. Got {inter}.")
            unknown = [a for a in inter if a not in sens]
            if unknown:
                raise ValueError(
                    f"@intersections[{i}] must name sensitive features ({', '.join(sens)}). Got {unknown[0]!r}."
                )
        for attr in self.reference_groups:
            if attr not in sens:
                raise ValueError(
                    f"@reference_groups must be keyed by sensitive features ({', '.join(sens)}). Got {attr!r}."
                )
        is_aggregated = self.population.aggregated is not None
        if self.engine is None and not is_aggregated:
            raise ValueError("@engine is required unless the population is aggregated.")
        if self.engine is not None and is_aggregated:
            raise ValueError("an aggregated population holds counts, not cases, so it takes no engine.")
        if self.attribution is not None and (is_aggregated or self.attribution.attribute not in sens):
            raise ValueError("an aggregated population holds counts, not cases, so there are no decisions to replay."
                             if is_aggregated else f"@attribution.attribute must be one of sensitive_features "
                             f"({', '.join(sens)}). Got {self.attribution.attribute!r}.")
        if self.discover is not None and is_aggregated:
            raise ValueError("an aggregated population holds counts, not cases, so there are no subgroups to discover.")
        if self.engine is not None and self.engine.features is not None:
            overlap = [f for f in self.engine.features if f in sens]
            if overlap and not self.engine.sees_sensitive:
                raise ValueError(
                    f"@engine.features names the sensitive feature {overlap[0]!r}; "
                    "set engine.sees_sensitive: true to pass sensitive features to the engine."
                )
        return self

    def __eq__(self, other: object) -> bool:
        """Two audits are equal when their configuration is; where they were read from does not count."""
        if not isinstance(other, AuditSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))

    # ------------------------------------------------------------------ I/O
    @property
    def base_dir(self) -> Path:
        """The folder that relative paths in this spec resolve against."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    @property
    def source(self) -> str | None:
        """The file this spec was read from, if any."""
        return self._source

    def resolve(self, path: str | Path) -> Path:
        """Resolve a path written in this spec (see :func:`resolve_path`)."""
        return resolve_path(path, self.base_dir)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, base_dir: str | Path | None = None, source: str | None = None
    ) -> Self:
        """Build an audit from a plain dict (the parsed YAML).

        Parameters
        ----------
        data : dict
            The spec.
        base_dir : str or Path, optional
            Folder that relative paths resolve against (default: the current folder).
        source : str, optional
            Name of the file the dict came from, used in error messages.

        Raises
        ------
        SpecError
            When a key is unknown, missing or has a value of the wrong kind.
        """
        if not isinstance(data, dict):
            raise SpecError(
                f"{source or '<spec>'}: the spec must be a mapping of keys to values. Got {type(data).__name__}."
            )
        try:
            audit = cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, source or "<spec>", data)) from None
        audit._base_dir = Path(base_dir).resolve() if base_dir is not None else None
        audit._source = source
        return audit

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Read an audit spec from a YAML file with ``yaml.safe_load``.

        Parameters
        ----------
        path : str or Path
            The YAML file. Relative paths inside it resolve against its folder.

        Returns
        -------
        AuditSpec
            An instance of the class this is called on.

        Raises
        ------
        SpecError
            When the file is missing, is not valid YAML, or the spec is invalid;
            the message names the file, the key path and what was expected.
        """
        p = Path(path)
        shown = str(path)
        if not p.is_file():
            # a spec named as in a clone (examples/demo.yaml) falls back to the one shipped with Insyn
            p = resolve_path(path, None)
            if not p.is_file():
                raise SpecError(missing_spec_message(path))
            shown = str(p)
        if p.stat().st_size > MAX_YAML_BYTES:
            raise SpecError(f"{shown}: a spec of {p.stat().st_size:,} bytes. Expected at most {MAX_YAML_BYTES:,}.")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"{shown}: the spec must be UTF-8 text. Got a byte 0x{text_byte(exc)} at {exc.start}."
            ) from None
        data = load_yaml(text, source=shown)  # duplicate keys, alias bombs, depth and size are spec errors
        if data is None:
            raise SpecError(
                f"{shown}: the spec is empty. Expected a mapping with at least name, population and engine."
            )
        return cls.from_dict(data, base_dir=p.parent, source=shown)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a plain dict that :meth:`from_dict` reads back.

        Keys left at their defaults are omitted, so the dict is what the
        author wrote, in canonical form.
        """
        return self.model_dump(mode="json", exclude_unset=True)

    def to_yaml(self) -> str:
        """Return the spec as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def with_options(self, **changes: Any) -> Self:
        """Return a copy (of the same class) with top-level keys replaced (e.g. ``seed``), validated again."""
        data = self.to_dict()
        data.update(changes)
        return type(self).from_dict(data, base_dir=self._base_dir, source=self._source)


# --------------------------------------------------------------------------
# loading and error messages


def load_spec(path: str | Path) -> AuditSpec:
    """Read an audit spec from a YAML file with ``yaml.safe_load``.

    Parameters
    ----------
    path : str or Path
        The YAML file. Relative paths inside it resolve against its folder.

    Returns
    -------
    AuditSpec
        The configuration; ``audit.Audit.from_yaml`` reads the same file into
        an ``Audit`` that can run.

    Raises
    ------
    SpecError
        When the file is missing, is not valid YAML, or the spec is invalid;
        the message names the file, the key path and what was expected.
    """
    return AuditSpec.from_yaml(path)


def text_byte(exc: UnicodeDecodeError) -> str:
    """Return the offending byte of a decode error as two hex digits."""
    return f"{exc.object[exc.start]:02x}"


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _got(value: Any) -> str:
    return f"Got {value!r}." if not isinstance(value, (dict, list)) else f"Got {type(value).__name__} {value!r}."


def format_validation_error(exc: ValidationError, source: str, data: Any) -> str:
    """Turn a pydantic error into one readable line per problem.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error raised while validating ``data``.
    source : str
        The file name shown first on each line.
    data : Any
        The raw input, used to report the value given.

    Returns
    -------
    str
        ``"<file>: <key path> <what was expected>. Got <value>."``, one line
        per error (the first line is the most specific).
    """
    lines: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        typ = err.get("type", "")
        # pydantic adds the name of a union member or tagged variant; drop non-keys
        loc = tuple(p for p in loc if not (isinstance(p, str) and p in {"function-after", "str", "int", "list[str]"}))
        path = _key_path(loc)
        given = err.get("input", _value_at(data, loc))
        ctx = err.get("ctx", {}) or {}
        if typ == "extra_forbidden":
            parent = _key_path(loc[:-1])
            model_keys = _known_keys(loc[:-1], data)
            hint = f" Known keys{' of ' + parent if parent else ''}: {', '.join(model_keys)}." if model_keys else ""
            msg = f"{path} is not a known key.{hint}"
        elif typ == "missing":
            msg = f"{path} is required."
        elif typ == "literal_error":
            expected = ctx.get("expected", "")
            choices = [c.strip().strip("'\"") for c in re.split(r",| or ", str(expected)) if c.strip()]
            msg = f"{path} must be one of {', '.join(choices)}. {_got(given)}"
        elif typ in {"int_type", "int_parsing", "int_from_float"}:
            msg = f"{path} must be an integer. {_got(given)}"
        elif typ in {"float_type", "float_parsing"}:
            msg = f"{path} must be a number. {_got(given)}"
        elif typ in {"bool_type", "bool_parsing"}:
            msg = f"{path} must be true or false. {_got(given)}"
        elif typ in {"string_type"}:
            msg = f"{path} must be a string. {_got(given)}"
        elif typ in {"list_type"}:
            msg = f"{path} must be a list. {_got(given)}"
        elif typ in {"dict_type", "model_type", "model_attributes_type"}:
            msg = f"{path} must be a mapping of keys to values. {_got(given)}"
        elif typ == "greater_than_equal":
            bound = ctx.get("ge")
            kind = "an integer" if isinstance(bound, int) and not isinstance(bound, bool) else "a number"
            msg = f"{path} must be {kind} >= {bound:g}. {_got(given)}"
        elif typ == "greater_than":
            msg = f"{path} must be a number > {ctx.get('gt'):g}. {_got(given)}"
        elif typ == "less_than_equal":
            msg = f"{path} must be a number <= {ctx.get('le'):g}. {_got(given)}"
        elif typ == "less_than":
            msg = f"{path} must be a number < {ctx.get('lt'):g}. {_got(given)}"
        elif typ == "too_short":
            n_min = ctx.get("min_length")
            msg = f"{path} must list at least {n_min} item{'s' if n_min != 1 else ''}. Got {given!r}."
        elif typ == "string_pattern_mismatch":
            msg = (
                f"{path} must start with a letter or digit and hold only letters, digits, '_', '.' "
                f"and '-' (it names a folder). {_got(given)}"
            )
        elif typ == "value_error":
            text = str(err.get("msg", "")).removeprefix("Value error, ")
            if text.startswith("@"):
                key, _, rest = text[1:].partition(" ")
                sep = "" if key.startswith("[") or key.endswith(":") else " "
                full = f"{path}.{key}" if path else key
                msg = f"{full.rstrip(':')}{':' if key.endswith(':') else ''}{sep}{rest}"
            elif text.startswith("must "):
                msg = f"{path} {text}" if path else text
            else:
                msg = f"{path}: {text}" if path else text
        else:
            msg = f"{path}: {err.get('msg', 'invalid value')}. {_got(given)}"
        if msg not in seen:
            seen.add(msg)
            lines.append(f"{source}: {msg}")
    return "\n".join(lines)


def _known_keys(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Return the keys that the model at ``loc`` accepts, for a hint."""
    model: Any = AuditSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        model = _inner_model(ann)
        if model is None:
            return []
    fields = getattr(model, "model_fields", None)
    if model is EngineSpec:
        kind = _value_at(data, tuple(loc) + ("kind",))
        if kind in _ENGINE_KEYS:
            return sorted(_COMMON_ENGINE_KEYS | _ENGINE_KEYS[kind])
    return sorted(fields) if fields else []


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None
