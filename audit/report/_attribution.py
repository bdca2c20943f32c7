"""The report's table of attribution along the data journey (spec key ``attribution:``).

When the run replayed the engine with each coalition of stages' changes to
the data reverted (:mod:`audit.attribution`), the journey section shows how
much of one disparity each stage (the applicant's declaration, registry
reads, caseworker assessments) and the rules contribute: one row per stage
and one for the rules, each with its bootstrap interval, its share of the
total, the fields the stage created and how many cases it changed. The
contributions add up to the total: the disparity as recorded minus parity.
Without attribution in the run there is no table (the view is None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.report._builder import Builder, as_float
from audit.report._format import DASH

__all__ = ["attribution"]


def _number(b: Builder, value: Any) -> str:
    v = as_float(value)
    return DASH if v is None else b.f.number(v, digits=3)


def attribution(b: Builder) -> dict[str, Any] | None:
    """The view of the attribution table, or None when the run has no attribution."""
    rows = [r for r in (b.d.get("attribution") or []) if isinstance(r, Mapping)]
    if not rows:
        return None
    first = rows[0]
    attributes = list(first.get("attributes") or [])
    scale = str(first.get("scale") or "ratio")
    metric = str(first.get("metric") or "")
    group = b.group_label(attributes, first.get("group"))
    reference = b.group_label(attributes, first.get("reference_group"))
    metric_label = b.metric_label(metric)
    view_rows = []
    for r in rows:
        stage = str(r.get("stage") or "")
        view_rows.append({
            "stage": b.m.get(f"attribution.stage_{stage}") or b.actor_label(stage),
            "contribution": _number(b, r.get("contribution")),
            "ci": (DASH if as_float(r.get("ci_low")) is None or as_float(r.get("ci_high")) is None
                   else f"{_number(b, r.get('ci_low'))} – {_number(b, r.get('ci_high'))}"),
            "share": DASH if as_float(r.get("share")) is None else b.f.percent(r.get("share"), digits=0),
            "columns": ", ".join(r.get("columns") or []) or DASH,
            "cases": DASH if stage == "rules" else b.f.integer(r.get("cases_changed") or 0),
        })
    total = as_float(first.get("total"))
    reason = str(first.get("reason") or "")
    intro = b.m("attribution.intro", metric=metric_label, group=group, reference=reference,
                parity=b.m(f"attribution.parity_{scale}"))
    summary = (b.m("attribution.total", total=_number(b, total), scale=b.m(f"attribution.scale_{scale}"))
               if total is not None else reason)
    return {"title": b.m("attribution.title"), "intro": intro, "summary": summary, "rows": view_rows,
            "caption": b.m("attribution.caption", level=b.level), "how": b.m("attribution.how")}
