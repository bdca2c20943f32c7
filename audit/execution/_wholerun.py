"""The whole run, assembled from its chunks: what ``results.json`` says about the journey, engine and population.

A chunked run (:mod:`audit.execution._chunked`) runs every row-level step once
per chunk, so each chunk knows only its own part of the run: its journey's
step summaries (rows in and out, rejected and errored, columns changed, the
caseworker's decisions), the engine's counts, the population's rows and the
check reports of its steps. The report, the dossier and ``checks.json`` speak
of the whole run, as an in-memory run's do. The functions here put the parts
together:

* counts add up (rows, cases changed, engine cases and errors, caseworker
  decisions and overrides, referred and resolved cases, status counts);
* times add up too (``duration_s`` of a step or of the engine is the time
  spent on it in all chunks together, which on several workers is more than
  the wall time; a step starts when its first chunk started it and ends when
  its last chunk ended it);
* what every chunk says alike (a step's name, actor, inputs; the engine's
  name and definition hash) is said once; lists (columns added or dropped)
  are the union in order of first appearance;
* check reports: the merged results of :func:`audit.checks.merge_chunk_checks`
  (one per step and expectation, each with its ``exact`` flag) are put back
  into one report per step, in the form an in-memory run's ``checks.json``
  holds (``n_rows``, ``n_failed_cases`` summed over chunks; ``success``,
  ``n_failed_expectations`` and ``n_failed_critical`` from the merged
  results, the way :class:`audit.checks.CheckReport` counts them);
* what the report counts in the decisions (reason codes given, overrides by
  group): each chunk counts its cases per combination of the values of
  :data:`REPORT_COLUMNS` and the sensitive columns
  (:func:`combination_counts`), and the counts add up
  (:func:`add_combination_counts`), so the parent holds combinations, not
  cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from audit.checks import validation_document
from audit._arrays import codes_of
from audit._columns import CASES_COLUMN

__all__ = ["REPORT_COLUMNS", "add_combination_counts", "combination_counts", "gx_validation", "measurement_step",
           "merge_check_reports", "merge_engine", "merge_fields", "merge_population", "merge_steps", "report_columns"]

REPORT_COLUMNS: tuple[str, ...] = ("status", "outcome", "reasons", "override")
"""Columns of the decisions the report counts in (reason codes, caseworker overrides), besides the sensitive ones."""

_RESULT_ONLY = ("step", "policy")
"""Keys of a merged check result that belong to its step's report, not to the result."""


def _union(lists: Sequence[Sequence[Any]]) -> list[Any]:
    """The items of several lists, each once, in order of first appearance."""
    out: list[Any] = []
    seen: set[str] = set()
    for items in lists:
        for item in items or ():
            key = repr(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def _sum(values: Sequence[Any]) -> Any:
    """The sum of numbers (None when every value is None)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    total = sum(present)
    return int(total) if all(isinstance(v, int) and not isinstance(v, bool) for v in present) else float(total)


def _merge_values(values: Sequence[Any]) -> Any:
    """One value for what the chunks said: numbers add, equal values stay, lists unite, mappings merge by key."""
    first = values[0]
    if all(isinstance(v, bool) for v in values):
        return all(values) if all(v == first for v in values) else any(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return _sum(values)
    if all(isinstance(v, Mapping) for v in values):
        keys = _union([list(v) for v in values])
        return {k: _merge_values([v[k] for v in values if k in v]) for k in keys}
    if all(isinstance(v, list) for v in values):
        return _union(values)
    if all(v == first for v in values):
        return first
    return _union([[v] for v in values])  # chunks said different things: all of them, once each


def merge_steps(per_chunk: Sequence[Sequence[Mapping[str, Any]]],
                checks: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The journey's step summaries of the whole run (``results.json`` ``journey.steps``).

    Parameters
    ----------
    per_chunk : sequence of sequences of dict
        Per chunk, its :attr:`audit.journey.Journey.steps`; every chunk ran the same steps.
    checks : sequence of dict
        The run's merged check reports (:func:`merge_check_reports`): a
        step's ``checks`` counts its merged results, not each chunk's.

    Returns
    -------
    list of dict
        One summary per step, with the keys of a chunk's; ``run_uuid`` is
        None (each chunk is its own OpenLineage run) and ``chunk_run_uuids``
        lists the chunks' run ids.
    """
    if not per_chunk:
        return []
    names = [s["name"] for s in per_chunk[0]]
    for i, steps in enumerate(per_chunk):
        if [s["name"] for s in steps] != names:
            raise ValueError(f"chunk {i} ran the steps {[s['name'] for s in steps]}, chunk 0 ran {names}. "
                             "Expected every chunk to run the same steps.")
    reports = {str(r["step"]): r for r in checks}
    out = []
    for pos, name in enumerate(names):
        parts = [steps[pos] for steps in per_chunk]
        first = parts[0]
        statuses = {p.get("status") for p in parts}
        ended = [p.get("ended_at") for p in parts]
        caseworkers = [p["caseworker"] for p in parts if p.get("caseworker") is not None]
        step: dict[str, Any] = {
            **first,
            "status": "failed" if "failed" in statuses else ("running" if "running" in statuses else first["status"]),
            "started_at": min(str(p["started_at"]) for p in parts),
            "ended_at": None if any(e is None for e in ended) else max(str(e) for e in ended),
            "duration_s": _sum([p.get("duration_s") for p in parts]),
            **{k: int(_sum([p.get(k) for p in parts]) or 0)
               for k in ("rows_in", "rows_out", "rows_rejected", "rows_errored")},
            **{k: _union([p.get(k) or [] for p in parts])
               for k in ("columns_added", "columns_changed", "columns_dropped", "columns_retyped")},
            "cases_changed": _merge_values([p.get("cases_changed") or {} for p in parts]),
            "checks": _step_checks(reports.get(name), [p.get("checks") or {} for p in parts]),
            "caseworker": _merge_values(caseworkers) if caseworkers else None,
            "notes": _merge_values([p.get("notes") or {} for p in parts]),
            "error": next((p["error"] for p in parts if p.get("error")), None),
            "run_uuid": None,
            "chunk_run_uuids": [p.get("run_uuid") for p in parts],
        }
        out.append(step)
    return out


def measurement_step(index: int, rows: int, metric_rows: int, findings: int, duration_s: float,
                     ended_at: datetime) -> dict[str, Any]:
    """The journey's summary of the measurement, which a chunked run makes once over the summed statistics.

    It has the keys of a chunk's step summaries; ``chunk_run_uuids`` is
    empty: no chunk ran it, so ``lineage.jsonl`` has no event of it.
    """
    return {
        "index": index, "name": "measurement", "actor": "system", "status": "ok", "inputs": ["final"],
        "outputs": ["metrics"], "started_at": (ended_at - timedelta(seconds=duration_s)).isoformat(),
        "ended_at": ended_at.isoformat(), "duration_s": float(duration_s), "rows_in": int(rows), "rows_out": int(rows),
        "rows_rejected": 0, "rows_errored": 0, "columns_added": [], "columns_changed": [], "columns_dropped": [],
        "columns_retyped": [], "cases_changed": {},
        "checks": {"total": 0, "passed": 0, "failed": 0, "failed_assertions": []}, "engine": None,
        "caseworker": None, "notes": {"metric_rows": int(metric_rows), "findings": int(findings)}, "error": None,
        "run_uuid": None, "chunk_run_uuids": [],
    }


def _step_checks(report: Mapping[str, Any] | None, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A step's check counts: from its merged report, else (no suite ran) the chunks' failed assertions united."""
    if report is not None:
        results = list(report.get("results") or [])
        failed = [r for r in results if not r.get("success")]
        return {"total": len(results), "passed": len(results) - len(failed), "failed": len(failed),
                "failed_assertions": [{"assertion": r.get("expectation"), "column": r.get("column")} for r in failed]}
    failed_assertions = _union([p.get("failed_assertions") or [] for p in parts])
    total = max((int(p.get("total") or 0) for p in parts), default=0)
    return {"total": total, "passed": total - len(failed_assertions), "failed": len(failed_assertions),
            "failed_assertions": failed_assertions}


def merge_check_reports(per_chunk: Sequence[Sequence[Mapping[str, Any]]],
                        merged: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One check report per step, as an in-memory run's ``checks.json`` holds it, from the merged results.

    Parameters
    ----------
    per_chunk : sequence of sequences of dict
        Per chunk, its check reports (``{"step", "policy", "suites",
        "n_rows", "n_failed_cases", "results", ...}``).
    merged : sequence of dict
        The merged results (:func:`audit.checks.merge_chunk_checks`), one per
        step and expectation, each with ``step``, ``policy``, ``exact``,
        ``chunks`` and ``chunks_failed``.

    Returns
    -------
    list of dict
        Per step, in the order of the chunks' reports: the keys of
        :meth:`audit.checks.CheckReport.to_dict` plus ``policy`` and
        ``chunks``; each result keeps ``exact``, ``chunks`` and ``chunks_failed``.
    """
    by_step: dict[str, list[dict[str, Any]]] = {}
    for m in merged:
        by_step.setdefault(str(m["step"]), []).append({k: v for k, v in m.items() if k not in _RESULT_ONLY})
    entries: dict[str, list[Mapping[str, Any]]] = {}
    for reports in per_chunk:
        for e in reports:
            entries.setdefault(str(e["step"]), []).append(e)
    out = []
    for step, parts in entries.items():
        first = parts[0]
        results = by_step.get(step, [])
        failures = [r for r in results if not r.get("success")]
        engines = sorted({str(r["engine"]) for r in results if r.get("engine")}, reverse=True)
        out.append({
            "step": step,
            "policy": first.get("policy"),
            "suites": list(first.get("suites") or []),
            "id_column": first.get("id_column"),
            "n_rows": int(_sum([e.get("n_rows") for e in parts]) or 0),
            "success": all(r.get("success") or r.get("severity") != "critical" for r in results),
            "quarantinable": all(r.get("row_level") for r in failures if r.get("severity") == "critical"),
            "n_failed_critical": sum(1 for r in failures if r.get("severity") == "critical"),
            "n_expectations": len(results),
            "n_failed_expectations": len(failures),
            "n_failed_cases": int(_sum([e.get("n_failed_cases") for e in parts]) or 0),
            "engine": "+".join(engines) or None,
            "chunks": len(parts),
            "results": results,
        })
    return out


_GX_RESULT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "observed_value",
                   "details")
"""The counts of a merged result that its great-expectations form carries (sample case ids are per chunk)."""


def gx_validation(report: Mapping[str, Any], *, validated_at: str) -> dict[str, Any]:
    """A merged step report in great-expectations' validation-result form (``gx_result`` of ``checks.json``).

    An in-memory run keeps each step's validation as great-expectations
    writes it; a chunked run has one per chunk, so this writes the merged
    results in that form: per expectation its configuration, ``success``
    and the merged counts (``element_count``, ``unexpected_count``,
    ``unexpected_percent``, ``missing_count``, ``observed_value``,
    ``details``), with ``meta.insyn_exact`` the merged result's ``exact``
    flag. The partial lists of unexpected values and case ids are left out:
    they would be one chunk's sample.
    """
    step = str(report["step"])
    rows = []
    for pos, r in enumerate(report.get("results") or []):
        meta = {**dict(r.get("meta") or {}), "insyn_key": pos, "insyn": {"index": r.get("index"),
                                                                          "suite": r.get("suite")}}
        rows.append({
            "success": bool(r.get("success")),
            "expectation_config": {"type": r.get("expectation"),
                                   "kwargs": {"batch_id": f"insyn-{step}", **dict(r.get("kwargs") or {})},
                                   "meta": meta, "id": None, "severity": r.get("severity")},
            "result": {k: r[k] for k in _GX_RESULT_KEYS if r.get(k) is not None},
            "meta": {"insyn_engine": r.get("engine"), "insyn_exact": bool(r.get("exact", True))},
            "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
        })
    return validation_document(step, rows, {"great_expectations_version": None, "validation_time": validated_at,
                                             "insyn_engine": report.get("engine"), "insyn_chunks": report.get("chunks")})


def merge_engine(per_chunk: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """What ``results.json`` says about the engine for the whole run (None without an engine).

    Counts add (cases, errors, batches, referred, resolved, overrides,
    undecidable), ``duration_s`` is the engine's time in all chunks and
    ``cases_per_s`` follows from the two.
    """
    parts = [p for p in per_chunk if p is not None]
    if not parts:
        return None
    out = _merge_values(list(parts))
    duration = out.get("duration_s")
    out["cases_per_s"] = float(out["n_cases"] / duration) if duration and out.get("n_cases") is not None else None
    out["error_budget"] = parts[0].get("error_budget")  # a setting, not a count
    return out


def merge_population(per_chunk: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``results.json`` says about the population of the whole run: rows and status counts summed."""
    first = per_chunk[0]
    out = dict(first)
    for key in ("rows", "n_cases", "n"):
        if key in first:
            out[key] = _sum([p.get(key) for p in per_chunk])
    if any("status_counts" in p for p in per_chunk):
        out["status_counts"] = _merge_values([p.get("status_counts") or {} for p in per_chunk])
    notes = _union([p.get("notes") or [] for p in per_chunk])
    if notes:
        out["notes"] = notes
    return out


def merge_fields(per_chunk: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The data journey map of the whole run: each column once, cases changed summed by step and actor."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for fields in per_chunk:
        for f in fields:
            by.setdefault(str(f["column"]), []).append(f)
    out = []
    for column, parts in by.items():
        first = dict(parts[0])
        changed: dict[tuple[str, str], dict[str, Any]] = {}
        for p in parts:
            for c in p.get("changed_by") or []:
                key = (str(c.get("step")), str(c.get("actor")))
                if key in changed:
                    changed[key]["cases"] = _sum([changed[key].get("cases"), c.get("cases")])
                else:
                    changed[key] = dict(c)
        first.update({
            "seen": any(p.get("seen") for p in parts),
            "discretion": any(p.get("discretion") for p in parts),
            "used_by_engine": any(p.get("used_by_engine") for p in parts),
            "produced_by_engine": any(p.get("produced_by_engine") for p in parts),
            "changed_by": list(changed.values()),
            "dropped_by": _union([p.get("dropped_by") or [] for p in parts]),
        })
        out.append(first)
    return out


def report_columns(sensitive_features: Sequence[str], available: Sequence[str]) -> list[str]:
    """The columns the report counts in, of those ``available``: :data:`REPORT_COLUMNS`, then the sensitive ones."""
    wanted = [*REPORT_COLUMNS, *(c for c in sensitive_features if c not in REPORT_COLUMNS)]
    return [c for c in wanted if c != "case_id" and c in available]


def combination_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct combination of the frame's values (missing is a value), its rows counted.

    Columns are coded one by one (a categorical's codes as they are, other
    columns factorized) and the codes combined into one integer per row,
    which is counted; the values come back as objects, so that counts of
    other chunks, with other categories, align.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        The frame's columns (objects; a missing value is NaN) and
        :data:`audit.result.CASES_COLUMN` (int64; defined in :mod:`audit._columns`).
    """
    codes: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for col in frame.columns:
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype):  # its codes as they are (-1: missing)
            c, uniques = series.cat.codes.to_numpy(), series.cat.categories
        else:
            c, uniques = codes_of(series)
        codes.append(np.asarray(c, dtype=np.int64) + 1)  # 0: missing
        values.append(np.array([np.nan, *np.asarray(uniques, dtype=object)], dtype=object))
    sizes = [len(v) for v in values]
    combined = np.zeros(len(frame), dtype=np.int64)
    for c, size in zip(codes, sizes, strict=True):
        combined = combined * size + c
    total = float(np.prod(sizes, dtype=np.float64))
    if total <= 1 << 22:  # few possible combinations: count them all, no sort
        every = np.bincount(combined, minlength=int(total))
        keys = np.flatnonzero(every)
        counts = every[keys]
    else:
        keys, counts = np.unique(combined, return_counts=True)
    out: dict[str, Any] = {}
    for col, size, vals in zip(reversed(list(frame.columns)), reversed(sizes), reversed(values), strict=True):
        out[col] = vals[keys % size]
        keys = keys // size
    columns = {col: out[col] for col in frame.columns}
    columns[CASES_COLUMN] = counts.astype(np.int64)
    return pd.DataFrame(columns)


def add_combination_counts(parts: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    """Counts of :func:`combination_counts` added: one row per combination over all parts.

    Parts with other columns are refused (chunks of one run have the same
    columns). None when no part has counts.
    """
    given = [p for p in parts if p is not None]
    if not given:
        return None
    keys = [c for c in given[0].columns if c != CASES_COLUMN]
    for p in given[1:]:
        if [c for c in p.columns if c != CASES_COLUMN] != keys:
            raise ValueError(f"combination counts of other columns cannot be added. Expected the columns {keys} in "
                             f"every part; got {[c for c in p.columns if c != CASES_COLUMN]}.")
    pooled = pd.concat(given, ignore_index=True) if len(given) > 1 else given[0]
    if not keys:
        return pd.DataFrame({CASES_COLUMN: [int(pooled[CASES_COLUMN].sum())]})
    return pooled.groupby(keys, dropna=False, sort=False, as_index=False)[CASES_COLUMN].sum()
