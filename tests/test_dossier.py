"""The legal dossier in every run folder: provisions, figures, links, blanks, languages and escaping.

Figures are recomputed from the run's own decisions.parquet (counts with
pandas, Wilson intervals with scipy), links are followed into report.html,
and every blank must stay blank.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from audit import AuditResult, load_spec
from audit.report import render_dossier_html, render_dossier_md
from audit.report._dossier import FRIA_ELEMENTS, PROVISIONS, build_dossier, dossier_catalogue
from audit.report._messages import LANGUAGES, load_catalogue, placeholders

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "audit" / "report"
MADE_ON = date(2026, 12, 6)

REFS = {
    "en": ["AI Act, Annex III point 5(a)", "AI Act, Art. 10(2)(f)–(g)", "AI Act, Art. 12", "AI Act, Art. 26(6)",
           "AI Act, Art. 14", "AI Act, Art. 72", "AI Act, Art. 27(1)(a)–(f)", "Förvaltningslagen (2017:900) 28 §",
           "Kommunallagen (2017:725) 6 kap. 37–38 §§", "Kammarrätten on Trelleborg's source code"],
    "sv": ["AI-förordningen, bilaga III punkt 5 a", "AI-förordningen, artikel 10.2 f–g", "AI-förordningen, artikel 12",
           "AI-förordningen, artikel 26.6", "AI-förordningen, artikel 14", "AI-förordningen, artikel 72",
           "AI-förordningen, artikel 27.1 a–f", "Förvaltningslagen (2017:900) 28 §",
           "Kommunallagen (2017:725) 6 kap. 37–38 §§", "Kammarrätten om Trelleborgs källkod"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audit = load_spec(ROOT / "examples" / "demo.yaml")
    audit = audit.with_options(population={**audit.to_dict()["population"], "n": 1500},
                               statistics={"min_group_size": 10, "bootstrap": 200})
    return Path(audit.run(out=tmp_path_factory.mktemp("reports")).run_dir)


@pytest.fixture(scope="module")
def decision_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(load_spec(ROOT / "examples" / "decision-log.yaml").run(out=tmp_path_factory.mktemp("r")).run_dir)


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(load_spec(ROOT / "examples" / "aggregated.yaml").run(out=tmp_path_factory.mktemp("r")).run_dir)


def _articles(html: str) -> list[str]:
    found = re.findall(r'<article class="dossier" id="(\w+)" lang="(\w+)"', html)
    assert all(a == b for a, b in found)
    return [a for a, _ in found]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# --------------------------------------------------------------------------
# catalogues


def test_dossier_catalogues_have_the_same_keys_and_placeholders() -> None:
    en, sv = dossier_catalogue("en").messages, dossier_catalogue("sv").messages
    assert sorted(set(en) ^ set(sv)) == []
    for key in en:
        assert placeholders(en[key]) == placeholders(sv[key]), key
    for lang in LANGUAGES:
        flat = dossier_catalogue(lang).messages
        for pid in PROVISIONS:
            assert {f"{pid}.ref", f"{pid}.title", f"{pid}.rule"} <= set(flat), (lang, pid)
        for e in FRIA_ELEMENTS:
            assert {f"fria.{e}.title", f"fria.{e}.q"} <= set(flat), (lang, e)


def test_every_literal_key_of_the_dossier_code_exists() -> None:
    text = (REPORT_DIR / "_dossier.py").read_text(encoding="utf-8")
    used = set(re.findall(r"""\btxt\(\s*["']([a-z0-9_.]+)["']""", text))
    assert len(used) > 40
    for lang in LANGUAGES:
        assert sorted(used - set(dossier_catalogue(lang).messages)) == [], lang
    main = set(re.findall(r"""\bm(?:\.get)?\(\s*["']([a-z0-9_.]+)["']""", text))
    for lang in LANGUAGES:
        assert sorted(main - set(load_catalogue(lang).messages)) == [], lang


# --------------------------------------------------------------------------
# in the run folder


def test_the_dossier_is_in_every_run_folder_and_its_manifest(demo: Path, decision_log: Path, aggregated: Path) -> None:
    for run in (demo, decision_log, aggregated):
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        for name in ("dossier.html", "dossier.md"):
            assert manifest["artifacts"][name] == hashlib.sha256((run / name).read_bytes()).hexdigest()


@pytest.mark.parametrize("which", ["demo", "decision_log", "aggregated"])
def test_every_link_points_at_an_anchor_of_the_report(which: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(which)
    ids = set(re.findall(r'\bid="([^"]+)"', (run / "report.html").read_text(encoding="utf-8")))
    html = (run / "dossier.html").read_text(encoding="utf-8")
    md = (run / "dossier.md").read_text(encoding="utf-8")
    html_links = re.findall(r'href="report\.html#([^"]+)"', html)
    md_links = re.findall(r"\]\(report\.html#([^)]+)\)", md)
    assert len(html_links) > 10 and len(md_links) == len(html_links) - 2  # the integrity links are HTML only
    assert sorted(set(html_links) - ids) == [] and sorted(set(md_links) - ids) == []
    own = set(re.findall(r'\bid="([^"]+)"', html))
    assert sorted(set(re.findall(r'href="#([^"]+)"', html)) - own) == []
    assert "<script" not in html and "default-src 'none'" in html


def test_both_languages_the_spec_language_first(demo: Path, decision_log: Path) -> None:
    assert _articles((demo / "dossier.html").read_text(encoding="utf-8")) == ["en", "sv"]
    assert _articles((decision_log / "dossier.html").read_text(encoding="utf-8")) == ["sv", "en"]
    md = (decision_log / "dossier.md").read_text(encoding="utf-8")
    assert md.index("# Bevisdossier: decision-log") < md.index("# Evidence dossier: decision-log")
    result = AuditResult.load(demo)
    assert _articles(render_dossier_html(result, languages=["sv"])) == ["sv"]
    with pytest.raises(Exception, match=r"A dossier language must be one of en, sv\. Got 'de'\."):
        render_dossier_html(result, languages=["de"])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_provision_is_cited_exactly_and_in_order(demo: Path, lang: str) -> None:
    view = build_dossier(AuditResult.load(demo), language=lang, made_on=MADE_ON)
    assert [p["ref"] for p in view["provisions"]] == REFS[lang]
    html = render_dossier_html(AuditResult.load(demo), made_on=MADE_ON, languages=[lang])
    positions = [html.index(f'id="{lang}-{pid}"') for pid in PROVISIONS]
    assert positions == sorted(positions)
    fria = next(p for p in view["provisions"] if p["id"] == "fria")
    assert [e["title"][:3] for e in fria["elements"]] == (
        ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"] if lang == "en" else ["a) ", "b) ", "c) ", "d) ", "e) ", "f) "])


def test_evidence_not_legal_advice_and_the_dates(demo: Path) -> None:
    result = AuditResult.load(demo)
    md = render_dossier_md(result, made_on=MADE_ON)
    assert "> **Evidence, not legal advice.** " in md and "> **Underlag, inte juridisk rådgivning.** " in md
    assert "apply from 2 August 2026." in md and "gäller från den 2 augusti 2026." in md
    assert "A political agreement of May 2026 (the Digital Omnibus on AI) would move that date to 2 December " \
           "2027. When this text was written (Insyn 0.1.0) the change was not yet law" in md
    assert "skulle flytta det datumet till den 2 december 2027" in md and "ännu inte lag" in md
    assert f"This dossier was made on 2026-12-06, from the run {result.run_id} of {result.generated_at}." in md
    assert md.count("2026-12-06") >= 4


# --------------------------------------------------------------------------
# figures, recomputed


def test_routing_figures_match_the_decisions(demo: Path) -> None:
    dec = pd.read_parquet(demo / "decisions.parquet")
    ok = dec[dec["status"] == "ok"]
    k, n = int((ok["outcome"] == "refer").sum()), len(ok)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    expected = (f"Routed to a caseworker: {_pct(k / n)} (95% CI {100 * ci.low:.1f}–{_pct(ci.high)}), "
                f"{n:,} applications.")
    md = (demo / "dossier.md").read_text(encoding="utf-8")
    assert f"- {expected} ([see the report](report.html#routing-metric-refer_rate))" in md
    auto = n - k
    ci = stats.binomtest(auto, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert f"Decided automatically: {_pct(auto / n)} (95% CI {100 * ci.low:.1f}–{_pct(ci.high)})" in md
    # the demo's referred cases are decided by its caseworker model (review:), counted from the decisions
    resolved = int(((ok["outcome"] == "refer") & (ok["decided_by"] == "caseworker")).sum())
    assert (f"{resolved:,} of {k:,} applications routed to a caseworker have a recorded caseworker decision; "
            f"{k - resolved:,} have none.") in md


def test_groups_affected_are_counted_from_the_decisions(demo: Path) -> None:
    dec = pd.read_parquet(demo / "decisions.parquet")
    en = load_catalogue("en")
    view = build_dossier(AuditResult.load(demo), language="en", made_on=MADE_ON)
    element = next(e for p in view["provisions"] if p["id"] == "fria" for e in p["elements"] if e["id"] == "fria-c")
    texts = [i["text"] for i in element["prefilled"]]
    assert texts[0] == f"Applicants for ekonomiskt bistånd: {len(dec):,} applications in this run."
    counts = dec["sex"].value_counts()
    expected = "; ".join(f"{en.get(f'value.sex.{g}')} ({counts[g]:,})" for g in ("female", "male"))
    assert f"By Sex: {expected}." in texts
    regions = dec["birth_region"].value_counts()
    line = next(t for t in texts if t.startswith("By Region of birth: "))
    for g, c in regions.items():
        assert f"{en.get(f'value.birth_region.{g}')} ({c:,})" in line


def test_every_finding_that_is_not_a_pass_is_a_risk(demo: Path) -> None:
    results = json.loads((demo / "results.json").read_text(encoding="utf-8"))
    bad = [f for f in results["findings"] if f["status"] != "PASS"]
    assert bad, "the demo's thresholds should be broken"
    view = build_dossier(AuditResult.load(demo), language="en", made_on=MADE_ON)
    element = next(e for p in view["provisions"] if p["id"] == "fria" for e in p["elements"] if e["id"] == "fria-d")
    lines = [i["text"] for i in element["prefilled"] if i["text"].startswith(("FAIL:", "ERROR:", "WARN:"))]
    assert len(lines) == len(bad)
    assert sorted(line.split(":")[0] for line in lines) == sorted(f["status"] for f in bad)
    significant = [r for r in results["metrics"] if r["p_adjusted"] is not None and r["p_adjusted"] < 0.05
                   and r["attributes"]]
    assert significant and any(i["text"].startswith("Strongest evidence of a disparity: ")
                               for i in element["prefilled"])


def test_overrides_and_review_from_the_decision_log(decision_log: Path) -> None:
    dec = pd.read_parquet(decision_log / "decisions.parquet")
    ok = dec[dec["status"] == "ok"]
    referred = int((ok["outcome"] == "refer").sum())
    automatic = len(ok) - referred
    overrides = int(dec["override"].sum())
    resolved = int(((ok["outcome"] == "refer") & (ok["decided_by"] == "caseworker")).sum())
    ci = stats.binomtest(overrides, automatic).proportion_ci(confidence_level=0.95, method="wilson")
    md = (decision_log / "dossier.md").read_text(encoding="utf-8")
    assert (f"Caseworkers overrode {overrides} of {automatic} automatic decisions ({_pct(overrides / automatic)}, "
            f"95% CI {100 * ci.low:.1f}–{_pct(ci.high)}).") in md
    assert (f"Caseworker review (recorded:caseworker\\_outcome): {resolved} of {referred} applications routed to a "
            f"caseworker have a recorded caseworker decision; {referred - resolved} have none.") in md
    sv_rate = f"{100 * overrides / automatic:.1f}".replace(".", ",")
    assert f"Handläggare ändrade {overrides} av {automatic} automatiska beslut ({sv_rate}\u00a0%" in md


# --------------------------------------------------------------------------
# blanks, escaping, variants


def test_blanks_are_there_and_stay_empty(demo: Path) -> None:
    html = (demo / "dossier.html").read_text(encoding="utf-8")
    view = build_dossier(AuditResult.load(demo), language="en", made_on=MADE_ON)
    questions = len(view["identity"]["blanks"]) + sum(
        len(p["blanks"]) + sum(len(e["blanks"]) for e in p["elements"]) for p in view["provisions"])
    assert questions >= 25
    answers = re.findall(r'<div class="blank-answer" aria-label="[^"]+">(.*?)</div>', html, flags=re.S)
    assert len(answers) == 2 * questions and all(a == "" for a in answers)
    md = (demo / "dossier.md").read_text(encoding="utf-8")
    assert md.count("> **To be stated by the deployer:** ") == questions
    assert md.count("> Answer: ______________________________________________\n") == questions
    assert md.count("> **Fylls i av tillhandahållaren (den som använder systemet):** ") == questions


def test_strings_from_data_are_escaped_and_personnummer_masked(demo: Path) -> None:
    data = json.loads((demo / "results.json").read_text(encoding="utf-8"))
    data["engine"]["name"] = "<script>alert(1)</script> *robot* 19121212-1212"
    for row in data["metrics"]:
        if row["attributes"] == ["sex"] and row["group"] == "female":
            row["group"] = "<b>x</b>|y"
    result = AuditResult.from_dict(data)
    html = render_dossier_html(result, made_on=MADE_ON)
    md = render_dossier_md(result, made_on=MADE_ON)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;|y" in html
    assert "19121212-1212" not in html and "19121212-1212" not in md
    assert "[personnummer removed]" in html and "\\[personnummer removed\\]" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\*robot\\*" in md and "&lt;b&gt;x&lt;/b&gt;\\|y" in md


def test_monitoring_and_retention_come_from_the_spec(demo: Path) -> None:
    data = json.loads((demo / "results.json").read_text(encoding="utf-8"))
    data["spec"]["monitor"] = {"baseline": "trailing", "periods": 6, "metrics": ["refer_rate"], "retention_days": 365}
    view = build_dossier(AuditResult.from_dict(data), language="en", made_on=MADE_ON)
    by = {p["id"]: p for p in view["provisions"]}
    assert by["art26"]["measured"][0]["text"].startswith("insyn monitor keeps this run's log (journey.parquet and "
                                                         "lineage.jsonl) for 365 days")
    assert by["art72"]["measured"][0]["text"].startswith("Monitoring is set up: Routed to a caseworker by group are "
                                                         "compared every period (month) with the trailing 6 periods")
    data["spec"]["monitor"]["retention_days"] = None
    view = build_dossier(AuditResult.from_dict(data), language="en", made_on=MADE_ON)
    assert next(p for p in view["provisions"] if p["id"] == "art26")["measured"][0]["text"] == (
        "insyn monitor keeps this run's log without a time limit (monitor.retention_days is null).")
    plain = build_dossier(AuditResult.load(demo), language="en", made_on=MADE_ON)
    assert next(p for p in plain["provisions"] if p["id"] == "art72")["measured"][0]["text"].startswith(
        "This spec sets up no monitoring")


def test_an_aggregated_run_says_no_engine_ran(aggregated: Path) -> None:
    view = build_dossier(AuditResult.load(aggregated), language="en", made_on=MADE_ON)
    by = {p["id"]: p for p in view["provisions"]}
    assert by["annex_iii"]["measured"][0]["text"] == ("The population is a published aggregated table (1,200 cases); "
                                                      "no engine ran in this audit.")
    assert by["trelleborg"]["measured"] == [] and by["kl637"]["measured"] == []
    html = (aggregated / "dossier.html").read_text(encoding="utf-8")
    assert "This run measured nothing that bears on this provision." in html
