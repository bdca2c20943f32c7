"""The view model of a report: what each section says, built from an AuditResult.

The HTML page, the Markdown page and the notebook summary tell the same
story, so the story is built once, here, as plain data (dicts, lists and
formatted strings) that the templates only lay out. This keeps the templates
free of logic and guarantees that the Markdown report carries the same
findings, with the same numbers, as the HTML report.

The sections follow the questions an audit answers, in this order:

1. *summary*: the headline findings in plain language, with intervals;
2. *findings*: every threshold of the spec, evaluated;
3. *affected*: who is granted and refused, per attribute and intersection;
4. *routing*: who is routed to a caseworker and who is decided by the robot;
5. *amounts*: who is paid too little;
6. *baseline*: the engine against the law's baseline (or a recorded truth);
7. *other*: any further metric (counterfactual flips, engine comparison...);
8. *quality*: the data-quality checks and the population's status;
9. *journey*: the data journey map and the lineage summary;
10. *method*: metrics, tests, correction, sample sizes, minimum detectable
    differences;
11. *scorecard*: public values (efficiency, service, professionalism,
    transparency);
12. *reproducibility*: spec, seed, versions and hashes.

Results come from modules that grow over time, so nothing here assumes that
a metric, a section or a key exists: what is absent is left out with a
sentence that says why (see :mod:`audit.report._builder` and
:mod:`audit.report._sections`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit.report import _discovery, _sections
from audit.report._builder import SECTION_IDS, Builder
from audit.report._messages import Catalogue

if TYPE_CHECKING:  # pragma: no cover
    from audit.result import AuditResult

__all__ = ["SECTION_IDS", "build_context"]


def build_context(result: AuditResult, *, messages: Catalogue, charts: bool = True) -> dict[str, Any]:
    """Build the view model of a report.

    Parameters
    ----------
    result : AuditResult
        The run to report on.
    messages : Catalogue
        The message catalogue of the report's language.
    charts : bool, default True
        Draw the charts (the notebook summary has none).

    Returns
    -------
    dict
        ``meta``, ``summary`` and one entry per section id of
        :data:`SECTION_IDS` (``other`` is ``None`` when every metric has a
        known section), plus ``toc`` (``[{id, title}]``) and ``charts`` (the
        ids of every chart drawn).
    """
    b = Builder(result, messages, charts=charts)
    m = messages
    findings = b.findings_section()
    summary = b.summary(findings)
    truth_absent = m("baseline.absent_truth") if b.truth_kind == "none" else m("baseline.absent")
    baseline_intro = m("baseline.intro_column") if b.truth_kind == "column" else m("baseline.intro")
    sections: dict[str, Any] = {
        "summary": summary,
        "findings": findings,
        "affected": b.metric_section("affected", m("affected.intro"), m("affected.absent")),
        "routing": b.metric_section("routing", m("routing.intro"), m("routing.absent")),
        "amounts": b.metric_section("amounts", m("amounts.intro"), m("amounts.absent")),
        "baseline": b.metric_section("baseline", baseline_intro, truth_absent),
    }
    sections["routing"]["notes"] = b.routing_notes()
    other = b.metric_section("other", m("other.intro"), m("other.absent"))
    sections["other"] = other if other["available"] else None
    sections["discovered"] = _discovery.discovered(b)
    sections["quality"] = _sections.quality(b)
    sections["journey"] = _sections.journey(b)
    sections["method"] = _sections.method(b)
    sections["scorecard"] = _sections.scorecard(b)
    sections["reproducibility"] = _sections.reproducibility(b)
    toc = [{"id": sid, "title": sections[sid]["title"]} for sid in SECTION_IDS if sections.get(sid)]
    return {
        "meta": b.meta(),
        "sections": sections,
        "order": [sid for sid in SECTION_IDS if sections.get(sid)],
        "toc": toc,
        "charts": list(b.charts),
    }
