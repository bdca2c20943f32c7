"""The monitoring block of a report: a monitoring run's alerts, baseline and limits, first.

A run of ``insyn monitor`` is judged by its alerts, not by the spec's
thresholds alone: a group whose referral rate jumped this month is news even
when no threshold is broken. The report of such a run therefore opens with
the alerts (each as the line the job mails, and as a row with the statistic
and its limit), the baseline the period was compared with (which months it
used, which were missing, which were left out after an alert that is not
approved) and the limits; and its verdict counts the alerts, so a run with
an alert never reads as passing. An audit run (no ``monitor`` in its result)
has no block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from audit.report._format import DASH

if TYPE_CHECKING:  # pragma: no cover
    from audit.report._builder import Builder

__all__ = ["alert_line", "monitor_block"]


def alert_line(alert: Mapping[str, Any]) -> str:
    """The line of an alert as the monitoring job prints it (``ALERT`` or ``WARN``, audit, period, kind, message)."""
    tag = "ALERT" if alert.get("severity") == "fail" else "WARN"
    return f"{tag} {alert.get('audit')} {alert.get('period')} {alert.get('kind')}: {alert.get('message')}"


def _periods(b: Builder, periods: Sequence[str]) -> str:
    return ", ".join(str(p) for p in periods) if periods else b.m("monitor.none")


def _statistic(b: Builder, alert: Mapping[str, Any]) -> tuple[str, str]:
    """The statistic and its limit, in words."""
    score, limit = alert.get("score"), alert.get("limit")
    kind = alert.get("kind")
    if kind == "change" and score is not None:
        return b.m("monitor.statistic_z", z=f"{float(score):+.1f}"), b.m("monitor.limit_z", c=b.f.number(limit))
    if kind == "sequential" and score is not None:
        return (b.m("monitor.statistic_cusum", value=b.f.number(score, digits=1)),
                b.m("monitor.limit_cusum", h=b.f.number(limit, digits=1)))
    if kind == "level":
        low, high = alert.get("low"), alert.get("high")
        metric = str(alert.get("metric") or "")
        bound = " – ".join(b.f.value(v, b.kind(metric)) if v is not None else DASH for v in (low, high))
        return b.f.value(alert.get("observed"), b.kind(metric)), bound
    return DASH, DASH


def _row(b: Builder, alert: Mapping[str, Any]) -> dict[str, Any]:
    metric = str(alert.get("metric") or "")
    attributes = [str(a) for a in (alert.get("attributes") or [])]
    statistic, limit = _statistic(b, alert)
    kind = b.kind(metric) if metric else "number"
    observed = alert.get("observed")
    baseline = alert.get("baseline")
    return {
        "severity": "fail" if alert.get("severity") == "fail" else "warn",
        "severity_label": b.m("status.fail") if alert.get("severity") == "fail" else b.m("status.warn"),
        "kind": b.m(f"monitor.kind_{alert.get('kind')}") if alert.get("kind") in _KINDS else str(alert.get("kind")),
        "what": (f"{b.metric_label(metric)}, {b.attribute_label(attributes)}: "
                 f"{b.group_label(attributes, alert.get('group'))}" if metric else b.m("monitor.the_baseline")),
        "observed": b.f.value(observed, kind) if observed is not None else DASH,
        "baseline": b.f.value(baseline, kind) if baseline is not None else DASH,
        "statistic": statistic,
        "limit": limit,
        "periods": _periods(b, alert.get("baseline_periods") or []),
        "line": alert_line(alert),
    }


_KINDS = ("level", "change", "sequential", "baseline")


def monitor_block(b: Builder) -> dict[str, Any] | None:
    """The view of a monitoring run's alerts, baseline and limits (None for an audit run).

    Returns
    -------
    dict or None
        ``title``, ``intro``, ``verdict``, ``failed``, ``counts``,
        ``rows`` (one per alert, see :func:`_row`), ``lines`` (the alert
        lines), ``baseline`` (label and value pairs), ``limits`` and
        ``notes``.
    """
    monitor = b.d.get("monitor")
    if not isinstance(monitor, Mapping):
        return None
    alerts = [a for a in (b.d.get("alerts") or []) if isinstance(a, Mapping)]
    period = str(monitor.get("period") or DASH)
    fails = [a for a in alerts if a.get("severity") == "fail"]
    warns = [a for a in alerts if a.get("severity") != "fail"]
    base = monitor.get("baseline") or {}
    streams = int(monitor.get("streams") or 0)
    if fails:
        verdict = b.m("monitor.verdict_alerts", count=b.f.integer(len(fails)), period=period)
    elif b.result.exit_code:
        verdict = b.m("summary.verdict_fail")
    elif not streams:
        verdict = b.m("monitor.verdict_not_compared", period=period)
    else:
        verdict = b.m("monitor.verdict_quiet", period=period, streams=b.f.integer(streams))
    facts = [(b.m("monitor.baseline"), str(base.get("description") or DASH)),
             (b.m("monitor.periods_used"), _periods(b, base.get("periods") or []))]
    if base.get("kind") == "trailing":
        facts += [(b.m("monitor.missing"), _periods(b, base.get("missing") or [])),
                  (b.m("monitor.excluded"), _periods(b, base.get("excluded") or [])),
                  (b.m("monitor.approved"), _periods(b, base.get("approved") or []))]
    if base.get("history_starts"):
        facts.append((b.m("monitor.history_starts"), str(base["history_starts"])))
    c, h = monitor.get("change_limit"), monitor.get("cusum_limit")
    if c is not None and h is not None:
        limits = b.m("monitor.limits", c=b.f.number(c), h=b.f.number(h, digits=1), k=b.f.number(monitor.get("k")),
                     streams=b.f.integer(streams), arl=b.f.integer(monitor.get("arl")))
    else:
        limits = b.m("monitor.no_limits", min_periods=b.f.integer(monitor.get("min_periods")))
    return {
        "title": b.m("monitor.title", period=period),
        "intro": b.m("monitor.intro", period=period),
        "verdict": verdict,
        "failed": bool(fails) or bool(b.result.exit_code),
        "counts": b.m("monitor.counts", fail=b.f.integer(len(fails)), warn=b.f.integer(len(warns))),
        "rows": [_row(b, a) for a in alerts],
        "lines": [alert_line(a) for a in alerts],
        "baseline": [{"label": k, "value": v} for k, v in facts],
        "limits": limits,
        "notes": [str(n) for n in (monitor.get("notes") or [])],
    }
