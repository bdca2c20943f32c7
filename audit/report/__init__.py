"""Reports of an audit run: one self-contained page for a council, a union and a researcher.

The report is what an audit is judged by. A politician must be able to read
the findings in a minute, an analyst must be able to check every number, and
the page must work offline, on paper and on a phone. Insyn writes

``report.html``
    one self-contained file: styles and charts inline (charts are hand-drawn
    SVG, see :mod:`audit.report._charts`), no JavaScript, no fonts, no
    requests (a Content-Security-Policy of ``default-src 'none'`` makes the
    browser refuse any), a print stylesheet whose first page is the summary,
    a layout that reflows on a narrow screen, headings that nest, table
    headers with scopes, and a title and text alternative for every chart;
``report.md``
    the same findings as Markdown, for wikis and pull requests;
``metrics.csv``
    the tidy metrics table (:func:`render_metrics_csv`);
``results.json``
    the machine-readable result (:func:`render_json`).

A run folder renders both reports from one view model
(:func:`render_reports`): building it is most of a report's cost.

Sections, in order: the summary in plain language; every finding; the
metric sections, in the order and with the members that the metric registry
gives (:data:`audit.metrics.SECTIONS`: who is affected; routing to
caseworkers and automation; amounts and shortfalls; the engine against the
law's baseline; selection for investigation; agreement with a second
decision-maker; decisions that change between two engines or between a case
and its counterfactual twin), then further metrics the registry does not
know; data quality; the data journey and its lineage; method; a
public-values scorecard; reproducibility. A section whose data is absent
says why instead of disappearing.

The trend page of a monitoring history (``insyn history --out``) is rendered
here too, from the same catalogues (:func:`render_trend_html`,
:func:`write_trend`); :mod:`audit.monitor` computes the trend. So is the
dossier of a run (:func:`render_dossier_html`, :func:`render_dossier_md`),
which maps the run's evidence to the AI Act and Swedish law. And so is the
page of a bias study (:func:`render_study_html`, from the figures that
:mod:`audit.study` computes into a :class:`StudyView`).

Every label comes from a message catalogue (``messages/en.yaml``,
``messages/sv.yaml``; ``report.language`` in the spec chooses). Every string
that comes from data is escaped (HTML: Jinja's autoescaping; Markdown: an
escaping ``finalize``), and personnummer-shaped text is masked, so a group
named ``<script>alert(1)</script>`` is shown as text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from audit._privacy import neutralise_csv_frame
from audit._version import __version__
from audit.report._context import SECTION_IDS, build_context
from audit.report._dossier import render_dossier_html, render_dossier_md
from audit.report._messages import LANGUAGES, load_catalogue
from audit.report._render import render_template, stylesheet
from audit.report._study import StudyPanel, StudyView, render_study_html
from audit.report._trend import render_trend_html, write_trend

if TYPE_CHECKING:  # pragma: no cover
    from audit.result import AuditResult

__all__ = [
    "LANGUAGES",
    "SECTION_IDS",
    "StudyPanel",
    "StudyView",
    "render_dossier_html",
    "render_dossier_md",
    "render_html",
    "render_json",
    "render_markdown",
    "render_metrics_csv",
    "render_reports",
    "render_study_html",
    "render_summary_html",
    "render_trend_html",
    "write_trend",
]


def _language(result: AuditResult, language: str | None) -> str:
    if language is not None:
        return language
    report = (result.spec or {}).get("report") if isinstance(result.spec, Mapping) else None
    chosen = (report or {}).get("language") if isinstance(report, Mapping) else None
    return str(chosen) if chosen else "en"


def _render(result: AuditResult, template: str, kind: str, language: str | None, *, charts: bool = True,
            context: dict[str, Any] | None = None) -> str:
    lang = _language(result, language)
    messages = load_catalogue(lang)
    if context is None:
        context = build_context(result, messages=messages, charts=charts)
    return render_template(
        kind,
        template,
        **context,
        t=messages,
        css=stylesheet("style.css"),
        insyn_version=__version__,
        run_dir=str(result.run_dir) if result.run_dir else "",
    )


def render_html(result: AuditResult, *, language: str | None = None) -> str:
    """Render the self-contained HTML report of a run (``report.html``).

    Parameters
    ----------
    result : AuditResult
        The run.
    language : {"en", "sv"}, optional
        The report's language; default: the spec's ``report.language``, else
        English.

    Returns
    -------
    str
        A complete HTML document that makes no network requests.

    Raises
    ------
    audit.exceptions.SpecError
        When the language is not one of :data:`LANGUAGES`.
    """
    return _render(result, "report.html.j2", "html", language)


def render_markdown(result: AuditResult, *, language: str | None = None) -> str:
    """Render the Markdown report of a run (``report.md``): the same findings as the HTML report.

    Parameters
    ----------
    result : AuditResult
        The run.
    language : {"en", "sv"}, optional
        As for :func:`render_html`.

    Returns
    -------
    str
        CommonMark with GitHub-style tables.
    """
    return _tidy_markdown(_render(result, "report.md.j2", "md", language, charts=False))


def _tidy_markdown(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines (what the template's blocks leave)."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"


def render_reports(result: AuditResult, formats: Iterable[str], *, language: str | None = None) -> dict[str, str]:
    """Render the HTML and Markdown reports of a run from one view model.

    What :func:`render_html` and :func:`render_markdown` return, for the
    formats asked for, with the report's view model built once (it is most of
    a report's cost; the Markdown template reads the same model and draws no
    chart).

    Parameters
    ----------
    result : AuditResult
        The run.
    formats : iterable of str
        ``report.formats``; ``html`` and ``md`` are rendered, others ignored.
    language : {"en", "sv"}, optional
        As for :func:`render_html`.

    Returns
    -------
    dict
        ``{"html": ..., "md": ...}`` for the formats listed.
    """
    wanted = [f for f in ("html", "md") if f in set(formats)]
    if not wanted:
        return {}
    context = build_context(result, messages=load_catalogue(_language(result, language)), charts="html" in wanted)
    out: dict[str, str] = {}
    if "html" in wanted:
        out["html"] = _render(result, "report.html.j2", "html", language, context=context)
    if "md" in wanted:
        out["md"] = _tidy_markdown(_render(result, "report.md.j2", "md", language, context=context))
    return out


def render_summary_html(result: AuditResult, *, language: str | None = None) -> str:
    """Render the summary of a run as an HTML fragment (for notebooks).

    Parameters
    ----------
    result : AuditResult
        The run.
    language : {"en", "sv"}, optional
        As for :func:`render_html`.

    Returns
    -------
    str
        A ``<div>`` with scoped styles: the verdict, key figures, findings
        that need attention and the largest disparities.
    """
    return _render(result, "summary.html.j2", "html", language, charts=False)


def render_json(result: AuditResult) -> str:
    """Render ``results.json``: the result as JSON text (see :meth:`AuditResult.to_json`)."""
    return result.to_json()


def render_metrics_csv(result: AuditResult) -> str:
    """Render ``metrics.csv``: one row per metric, attributes and group.

    ``attributes`` is written as the attribute names joined with ``" & "``
    (empty for overall rows), undefined values as empty cells, so that the
    file opens cleanly in a spreadsheet; every column of the metrics table is
    kept. A text cell that a spreadsheet would run as a formula (starting
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading
    ``'`` (OWASP's advice against CSV injection); numbers are unchanged.

    Returns
    -------
    str
        CSV text with a header row.
    """
    frame = result.metrics_frame()
    if "attributes" in frame.columns:
        frame["attributes"] = frame["attributes"].map(
            lambda a: " & ".join(map(str, a)) if isinstance(a, list | tuple) else ("" if a is None else str(a))
        )
    buffer = io.StringIO()
    neutralise_csv_frame(frame).to_csv(buffer, index=False, lineterminator="\n")  # OWASP CSV injection
    return buffer.getvalue()
