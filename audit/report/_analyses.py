"""Plain-language sentences for every analysis that ran, beside its metrics.

A report must show every analysis of a run, not only the group metrics:
counterfactual twins (did changing only an applicant's birth region change
the decision, and through which fields?), paired personas, overrides of the
engine by caseworkers by group, the selection audit's equal burden and the
agreement with a second decision-maker. The numbers are in ``results.json``
(``engine.counterfactual``, ``engine.review``, the metrics) and in the
decisions; this module turns them into one sentence each, from the message
catalogue (English and Swedish), and hands them to the sections' ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.result import CASES_COLUMN

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from audit.report._builder import Builder

__all__ = ["analysis_notes"]


def analysis_notes(b: Builder) -> dict[str, list[str]]:
    """Sentences per report section id (``flips``, ``routing``, ``selection``, ``comparison``).

    Parameters
    ----------
    b : Builder
        The report builder of the run (its result, catalogue and formatter).

    Returns
    -------
    dict of str to list of str
        Only sections with something to say are keys.
    """
    out: dict[str, list[str]] = {}
    engine = b.d.get("engine") or {}
    cf = engine.get("counterfactual") or {}
    flips = [_twin_sentence(b, a) for a in cf.get("attributes") or []]
    flips += _persona_sentences(b, cf.get("personas") or [])
    if flips:
        out["flips"] = flips
    overrides = _override_sentences(b)
    if overrides:
        out["routing"] = overrides
    selection = _burden_sentences(b)
    if selection:
        out["selection"] = selection
    agreement = b.overall("agreement")
    if agreement is not None and agreement.get("value") is not None:
        out["comparison"] = [b.m("analyses.agreement", value=b.f.percent(agreement.get("value")),
                                 n=b.f.integer(agreement.get("n")))]
    return out


def _twin_sentence(b: Builder, a: Mapping[str, Any]) -> str:
    values = {"attribute": b.attribute_label([str(a.get("attribute"))]), "flips": b.f.integer(a.get("flips")),
              "pairs": b.f.integer(a.get("decided_pairs")), "direct": b.f.integer(a.get("flips_direct")),
              "proxies": b.f.integer(a.get("flips_through_proxies")),
              "fields": ", ".join(map(str, a.get("tied_fields_seen") or [])) or "–"}
    if not a.get("flips"):
        return b.m("analyses.twins_none", **values)
    return b.m("analyses.twins", **values)


def _persona_sentences(b: Builder, personas: list[Mapping[str, Any]]) -> list[str]:
    by: dict[str, list[Mapping[str, Any]]] = {}
    for p in personas:
        by.setdefault(str(p.get("persona")), []).append(p)
    out = []
    for name, rows in by.items():
        variants = [r for r in rows if r.get("attribute") != "(base)"]
        differ = [r for r in variants if r.get("differs")]
        changed = ", ".join(f"{b.attribute_label([str(r.get('attribute'))])} = {r.get('value')}" for r in differ)
        key = "analyses.persona_differs" if differ else "analyses.persona_same"
        out.append(b.m(key, persona=name, variants=b.f.integer(len(variants)), differ=b.f.integer(len(differ)),
                       changed=changed or "–"))
    return out


def _override_sentences(b: Builder) -> list[str]:
    """Overrides of automatic engine decisions by caseworkers, per group (from the run's decisions)."""
    review = (b.d.get("engine") or {}).get("review") or {}
    decisions = b.result.decisions
    if not review.get("configured") or decisions is None or "override" not in decisions.columns:
        return []
    out = []
    automatic = (decisions["status"] == "ok") & ~decisions["outcome"].isin(b.review_labels())  # str or categorical
    weighted = CASES_COLUMN in decisions.columns  # a chunked run: a row per combination, its cases counted
    for attribute in b.sensitive:
        if attribute not in decisions.columns:
            continue
        parts = []
        read = [attribute, "override", *([CASES_COLUMN] if weighted else [])]
        pairs = decisions.loc[automatic.to_numpy(), read]  # the columns read, no more
        for group, rows in pairs.groupby(attribute, sort=True):
            flags = rows["override"].astype(bool).to_numpy()
            cases = rows[CASES_COLUMN].to_numpy(dtype=np.int64) if weighted else np.ones(len(rows), dtype=np.int64)
            n = int(cases.sum())
            k = int(cases[flags].sum())
            label = b.group_label((attribute,), group)
            if n < b.min_group_size:
                parts.append(b.m("analyses.override_group_suppressed", group=label))
            else:
                parts.append(b.m("analyses.override_group", group=label, k=b.f.integer(k), n=b.f.integer(n),
                                 share=b.f.percent(k / n)))
        if parts:
            out.append(b.m("analyses.overrides", attribute=b.attribute_label([attribute]), groups="; ".join(parts)))
    return out


def _burden_sentences(b: Builder) -> list[str]:
    """For each attribute, the group whose burden gap is furthest from 0, both ways (pp and ratio)."""
    out = []
    rows = [r for r in b.by_metric.get("burden_gap", []) if len(r.get("attributes") or []) == 1
            and r.get("value") is not None and not r.get("suppressed")]
    ratios = {(tuple(r.get("attributes") or []), str(r.get("group"))): r for r in b.by_metric.get("equal_burden", [])}
    by: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(tuple(r["attributes"]), []).append(r)
    for attrs, group_rows in by.items():
        top = max(group_rows, key=lambda r: abs(float(r["value"])))
        ratio = ratios.get((attrs, str(top.get("group"))), {})
        gap = float(top["value"])
        out.append(b.m("analyses.burden", attribute=b.attribute_label(list(attrs)),
                       group=b.group_label(attrs, top.get("group")), gap=b.f.difference(gap, "rate"),
                       ci=b.f.difference_interval(top.get("ci_low"), top.get("ci_high"), "rate"),
                       ratio=b.f.ratio(ratio.get("value")) if ratio else "–",
                       direction=b.m("analyses.more" if gap > 0 else "analyses.less") if not np.isclose(gap, 0)
                       else b.m("analyses.equal")))
    return out
