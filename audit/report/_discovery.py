"""The report section on subgroup discovery: the groups nobody named.

When the spec has a ``discover:`` section, the run searched the cases for the
subgroups whose outcome deviates most from everyone else's, on one half of
the cases, and tested each group found on the other half (see
:mod:`audit.metrics._discovery`). A reader needs three things from it:

* a sentence per *confirmed* group: who they are, how they are treated
  compared with the rest, with an interval, and how the group is made of the
  named groups ("89 % born outside the EU; 53 % of all applications");
* a table of every group found, confirmed or not, with its size, rate,
  ratio to the rest, corrected p-value and status (confirmed, not
  confirmed, contradicted by the test half, or suppressed as too small);
* how it was done: search half, test half, and the family of tests the
  p-values were corrected in.

Without a ``discover:`` section the report says so. The discovered groups'
metrics rows (``discovered_<rate>``) stay out of the other sections and the
summary's largest disparities; they are shown here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.report._builder import Builder, as_float
from audit.report._format import DASH

__all__ = ["discovered"]

_KIND = "rate"

_MIN_LIFT = 0.05
"""A named group is shown in a found group's make-up when its share there is 5 points above its share of all cases."""


def _status(entry: Mapping[str, Any], alpha: float) -> str:
    if entry.get("suppressed"):
        return "suppressed"
    if entry.get("confirmed"):
        return "confirmed"
    p = as_float(entry.get("p_adjusted"))
    if p is not None and p < alpha:
        return "contradicted"
    return "ns"


def _makeup(b: Builder, entry: Mapping[str, Any]) -> list[str]:
    """Per sensitive attribute, the named group most over-represented in the found group (by 5 points or more).

    The same choice as :meth:`audit.metrics.DiscoveredGroup.overrepresented`,
    made here from the ``results.json`` entry; the whole make-up is there.
    """
    best: dict[str, tuple[float, Mapping[str, Any]]] = {}
    for r in entry.get("makeup") or []:
        share, population = as_float(r.get("share")), as_float(r.get("population_share"))
        if r.get("suppressed") or share is None or population is None:
            continue
        attribute = str(r.get("attribute"))
        lift = share - population
        if lift >= _MIN_LIFT and (attribute not in best or lift > best[attribute][0]):
            best[attribute] = (lift, r)
    order = {a: i for i, a in enumerate(b.sensitive)}
    return [
        b.m(
            "discovered.makeup_item",
            share=b.f.percent(r.get("share"), digits=0),
            group=b.group_label([a], r.get("group")),
            population=b.f.percent(r.get("population_share"), digits=0),
        )
        for a, (_, r) in sorted(best.items(), key=lambda item: order.get(item[0], len(order)))
    ]


def discovered(b: Builder) -> dict[str, Any]:
    """The view of the discovery section (always present; says why when discovery did not run).

    Returns
    -------
    dict
        ``id``, ``title``, ``available``, ``reason``, ``intro``, ``method``,
        ``headlines`` (sentences on the confirmed groups) and ``rows`` (every
        group found).
    """
    title = b.m("discovered.title")
    entries = b.d.get("discovered")
    view: dict[str, Any] = {"id": "discovered", "title": title, "available": False, "reason": "", "intro": "",
                            "method": "", "headlines": [], "rows": []}
    if entries is None:
        chunked = bool(b.d.get("execution")) and b.spec.get("discover") is not None
        view["reason"] = b.m("discovered.chunked" if chunked else "discovered.not_run")
        return view
    spec = b.spec.get("discover") or {}
    view["intro"] = b.m("discovered.intro")
    if not entries:
        view["reason"] = b.m("discovered.absent")
        return view
    first = entries[0]
    metric = str(first.get("metric"))
    label = b.metric_label(metric)
    correction = first.get("correction") or {}
    family = str(correction.get("family", "discovery"))
    view["method"] = b.m(
        "discovered.method",
        metric=label,
        k=b.f.integer(spec.get("max_conditions", 2)),
        min_size=b.f.integer(spec.get("min_size", 200)),
        search=b.f.integer(first.get("search_half")),
        test=b.f.integer(first.get("test_half")),
        m=b.f.integer(correction.get("m")),
        family=b.m.get(f"discovered.family_{family}") or family,
    )
    rows = []
    headlines = []
    for e in entries:
        status = _status(e, b.alpha)
        hidden = status == "suppressed"
        makeup = _makeup(b, e)
        row = {
            "rank": b.f.integer(e.get("rank")),
            "group": str(e.get("group")),
            "status": status,
            "status_label": b.m(f"discovered.status_{status}", min=b.f.integer(b.min_group_size)),
            "cases": f"<{b.f.integer(b.min_group_size)}" if e.get("n_cases") is None else b.f.integer(e.get("n_cases")),
            "share": DASH if e.get("share") is None else b.f.percent(e.get("share")),
            "value": DASH if hidden else b.f.value(e.get("value"), _KIND),
            "ci": DASH if hidden else b.f.interval(e.get("ci_low"), e.get("ci_high"), _KIND),
            "rest": DASH if hidden else b.f.value(e.get("reference_value"), _KIND),
            "ratio": DASH if hidden else b.f.ratio(e.get("ratio")),
            "ratio_ci": DASH if hidden else b.f.ratio_interval(e.get("ratio_ci_low"), e.get("ratio_ci_high")),
            "p": DASH if hidden else b.f.p_value(e.get("p_adjusted")),
            "makeup": "; ".join(makeup) if makeup else b.m("discovered.makeup_none"),
            "search": b.m(
                "discovered.search_line",
                value=b.f.value((e.get("search") or {}).get("value"), _KIND),
                rest=b.f.value((e.get("search") or {}).get("rest_value"), _KIND),
                z=b.f.number((e.get("search") or {}).get("z"), digits=1),
            ),
        }
        rows.append(row)
        if status == "confirmed":
            headlines.append(
                b.m(
                    "discovered.headline",
                    group=row["group"],
                    metric=label,
                    value=row["value"],
                    ci=row["ci"],
                    rest=row["rest"],
                    ratio=row["ratio"],
                    ratio_ci=row["ratio_ci"],
                    p=row["p"],
                    level=b.level,
                )
                + (" " + b.m("discovered.headline_makeup", makeup=row["makeup"]) if makeup else "")
            )
    view.update(available=True, rows=rows, headlines=headlines,
                reason="" if headlines else b.m("discovered.none_confirmed", alpha=b.f.number(b.alpha, digits=2)))
    return view
