"""The view model of a report: what each section says, built from an AuditResult.

The HTML page, the Markdown page and the notebook summary tell the same
story, so the story is built once, here, as plain data (dicts, lists and
formatted strings) that the templates only lay out. This keeps the templates
free of logic and guarantees that the Markdown report carries the same
findings, with the same numbers, as the HTML report.

The sections follow the questions an audit answers, in this order
(:data:`SECTION_IDS`):

1. *summary*: the headline findings in plain language, with intervals;
2. *findings*: every threshold of the spec, evaluated;
3. the metric sections, in the order of the metric registry's sections
   (:data:`audit.metrics.SECTIONS`): *affected* (who is granted and
   refused), *routing* (who is routed to a caseworker and who is decided by
   the robot), *amounts* (who is paid too little), *baseline* (the engine
   against the law's baseline or a recorded truth), *selection* (who a
   selection model picks for investigation, against a random sample),
   *comparison* (agreement with a second engine or recorded decisions) and
   *flips* (decisions that change within a pair: two engines, or a case and
   its counterfactual twin); then *other*, for any metric the registry does
   not know, shown only when there is one;
   then *discovered*: the groups nobody named, found by subgroup discovery
   (the spec's ``discover:`` section), with their make-up by the named groups;
   then *funnel*: where along the data journey each group's share shifts;
4. *quality*: the data-quality checks and the population's status;
5. *journey*: the data journey map and the lineage summary;
6. *method*: metrics, tests, correction, sample sizes, minimum detectable
   differences;
7. *scorecard*: public values (efficiency, service, professionalism,
   transparency);
8. *reproducibility*: spec, seed, versions and hashes.

Each metric section's title, introduction and the sentence that says why it
is empty come from the message catalogue (``<section>.title``,
``<section>.intro``, ``<section>.absent``). Results come from modules that
grow over time, so nothing here assumes that a metric, a section or a key
exists: what is absent is left out with a sentence that says why (see
:mod:`audit.report._builder` and :mod:`audit.report._sections`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit.report._analyses import analysis_notes
from audit.report._attribution import attribution
from audit.report._builder import METRIC_SECTION_IDS, SECTION_IDS, Builder
from audit.report._discovery import discovered
from audit.report._funnel import funnel
from audit.report._messages import Catalogue
from audit.report._monitoring import monitor_block
from audit.report._sections import journey, method, quality, reproducibility, scorecard

if TYPE_CHECKING:  # pragma: no cover
    from audit.result import AuditResult

__all__ = ["SECTION_IDS", "build_context"]


def _intro_and_absent(b: Builder, section: str) -> tuple[str, str]:
    """The introduction of a metric section and the sentence that says why it is empty."""
    m = b.m
    if section == "baseline":
        intro = m("baseline.intro_column") if b.truth_kind == "column" else m("baseline.intro")
        absent = m("baseline.absent_truth") if b.truth_kind == "none" else m("baseline.absent")
        return intro, absent
    if section == "flips":
        if b.spec.get("counterfactual") and not b.spec.get("compare"):
            return m("flips.intro_counterfactual"), m("flips.absent")
        if b.spec.get("compare") and not b.spec.get("counterfactual"):
            return m("flips.intro_compare"), m("flips.absent")
    return m(f"{section}.intro"), m(f"{section}.absent")


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
        section in the registry), plus ``order`` (the ids of the sections
        shown), ``metric_sections`` (the ids of the metric sections shown, in
        order), ``toc`` (``[{id, title}]``) and ``charts`` (the ids of every
        chart drawn).
    """
    b = Builder(result, messages, charts=charts)
    findings = b.findings_section()
    summary = b.summary(findings)
    summary["monitor"] = monitor_block(b)  # a monitoring run: its alerts at the top; its verdict counts them
    if summary["monitor"]:
        summary["verdict"], summary["failed"] = summary["monitor"]["verdict"], summary["monitor"]["failed"]
    sections: dict[str, Any] = {"summary": summary, "findings": findings}
    for sid in METRIC_SECTION_IDS:
        intro, absent = _intro_and_absent(b, sid)
        sections[sid] = b.metric_section(sid, intro, absent)
    sections["routing"]["notes"] = b.routing_notes()
    for sid, notes in analysis_notes(b).items():  # every analysis that ran, in plain language
        if sections.get(sid) and sections[sid].get("available", True):
            sections[sid]["notes"] = [*sections[sid].get("notes", []), *notes]
    if not sections["other"]["available"]:
        sections["other"] = None
    sections["discovered"] = discovered(b)
    sections["funnel"] = funnel(b)
    sections["quality"] = quality(b)
    sections["journey"] = journey(b)
    sections["journey"]["attribution"] = attribution(b)  # spec key attribution: a table inside the journey
    sections["method"] = method(b)
    sections["scorecard"] = scorecard(b)
    sections["reproducibility"] = reproducibility(b)
    order = [sid for sid in SECTION_IDS if sections.get(sid)]
    return {
        "meta": b.meta(),
        "sections": sections,
        "order": order,
        "metric_sections": [sid for sid in METRIC_SECTION_IDS if sections.get(sid)],
        "toc": [{"id": sid, "title": sections[sid]["title"]} for sid in order],
        "charts": list(b.charts),
    }
