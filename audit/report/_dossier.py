"""The evidence dossier of a run: what the audit measured, mapped to the rules.

A municipality that lets a robot decide on *ekonomiskt bistånd* answers to
several sets of rules at once. Under the EU AI Act an eligibility system for
public assistance is high-risk (Annex III point 5(a)); its data must be
examined for possible biases (Art. 10(2)(f)-(g)); it must keep logs
(Art. 12), which a deployer keeps for at least six months (Art. 26(6)); it
must allow human oversight (Art. 14) and be monitored after deployment
(Art. 72); and a public body that deploys it must assess its impact on
fundamental rights in six elements (Art. 27(1)(a)-(f)). Swedish law allows
automated decisions (förvaltningslagen 28 §), lets a municipal committee
delegate decisions to an automated decision function since 1 July 2022
(kommunallagen 6 kap. 37-38 §§), and Kammarrätten held the source code of
Trelleborg's robot to be a public document.

An inspectorate (IVO, JO), an auditor or a union reading a run folder needs
that map, not a second report. The *dossier* (``dossier.html`` and
``dossier.md`` in every run folder) goes through each provision and says

* the rule, summarised (never quoted as law, never advice);
* what this run measured that bears on it: figures with their intervals,
  each linked to the section of ``report.html`` (same folder) where the
  numbers and their groups are;
* what the run cannot know and the deployer must state: explicit blanks,
  never invented text;

and prefills the six elements of the fundamental-rights impact assessment
(FRIA) from the run: the groups affected, the risks found (thresholds
broken, disparities significant after the correction for multiple testing),
human oversight as measured by routing and override rates, and the
monitoring set up. It states that it is evidence, not legal advice, gives
the Annex III application date (2 August 2026) and says that a political
agreement of May 2026 would move it to 2 December 2027 but was not yet law
when the text was written, with the date the dossier was made.

Languages: every dossier holds both Swedish and English, the spec's
``report.language`` first. A Swedish authority works in Swedish; an EU-level
or foreign reader in English; one file per format keeps the run folder's
artifacts fixed. The words come from ``messages/dossier.<lang>.yaml`` (same
keys and placeholders in both, a test guards it); metric, group and unit
words from the report's own catalogues, so figures read exactly as in the
report. Every string from data is escaped and personnummer-shaped text masked
(:mod:`audit.report._render`, the one home of both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from audit._yaml import load_yaml
from audit._version import __version__
from audit.exceptions import DataError, SpecError
from audit.metrics import wilson_interval
from audit.report._builder import Builder, as_float, attributes_of, section_of
from audit.report._format import DASH, is_missing
from audit.report._messages import LANGUAGES, Catalogue, load_catalogue, placeholders
from audit.report._render import render_template, stylesheet
from audit.spec import MonitorSpec, OutcomesSpec

if TYPE_CHECKING:  # pragma: no cover
    from audit.result import AuditResult

__all__ = ["PROVISIONS", "build_dossier", "dossier_catalogue", "render_dossier_html", "render_dossier_md"]

PROVISIONS: tuple[str, ...] = (
    "annex_iii",
    "art10",
    "art12",
    "art26",
    "art14",
    "art72",
    "fria",
    "fl28",
    "kl637",
    "trelleborg",
)
"""The provisions of a dossier, in order; each is a section and a key of the catalogue."""

FRIA_ELEMENTS: tuple[str, ...] = ("a", "b", "c", "d", "e", "f")
"""The six elements of a fundamental-rights impact assessment, AI Act Art. 27(1)(a)-(f)."""

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_DISPARITIES = 5


# --------------------------------------------------------------------------
# the catalogue


def _flatten(tree: Any, prefix: str, out: dict[str, str], source: str) -> None:
    if not isinstance(tree, Mapping):
        raise DataError(f"{source}: {prefix or 'the catalogue'} must be a mapping of keys to messages.")
    for key, value in tree.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten(value, full, out, source)
        elif isinstance(value, str) and value.strip():
            placeholders(value)
            out[full] = value
        else:
            raise DataError(f"{source}: {full} must be a non-empty string. Got {value!r}.")


@cache
def dossier_catalogue(language: str) -> Catalogue:
    """The dossier's messages in one language (``messages/dossier.<language>.yaml``).

    Parameters
    ----------
    language : {"en", "sv"}

    Raises
    ------
    audit.exceptions.SpecError
        For a language that is not one of :data:`audit.report.LANGUAGES`.
    audit.exceptions.DataError
        When the file is missing or malformed.
    """
    if language not in LANGUAGES:
        raise SpecError(f"report.language must be one of {', '.join(LANGUAGES)}. Got {language!r}.")
    source = f"audit/report/messages/dossier.{language}.yaml"
    try:
        text = resources.files("audit.report").joinpath("messages", f"dossier.{language}.yaml").read_text("utf-8")
    except FileNotFoundError:
        raise DataError(f"{source}: the dossier catalogue is missing from the installation.") from None
    flat: dict[str, str] = {}
    _flatten(load_yaml(text, source=source), "", flat, source)
    return Catalogue(language=language, messages=flat, source=source)


# --------------------------------------------------------------------------
# the view model


def _item(text: str, href: str | None = None) -> dict[str, Any]:
    return {"text": text, "href": Markup(href) if href else None}


class _View:
    """Builds the dossier of one run in one language from the report's Builder."""

    def __init__(self, result: AuditResult, language: str) -> None:
        self.b = Builder(result, load_catalogue(language), charts=False)
        self.txt = dossier_catalogue(language)
        self.d = self.b.d
        self.spec: Mapping[str, Any] = self.b.spec
        self.engine: Mapping[str, Any] = self.d.get("engine") or {}
        self.population: Mapping[str, Any] = self.d.get("population") or {}
        self.ci_label = self.b.m("common.ci", level=self.b.level)

    # ------------------------------------------------------------ links
    def link(self, name: str) -> str:
        """``report.html#<anchor>`` of a metric: its own heading when drawn by group, else its section."""
        section = section_of(name)
        rows = self.b.by_metric.get(name, [])
        if _SAFE_NAME.match(name) and any(attributes_of(r) for r in rows):
            return f"report.html#{section}-metric-{name}"
        return f"report.html#{section}"

    # ------------------------------------------------------------ figures
    def figure(self, name: str, *, furthest: bool = True) -> list[dict[str, Any]]:
        """A metric's overall value with its interval (and the group furthest from its reference)."""
        ov = self.b.overall(name)
        label = self.b.metric_label(name)
        if ov is None:
            return [_item(self.txt("fig.absent", label=label))] if name in ("refer_rate", "automation_rate") else []
        kind = self.b.kind(name)
        text = self.txt(
            "fig.line",
            label=label,
            value=self.b.f.value(ov.get("value"), kind),
            ci=self.ci_label,
            interval=self.b.f.interval(ov.get("ci_low"), ov.get("ci_high"), kind),
            n=self.b.f.integer(ov.get("n")),
        )
        spread = self.b.spread(name) if furthest else DASH
        if spread != DASH:
            text += " " + self.txt("fig.furthest", furthest=spread)
        return [_item(text, self.link(name))]

    def labels(self, values: Sequence[Any]) -> str:
        return ", ".join(str(v) for v in values) or DASH

    def outcome_labels(self) -> tuple[list[str], list[str]]:
        outcomes = self.spec.get("outcomes") or {}
        defaults = OutcomesSpec()
        labels = [str(x) for x in (outcomes.get("labels") or defaults.labels)]
        review = [str(x) for x in (outcomes.get("review") or defaults.review)]
        return labels, review

    def engine_version(self) -> str:
        return str(self.engine.get("version") or DASH)

    # ------------------------------------------------------------ blocks shared by provisions
    def oversight(self) -> list[dict[str, Any]]:
        items = self.figure("refer_rate") + self.figure("automation_rate")
        review = self.engine.get("review") or {}
        if not self.engine:
            return items
        f = self.b.f
        if review.get("configured"):
            items.append(_item(self.txt(
                "art14.review",
                by=str(review.get("by") or DASH),
                resolved=f.integer(review.get("resolved")),
                referred=f.integer(review.get("referred")),
                unresolved=f.integer(review.get("unresolved")),
            ), "report.html#routing"))
            automatic = int(self.engine.get("n_cases") or 0) - int(self.engine.get("n_errors") or 0) - int(
                review.get("referred") or 0)
            overrides = int(review.get("overrides") or 0)
            if automatic > 0:
                lo, hi = wilson_interval(overrides, automatic, self.b.alpha)
                items.append(_item(self.txt(
                    "art14.overrides",
                    overrides=f.integer(overrides),
                    automatic=f.integer(automatic),
                    rate=f.percent(overrides / automatic),
                    ci=self.ci_label,
                    interval=f.interval(float(lo), float(hi), "rate"),
                ), "report.html#routing"))
        else:
            items.append(_item(self.txt("art14.no_review", referred=f.integer(review.get("referred"))),
                               "report.html#routing"))
        return items

    def monitoring(self) -> list[dict[str, Any]]:
        monitor = self.spec.get("monitor")
        if not isinstance(monitor, Mapping):
            return [_item(self.txt("art72.no_monitor"))]
        metrics = monitor.get("metrics")
        if metrics:
            names = ", ".join(self.b.metric_label(str(m)) for m in metrics)
        else:
            names = self.txt("art72.monitor_metrics_default")
        baseline = str(monitor.get("baseline") or MonitorSpec.model_fields["baseline"].default)
        periods = monitor.get("periods") or MonitorSpec.model_fields["periods"].default
        where = (self.txt("art72.baseline_trailing", periods=self.b.f.integer(periods)) if baseline == "trailing"
                 else self.txt("art72.baseline_run", run=baseline))
        arl = monitor.get("arl") or MonitorSpec.model_fields["arl"].default
        return [_item(self.txt("art72.monitor", metrics=names, baseline=where, arl=self.b.f.integer(arl)))]

    def groups_affected(self) -> list[dict[str, Any]]:
        b, f = self.b, self.b.f
        items = [_item(self.txt("fria.c.applicants", n=f.integer(self.population.get("n_cases"))),
                       "report.html#affected")]
        name = "n" if "n" in b.by_metric else next(
            (m for m, rows in b.by_metric.items() if any(attributes_of(r) for r in rows)), None)
        if name is None:
            return items
        for attributes, rows in b.panels(name):
            if len(attributes) != 1:
                continue
            parts = []
            for r in rows:
                group = b.group_label(attributes, r.get("group"))
                if r.get("suppressed"):
                    parts.append(self.txt("fria.c.suppressed", group=group, min=f.integer(b.min_group_size)))
                else:
                    parts.append(self.txt("fria.c.group", group=group, n=f.integer(r.get("n"))))
            items.append(_item(self.txt("fria.c.groups", attribute=b.attribute_label(attributes),
                                        groups="; ".join(parts)), "report.html#method-sample"))
        return items

    def significant(self) -> list[Mapping[str, Any]]:
        rows = self.b.top_disparities(_DISPARITIES)
        return [r for r in rows if (p := as_float(r.get("p_adjusted"))) is not None and p < self.b.alpha]

    def risks(self) -> list[dict[str, Any]]:
        b = self.b
        items = []
        for f in b.findings:
            if str(f.get("status", "")).upper() == "PASS":
                continue
            v = b.finding_view(f)
            items.append(_item(self.txt(
                "fria.d.finding", status=v["status_label"], metric=v["metric"], who=v["who"],
                statistic=v["statistic"], observed=v["observed"], ci=self.ci_label, interval=v["ci"],
                bound=v["bound"]), "report.html#findings"))
        for r in self.significant():
            items.append(_item(self.txt("art10.disparity", sentence=b.disparity_sentence(r)),
                               self.link(str(r.get("metric")))))
        if not items:
            items.append(_item(self.txt("fria.d.none"), "report.html#findings"))
        return items

    # ------------------------------------------------------------ provisions
    def annex_iii(self) -> list[dict[str, Any]]:
        f = self.b.f
        if not self.engine:
            return [_item(self.txt("annex_iii.aggregated", n=f.integer(self.population.get("n_cases"))),
                          "report.html#summary")]
        labels, _ = self.outcome_labels()
        items = [_item(self.txt("annex_iii.engine", engine=self.b.engine_name(), version=self.engine_version(),
                                n=f.integer(self.population.get("n_cases")), labels=self.labels(labels)),
                       "report.html#summary")]
        for name in ("grant_rate", "deny_rate", "refer_rate", "automation_rate"):
            items += self.figure(name, furthest=False) if self.b.overall(name) is not None else []
        return items

    def art10(self) -> list[dict[str, Any]]:
        b, f = self.b, self.b.f
        rows = b.metric_rows
        sensitive = [b.attribute_label((a,)) for a in b.sensitive]
        intersections = [b.attribute_label(tuple(str(x) for x in i)) for i in (self.spec.get("intersections") or [])]
        stats = self.spec.get("statistics") or {}
        correction = str(stats.get("correction") or "holm")
        tested = [r for r in rows if attributes_of(r) and not is_missing(r.get("p_value"))]
        items = [_item(self.txt(
            "art10.groups",
            attributes=", ".join(sensitive + intersections) or DASH,
            rows=f.integer(len(tested)),
            metrics=f.integer(len({r.get("metric") for r in tested})),
            level=b.level,
            correction=self.txt.get(f"correction.{correction}") or correction,
            min=f.integer(b.min_group_size),
            suppressed=f.integer(sum(1 for r in rows if r.get("suppressed"))),
        ), "report.html#method")]
        if b.findings:
            status = [str(x.get("status", "")).upper() for x in b.findings]
            items.append(_item(self.txt(
                "art10.findings", fail=f.integer(status.count("FAIL") + status.count("ERROR")),
                total=f.integer(len(status)), warn=f.integer(status.count("WARN"))), "report.html#findings"))
        else:
            items.append(_item(self.txt("art10.no_thresholds"), "report.html#findings"))
        significant = self.significant()
        for r in significant:
            items.append(_item(self.txt("art10.disparity", sentence=b.disparity_sentence(r)),
                               self.link(str(r.get("metric")))))
        if not significant:
            items.append(_item(self.txt("art10.no_disparity"), "report.html#summary-disparities"))
        checks = [c for c in (self.d.get("checks") or []) if isinstance(c, Mapping)]
        if checks:
            results = [r for c in checks for r in (c.get("results") or []) if isinstance(r, Mapping)]
            items.append(_item(self.txt(
                "art10.quality", expectations=f.integer(len(results)), steps=f.integer(len(checks)),
                failed=f.integer(sum(1 for r in results if not r.get("success")))), "report.html#quality"))
        else:
            items.append(_item(self.txt("art10.no_quality"), "report.html#quality"))
        withheld = [str(x) for x in (self.engine.get("withheld") or [])]
        if self.engine and withheld and not self.engine.get("sees_sensitive"):
            items.append(_item(self.txt("art10.withheld", features=", ".join(
                b.attribute_label((a,)) for a in withheld))))
        elif self.engine and self.engine.get("sees_sensitive"):
            items.append(_item(self.txt("art10.sees", features=", ".join(sensitive) or DASH)))
        return items

    def art12(self) -> list[dict[str, Any]]:
        f = self.b.f
        steps = (self.d.get("journey") or {}).get("steps") or []
        counts = self.population.get("status_counts") or {}
        items = [_item(self.txt("art12.journey", n=f.integer(self.population.get("n_cases")),
                                steps=f.integer(len(steps))), "report.html#journey")]
        if counts:
            items.append(_item(self.txt("art12.accounting", errors=f.integer(counts.get("error") or 0),
                                        quarantined=f.integer(counts.get("quarantined") or 0)),
                               "report.html#quality-population"))
        items.append(_item(self.txt("integrity.text"), "report.html#reproducibility-hashes"))
        return items

    def art26(self) -> list[dict[str, Any]]:
        monitor = self.spec.get("monitor")
        if not isinstance(monitor, Mapping):
            return [_item(self.txt("art26.no_monitor"))]
        days = monitor.get("retention_days", MonitorSpec.model_fields["retention_days"].default)
        if days is None:
            return [_item(self.txt("art26.monitor_forever"))]
        return [_item(self.txt("art26.monitor", days=self.b.f.integer(days)))]

    def fl28(self) -> list[dict[str, Any]]:
        return self.figure("automation_rate", furthest=False) + self.figure("refer_rate", furthest=False)

    def kl637(self) -> list[dict[str, Any]]:
        if not self.engine:
            return []
        labels, review = self.outcome_labels()
        own = [x for x in labels if x not in review]
        return [_item(self.txt("kl637.outcomes", labels=self.labels(own), review=self.labels(review)),
                      "report.html#routing")] + self.figure("automation_rate", furthest=False)

    def trelleborg(self) -> list[dict[str, Any]]:
        if not self.engine:
            return []
        spec_engine = self.spec.get("engine") or {}
        kind = str(self.engine.get("kind") or spec_engine.get("kind") or "")
        digest = str(self.engine.get("definition_hash") or DASH)
        if kind == "recorded":
            return [_item(self.txt("trelleborg.recorded"))]
        if spec_engine.get("path"):
            text = self.txt("trelleborg.definition", path=str(spec_engine["path"]), hash=digest)
        elif spec_engine.get("target"):
            text = self.txt("trelleborg.target", target=str(spec_engine["target"]), hash=digest)
        else:
            text = self.txt("trelleborg.other", kind=kind or DASH, hash=digest)
        return [_item(text, "report.html#reproducibility")]

    def fria(self) -> list[dict[str, Any]]:
        b, f = self.b, self.b.f
        labels, review = self.outcome_labels()
        a: list[dict[str, Any]] = []
        if self.engine:
            a.append(_item(self.txt("fria.a.engine", engine=b.engine_name(), version=self.engine_version(),
                                    labels=self.labels(labels),
                                    features=f.integer(len(self.engine.get("features") or []))),
                           "report.html#journey"))
            a.append(_item(self.txt("fria.a.routing", labels=self.labels(review)), "report.html#routing"))
        monitor = self.spec.get("monitor")
        prefilled = {
            "a": a,
            "b": [_item(self.txt("fria.b.monitor"))] if isinstance(monitor, Mapping) else [],
            "c": self.groups_affected(),
            "d": self.risks(),
            "e": self.oversight(),
            "f": self.monitoring(),
        }
        return [
            {
                "id": f"fria-{e}",
                "title": self.txt(f"fria.{e}.title"),
                "prefilled": prefilled[e],
                "blanks": [self.txt(f"fria.{e}.q")],
            }
            for e in FRIA_ELEMENTS
        ]

    def blanks(self, provision: str) -> list[str]:
        keys = [k for k in self.txt.messages if k.startswith(f"{provision}.q_")]
        return [self.txt(k) for k in keys]

    def measured(self, provision: str) -> list[dict[str, Any]]:
        if provision == "art14":
            return self.oversight()
        if provision == "art72":
            return self.monitoring()
        if provision == "fria":
            return []
        return getattr(self, provision)()

    # ------------------------------------------------------------ the whole
    def build(self, made_on: date) -> dict[str, Any]:
        b, f, txt = self.b, self.b.f, self.txt
        name = str(self.spec.get("name") or "audit")
        run_id = str(self.d.get("run_id") or DASH)
        generated = str(self.d.get("generated_at") or DASH)
        kind = b.m.get(f"population.kind_{self.population.get('kind')}") or str(self.population.get("kind") or DASH)
        provisions = []
        for pid in PROVISIONS:
            provisions.append({
                "id": pid,
                "ref": txt(f"{pid}.ref"),
                "title": txt(f"{pid}.title"),
                "rule": txt(f"{pid}.rule"),
                "measured": self.measured(pid),
                "blanks": self.blanks(pid),
                "elements": self.fria() if pid == "fria" else [],
            })
        labels = {k.split(".", 1)[1]: v for k, v in txt.messages.items() if k.startswith("labels.")}
        return {
            "lang": txt.language,
            "language_name": txt("language_name"),
            "other_language": txt("other_language"),
            "title": txt("title", name=name),
            "subtitle": txt("subtitle", run_id=run_id),
            "contents": txt("contents"),
            "labels": labels,
            "notice": {"heading": txt("notice.heading"), "text": txt("notice.text")},
            "dates": {
                "heading": txt("dates.heading"),
                "lines": [
                    txt("dates.annex_iii"),
                    txt("dates.omnibus", version=__version__),
                    txt("dates.made", date=made_on.isoformat(), run_id=run_id, generated=generated),
                ],
            },
            "meta": {
                "heading": txt("meta.heading"),
                "rows": [
                    (txt("meta.audit"), name),
                    (txt("meta.run"), run_id),
                    (txt("meta.generated"), generated),
                    (txt("meta.made_on"), made_on.isoformat()),
                    (txt("meta.engine"), txt("meta.engine_value", name=b.engine_name(), version=self.engine_version())
                     if self.engine else b.engine_name()),
                    (txt("meta.engine_hash"), str(self.engine.get("definition_hash") or DASH)),
                    (txt("meta.population"), txt("meta.population_value", kind=kind,
                                                 n=f.integer(self.population.get("n_cases")))),
                    (txt("meta.insyn"), str(self.d.get("insyn_version") or __version__)),
                ],
            },
            "identity": {
                "heading": txt("identity.heading"),
                "intro": txt("identity.intro"),
                "blanks": [txt("identity.deployer"), txt("identity.system"), txt("identity.purpose")],
            },
            "integrity": {"heading": txt("integrity.heading"), "text": txt("integrity.text")},
            "provisions": provisions,
        }


def _languages(result: AuditResult, languages: Sequence[str] | None) -> list[str]:
    if languages is not None:
        chosen = list(languages)
    else:
        report = (result.spec or {}).get("report") if isinstance(result.spec, Mapping) else None
        first = str((report or {}).get("language") or "en") if isinstance(report, Mapping) else "en"
        chosen = [first] + [lang for lang in LANGUAGES if lang != first]
    for lang in chosen:
        if lang not in LANGUAGES:
            raise SpecError(f"A dossier language must be one of {', '.join(LANGUAGES)}. Got {lang!r}.")
    if not chosen:
        raise SpecError(f"A dossier needs at least one language of {', '.join(LANGUAGES)}. Got none.")
    return chosen


def build_dossier(result: AuditResult, *, language: str, made_on: date | None = None) -> dict[str, Any]:
    """Build the view model of a run's dossier in one language.

    Parameters
    ----------
    result : AuditResult
        The run.
    language : {"en", "sv"}
        The language.
    made_on : datetime.date, optional
        The date the dossier is made (default: today, UTC).

    Returns
    -------
    dict
        ``title``, ``notice``, ``dates``, ``meta``, ``identity``,
        ``integrity`` and ``provisions``: one entry per id of
        :data:`PROVISIONS` with ``ref``, ``title``, ``rule``, ``measured``
        (``[{text, href}]``, ``href`` into ``report.html``), ``blanks`` (the
        questions the deployer answers) and, for ``fria``, ``elements``
        (``(a)`` to ``(f)``, each with ``prefilled`` items and ``blanks``).
    """
    (lang,) = _languages(result, [language])
    return _View(result, lang).build(made_on or datetime.now(UTC).date())


# --------------------------------------------------------------------------
# rendering


def _css() -> Markup:
    """The report's stylesheet and the dossier's own rules, inlined."""
    return stylesheet("style.css") + stylesheet("dossier.css")


def _render(result: AuditResult, template: str, kind: str, made_on: date | None,
            languages: Sequence[str] | None) -> str:
    day = made_on or datetime.now(UTC).date()
    views = [_View(result, lang).build(day) for lang in _languages(result, languages)]
    return render_template(kind, template, views=views, css=_css(), insyn_version=__version__)


def render_dossier_html(result: AuditResult, *, made_on: date | None = None,
                        languages: Sequence[str] | None = None) -> str:
    """Render ``dossier.html``: the run's evidence mapped to the rules, in Swedish and English.

    Parameters
    ----------
    result : AuditResult
        The run.
    made_on : datetime.date, optional
        The date the dossier is made (default: today, UTC).
    languages : sequence of {"en", "sv"}, optional
        The languages, in order (default: the spec's ``report.language``
        first, then the other).

    Returns
    -------
    str
        A self-contained HTML document (no scripts, no requests) whose links
        point at anchors of ``report.html`` in the same folder.
    """
    return _render(result, "dossier.html.j2", "html", made_on, languages)


def render_dossier_md(result: AuditResult, *, made_on: date | None = None,
                      languages: Sequence[str] | None = None) -> str:
    """Render ``dossier.md``: the same dossier as :func:`render_dossier_html`, in Markdown.

    Parameters
    ----------
    result : AuditResult
        The run.
    made_on : datetime.date, optional
        As for :func:`render_dossier_html`.
    languages : sequence of {"en", "sv"}, optional
        As for :func:`render_dossier_html`.

    Returns
    -------
    str
        CommonMark; blanks are quoted blocks with an answer line.
    """
    text = _render(result, "dossier.md.j2", "md", made_on, languages)
    out: list[str] = []
    for line in (raw.rstrip() for raw in text.splitlines()):
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"
