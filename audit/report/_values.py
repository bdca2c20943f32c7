"""Public values in the report's scorecard: the indicators measured from the decision log.

The scorecard of a run follows the public values social services answer to
(see :mod:`audit.public_values`). Its first rows come from the metrics
(automation, disparities in refusal and routing, agreement with the law);
the rows here add what the public-values table of the run measured beyond
them: time to decision, caseworker overrides and the applicant's
engagement (digital applications, meetings, appeals, documents handed in).
An indicator the data cannot measure says which columns are missing, never
shows 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from audit.public_values import DIMENSIONS, INDICATORS
from audit.report._format import DASH

if TYPE_CHECKING:  # pragma: no cover
    from audit.report._builder import Builder

__all__ = ["with_values"]

_SHOWN = ("days_to_decision", "days_to_decision_routed", "override_rate", "digital_rate", "meeting_rate",
          "appeal_rate", "documents_completed_rate")
"""Indicators the scorecard adds (the others are already rows of it, from the metrics)."""


def _text(b: Builder, row: Mapping[str, Any], kind: str) -> str:
    value = row.get("value")
    if kind == "mean":
        return b.m("values.days", value=b.f.number(value, digits=1))
    return b.f.percent(value)


def _row(b: Builder, name: str, kind: str, dimension: str, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    overall = next((r for r in rows if not r.get("attributes")), None)
    label = b.m(f"values.{name}")
    if overall is None or overall.get("value") is None:
        columns = [str(c) for c in (overall or {}).get("columns") or []]
        status = (b.m("values.not_measured", columns=", ".join(columns)) if columns
                  else str((overall or {}).get("reason") or b.m("values.undefined")))
        return {"dimension": b.m(f"scorecard.{dimension}"), "indicator": label, "value": DASH, "status": status}
    value = _text(b, overall, kind)
    if kind == "rate":
        value += " (" + b.f.interval(overall.get("ci_low"), overall.get("ci_high"), "rate") + ")"
    groups = [r for r in rows if r.get("attributes") and r.get("value") is not None]
    status = ""
    if len(groups) >= 2:
        low = min(groups, key=lambda r: r["value"])
        high = max(groups, key=lambda r: r["value"])
        status = b.m("values.range", low=_text(b, low, kind), high=_text(b, high, kind),
                     low_group=b.group_label(low["attributes"], low["group"]),
                     high_group=b.group_label(high["attributes"], high["group"]))
    return {"dimension": b.m(f"scorecard.{dimension}"), "indicator": label, "value": value, "status": status}


def with_values(b: Builder, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scorecard's rows with the public-values rows added, ordered by value (transparency last)."""
    values = [v for v in (b.d.get("values") or []) if isinstance(v, Mapping)]
    if not values:
        return rows
    added = [_row(b, ind.name, ind.kind, ind.dimension, [v for v in values if v.get("indicator") == ind.name])
             for ind in INDICATORS if ind.name in _SHOWN]
    order = {b.m(f"scorecard.{d}"): i for i, d in enumerate(DIMENSIONS)}
    both = rows + added
    return sorted(both, key=lambda r: order.get(r["dimension"], len(DIMENSIONS)))
