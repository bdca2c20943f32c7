"""The report's funnel section: where along the data journey each group's share shifts.

A disparity in final decisions arises somewhere: at intake (some groups'
applications quarantined more often), in what the engine sees, in the
engine's decision, in a caseworker's review. The funnel (``results.json``'s
``funnel`` list, :mod:`audit.metrics._funnel`) gives, for each step of the
journey and each group, the group's share of the cases entering and leaving
the step, its rate at the step and its shift against the starting
population. This section shows it as one table per attribute and a line
chart of the *representation ratio* (share leaving a step divided by the
share of the population: 1 means no shift) along the steps, marking each
step where the shift is significant after correction.

Without a funnel (an aggregated table, or a result written before funnels)
the section says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from audit.report._builder import Builder, as_float
from audit.report._charts import LinePoint, LineSeries, line_chart
from audit.report._format import DASH

__all__ = ["funnel", "funnel_chart"]

_HEADLINES = 5
"""Most significant shifts named in sentences."""


def _stage_label(b: Builder, stage: str) -> str:
    return b.m("funnel.stage_population") if stage == "population" else b.step_label(stage)


def _significant(b: Builder, r: Mapping[str, Any]) -> bool:
    p = as_float(r.get("p_adjusted"))
    return p is not None and p < b.alpha


def funnel_chart(b: Builder, attributes: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Any:
    """A line chart of the representation ratio (share leaving / share of the population) of each group by step."""
    stages = list(dict.fromkeys(str(r["stage"]) for r in rows))
    labels = {s: _stage_label(b, s) for s in stages}
    series = []
    for group in dict.fromkeys(str(r["group"]) for r in rows):
        label = b.group_label(attributes, group)
        points = []
        for r in (r for r in rows if str(r["group"]) == group):
            value = as_float(r.get("shift_ratio"))
            alert = _significant(b, r)
            text = b.m("funnel.point", group=label, stage=labels[str(r["stage"])],
                       ratio=DASH if value is None else b.f.ratio(value),
                       share=b.f.percent(r.get("share_out")), population=b.f.percent(r.get("population_share")))
            points.append(LinePoint(period=labels[str(r["stage"])], value=value, title=text
                                    + (" " + b.m("funnel.point_significant") if alert else ""), alert=alert))
        series.append(LineSeries(label=label, points=points))
    attribute = b.attribute_label(attributes)
    values = [p.value for line in series for p in line.points if p.value is not None and math.isfinite(p.value)]
    values += list(_RATIO_SPAN)
    span = max(values) - min(values)
    # enough decimals that neighbouring ticks (about span / 4 apart) never read the same: 1.00, 1.01, 1.02
    digits = 2 if span >= 0.2 else min(4, 1 + math.ceil(-math.log10(max(span, 1e-4) / 4)))
    return line_chart(chart_id=b.chart_id(), title=b.m("funnel.chart_title", attribute=attribute),
                      description=b.m("funnel.chart_description", attribute=attribute,
                                      steps=", ".join(labels[s] for s in stages)),
                      periods=[labels[s] for s in stages], series=series,
                      tick_label=lambda t: b.f.number(t, digits=digits), include=_RATIO_SPAN)


_RATIO_SPAN = (0.9, 1.1)
"""The representation ratios the funnel chart always spans: a shift smaller than a tenth looks nearly flat."""


def _row_view(b: Builder, attributes: Sequence[str], r: Mapping[str, Any]) -> dict[str, Any]:
    hidden = bool(r.get("suppressed")) or r.get("entering") is None
    return {
        "stage": _stage_label(b, str(r["stage"])),
        "group": b.group_label(attributes, r.get("group")),
        "status": "suppressed" if hidden else ("significant" if _significant(b, r) else "ns"),
        "entering": DASH if r.get("entering") is None else b.f.integer(r.get("entering")),
        "leaving": DASH if r.get("leaving") is None else b.f.integer(r.get("leaving")),
        "share_in": b.f.percent(r.get("share_in")),
        "share_out": b.f.percent(r.get("share_out")),
        "share_out_ci": b.f.interval(r.get("share_out_ci_low"), r.get("share_out_ci_high"), "rate"),
        "rate": b.f.percent(r.get("rate")),
        "rate_ci": b.f.interval(r.get("rate_ci_low"), r.get("rate_ci_high"), "rate"),
        "shift": b.f.difference(r.get("shift"), "rate"),
        "ratio": b.f.ratio(r.get("shift_ratio")),
        "ratio_ci": b.f.ratio_interval(r.get("shift_ratio_ci_low"), r.get("shift_ratio_ci_high")),
        "p": b.f.p_value(r.get("p_adjusted")),
        "reason": str(r.get("reason") or ""),
    }


def funnel(b: Builder) -> dict[str, Any]:
    """The view of the funnel section (always present; says why when the run has no funnel).

    Returns
    -------
    dict
        ``id``, ``title``, ``available``, ``reason``, ``intro``, ``method``,
        ``headlines`` (the largest significant shifts in sentences) and
        ``panels`` (per attribute set: ``title``, ``chart``, ``rows``).
    """
    view: dict[str, Any] = {"id": "funnel", "title": b.m("funnel.title"), "available": False, "reason": "",
                            "intro": b.m("funnel.intro"), "method": "", "headlines": [], "panels": []}
    rows = b.d.get("funnel")
    if not rows:
        view["reason"] = b.m("funnel.absent")
        return view
    first = rows[0]
    correction = first.get("correction") or {}
    outcomes = ", ".join(str(o) for o in first.get("outcomes") or [])
    view["method"] = b.m("funnel.method", outcomes=outcomes, level=b.level,
                         correction=b.m.get(f"funnel.correction_{correction.get('method')}")
                         or str(correction.get("method")), m=b.f.integer(correction.get("m")),
                         min=b.f.integer(b.min_group_size))
    panels: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        panels.setdefault(tuple(str(a) for a in r.get("attributes") or []), []).append(r)
    for attributes, part in panels.items():
        chart = funnel_chart(b, attributes, part) if b.draw_charts and len(attributes) == 1 else None
        view["panels"].append({"title": b.attribute_label(attributes), "chart": chart,
                               "rows": [_row_view(b, attributes, r) for r in part]})
    shifts = [r for r in rows if _significant(b, r) and as_float(r.get("shift_ratio"))]
    shifts.sort(key=lambda r: -abs(math.log(float(r["shift_ratio"]))))
    for r in shifts[:_HEADLINES]:
        attributes = [str(a) for a in r.get("attributes") or []]
        view["headlines"].append(b.m(
            "funnel.headline", group=b.group_label(attributes, r.get("group")), stage=_stage_label(b, str(r["stage"])),
            share=b.f.percent(r.get("share_out")), population=b.f.percent(r.get("population_share")),
            ratio=b.f.ratio(r.get("shift_ratio")),
            ratio_ci=b.f.ratio_interval(r.get("shift_ratio_ci_low"), r.get("shift_ratio_ci_high")),
            p=b.f.p_value(r.get("p_adjusted")), level=b.level))
    view["available"] = True
    view["reason"] = "" if view["headlines"] else b.m("funnel.none_significant", alpha=b.f.number(b.alpha, digits=2))
    return view
