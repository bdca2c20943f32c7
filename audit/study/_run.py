"""One run of a study: a point's audit with a derived seed, as one tidy table.

A worker receives a :class:`~audit.study._design.RunTask` (plain data: the
base audit as a dict, the factor levels, the seed), builds the run's
:class:`audit.audit.Audit` with every factor's key path set, and runs it
through the one run pipeline (:func:`audit.audit.run_audit`: the runner's
table of steps, then :meth:`audit.result.AuditResult.build`) without writing
a run folder or a report. What comes back is one tidy table: the run's
identity and factor levels as columns, then the metric rows of the results
contract (``row = "metric"``) and the run's findings (``row = "finding"``
with their status).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit._privacy import mask_text_columns
from audit.audit import Audit, run_audit
from audit.result import AuditResult
from audit.study._design import RunTask, set_key

__all__ = ["ID_COLUMNS", "build_audit", "level_value", "run_frame", "run_task"]

ID_COLUMNS: tuple[str, ...] = ("run", "point", "replicate", "seed")
"""The columns that name a run, first in every run table."""

_METRIC_FIELDS = ("metric", "attributes", "group", "n", "value", "ci_low", "ci_high", "reference_group",
                  "reference_value", "difference", "ratio", "diff_ci_low", "diff_ci_high", "p_value", "p_adjusted",
                  "mdd", "suppressed", "reason")
_FINDING_FIELDS = ("name", "statistic", "bound", "status", "observed", "severity")


def build_audit(task: RunTask) -> Audit:
    """The audit of one run: the base audit with every factor level and the run's seed set."""
    data = dict(task.audit)
    for key, value in task.levels.items():
        data = set_key(data, key, value)
    data["seed"] = task.seed
    return Audit.from_dict(data, base_dir=task.base_dir, source=task.source)


def run_task(task: RunTask) -> pd.DataFrame:
    """Run one replicate of one point and return its tidy table (see :func:`run_frame`).

    Module-level and picklable, so that every executor (in-process, local
    processes, Dask) can call it.
    """
    result = run_audit(build_audit(task), write=False)
    return run_frame(result, task)


def level_value(value: Any) -> Any:
    """A factor level as a Parquet cell: scalars as they are, anything else as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def run_frame(result: AuditResult, task: RunTask) -> pd.DataFrame:
    """The tidy table of one run: identity, factor levels, metric rows and finding rows.

    ``attributes`` is written as the sensitive columns joined with ``" & "``
    (``"sex & birth_region"``; ``""`` for all cases), like ``group``.
    ``alpha`` is the run's ``statistics.alpha``; ``tests`` is the number of tests in the run's multiple-testing family
    (finite p-values), which sizes every MDD of the run.
    """
    metrics = pd.DataFrame([_pick(r, _METRIC_FIELDS) for r in result.metrics], columns=list(_METRIC_FIELDS))
    metrics.insert(0, "row", "metric")
    tests = int(np.isfinite(pd.to_numeric(metrics["p_value"], errors="coerce").to_numpy(dtype=float)).sum())
    findings = pd.DataFrame([_finding(f) for f in result.findings],
                            columns=["row", "metric", "attributes", "group", "reference_group", "ci_low", "ci_high",
                                     "p_adjusted", *_FINDING_FIELDS])
    frame = pd.concat([metrics, findings], ignore_index=True, sort=False) if len(findings) else metrics
    frame["attributes"] = [_join(a) for a in frame["attributes"]]
    for col in ("n", "value", "ci_low", "ci_high", "reference_value", "difference", "ratio", "diff_ci_low",
                "diff_ci_high", "p_value", "p_adjusted", "mdd", "observed"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("metric", "group", "reference_group", "reason", "name", "statistic", "bound", "status", "severity"):
        if col in frame:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame["suppressed"] = frame["suppressed"].astype("boolean")
    frame.insert(1, "tests", tests)
    frame.insert(1, "alpha", float((result.spec.get("statistics") or {}).get("alpha", 0.05)))
    head = {"run": task.key, "point": task.point, "replicate": task.replicate, "seed": task.seed}
    head.update({k: level_value(v) for k, v in task.levels.items()})
    for i, (k, v) in enumerate(head.items()):
        frame.insert(i, k, v)
    masked, _ = mask_text_columns(frame)
    return masked


def _pick(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {f: row.get(f) for f in fields}


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    return {"row": "finding", "metric": f.get("metric"), "attributes": f.get("attributes"),
            "group": f.get("group"), "reference_group": f.get("reference_group"), "ci_low": f.get("ci_low"),
            "ci_high": f.get("ci_high"), "p_adjusted": f.get("p_adjusted"),
            **{k: f.get(k) for k in _FINDING_FIELDS}}


def _join(attrs: Any) -> str:
    if attrs is None or (isinstance(attrs, float) and np.isnan(attrs)):
        return ""
    if isinstance(attrs, str):
        return attrs
    return " & ".join(str(a) for a in attrs)
