"""The result of one audit run, frozen.

An audit result is evidence: once a run has finished, nothing may change it.
:class:`AuditResult` therefore holds plain, immutable data (tuples of
JSON-safe dicts), hands out copies of its tables, and serialises to the
``results.json`` contract of DESIGN.md::

    {insyn_version, schema_version, run_id, generated_at, spec, population,
     engine, checks, journey, metrics, findings}

and, for a run of ``insyn monitor``, ``monitor`` (the period, the baseline
used, the limits) and ``alerts`` (one row per alert, see
:class:`audit.monitor.Alert`).

``metrics`` is the tidy table of every measured value (one row per metric,
attributes and group); ``findings`` are the thresholds of the spec evaluated
against it (PASS, FAIL, WARN or ERROR). The exit status of ``insyn run``
follows the findings: 1 when any is FAIL or ERROR (or, for a monitoring run,
when an alert has severity fail), else 0.

Run metadata (the run id, timestamps and durations) is the only part of
``results.json`` that differs between two runs of the same spec and seed;
:func:`strip_run_metadata` removes it for comparisons.

A result carries data, not rendering. It sits in the results layer next to
:mod:`audit.report`, and the report reads results, so a result that imported
the report would close a circle. A notebook still shows a result as its
summary: :meth:`AuditResult._repr_html_` calls the one HTML summary renderer
handed in through :func:`set_html_summary`. The package facade
(``audit/__init__.py``) hands in :func:`audit.report.render_summary_html`
when ``audit`` is imported, which happens before any of its modules is used,
so every result shows its summary; with no renderer set, ``_repr_html_``
returns None and Jupyter falls back to ``repr``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from audit._columns import CASES_COLUMN, DISCOVERED_PREFIX, METRIC_COLUMNS
from audit._json import jsonable
from audit._version import __version__
from audit.exceptions import DataError
from audit.finding import Finding, Findings
from audit.metrics import rank_disparities

__all__ = [
    "AuditResult",
    "CASES_COLUMN",
    "HtmlSummary",
    "RUN_METADATA_KEYS",
    "SCHEMA_VERSION",
    "largest_disparity_rows",
    "set_html_summary",
    "strip_run_metadata",
]

SCHEMA_VERSION = "1.0"
"""Version of the results.json schema (audit/schemas/results.schema.json)."""

RUN_METADATA_KEYS = frozenset(
    {
        "run_id",
        "generated_at",
        "duration_s",
        "started_at",
        "ended_at",
        "cases_per_s",
        "run_dir",
        "runId",
        "run_uuid",
        "timings",
    }
)
"""Keys whose values legitimately differ between two runs of the same spec and seed."""

HtmlSummary = Callable[["AuditResult"], str]
"""A function that renders a result's summary as an HTML fragment."""

_html_summary: HtmlSummary | None = None


def set_html_summary(render: HtmlSummary | None) -> HtmlSummary | None:
    """Hand in the renderer that :meth:`AuditResult._repr_html_` uses.

    The result module does not import the report (the report reads results,
    not the other way round); the package facade calls this once with
    :func:`audit.report.render_summary_html`.

    Parameters
    ----------
    render : callable or None
        ``render(result) -> str``, an HTML fragment; None removes it.

    Returns
    -------
    callable or None
        The renderer set before, so that a caller can restore it.
    """
    global _html_summary
    previous, _html_summary = _html_summary, render
    return previous


def _number(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def largest_disparity_rows(rows: list[dict[str, Any]], k: int = 5, *, alpha: float = 0.05) -> list[dict[str, Any]]:
    """The ``k`` group comparisons furthest from parity, with their significance.

    The one ranking of :func:`audit.metrics.rank_disparities` (distance from
    parity on the log-ratio scale, or the difference for signed quantities;
    adjusted p-value and ``significant`` beside each). The report, the
    command line and the notebook view all show this selection.
    """
    # discovered groups have their own section (audit.metrics.discover)
    rows = [r for r in rows if not str(r.get("metric", "")).startswith(DISCOVERED_PREFIX)]
    return rank_disparities(rows, k, alpha=alpha)


def strip_run_metadata(data: Any) -> Any:
    """Return a copy of a results dict without run metadata (see ``RUN_METADATA_KEYS``)."""
    if isinstance(data, dict):
        return {k: strip_run_metadata(v) for k, v in data.items() if k not in RUN_METADATA_KEYS}
    if isinstance(data, list):
        return [strip_run_metadata(v) for v in data]
    return data


def _freeze(obj: Any) -> Any:
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj: Any) -> Any:
    if isinstance(obj, Finding):
        return obj.to_dict()
    if isinstance(obj, MappingProxyType):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [_thaw(v) for v in obj]
    return obj


@dataclass(frozen=True)
class AuditResult:
    """The frozen result of one audit run.

    Attributes
    ----------
    run_id : str
        Name of the run folder.
    generated_at : str
        ISO 8601 UTC time at which the run finished.
    spec : Mapping
        The audit spec as run.
    population, engine, journey : Mapping
        Descriptions of the population, the engine and the data journey.
    checks : tuple of Mapping
        One report per checked step.
    metrics : tuple of Mapping
        The tidy metrics table (see :meth:`metrics_frame`).
    findings : Findings
        The spec's thresholds evaluated against the metrics: a tuple of plain
        :class:`~audit.finding.Finding` records that prints as a table
        (``findings.to_frame()`` gives a DataFrame).
    discovered : tuple of Mapping or None
        Subgroup discovery's groups (``discover:`` in the spec), None when
        discovery did not run.
    attribution : tuple of Mapping or None
        The attribution of a disparity to the stages of the data journey
        and the rules (``attribution:`` in the spec), one row per stage;
        None when it did not run.
    funnel : tuple of Mapping or None
        The stage funnel (:mod:`audit.metrics._funnel`): each group's share
        entering and leaving every step of the journey; None without one.
    run_dir : Path or None
        The run folder, when the run was written.
    alerts : tuple of Mapping
        A monitoring run's alerts (see :class:`audit.monitor.Alert`); empty
        for an audit run.
    monitor : Mapping or None
        A monitoring run's period, baseline and limits; None for an audit run.
    values : tuple of Mapping
        The public values by group (see :func:`audit.public_values.public_values`).
    execution : Mapping or None
        How a chunked run was executed (``chunks``, ``chunk_size``,
        ``executor``, ``workers``, ``scheduler``, ``parts``; see
        :mod:`audit.chunked`); None for a run in memory.
    """

    run_id: str
    generated_at: str
    spec: Any
    population: Any
    engine: Any
    checks: Any
    journey: Any
    metrics: Any
    findings: Any
    extras: Any = field(default_factory=lambda: MappingProxyType({}))
    discovered: Any = None
    attribution: Any = None
    funnel: Any = None
    alerts: Any = ()
    monitor: Any = None
    values: Any = ()
    execution: Any = None
    run_dir: Path | None = None
    insyn_version: str = __version__
    schema_version: str = SCHEMA_VERSION
    _decisions: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, *, decisions: pd.DataFrame | None = None, run_dir: Path | None = None, **parts: Any) -> AuditResult:
        """Build a result from plain (mutable) parts, converting them to frozen JSON-safe data."""
        frozen = {k: _freeze(jsonable(v)) for k, v in parts.items() if k != "findings"}
        findings = Findings(Finding.from_dict(f) for f in jsonable(parts.get("findings") or []))
        return cls(**frozen, findings=findings, run_dir=run_dir, _decisions=decisions)

    # -------------------------------------------------------------- access
    @property
    def exit_code(self) -> int:
        """1 when a finding is FAIL or ERROR or a monitoring alert has severity fail, else 0 (the CLI's exit status)."""
        failed = any(f["status"] in ("FAIL", "ERROR") for f in self.findings)
        return 1 if failed or any(a.get("severity") == "fail" for a in self.alerts) else 0

    def with_monitor(self, *, alerts: list[dict[str, Any]], monitor: dict[str, Any]) -> AuditResult:
        """A copy of this result that carries a monitoring run's alerts and baseline.

        Parameters
        ----------
        alerts : list of dict
            The alerts (``Alert.to_dict()``), shown at the top of the report.
        monitor : dict
            The period, the baseline used (periods, missing and excluded
            ones), the limits and the notes.

        Returns
        -------
        AuditResult
        """
        return replace(self, alerts=_freeze(jsonable(list(alerts))), monitor=_freeze(jsonable(dict(monitor))))

    @property
    def decisions(self) -> pd.DataFrame | None:
        """A copy of the per-case decisions (as in ``decisions.parquet``)."""
        return None if self._decisions is None else self._decisions.copy()

    def metrics_frame(self) -> pd.DataFrame:
        """Return the metrics table as a new DataFrame (NaN where JSON has null)."""
        rows = [_thaw(r) for r in self.metrics]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=list(METRIC_COLUMNS))
        for col in ("value", "ci_low", "ci_high", "reference_value", "difference", "ratio", "p_value", "p_adjusted"):
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        return frame

    def findings_frame(self) -> pd.DataFrame:
        """Return the findings as a new DataFrame."""
        return self.findings.to_frame()

    def largest_disparities(self, k: int = 5) -> pd.DataFrame:
        """The ``k`` group comparisons with the strongest evidence of a disparity.

        See :func:`largest_disparity_rows`; returned as a DataFrame.
        """
        alpha = _number(((self.spec or {}).get("statistics") or {}).get("alpha")) or 0.05
        rows = largest_disparity_rows([_thaw(r) for r in self.metrics], k, alpha=alpha)
        if not rows:
            return self.metrics_frame().head(0)
        frame = pd.DataFrame(rows)
        for col in ("value", "ci_low", "ci_high", "reference_value", "difference", "ratio", "p_value", "p_adjusted"):
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        return frame

    # -------------------------------------------------------------- serialise
    def to_dict(self) -> dict[str, Any]:
        """Return the ``results.json`` content as plain Python data (a fresh copy the caller may change)."""
        return self._plain_dict()

    @cached_property
    def plain(self) -> dict[str, Any]:
        """The ``results.json`` content as plain Python data, built once and shared: read it, never change it.

        The report, the dossier and the run folder's writers each read the
        whole result; :meth:`to_dict` builds a fresh copy per call, which cost
        more than rendering a page.
        """
        return self._plain_dict()

    def _plain_dict(self) -> dict[str, Any]:
        return {
            "insyn_version": self.insyn_version,
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            # a monitoring run: its alerts first, for a reader of results.json
            **({"alerts": _thaw(self.alerts), "monitor": _thaw(self.monitor)} if self.monitor is not None else {}),
            "spec": _thaw(self.spec),
            "population": _thaw(self.population),
            "engine": _thaw(self.engine),
            "checks": _thaw(self.checks),
            "journey": _thaw(self.journey),
            "metrics": _thaw(self.metrics),
            "findings": _thaw(self.findings),
            **({"extras": _thaw(self.extras)} if self.extras else {}),
            **({"discovered": _thaw(self.discovered)} if self.discovered is not None else {}),
            **({"attribution": _thaw(self.attribution)} if self.attribution is not None else {}),
            **({"funnel": _thaw(self.funnel)} if self.funnel is not None else {}),
            **({"values": _thaw(self.values)} if self.values else {}),
            **({"execution": _thaw(self.execution)} if self.execution is not None else {}),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return ``results.json`` as text (NaN-free, UTF-8 safe)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, run_dir: Path | None = None) -> AuditResult:
        """Rebuild a result from the dict that :meth:`to_dict` returned."""
        parts = {k: data.get(k) for k in ("run_id", "generated_at", "spec", "population", "engine",
                                          "checks", "journey", "metrics", "findings")}
        res = cls.build(run_dir=run_dir, extras=data.get("extras") or {}, discovered=data.get("discovered"),
                        attribution=data.get("attribution"), funnel=data.get("funnel"),
                        values=data.get("values") or [], execution=data.get("execution"), **parts)
        if data.get("monitor") is not None:
            res = res.with_monitor(alerts=data.get("alerts") or [], monitor=data["monitor"])
        object.__setattr__(res, "insyn_version", data.get("insyn_version", __version__))
        object.__setattr__(res, "schema_version", data.get("schema_version", SCHEMA_VERSION))
        return res

    @classmethod
    def load(cls, run_dir: str | Path, *, decisions: bool = True) -> AuditResult:
        """Read a result back from a run folder (``results.json``; decisions if present).

        The decisions are ``decisions.parquet``, or for a chunked run folder
        its parts ``decisions/part-*.parquet`` in chunk order. With
        ``decisions=False`` they are not read (a summary of a run of
        millions of cases needs only ``results.json``).
        """
        folder = Path(run_dir)
        path = folder / "results.json"
        if not path.is_file():
            raise DataError(f"{folder}: no results.json. Expected a run folder written by insyn run.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: is not valid JSON ({exc}). Expected a file written by insyn run.") from None
        _check_shape(data, path)
        res = cls.from_dict(data, run_dir=folder)
        if not decisions:
            return res
        dec = folder / "decisions.parquet"
        parts = sorted((folder / "decisions").glob("part-*.parquet")) if (folder / "decisions").is_dir() else []
        if dec.is_file():
            object.__setattr__(res, "_decisions", _read_parquet(dec))
        elif parts:  # a chunked run: the decisions in parts, in chunk order (audit.chunked)
            object.__setattr__(res, "_decisions", pd.concat([_read_parquet(p) for p in parts], ignore_index=True))
        return res

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f["status"]] = counts.get(f["status"], 0) + 1
        shown = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
        return (
            f"AuditResult(run_id={self.run_id!r}, metrics={len(self.metrics)}, findings: {shown}, "
            f"run_dir={str(self.run_dir) if self.run_dir else None!r})"
        )

    def _repr_html_(self) -> str | None:
        """The summary of the run for a notebook: verdict, key figures, findings, largest disparities.

        Rendered by the renderer handed in with :func:`set_html_summary`;
        None (Jupyter then shows ``repr``) when there is none.
        """
        return None if _html_summary is None else _html_summary(self)


_LISTS = ("checks", "metrics", "findings", "funnel", "values", "alerts")
_OBJECTS = ("spec", "population", "engine", "journey", "extras", "monitor", "execution")


def _check_shape(data: Any, path: Path) -> None:
    """Refuse a ``results.json`` whose top-level keys have the wrong kind (a hand-edited or foreign file)."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object. Got {type(data).__name__}.")
    for key in _LISTS:
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise DataError(f"{path}: {key!r} must be a list of objects. Got {_kind(value)}. "
                            "Expected a file written by insyn run.")
    for key in _OBJECTS:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise DataError(f"{path}: {key!r} must be an object. Got {_kind(value)}. "
                            "Expected a file written by insyn run.")


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: ``str 'oops'``, ``list with a str``."""
    if isinstance(value, list):
        odd = next((v for v in value if not isinstance(v, dict)), None)
        return f"a list holding {type(odd).__name__} {odd!r}"[:80] if odd is not None else "a list"
    return f"{type(value).__name__} {value!r}"[:80]


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file of a run folder; a damaged one is a :class:`DataError` naming it."""
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read as Parquet ({exc}). Expected a file written by insyn run.") from None
