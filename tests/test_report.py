"""Tests of audit.report: the HTML, Markdown and notebook reports of a run.

Most tests render one hand-made :class:`AuditResult` (``fixture_result``)
whose numbers are written out below, so that every expected string is
computed by hand from them, e.g. a refusal rate of 45/150 = 0.30 reads
``30.0%`` in English and ``30,0 %`` in Swedish.
"""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import audit.report as report_pkg
from audit import AuditResult, SpecError
from audit._columns import ALLOWED_VALUES
from audit.report import (
    SECTION_IDS,
    render_html,
    render_json,
    render_markdown,
    render_metrics_csv,
    render_reports,
    render_summary_html,
)
from audit.report._charts import NEUTRALS, PALETTE, ChartRow, IntervalPanel, interval_chart, nice_ticks
from audit.report._format import KINDS, Formatter
from audit.report._messages import LANGUAGES, load_catalogue, placeholders

REPORT_DIR = Path(report_pkg.__file__).parent
SCRIPT = "<script>alert(1)</script>"
REQUIRED_SECTIONS = [s for s in SECTION_IDS if s != "other"]


# --------------------------------------------------------------------------
# the fixture run


def _row(metric: str, attributes: list[str], group: str, n: int, value: float | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": metric,
        "attributes": attributes,
        "group": group,
        "n": n,
        "value": value,
        "ci_low": None,
        "ci_high": None,
        "reference_group": None,
        "reference_value": None,
        "difference": None,
        "ratio": None,
        "p_value": None,
        "p_adjusted": None,
        "suppressed": False,
        "count": None,
        "diff_ci_low": None,
        "diff_ci_high": None,
        "ratio_ci_low": None,
        "ratio_ci_high": None,
        "mdd": None,
        "test": "",
        "four_fifths": None,
        "max_min_gap": None,
        "min_max_ratio": None,
        "reason": "",
    }
    row.update(extra)
    return row


def _metrics() -> list[dict[str, Any]]:
    br = ["birth_region"]
    ref = {"reference_group": "sweden", "reference_value": 0.15}
    rows = [
        # refusal: 80 of 400 overall; 30/200 in Sweden (reference); 45/150 outside the EU
        _row("deny_rate", [], "all", 400, 0.20, ci_low=0.1636, ci_high=0.2421),
        _row("deny_rate", br, "sweden", 200, 0.15, ci_low=0.1072, ci_high=0.2061, **ref, difference=0.0, ratio=1.0),
        _row(
            "deny_rate",
            br,
            "outside_eu",
            150,
            0.30,
            ci_low=0.2322,
            ci_high=0.3779,
            **ref,
            difference=0.15,
            ratio=2.0,
            ratio_ci_low=1.33,
            ratio_ci_high=3.0,
            diff_ci_low=0.06,
            diff_ci_high=0.24,
            p_value=0.0004,
            p_adjusted=0.0012,
            mdd=0.1123,
            test="two-proportion z-test",
        ),
        # a small group: suppressed although the table holds a value of 0
        _row("deny_rate", br, "nordic", 5, 0.0, suppressed=True, **ref),
        # a group name that is an attack
        _row(
            "deny_rate",
            br,
            SCRIPT,
            45,
            0.20,
            ci_low=0.1090,
            ci_high=0.3389,
            **ref,
            difference=0.05,
            ratio=1.3333,
            ratio_ci_low=0.7,
            ratio_ci_high=2.2,
            p_value=0.4,
            p_adjusted=0.8,
            mdd=0.19,
            test="two-proportion z-test",
        ),
        _row(
            "deny_rate",
            ["sex"],
            "female",
            210,
            0.19,
            ci_low=0.14,
            ci_high=0.25,
            reference_group="female",
            reference_value=0.19,
            difference=0.0,
            ratio=1.0,
        ),
        _row(
            "deny_rate",
            ["sex"],
            "male",
            190,
            0.2105,
            ci_low=0.16,
            ci_high=0.27,
            reference_group="female",
            reference_value=0.19,
            difference=0.0205,
            ratio=1.108,
            p_adjusted=1.0,
            test="two-proportion z-test",
        ),
        _row(
            "deny_rate",
            ["sex", "birth_region"],
            "female & outside_eu",
            70,
            0.3286,
            ci_low=0.23,
            ci_high=0.44,
            reference_group="female & sweden",
            reference_value=0.14,
            difference=0.1886,
            ratio=2.347,
            p_adjusted=0.004,
            test="two-proportion z-test",
        ),
        _row(
            "deny_rate",
            ["sex", "birth_region"],
            "female & sweden",
            100,
            0.14,
            ci_low=0.09,
            ci_high=0.22,
            reference_group="female & sweden",
            reference_value=0.14,
            difference=0.0,
            ratio=1.0,
        ),
        # routing: 100 of 400 referred, 300 automated
        _row("refer_rate", [], "all", 400, 0.25, ci_low=0.2101, ci_high=0.2948),
        _row(
            "refer_rate",
            br,
            "sweden",
            200,
            0.24,
            ci_low=0.18,
            ci_high=0.30,
            reference_group="sweden",
            reference_value=0.24,
            difference=0.0,
            ratio=1.0,
        ),
        _row(
            "refer_rate",
            br,
            "outside_eu",
            150,
            0.264,
            ci_low=0.20,
            ci_high=0.34,
            reference_group="sweden",
            reference_value=0.24,
            difference=0.024,
            ratio=1.1,
            ratio_ci_low=0.8,
            ratio_ci_high=1.5,
            p_adjusted=1.0,
            test="two-proportion z-test",
        ),
        _row("automation_rate", [], "all", 400, 0.75, ci_low=0.7052, ci_high=0.7899),
        _row("accuracy", [], "all", 400, 0.9, ci_low=0.8674, ci_high=0.9257),
        # amounts: mean shortfall SEK 700 in Sweden, SEK 1,100 outside the EU
        _row("mean_shortfall", [], "all", 300, 812.4, ci_low=760.0, ci_high=865.0),
        _row(
            "mean_shortfall",
            br,
            "sweden",
            160,
            700.0,
            ci_low=640.0,
            ci_high=760.0,
            reference_group="sweden",
            reference_value=700.0,
            difference=0.0,
            ratio=1.0,
        ),
        _row(
            "mean_shortfall",
            br,
            "outside_eu",
            110,
            1100.0,
            ci_low=1010.0,
            ci_high=1190.0,
            reference_group="sweden",
            reference_value=700.0,
            difference=400.0,
            ratio=1.5714,
            diff_ci_low=290.0,
            diff_ci_high=510.0,
            p_adjusted=0.0001,
            test="Welch's t-test",
        ),
        # undefined: a rate with an empty denominator is NaN with a reason, never 0
        _row("wrongful_grant_rate", [], "all", 400, 0.05, ci_low=0.03, ci_high=0.08),
        _row(
            "wrongful_grant_rate",
            br,
            "outside_eu",
            150,
            None,
            reference_group="sweden",
            reason="no case without entitlement in the group",
        ),
        # counterfactual flips: the registry puts them in their own section
        _row("flip_rate", [], "all", 400, 0.04, ci_low=0.025, ci_high=0.064),
        _row(
            "flip_rate",
            br,
            "sweden",
            200,
            0.02,
            ci_low=0.008,
            ci_high=0.05,
            reference_group="sweden",
            reference_value=0.02,
            difference=0.0,
            ratio=1.0,
        ),
        _row(
            "flip_rate",
            br,
            "outside_eu",
            150,
            0.0667,
            ci_low=0.036,
            ci_high=0.12,
            reference_group="sweden",
            reference_value=0.02,
            difference=0.0467,
            ratio=3.333,
            p_adjusted=0.03,
            test="Fisher's exact test",
        ),
        # a metric the registry does not know: shown under "Further metrics"
        _row("experimental_rate", [], "all", 400, 0.1, ci_low=0.073, ci_high=0.134),
        _row("n", br, "sweden", 200, 200.0),
        _row("n", br, "outside_eu", 150, 150.0),
        _row("n", br, "nordic", 5, 5.0, suppressed=True),
    ]
    return rows


def _findings() -> list[dict[str, Any]]:
    return [
        {
            "name": "refer_rate ratio between 0.8 and 1.25 for birth_region=outside_eu vs sweden",
            "status": "PASS",
            "severity": "fail",
            "metric": "refer_rate",
            "attributes": ["birth_region"],
            "group": "outside_eu",
            "reference_group": "sweden",
            "statistic": "ratio",
            "observed": 1.1,
            "bound": "between 0.8 and 1.25",
            "bound_min": 0.8,
            "bound_max": 1.25,
            "ci_low": 0.8,
            "ci_high": 1.5,
            "p_adjusted": 1.0,
            "message": "ok",
        },
        {
            "name": "deny_rate ratio <= 1.25 for birth_region=outside_eu vs sweden",
            "status": "FAIL",
            "severity": "fail",
            "metric": "deny_rate",
            "attributes": ["birth_region"],
            "group": "outside_eu",
            "reference_group": "sweden",
            "statistic": "ratio",
            "observed": 2.0,
            "bound": "<= 1.25",
            "bound_min": None,
            "bound_max": 1.25,
            "ci_low": 1.33,
            "ci_high": 3.0,
            "p_adjusted": 0.0012,
            "message": "observed 2 outside <= 1.25",
        },
        {
            "name": "deny_rate ratio <= 1.25 for birth_region=nordic vs sweden",
            "status": "ERROR",
            "severity": "fail",
            "metric": "deny_rate",
            "attributes": ["birth_region"],
            "group": "nordic",
            "reference_group": "sweden",
            "statistic": "ratio",
            "observed": None,
            "bound": "<= 1.25",
            "bound_min": None,
            "bound_max": 1.25,
            "ci_low": None,
            "ci_high": None,
            "p_adjusted": None,
            "message": "the group is suppressed (n < 10)",
        },
    ]


def _parts(**overrides: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "run_id": "20260101T000000000Z-abcdef12",
        "generated_at": "2026-01-01T00:00:00+00:00",
        "spec": {
            "name": "fixture",
            "description": "A hand-made run.",
            "seed": 7,
            "sensitive_features": ["sex", "birth_region"],
            "intersections": [["sex", "birth_region"]],
            "statistics": {"min_group_size": 10, "alpha": 0.05, "correction": "holm", "bootstrap": 2000},
            "thresholds": [
                {"metric": "deny_rate", "ratio_max": 1.25},
                {"metric": "refer_rate", "ratio_min": 0.8, "ratio_max": 1.25},
            ],
            "report": {"formats": ["html", "md", "json"], "language": "en"},
            "lineage": {"namespace": "insyn-test", "api_key": "s3cr3t-key"},
        },
        "population": {
            "kind": "synthetic",
            "path": "datasets/sweden/population-2026.yaml",
            "n_cases": 405,
            "status_counts": {"ok": 396, "error": 4, "quarantined": 5},
            "bias": {"refer": {"birth_region": {"outside_eu": 1.3}}},
            "provenance": {},
        },
        "engine": {
            "kind": "rules",
            "name": "test-rpa",
            "version": "1.2",
            "definition_hash": "ab" * 32,
            "n_cases": 400,
            "n_errors": 4,
            "duration_s": 2.0,
            "cases_per_s": 200.0,
            "review": {
                "configured": True,
                "referred": 100,
                "resolved": 90,
                "overrides": 3,
                "by": "recorded:caseworker_outcome",
            },
            "truth": {
                "kind": "reference",
                "engine": {"name": "reference", "version": "1", "definition_hash": "cd" * 32},
            },
        },
        "checks": [
            {
                "step": "intake",
                "policy": "warn",
                "success": False,
                "n_failed_cases": 20,
                "results": [
                    {
                        "suite": "application",
                        "expectation": "expect_column_values_to_not_be_null",
                        "column": "rent",
                        "kwargs": {"column": "rent"},
                        "success": False,
                        "unexpected_count": 20,
                        "unexpected_percent": 5.0,
                        "observed_value": None,
                        "sample_case_ids": [f"case-{i:03d}" for i in range(1, 21)],
                        "message": None,
                    },
                    {
                        "suite": "application",
                        "expectation": "expect_column_to_exist",
                        "column": "sex",
                        "kwargs": {"column": "sex"},
                        "success": True,
                        "unexpected_count": 0,
                        "unexpected_percent": 0.0,
                        "observed_value": None,
                        "sample_case_ids": [],
                        "message": None,
                    },
                ],
            }
        ],
        "journey": {
            "steps": [
                {
                    "name": "source",
                    "actor": "system",
                    "rows_in": 405,
                    "rows_out": 405,
                    "rows_rejected": 0,
                    "rows_errored": 0,
                    "duration_s": 0.5,
                },
                {
                    "name": "intake",
                    "actor": "system",
                    "rows_in": 405,
                    "rows_out": 400,
                    "rows_rejected": 5,
                    "rows_errored": 0,
                    "duration_s": 0.1,
                },
                {
                    "name": "decision",
                    "actor": "engine",
                    "rows_in": 400,
                    "rows_out": 396,
                    "rows_rejected": 0,
                    "rows_errored": 4,
                    "duration_s": 2.0,
                    "columns_added": ["outcome", "amount"],
                },
                # deliberately unbalanced: 396 in, 390 out, nothing rejected or errored
                {
                    "name": "review",
                    "actor": "caseworker",
                    "rows_in": 396,
                    "rows_out": 390,
                    "rows_rejected": 0,
                    "rows_errored": 0,
                    "duration_s": 0.2,
                },
            ],
            "fields": [
                {
                    "column": "rent",
                    "origin": "applicant",
                    "discretion": False,
                    "used_by_engine": True,
                    "changed_by": [],
                },
                {
                    "column": "able_to_work",
                    "origin": "caseworker",
                    "discretion": True,
                    "used_by_engine": True,
                    "changed_by": ["caseworker"],
                },
                {
                    "column": "municipality_code",
                    "origin": "registry:folkbokforing",
                    "discretion": False,
                    "used_by_engine": True,
                    "changed_by": [],
                },
            ],
        },
        "metrics": _metrics(),
        "findings": _findings(),
    }
    parts.update(overrides)
    return parts


def _decisions() -> pd.DataFrame:
    # 4 decided cases, 3 with reason codes; the engine error does not count
    return pd.DataFrame(
        {
            "case_id": pd.Series(["a", "b", "c", "d", "e"], dtype="str"),
            "status": pd.Series(["ok", "ok", "ok", "ok", "error"], dtype="str"),
            "reasons": pd.Series(["R1", "", "R2;R3", "R4", ""], dtype="str"),
        }
    )


@pytest.fixture(scope="module")
def fixture_result() -> AuditResult:
    return AuditResult.build(decisions=_decisions(), **_parts())


@pytest.fixture(scope="module")
def html_en(fixture_result: AuditResult) -> str:
    return render_html(fixture_result, language="en")


@pytest.fixture(scope="module")
def html_sv(fixture_result: AuditResult) -> str:
    return render_html(fixture_result, language="sv")


@pytest.fixture(scope="module")
def md_en(fixture_result: AuditResult) -> str:
    return render_markdown(fixture_result, language="en")


# --------------------------------------------------------------------------
# a small HTML reader


class _Page(HTMLParser):
    """Collects headings, tables, svg elements and section order from a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str]] = []
        self.sections: list[str] = []
        self.tables: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.svgs: list[dict[str, Any]] = []
        self._stack: list[str] = []
        self._heading: list[Any] | None = None
        self._table: dict[str, Any] | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._svg: dict[str, Any] | None = None
        self._svg_text: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading = [int(tag[1]), []]
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        if tag == "table":
            self._table = {"classes": a.get("class") or "", "th": [], "caption": False, "rows": []}
        if tag == "caption" and self._table is not None:
            self._table["caption"] = True
            self._caption: list[str] | None = []
        if tag == "th" and self._table is not None:
            self._table["th"].append(a)
        if tag == "tr" and self._table is not None:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag == "svg":
            self._svg = {"attrs": a, "title": {}, "desc": {}}
        if self._svg is not None and tag in ("title", "desc"):
            self._svg_text = (tag, [])
            self._svg[tag][a.get("id")] = ""
            self._svg_id = a.get("id")

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._table is not None:
            self._table["caption_text"] = "".join(self._caption or []).strip()
            self._caption = None
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading is not None:
            self.headings.append((self._heading[0], "".join(self._heading[1]).strip()))
            self._heading = None
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None and self._table is not None:
            self._table["rows"].append(self._row)
            self._row = None
        if tag == "table" and self._table is not None:
            self.tables.append(self._table)
            self._table = None
        if self._svg is not None and tag in ("title", "desc") and self._svg_text is not None:
            self._svg[tag][self._svg_id] = "".join(self._svg_text[1]).strip()
            self._svg_text = None
        if tag == "svg" and self._svg is not None:
            self.svgs.append(self._svg)
            self._svg = None

    def handle_data(self, data: str) -> None:
        if getattr(self, "_caption", None) is not None:
            self._caption.append(data)  # type: ignore[union-attr]
        if self._heading is not None:
            self._heading[1].append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._svg_text is not None:
            self._svg_text[1].append(data)


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


# --------------------------------------------------------------------------
# self-contained, sections, language


def test_html_is_self_contained(html_en: str, html_sv: str) -> None:
    for html in (html_en, html_sv):
        assert html.startswith("<!doctype html>")
        assert not re.search(r"""\s(src|srcset|poster|data)\s*=""", html), "no element may load a resource"
        assert not re.search(r"""href\s*=\s*["']?(https?:|//|file:)""", html), "links stay inside the page"
        assert not re.search(r"<link\b", html, re.I)
        assert not re.search(r"<script\b", html, re.I)
        assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:|//)", html)
        assert "@font-face" not in html
        assert "Content-Security-Policy" in html and "default-src 'none'" in html
        assert "<style>" in html and '<meta name="viewport"' in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_section_is_present_in_order(fixture_result: AuditResult, language: str) -> None:
    html = render_html(fixture_result, language=language)
    md = render_markdown(fixture_result, language=language)
    page = _page(html)
    messages = load_catalogue(language)
    assert page.sections == list(SECTION_IDS), page.sections  # "other" is present: experimental_rate is unregistered
    h2 = [text for level, text in page.headings if level == 2]
    md_h2 = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    for sid in SECTION_IDS:
        title = messages(f"{sid}.title")
        assert title in h2, (sid, title)
        assert title in md_h2, (sid, title)
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("formats", [["html", "md", "json"], ["md"], ["html"], ["json"]])
def test_reports_from_one_view_model_equal_each_report_rendered_alone(
    fixture_result: AuditResult, language: str, formats: list[str]
) -> None:
    """A run folder renders both reports from one view model; each is what its own function renders."""
    both = render_reports(fixture_result, formats, language=language)
    assert sorted(both) == sorted(f for f in formats if f in ("html", "md"))
    if "html" in both:
        assert both["html"] == render_html(fixture_result, language=language)
    if "md" in both:
        assert both["md"] == render_markdown(fixture_result, language=language)


def test_a_run_without_data_renders_every_section_with_a_reason() -> None:
    """Absent sections say why; nothing crashes when a run has no metrics, engine, checks or journey."""
    bare = AuditResult.build(
        run_id="r",
        generated_at="2026-01-01T00:00:00+00:00",
        spec={"name": "bare"},
        population={"kind": "aggregated", "n_cases": 0},
        engine=None,
        checks=[],
        journey={},
        metrics=[],
        findings=[],
    )
    for language in LANGUAGES:
        m = load_catalogue(language)
        html = render_html(bare, language=language)
        md = render_markdown(bare, language=language)
        page = _page(html)
        assert page.sections == REQUIRED_SECTIONS
        for key in (
            "affected.absent",
            "routing.absent",
            "amounts.absent",
            "baseline.absent_truth",
            "journey.absent",
            "findings.absent",
            "quality.no_checks",
            "summary.no_thresholds",
        ):
            text = m(key)
            assert text.replace("'", "&#39;") in html, key
            assert text in md.replace("\\", ""), key
        assert m("summary.lead_aggregated", n="0") in html


def test_unknown_language_is_a_spec_error(fixture_result: AuditResult) -> None:
    with pytest.raises(SpecError, match=r"report\.language must be one of en, sv\. Got 'de'\."):
        render_html(fixture_result, language="de")


def test_language_defaults_to_the_spec(fixture_result: AuditResult) -> None:
    swedish = AuditResult.build(**_parts(spec={**_parts()["spec"], "report": {"language": "sv"}}))
    assert '<html lang="sv">' in render_html(swedish)
    assert '<html lang="en">' in render_html(fixture_result)


# --------------------------------------------------------------------------
# message catalogues


def _flat(language: str) -> dict[str, str]:
    return dict(load_catalogue(language).messages)


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    en, sv = _flat("en"), _flat("sv")
    assert sorted(set(en) - set(sv)) == [], "keys missing from sv.yaml"
    assert sorted(set(sv) - set(en)) == [], "keys missing from en.yaml"
    for key in en:
        assert en[key].strip() and sv[key].strip(), key
        assert placeholders(en[key]) == placeholders(sv[key]), (key, en[key], sv[key])
    # the raw YAML files have no empty or non-string leaves either
    for language in LANGUAGES:
        tree = yaml.safe_load((REPORT_DIR / "messages" / f"{language}.yaml").read_text(encoding="utf-8"))
        stack = [tree]
        while stack:
            node = stack.pop()
            for value in node.values():
                if isinstance(value, dict):
                    stack.append(value)
                else:
                    assert isinstance(value, str) and value.strip(), (language, value)


def test_every_literal_key_in_templates_and_code_exists() -> None:
    used: set[str] = set()
    for template in (REPORT_DIR / "templates").glob("*.j2"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text(encoding="utf-8")))
    for module in REPORT_DIR.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bm(?:\.get)?\(\s*["']([a-z0-9_.]+)["']""", text))
        used |= set(re.findall(r"""\.format\(\s*["']([a-z0-9_.]+)["']""", text))
    assert len(used) > 150, f"the key scan found only {len(used)} keys"
    for language in LANGUAGES:
        missing = sorted(used - set(_flat(language)))
        assert missing == [], f"{language}.yaml lacks {missing}"


def test_catalogues_cover_every_registered_metric_test_and_value() -> None:
    from audit.metrics import METRICS

    for language in LANGUAGES:
        flat = _flat(language)
        for name in METRICS:
            assert f"metric.{name}.label" in flat and f"metric.{name}.description" in flat, (language, name)
        for column, values in ALLOWED_VALUES.items():
            assert f"attribute.{column}" in flat, (language, column)
            for value in values:
                assert f"value.{column}.{value}" in flat, (language, column, value)
        for test in (
            "two_proportion_z_test",
            "fisher_s_exact_test",
            "welch_s_t_test",
            "z_test_delta_method",
            "z_test_hanley_mcneil",
        ):
            assert f"test.{test}" in flat
        for status in ("pass", "fail", "warn", "error"):
            assert f"status.{status}" in flat
        # keys the code builds from a closed set of names
        for kind in KINDS:
            assert f"kind.{kind}" in flat
        for status in ("ok", "error", "quarantined"):
            assert f"quality.status_{status}" in flat
        for section in SECTION_IDS:
            assert f"{section}.title" in flat
        for policy in ("fail", "warn", "quarantine"):
            assert f"quality.policy_{policy}" in flat
        for correction in ("holm", "bh", "bonferroni", "none"):
            assert f"method.correction_{correction}" in flat
        for kind in ("synthetic", "file", "sql", "aggregated"):
            assert f"population.kind_{kind}" in flat


def test_a_broken_catalogue_names_the_file_and_key() -> None:
    from audit.exceptions import DataError
    from audit.report import _messages

    bad = {"summary": {"title": ""}}
    with pytest.raises(DataError, match=r"x\.yaml: summary\.title must be a non-empty string\. Got ''\."):
        _messages._flatten(bad, "", {}, "x.yaml")
    with pytest.raises(KeyError, match=r"no message 'nope\.nothing'"):
        load_catalogue("en")("nope.nothing")


# --------------------------------------------------------------------------
# escaping, suppression, undefined values, privacy


def test_a_group_named_script_is_text_in_html_and_markdown(html_en: str, md_en: str) -> None:
    assert SCRIPT not in html_en
    assert "<script" not in html_en.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escaped in html_en
    page = _page(html_en)
    cells = [c for t in page.tables for row in t["rows"] for c in row]
    assert any(c == SCRIPT for c in cells), "the group shows as the literal text in a table cell"
    assert f">{escaped}</text>" in html_en, "the chart label is escaped SVG text"
    assert "<script" not in md_en.lower()
    assert escaped in md_en


def test_suppressed_groups_are_marked_never_zero(html_en: str, md_en: str) -> None:
    page = _page(html_en)
    groups = next(
        t
        for t in page.tables
        if t["caption_text"] == "Refusal rate by group, with the comparison to the reference group"
    )
    nordic = next(r for r in groups["rows"] if r[0] == "born in another Nordic country")
    # group, n, value, ci, ratio, difference, p, note
    assert nordic[1] == "<10"
    assert nordic[2] == "–" and nordic[3] == "–" and nordic[4] == "–"
    assert nordic[-1] == "suppressed: fewer than 10 applications"
    assert 'class="is-suppressed"' in html_en
    md_row = next(
        line for line in md_en.splitlines() if "| born in another Nordic country |" in line and "suppressed" in line
    )
    cells = [c.strip() for c in md_row.strip("|").split("|")]
    assert cells[2] == "<10" and cells[3] == "–", cells
    assert "0.0%" not in md_row and "0.0%" not in " ".join(nordic)
    # in the chart: no mark, the note as text
    assert "suppressed: fewer than 10 applications</text>" in html_en
    # and the desc of the chart counts it
    assert "1 groups suppressed because they are too small." in html_en


def test_undefined_values_show_their_reason(html_en: str) -> None:
    assert "not defined: no case without entitlement in the group" in html_en
    assert 'class="is-undefined"' in html_en


def test_personnummer_shaped_text_is_masked(tmp_path: Path) -> None:
    # built at run time so that no file holds one: 12-12-12, 1212 with a dash
    pnr = "".join(["12", "12", "12", "-", "12", "12"])
    parts = _parts()
    parts["metrics"] = [
        *parts["metrics"],
        _row("deny_rate", ["birth_region"], f"id {pnr}", 40, 0.1, reference_group="sweden", reference_value=0.15),
    ]
    result = AuditResult.build(**parts)
    html = render_html(result, language="en")
    md = render_markdown(result, language="en")
    assert pnr not in html and pnr not in md
    assert "id [personnummer removed]" in html and "id \\[personnummer removed\\]" in md


def test_secrets_in_the_spec_are_not_shown(html_en: str, md_en: str) -> None:
    assert "s3cr3t-key" not in html_en and "s3cr3t-key" not in md_en
    assert "api_key: &#39;***&#39;" in html_en


def test_no_per_case_rows_reach_the_report(html_en: str, md_en: str) -> None:
    # 20 example ids were recorded by the check; at most three are shown
    shown = [f"case-{i:03d}" for i in range(1, 21) if f"case-{i:03d}" in html_en]
    assert shown == ["case-001", "case-002", "case-003"]
    assert "case-004" not in md_en


def test_report_size_does_not_grow_with_cases() -> None:
    small = AuditResult.build(decisions=_decisions(), **_parts())
    n = 200_000
    big_decisions = pd.DataFrame(
        {
            "case_id": pd.Series([f"x{i}" for i in range(n)], dtype="str"),
            "status": pd.Series(["ok"] * n, dtype="str"),
            "reasons": pd.Series(["R1", ""] * (n // 2), dtype="str"),
        }
    )
    big = AuditResult.build(decisions=big_decisions, **_parts())
    a, b = render_html(small, language="en"), render_html(big, language="en")
    assert abs(len(a) - len(b)) < 100, (len(a), len(b))
    assert "x199999" not in b
    # 1 of every 2 cases has a reason code: 50.0%, 100,000 of 200,000
    assert "50.0%" in b and "100,000 of 200,000 decided applications" in b


# --------------------------------------------------------------------------
# numbers as computed by hand


def test_numbers_are_formatted_from_the_results(html_en: str, html_sv: str, md_en: str) -> None:
    # 45/150 outside the EU against 30/200 in Sweden: 30.0% vs 15.0%, ratio 2.00, difference +15.0 pp
    sentence = (
        "Refusal rate for born outside the EU: 30.0% (95% CI 23.2–37.8%), against 15.0% for born in "
        "Sweden, the reference group. That is 2.00 times the reference (95% CI 1.33–3.00; adjusted p: "
        "0.001)."
    )
    assert sentence.replace("'", "&#39;") in html_en
    assert sentence in md_en
    assert "30,0\u00a0%" in html_sv and "2,00 gånger referensen" in html_sv
    # the mean shortfall outside the EU: SEK 1,100 (1,010–1,190), difference +SEK 400
    assert "SEK 1,100" in html_en and "SEK 1,010–1,190" in html_en and "SEK +400" in html_en
    assert "1\u00a0100 kr" in html_sv
    # the engine took 2 s for 400 cases: 200 per second
    assert "2.00 s (200 applications per second)" in html_en
    # accuracy 0.9 is the agreement with the law's baseline
    assert "90.0% (86.7–92.6%)" in html_en
    # 3 of 4 decided cases have reason codes (the engine error is not a decision)
    assert "75.0%" in html_en and "3 of 4 decided applications" in html_en
    # status counts: 396 of 405 decided = 97.8%, 4 errors = 1.0%, 5 held back = 1.2%
    page = _page(html_en)
    status = next(t for t in page.tables if t["rows"] and t["rows"][0] == ["Status", "Applications", "Share"])
    assert status["rows"][1:] == [
        ["decided", "396", "97.8%"],
        ["engine could not decide", "4", "1.0%"],
        ["held back by data checks", "5", "1.2%"],
    ]


def test_journey_accounts_for_every_row(html_en: str) -> None:
    page = _page(html_en)
    steps = next(t for t in page.tables if t["rows"] and t["rows"][0][:2] == ["Step", "Actor"])
    accounted = {row[0]: row[6] for row in steps["rows"][1:]}
    # 405 = 405; 405 = 400 + 5 rejected; 400 = 396 + 4 errored; 396 != 390
    assert accounted == {"Source": "yes", "Intake checks": "yes", "Decision": "yes", "Caseworker review": "no"}
    assert "5 rejected, 0 errored" in html_en and "0 rejected, 4 errored" in html_en
    # a registry origin with a name: the actor's label and the registry
    assert "Registry (folkbokforing)" in html_en
    assert "The engine sees these fields that rest on a caseworker&#39;s judgement: able_to_work." in html_en


def test_findings_are_ordered_worst_first(html_en: str) -> None:
    page = _page(html_en)
    findings = next(t for t in page.tables if "findings" in t["classes"])
    statuses = [row[0] for row in findings["rows"][1:]]
    assert statuses == ["ERROR", "FAIL", "PASS"]
    error = findings["rows"][1]
    assert "the group is suppressed (n &lt; 10)" not in error[2] and "the group is suppressed (n < 10)" in error[2]


def test_markdown_has_the_same_findings_as_html(html_en: str, md_en: str) -> None:
    page = _page(html_en)
    table = next(t for t in page.tables if "findings" in t["classes"])
    html_rows = [(r[0], r[1], r[3], r[4], r[5], r[6], r[7]) for r in table["rows"][1:]]
    section = md_en.split("## All findings", 1)[1].split("\n## ", 1)[0]
    md_rows = []
    for line in section.splitlines():
        if not line.startswith("| **"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        md_rows.append(
            (cells[0].strip("*"), cells[1], cells[3], cells[4], cells[5], cells[6], cells[7].replace("&lt;", "<"))
        )
    assert md_rows == html_rows
    assert len(md_rows) == 3


def test_formatter_by_hand() -> None:
    en, sv = Formatter(load_catalogue("en")), Formatter(load_catalogue("sv"))
    assert en.percent(0.3126) == "31.3%" and sv.percent(0.3126) == "31,3\u00a0%"
    assert en.integer(1234567) == "1,234,567" and sv.integer(1234567) == "1\u00a0234\u00a0567"
    assert en.amount(1234.4) == "SEK 1,234" and sv.amount(1234.4) == "1\u00a0234 kr"
    assert en.p_value(0.0004) == "<\u00a00.001" and en.p_value(0.0312) == "0.031"
    assert en.difference(0.15, "rate") == "+15.0 pp" and sv.difference(-0.021, "rate") == "−2,1 procentenheter"
    assert en.interval(0.2322, 0.3779, "rate") == "23.2–37.8%"
    assert en.value(None, "rate") == "–" and en.value(float("nan"), "amount") == "–"
    assert en.number(-0.0001, digits=2) == "0.00"


# --------------------------------------------------------------------------
# accessibility, palette, print and narrow screens


def test_headings_nest(html_en: str, html_sv: str) -> None:
    for html in (html_en, html_sv):
        levels = [level for level, _ in _page(html).headings]
        assert levels[0] == 1 and levels.count(1) == 1
        for before, after in pairwise(levels):
            assert after <= before + 1, f"heading h{after} follows h{before}"
        assert all(text for _, text in _page(html).headings)


def test_every_table_has_a_caption_and_scoped_headers(html_en: str) -> None:
    page = _page(html_en)
    assert len(page.tables) > 10
    for table in page.tables:
        assert table["caption"], table["rows"][:1]
        assert table["th"], table["rows"][:1]
        for th in table["th"]:
            assert th.get("scope") in ("col", "row", "colgroup"), th


def test_every_chart_has_a_title_and_text_alternative(html_en: str) -> None:
    page = _page(html_en)
    # charts: deny, refer, mean shortfall, wrongful grants, flip rate (flips) and the journey map
    assert len(page.svgs) == 6
    for svg in page.svgs:
        attrs = svg["attrs"]
        assert attrs.get("role") == "img" and "chart" in (attrs.get("class") or "")
        title_id, desc_id = (attrs.get("aria-labelledby") or "").split()
        assert svg["title"].get(title_id), "every chart has a <title>"
        assert svg["desc"].get(desc_id), "every chart has a <desc>"
        assert len(svg["desc"][desc_id]) > 40
    deny = next(s for s in page.svgs if "Refusal rate by group" in s["title"].values())
    desc = next(iter(deny["desc"].values()))
    assert "Reference born in Sweden at 15.0%." in desc
    assert "Highest born outside the EU at 30.0%, lowest born in Sweden at 15.0%." in desc
    assert "Differs clearly from the reference: born outside the EU." in desc


def _css_colours(html: str) -> set[str]:
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style
    colours = set(re.findall(r"#[0-9A-Fa-f]{6}\b|#[0-9A-Fa-f]{3}\b", style.group(1)))
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        colours |= set(re.findall(r'(?:fill|stroke)="(#[0-9A-Fa-f]{3,6})"', svg))
    return {c.upper() for c in colours}


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_colours_come_from_the_okabe_ito_palette(html_en: str, fixture_result: AuditResult) -> None:
    assert PALETTE == {
        "black": "#000000",
        "orange": "#E69F00",
        "sky_blue": "#56B4E9",
        "bluish_green": "#009E73",
        "yellow": "#F0E442",
        "blue": "#0072B2",
        "vermillion": "#D55E00",
        "reddish_purple": "#CC79A7",
    }
    allowed = {c.upper() for c in (*PALETTE.values(), *NEUTRALS.values())}
    for html in (html_en, render_summary_html(fixture_result)):
        used = _css_colours(html)
        assert used, "no colours found"
        assert used <= allowed, f"colours outside the palette: {sorted(used - allowed)}"


def test_text_colours_have_enough_contrast(html_en: str) -> None:
    style = re.search(r"<style>(.*?)</style>", html_en, re.S).group(1)  # type: ignore[union-attr]
    variables = {name: value.upper() for name, value in re.findall(r"--([a-z]+):(#[0-9A-Fa-f]{6})", style)}
    pairs = []
    for selector, body in re.findall(r"\.badge-(\w+)\{([^}]*)\}", style):
        bg = re.search(r"background:var\(--(\w+)\)", body).group(1)  # type: ignore[union-attr]
        fg = re.search(r"(?<!-)color:var\(--(\w+)\)", body).group(1)  # type: ignore[union-attr]
        pairs.append((selector, variables[fg], variables[bg]))
    assert {p[0] for p in pairs} == {"PASS", "FAIL", "WARN", "ERROR"}
    pairs += [
        ("text", variables["ink"], variables["paper"]),
        ("muted", variables["muted"], variables["paper"]),
        ("muted on panel", variables["muted"], variables["panel"]),
        ("link", variables["blue"], variables["paper"]),
    ]
    for name, fg, bg in pairs:
        assert _contrast(fg, bg) >= 4.5, f"{name}: {fg} on {bg} has contrast {_contrast(fg, bg):.2f}"


def test_print_stylesheet_puts_the_summary_first(html_en: str) -> None:
    page = _page(html_en)
    assert page.sections[0] == "summary"
    style = re.search(r"<style>(.*?)</style>", html_en, re.S).group(1)  # type: ignore[union-attr]
    printed = style.split("@media print{", 1)[1]
    assert "#summary{break-after:page}" in printed
    assert "nav.toc,.skip{display:none}" in printed
    assert "@page{size:A4" in printed


def test_narrow_screens_reflow(html_en: str) -> None:
    style = re.search(r"<style>(.*?)</style>", html_en, re.S).group(1)  # type: ignore[union-attr]
    narrow = style.split("@media (max-width:40rem){", 1)[1].split("}\n@media", 1)[0]
    assert "nav.toc ol{columns:1}" in narrow
    assert ".table-wrap{overflow-x:auto" in style
    assert "figure.chart svg{display:block;width:100%;height:auto}" in style
    # every table sits in a scrollable, focusable region
    assert html_en.count("<table") == html_en.count('class="table-wrap" role="region" tabindex="0"')


def test_nice_ticks_by_hand() -> None:
    # range 0.12..0.31: raw step 0.19/4 = 0.0475 -> 0.05; from floor(0.12/0.05)*0.05 to ceil(0.31/0.05)*0.05
    assert nice_ticks(0.12, 0.31) == [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]
    # 0..1234: raw 308.5 -> 500
    assert nice_ticks(0, 1234) == [0, 500, 1000, 1500]


def test_interval_chart_places_marks_by_hand() -> None:
    rows = [
        ChartRow("ref", "reference", 0.2, 0.15, 0.25, "20%"),
        ChartRow("grp", "ns", 0.3, 0.25, 0.35, "30%"),
        ChartRow("small", "suppressed", None, None, None, "suppressed"),
    ]
    svg = interval_chart(
        chart_id="c",
        title="T",
        description="D",
        panels=[IntervalPanel("P", rows, 0.2)],
        tick_label=str,
        legend={"reference": "r", "significant": "s", "ns": "n", "reference_line": "l"},
    )
    # data 0.15..0.35 padded by 5% of 0.2 -> 0.14..0.36; 0.14 < 0.2 (the spread), so the axis starts at 0;
    # ticks 0, 0.1, ..., 0.4 on x from 12 to 468: 0.3 -> 12 + 0.75 * 456 = 354, 0.2 -> 240
    assert '<circle cx="354"' in svg
    assert "M240 " in svg  # the reference diamond
    assert '<line x1="240" x2="240"' in svg  # the dashed reference line
    assert svg.count("<circle") == 2  # the group and the legend; the suppressed group has no mark
    assert '<title id="c-title">T</title><desc id="c-desc">D</desc>' in svg


# --------------------------------------------------------------------------
# notebook, markdown, csv, json


def test_repr_html_shows_the_summary(fixture_result: AuditResult) -> None:
    fragment = fixture_result._repr_html_()
    assert fragment.startswith('<div class="insyn-summary"')
    assert "<html" not in fragment and "<body" not in fragment
    assert "The audit fails" in fragment  # an ERROR and a FAIL finding
    assert "Refusal rate" in fragment and "20.0%" in fragment  # 80 of 400
    assert SCRIPT not in fragment
    assert "Refusal rate for born outside the EU: 30.0% (95% CI 23.2–37.8%)" in fragment
    assert fragment == render_summary_html(fixture_result)


def test_markdown_is_plain_markdown(md_en: str) -> None:
    assert md_en.startswith("# Insyn audit: fixture\n")
    assert not re.search(r"<[A-Za-z/!?]", md_en), "no raw HTML"
    assert "&lt;script&gt;" in md_en
    assert "\n\n\n" not in md_en
    # every table row has as many cells as its header
    lines = md_en.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| --- ") or line.startswith("| ---: "):
            width = len(re.split(r"(?<!\\)\|", lines[i - 1])) - 2
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert len(re.split(r"(?<!\\)\|", lines[j])) - 2 == width, lines[j]
                j += 1


def test_metrics_csv_round_trips(fixture_result: AuditResult) -> None:
    text = render_metrics_csv(fixture_result)
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    assert len(frame) == len(fixture_result.metrics)
    assert list(frame.columns[:14]) == [
        "metric",
        "attributes",
        "group",
        "n",
        "value",
        "ci_low",
        "ci_high",
        "reference_group",
        "reference_value",
        "difference",
        "ratio",
        "p_value",
        "p_adjusted",
        "suppressed",
    ]
    joint = frame[(frame["metric"] == "deny_rate") & (frame["group"] == "female & outside_eu")]
    assert joint["attributes"].tolist() == ["sex & birth_region"]
    undefined = frame[(frame["metric"] == "wrongful_grant_rate") & (frame["group"] == "outside_eu")]
    assert undefined["value"].isna().all()
    assert frame.loc[frame["metric"] == "deny_rate", "value"].iloc[0] == pytest.approx(0.20)


def test_render_json_is_results_json(fixture_result: AuditResult) -> None:
    assert json.loads(render_json(fixture_result)) == fixture_result.to_dict()


def test_public_surface_is_sorted() -> None:
    import importlib

    for name in ("_builder", "_charts", "_context", "_format", "_messages", "_render", "_sections", "_study", "_trend"):
        module = importlib.import_module(f"audit.report.{name}")
        assert list(module.__all__) == sorted(module.__all__), name
        assert module.__doc__ and len(module.__doc__) > 200, name
        assert all(hasattr(module, n) for n in module.__all__), name
    assert report_pkg.__all__ == sorted(report_pkg.__all__)
    assert set(report_pkg.__all__) == {
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
    }


def test_real_metrics_table_renders() -> None:
    """The report renders what audit.metrics.measure produces, not only hand-made rows."""
    from audit.metrics import evaluate_thresholds, measure

    n = 600
    frame = pd.DataFrame(
        {
            "case_id": pd.Series([f"c{i}" for i in range(n)], dtype="str"),
            "sex": pd.Series(["female", "male"] * (n // 2), dtype="str"),
            "birth_region": pd.Series((["sweden"] * 4 + ["outside_eu"] * 2) * (n // 6), dtype="str"),
            "status": pd.Series(["ok"] * n, dtype="str"),
            "outcome": pd.Series((["grant"] * 3 + ["refer", "deny", "grant"]) * (n // 6), dtype="str"),
            "final_outcome": pd.Series((["grant"] * 3 + ["deny", "deny", "grant"]) * (n // 6), dtype="str"),
            "amount": [5000.0] * n,
            "final_amount": [5000.0] * n,
        }
    )
    metrics = measure(frame, sensitive_features=["sex", "birth_region"], favourable=["grant"], review=["refer"], seed=1)
    findings = evaluate_thresholds(metrics, [{"metric": "deny_rate", "ratio_max": 1.25}])
    result = AuditResult.build(**_parts(metrics=metrics.to_dict(orient="records"), findings=findings))
    for language in LANGUAGES:
        html = render_html(result, language=language)
        assert _page(html).sections[:2] == ["summary", "findings"]
        deny = metrics[(metrics["metric"] == "deny_rate") & (metrics["attributes"].map(len) == 0)]
        value = float(deny["value"].iloc[0])
        assert value == pytest.approx(200 / 600)  # two final "deny" in every six cases
        assert Formatter(load_catalogue(language)).percent(value) in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"value": "abc"},
            r"results: metrics\[0\]\.value must be a number or null \(metric 'deny_rate', group 'all'\)\. "
            r"Got 'abc'\.",
        ),
        ({"p_adjusted": True}, r"metrics\[0\]\.p_adjusted must be a number or null .*Got True\."),
        ({"attributes": "sex"}, r"metrics\[0\]\.attributes must be a list of attribute names .*Got 'sex'\."),
        ({"metric": ""}, r"metrics\[0\]\.metric must be a metric name\. Got ''\."),
    ],
)
def test_malformed_metrics_are_refused_with_the_row_and_key(change: dict[str, Any], message: str) -> None:
    from audit.exceptions import DataError

    rows = _metrics()
    rows[0] = {**rows[0], **change}
    result = AuditResult.build(**_parts(metrics=rows))
    with pytest.raises(DataError, match=message):
        render_html(result, language="en")


def test_a_finding_with_an_unknown_status_is_refused() -> None:
    from audit.exceptions import DataError

    findings = _findings()
    findings[1] = {**findings[1], "status": "MAYBE"}
    with pytest.raises(
        DataError, match=r"findings\[1\]\.status must be one of PASS, FAIL, WARN, ERROR\. Got 'MAYBE'\."
    ):
        render_markdown(AuditResult.build(**_parts(findings=findings)), language="sv")


def test_largest_disparities_agree_with_the_result(fixture_result: AuditResult, html_en: str) -> None:
    """The summary picks the same comparisons as AuditResult.largest_disparities (a second method)."""
    from audit.report._builder import Builder

    mine = Builder(fixture_result, load_catalogue("en")).top_disparities(5)
    theirs = fixture_result.largest_disparities(5)
    assert [(r["metric"], r["group"]) for r in mine] == list(zip(theirs["metric"], theirs["group"], strict=True))
    # issue 25: ranked by distance from parity, |log ratio| by hand: flips log(3.333) = 1.204, intersection
    # log(2.347) = 0.853, refusal log(2.0) = 0.693, shortfall log(1.571) = 0.452 (adjusted p 0.03, 0.004,
    # 0.0012, 0.0001 beside them; before issue 25 the order was by p: shortfall, refusal, intersection, flips)
    assert [(r["metric"], r["group"]) for r in mine[:4]] == [
        ("flip_rate", "outside_eu"),
        ("deny_rate", "female & outside_eu"),
        ("deny_rate", "outside_eu"),
        ("mean_shortfall", "outside_eu"),
    ]
    assert [round(r["distance"], 3) for r in mine[:4]] == [1.204, 0.853, 0.693, 0.452]
    assert [r["significant"] for r in mine[:4]] == [True, True, True, True]


# --------------------------------------------------------------------------
# the trend page of a monitoring history (insyn history --out)


def _trend_frame() -> pd.DataFrame:
    """Three months of refer_rate for two groups (an alert in March) and one overall amount."""
    rows = []
    base = {"audit": "t", "n": 100.0, "suppressed": False, "monitored": True, "z": float("nan")}
    for period, a, b, flag in (
        ("2025-01", 0.5, 0.7, ""),
        ("2025-02", 0.52, 0.71, ""),
        ("2025-03", 0.51, 0.93, "change"),
    ):
        for group, value, alert in (("no children", a, ""), (SCRIPT, b, flag)):
            rows.append(
                {**base, "period": period, "run_id": f"r{period}", "metric": "refer_rate",
                 "attributes": "family_size", "group": group, "value": value, "alert": alert}
            )
    for period, value in (("2025-01", 1234.0), ("2025-02", 1300.0), ("2025-03", float("nan"))):
        rows.append(
            {**base, "period": period, "run_id": f"r{period}", "metric": "mean_amount", "attributes": "",
             "group": "", "value": value, "alert": ""}
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            {
                "h1": "Trend of t",
                "h2": ["refer_rate by family_size", "mean_amount by all cases"],
                "summary": "Values",
                "numbers": ["0.930", "1,234", "1,300"],
                "desc": "Line chart of refer_rate per period for 2 group(s) of family_size.",
                "alert": "alert: change",
            },
        ),
        (
            "sv",
            {
                "h1": "Utveckling för t",
                "h2": ["refer_rate efter family_size", "mean_amount efter alla ärenden"],
                "summary": "Värden",
                "numbers": ["0,930", "1\u00a0234", "1\u00a0300"],
                "desc": "Linjediagram över refer_rate per period för 2 grupp(er) inom family_size.",
                "alert": "larm: change",
            },
        ),
    ],
)
def test_trend_page_speaks_the_language_of_its_catalogue(language: str, expected: dict[str, Any]) -> None:
    html = report_pkg.render_trend_html(_trend_frame(), language=language)
    m = load_catalogue(language)
    page = _page(html)
    h1 = [text for level, text in page.headings if level == 1]
    h2 = [text for level, text in page.headings if level == 2]
    # the headings, by hand and from the catalogue
    assert h1 == [expected["h1"]] == [m("trend.title", audit="t")]
    assert h2 == expected["h2"]
    assert h2[0] == m("trend.heading", metric="refer_rate", attribute="family_size")
    assert f'<html lang="{language}">' in html
    assert f"<summary>{expected['summary']}</summary>" in html
    for number in expected["numbers"]:
        assert number in html, number
    assert expected["desc"] in html and expected["alert"] in html
    # no word of the other language's page
    other = load_catalogue("sv" if language == "en" else "en")
    for key in ("trend.values", "trend.desc_no_alerts"):
        assert f">{other(key)}<" not in html and other(key) not in html, key
    assert other("trend.title", audit="t") not in html
    # the table is the chart's text alternative: a caption and scoped headers; the undefined March amount is a dash
    tables = [t for t in page.tables]
    assert len(tables) == 2 and all(t["caption"] for t in tables)
    assert all(th.get("scope") in ("col", "row") for t in tables for th in t["th"])
    spaced = [n.replace("\u00a0", " ") for n in expected["numbers"]]  # the reader splits cells on any space
    assert tables[1]["rows"][1:] == [["2025-01", spaced[1]], ["2025-02", spaced[2]], ["2025-03", "–"]]
    # self-contained and escaped, in both languages
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in html and "<script" not in html and "<link" not in html
    assert len(page.svgs) == 2 and all(svg["title"] and svg["desc"] for svg in page.svgs)


def test_trend_page_checks_its_frame_and_language(tmp_path: Path) -> None:
    from audit.exceptions import DataError

    with pytest.raises(DataError, match="the trend is empty"):
        report_pkg.render_trend_html(_trend_frame().iloc[0:0])
    with pytest.raises(DataError, match=r"lacks the column\(s\) alert\. Expected the frame of audit\.monitor\.trend"):
        report_pkg.render_trend_html(_trend_frame().drop(columns=["alert"]))
    with pytest.raises(SpecError, match=r"must be one of en, sv\. Got 'de'\."):
        report_pkg.render_trend_html(_trend_frame(), language="de")
    files = report_pkg.write_trend(_trend_frame(), html_path=tmp_path / "t.html", csv_path=tmp_path / "t.csv",
                                   language="sv")
    assert [p.name for p in files] == ["t.html", "t.csv"]
    assert '<html lang="sv">' in files[0].read_text(encoding="utf-8")
    back = pd.read_csv(files[1], keep_default_na=False, na_values=[""])
    assert back["value"].tolist()[:6] == [0.5, 0.7, 0.52, 0.71, 0.51, 0.93]


def test_report_imports_only_lower_layers_at_module_level() -> None:
    """report is in the results layer: no runner, monitor, cli or audit.audit; no function-level audit imports."""
    import ast

    forbidden = ("audit.runner", "audit.monitor", "audit.cli", "audit.audit", "audit.record")
    for module in sorted(REPORT_DIR.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (module.name, name)
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "audit":
                        raise AssertionError(f"{module.name}: {fn.name} imports {node.module} inside a function")
                    if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "audit" for a in node.names):
                        raise AssertionError(f"{module.name}: {fn.name} imports audit inside a function")


# --------------------------------------------------------------------------
# the report reads the metric registry: sections, headline figures, key figures


def _section_html(html: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}" .*?</section>', html, re.S)
    assert match, f"no section {sid}"
    return match.group(0)


def test_every_metric_section_has_a_title_intro_and_reason_in_both_languages() -> None:
    from audit.metrics import SECTIONS
    from audit.report._builder import DISCOVERED_SECTION, METRIC_SECTION_IDS, SAMPLE_SECTION

    assert METRIC_SECTION_IDS == (*(s for s in SECTIONS if s not in (SAMPLE_SECTION, DISCOVERED_SECTION)), "other")
    assert list(SECTION_IDS[2 : 2 + len(METRIC_SECTION_IDS)]) == list(METRIC_SECTION_IDS)
    # subgroup discovery's groups follow the named groups' sections, in a section of their own
    assert SECTION_IDS[2 + len(METRIC_SECTION_IDS)] == DISCOVERED_SECTION
    for language in LANGUAGES:
        flat = _flat(language)
        for sid in (*METRIC_SECTION_IDS, DISCOVERED_SECTION):
            for key in ("title", "intro", "absent"):
                assert f"{sid}.{key}" in flat, (language, sid, key)
    en, sv = load_catalogue("en"), load_catalogue("sv")
    assert (en("selection.title"), en("comparison.title"), en("flips.title")) == (
        "Selection for investigation", "Agreement with a second decision-maker", "Decisions that change")
    assert (sv("selection.title"), sv("comparison.title"), sv("flips.title")) == (
        "Urval för utredning", "Samstämmighet med en andra beslutsfattare", "Beslut som ändras")


def test_each_registered_metric_is_shown_in_its_registry_section() -> None:
    """One result with every registered metric: each lands in the section the registry names, none in "other"."""
    from audit.metrics import METRICS

    br = ["birth_region"]
    rows = []
    for name in METRICS:
        rows += [
            _row(name, [], "all", 400, 0.2, ci_low=0.16, ci_high=0.24),
            _row(name, br, "sweden", 200, 0.15, reference_group="sweden", reference_value=0.15, ratio=1.0),
            _row(name, br, "outside_eu", 150, 0.3, reference_group="sweden", reference_value=0.15, ratio=2.0,
                 p_adjusted=0.001, test="two-proportion z-test"),
        ]
    result = AuditResult.build(**_parts(metrics=rows, findings=[]))
    m = load_catalogue("en")
    html = render_html(result, language="en")
    assert '<section id="other"' not in html
    for name, info in METRICS.items():
        label = m(f"metric.{name}.label")
        home = "method" if info.section == "sample" else info.section
        assert f"<code>{name}</code>" in _section_html(html, "method"), name
        if home == "method":
            continue
        if home == "discovered":  # drawn from results.json's discovered list (tests/test_report_discovery.py)
            assert f'-metric-{name}"' not in html, name  # never among the named groups' metrics
            continue
        section = _section_html(html, home)
        assert f'id="{home}-metric-{name}"' in section, (name, home)
        assert label.replace("'", "&#39;") in section, (name, label)
        # a headline figure is charted; any other is listed under "More metrics in this section"
        chart_title = m("chart.interval_title", metric=label).replace("'", "&#39;")
        assert (f">{chart_title}</title>" in section) == info.headline, (name, info.headline)
        assert (f'<h4 id="{home}-metric-{name}">' in section) == (not info.headline), name


def test_headline_figures_come_first_and_key_figures_fill_the_summary(fixture_result: AuditResult) -> None:
    from audit.report._builder import Builder

    b = Builder(fixture_result, load_catalogue("en"))
    # by hand from the registry: refer_rate and automation_rate are headline figures, error_rate is not
    assert b.section_metrics("routing") == ["refer_rate", "automation_rate"]
    assert b.key_figures() == [
        "grant_rate", "deny_rate", "refer_rate", "automation_rate", "underpayment_rate", "error_rate",
    ]
    # the fixture measured three of them: the cards of its summary, in that order
    cards = b.summary(b.findings_section())["figures"]
    figures = [f["label"] for f in cards]
    # issue 25: the fixture compares with a correct decision but has no amounts, so the underpayment card says
    # that amounts are not available (never 0 % or 100 %)
    assert figures == ["Refusal rate", "Routed to a caseworker", "Decided automatically", "Underpaid"]
    assert cards[-1]["value"] == "not available" and cards[-1]["explain"].startswith("Amounts are not available")
    assert all(f["explain"] for f in cards)  # every card explains itself in one sentence
    assert b.section_metrics("other") == ["experimental_rate"]
    assert b.section_metrics("flips") == ["flip_rate"]


def test_flips_section_says_which_pair_it_compares() -> None:
    base = _parts()
    en = load_catalogue("en")
    twins = AuditResult.build(**_parts(spec={**base["spec"], "counterfactual": {"attributes": ["sex"]}}))
    engines = AuditResult.build(**_parts(spec={**base["spec"], "compare": {"kind": "recorded", "outcome": "x"}}))
    neither = AuditResult.build(**base)
    cases = ((twins, "flips.intro_counterfactual"), (engines, "flips.intro_compare"), (neither, "flips.intro"))
    for result, key in cases:
        section = _section_html(render_html(result, language="en"), "flips")
        assert en(key).replace("'", "&#39;") in section, key
    bare = AuditResult.build(**_parts(metrics=[], findings=[]))
    for sid in ("selection", "comparison", "flips"):
        assert en(f"{sid}.absent") in _section_html(render_html(bare, language="en"), sid)
