"""Findings: thresholds of the audit spec applied to the metrics table.

An auditor writes down in advance what counts as unacceptable, for example
"the referral rate of any group must be at least 80 % of the reference
group's" (``{metric: refer_rate, ratio_min: 0.8}``). Each such threshold is
checked against every matching group and gives one *finding* per group:

* ``PASS``: the observed value is within the bounds;
* ``FAIL``: it is outside and the threshold's severity is ``fail``;
* ``WARN``: it is outside and the severity is ``warn``;
* ``ERROR``: it could not be evaluated (the metric is unknown or was not
  measured, the group is suppressed, the value or the comparison is
  undefined). An ERROR is never counted as a pass.

The decision uses the point estimate, as the spec's bounds are written; the
finding carries the interval and the corrected p-value so that a reader can
tell a clear breach from noise. A run exits with status 1 when any finding
is FAIL or ERROR (:func:`exit_status`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import ValidationError

from audit.exceptions import DataError, SpecError
from audit.metrics._registry import METRICS
from audit.metrics._statistics import GROUP_SEPARATOR
from audit.spec import Threshold

__all__ = ["FINDING_STATUSES", "evaluate_thresholds", "exit_status"]

FINDING_STATUSES: tuple[str, ...] = ("PASS", "FAIL", "WARN", "ERROR")
"""Possible statuses of a finding."""

_NEEDED = ("metric", "attributes", "group", "value", "reference_group", "difference", "ratio", "suppressed",
           "ci_low", "ci_high", "diff_ci_low", "diff_ci_high", "ratio_ci_low", "ratio_ci_high", "p_adjusted",
           "reason")
_CI = {"value": ("ci_low", "ci_high"), "difference": ("diff_ci_low", "diff_ci_high"),
       "ratio": ("ratio_ci_low", "ratio_ci_high")}


def _threshold(t: Any, i: int) -> Threshold:
    if isinstance(t, Threshold):
        return t
    if isinstance(t, Mapping):
        try:
            return Threshold.model_validate(dict(t))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            raise SpecError(f"thresholds[{i}]{'.' + key if key else ''}: {msg}. Got {dict(t)!r}.") from None
    raise SpecError(f"thresholds[{i}] must be a Threshold or a mapping. Got {type(t).__name__}.")


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt(x: float | None) -> str:
    return "NaN" if x is None else f"{x:.4g}"


def _bound_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}"
    if lo is not None:
        return f">= {lo:g}"
    return f"<= {hi:g}"


def _who(attributes: list[str], group: str) -> str:
    if not attributes:
        return "all cases"
    values = group.split(GROUP_SEPARATOR)
    if len(values) != len(attributes):
        return f"{GROUP_SEPARATOR.join(attributes)}={group}"
    return GROUP_SEPARATOR.join(f"{a}={v}" for a, v in zip(attributes, values))


def evaluate_thresholds(metrics: pd.DataFrame, thresholds: Sequence[Threshold | Mapping[str, Any]]) -> list[dict]:
    """Apply the spec's thresholds to a metrics table.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The table of :func:`~audit.metrics.measure`.
    thresholds : sequence of audit.spec.Threshold (or mappings of its keys)
        Each names a metric, optionally the attributes (one attribute or an
        intersection; default every attribute and intersection, plus the
        overall row for value bounds), bounds on ``ratio``, ``difference``
        and/or ``value``, and a severity.

    Returns
    -------
    list of dict
        One finding per threshold, bounded statistic and matching group
        (for ratio and difference bounds, every group except the reference),
        in threshold order. Keys: ``name`` (e.g. ``"refer_rate ratio >= 0.8 for
        birth_region=outside_eu vs sweden"``), ``status`` (PASS, FAIL, WARN,
        ERROR), ``severity`` (what the finding is: ``fail`` for FAIL and
        ERROR, ``warn`` for WARN, None for PASS), ``on_breach`` (the
        threshold's severity: what a breach would be), ``metric``,
        ``attributes``, ``group``,
        ``reference_group``, ``statistic`` (ratio, difference or value),
        ``observed``, ``bound`` (text), ``bound_min``, ``bound_max``,
        ``ci_low``, ``ci_high``, ``p_adjusted``, ``message``. Numbers are
        floats or None (JSON-friendly).

    Raises
    ------
    DataError
        When ``metrics`` lacks a column of the metrics table.
    SpecError
        When a threshold is invalid.
    """
    parsed = [_threshold(raw, i) for i, raw in enumerate(thresholds)]
    if not isinstance(metrics, pd.DataFrame):
        raise DataError(f"metrics must be the metrics table (a DataFrame). Got {type(metrics).__name__}.")
    missing = [c for c in _NEEDED if c not in metrics.columns]
    if missing:
        raise DataError(f"metrics table: missing column(s) {', '.join(map(repr, missing))}.")
    findings: list[dict] = []
    for t in parsed:
        bounds = {
            stat: (getattr(t, f"{stat}_min"), getattr(t, f"{stat}_max"))
            for stat in ("ratio", "difference", "value")
            if getattr(t, f"{stat}_min") is not None or getattr(t, f"{stat}_max") is not None
        }
        for stat, (lo, hi) in bounds.items():
            findings.extend(_evaluate(metrics, t, stat, lo, hi))
    for f in findings:
        f["severity"] = _SEVERITY_OF_STATUS[f["status"]]
    return findings


_SEVERITY_OF_STATUS: dict[str, str | None] = {"PASS": None, "WARN": "warn", "FAIL": "fail", "ERROR": "fail"}
"""What a finding is: an ERROR is never a pass, so it fails the run like a FAIL."""


def _base(t: Threshold, stat: str, lo: float | None, hi: float | None) -> dict[str, Any]:
    return {
        "severity": None,
        "on_breach": t.severity,
        "metric": t.metric,
        "statistic": stat,
        "bound": _bound_text(lo, hi),
        "bound_min": lo,
        "bound_max": hi,
    }


def _error(t: Threshold, stat: str, lo: float | None, hi: float | None, who: str, message: str,
           attributes: list[str] | None = None, group: str | None = None, reference: str | None = None) -> dict:
    out = _base(t, stat, lo, hi)
    out.update(
        name=f"{t.metric} {stat} {_bound_text(lo, hi)} for {who}",
        status="ERROR",
        attributes=list(attributes) if attributes is not None else (list(t.attributes) if t.attributes else None),
        group=group,
        reference_group=reference,
        observed=None,
        ci_low=None,
        ci_high=None,
        p_adjusted=None,
        message=message,
    )
    return out


def _evaluate(metrics: pd.DataFrame, t: Threshold, stat: str, lo: float | None, hi: float | None) -> list[dict]:
    target = "the listed groups" if not t.attributes else GROUP_SEPARATOR.join(t.attributes)
    rows = metrics[metrics["metric"] == t.metric] if "metric" in metrics.columns else metrics.iloc[0:0]
    if t.metric not in METRICS and rows.empty:
        # a name that is neither registered (every analysis' metrics are) nor measured in this table
        known = sorted(set(METRICS) | set(metrics["metric"].unique() if "metric" in metrics.columns else []))
        return [_error(t, stat, lo, hi, target,
                       f"unknown metric {t.metric!r}; known metrics: {', '.join(known)}.")]
    if rows.empty:
        return [_error(t, stat, lo, hi, target,
                       f"{t.metric} was not measured in this run (the data lacks what it needs).")]
    attrs_col = rows["attributes"].map(lambda a: list(a) if a is not None else [])
    if t.attributes:
        wanted = list(t.attributes)
        match = attrs_col.map(lambda a: a == wanted or (len(a) == len(wanted) and set(a) == set(wanted)))
        if not match.any():
            present = sorted({GROUP_SEPARATOR.join(a) for a in attrs_col if a})
            return [_error(t, stat, lo, hi, target,
                           f"no groups of {GROUP_SEPARATOR.join(wanted)} were measured for {t.metric}; "
                           f"measured: {', '.join(present) or 'none'}.")]
        rows = rows[match.to_numpy()]
    elif stat != "value":
        rows = rows[(attrs_col.map(len) > 0).to_numpy()]
    out: list[dict] = []
    if stat != "value" and rows["reference_group"].isna().all():
        return [_error(t, stat, lo, hi, target,
                       f"{t.metric} is not compared with a reference group, so it has no {stat}.")]
    for rec in rows.to_dict(orient="records"):
        attributes = list(rec["attributes"]) if rec["attributes"] is not None else []
        group = str(rec["group"])
        ref = rec["reference_group"] if isinstance(rec["reference_group"], str) else None
        if stat != "value" and group == ref:
            continue
        who = _who(attributes, group)
        if stat != "value":
            who = f"{who} vs {ref}" if ref is not None else who
        name = f"{t.metric} {stat} {_bound_text(lo, hi)} for {who}"
        observed = _num(rec[stat])
        lo_ci, hi_ci = (_num(rec[c]) for c in _CI[stat])
        finding = _base(t, stat, lo, hi)
        finding.update(
            name=name, attributes=attributes, group=group, reference_group=ref, observed=observed,
            ci_low=lo_ci, ci_high=hi_ci, p_adjusted=_num(rec["p_adjusted"]),
        )
        reason = str(rec["reason"] or "")
        if bool(rec["suppressed"]):
            finding.update(status="ERROR", message=f"could not evaluate: the group is suppressed ({reason}).")
        elif observed is None:
            why = reason or "the value is undefined"
            finding.update(status="ERROR", message=f"could not evaluate: {stat} is undefined ({why}).")
        else:
            broken = (lo is not None and observed < lo) or (hi is not None and observed > hi)
            ci = f" ({_fmt(lo_ci)} to {_fmt(hi_ci)})" if lo_ci is not None and hi_ci is not None else ""
            padj = finding["p_adjusted"]
            sig = f"; adjusted p = {padj:.3g}" if padj is not None else ""
            if broken:
                side = f"below the minimum {lo:g}" if lo is not None and observed < lo else f"above the maximum {hi:g}"
                status = "FAIL" if t.severity == "fail" else "WARN"
                finding.update(status=status, message=f"observed {_fmt(observed)}{ci}, {side}{sig}.")
            else:
                finding.update(status="PASS", message=f"observed {_fmt(observed)}{ci}, meets {_bound_text(lo, hi)}{sig}.")
        out.append(finding)
    if not out:
        return [_error(t, stat, lo, hi, target, f"no group other than the reference was measured for {t.metric}.")]
    return out


def exit_status(findings: Sequence[Mapping[str, Any]]) -> int:
    """Exit status of a run from its findings.

    Returns
    -------
    int
        1 when any finding is ``FAIL`` or ``ERROR`` (an unevaluable threshold
        is never a pass), else 0. ``WARN`` findings do not change the status.
    """
    return int(any(f.get("status") in ("FAIL", "ERROR") for f in findings))
