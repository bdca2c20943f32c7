"""The report shows every analysis that ran (issue 25, point 7), in English and Swedish.

Counterfactual twins and personas, overrides by group, the selection audit's
equal burden and the agreement with a second decision-maker each get a
plain-language sentence in the HTML and Markdown reports; every number in
them is checked against results.json or the decisions (a second source).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.audit import load_spec
from audit.report import render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, tmp: Path, n: int | None = None):
    a = load_spec(ROOT / "examples" / f"{name}.yaml").with_options(statistics={"bootstrap": 0})
    if n:
        a = a.with_options(population={**a.population.model_dump(exclude_unset=True), "n": n})
    return a.run(out=tmp)


def _plain(text: str) -> str:
    return text.replace("\\_", "_").replace("\u202f", " ").replace("\u00a0", " ")


def test_counterfactual_twins_and_personas_are_in_both_reports(tmp_path: Path) -> None:
    r = _run("counterfactual", tmp_path, n=600)
    cf = r.to_dict()["engine"]["counterfactual"]
    region = next(a for a in cf["attributes"] if a["attribute"] == "birth_region")
    md_en, md_sv = _plain(render_markdown(r, language="en")), _plain(render_markdown(r, language="sv"))
    assert (f"Changing only Region of birth changed {region['flips']:,} of {region['decided_pairs']:,} decided twin "
            f"decisions: {region['flips_direct']} because the engine sees Region of birth, "
            f"{region['flips_through_proxies']:,} through fields") in md_en
    assert f"När bara Födelseregion ändrades ändrades {region['flips']}" in md_sv
    personas = {p["persona"] for p in cf["personas"]}
    for name in personas:
        assert f'Persona "{name}"' in md_en and f'Personan "{name}"' in md_sv
    html = render_html(r, language="en")
    assert "Changing only Region of birth changed" in html
    assert "Persona &#34;" in html or "Persona &quot;" in html


def test_overrides_by_group_from_the_decisions(tmp_path: Path) -> None:
    r = _run("decision-log", tmp_path)
    d = r.decisions
    auto = d[(d["status"] == "ok") & (d["outcome"] != "refer")]
    women = auto[auto["sex"] == "female"]
    md = _plain(render_markdown(r, language="en"))
    assert (f"Caseworkers overrode the engine's automatic decisions, by Sex: women {int(women['override'].sum())} "
            f"of {len(women)}") in md
    assert "Handläggare ändrade motorns automatiska beslut, efter Kön" in _plain(render_markdown(r, language="sv"))


def test_selection_and_comparison_sentences(tmp_path: Path) -> None:
    r = _run("selection-audit", tmp_path)
    m = r.metrics_frame()
    gap = m[(m["metric"] == "burden_gap") & (m["attributes"].map(lambda a: list(a) == ["birth_region"]))]
    top = gap.loc[gap["value"].abs().idxmax()]
    md = _plain(render_markdown(r, language="en"))
    assert f"Equal burden by Region of birth: born outside the EU makes up +{top['value'] * 100:.1f} pp" in md
    assert top["group"] == "outside_eu"
    assert "Lika börda efter Födelseregion" in _plain(render_markdown(r, language="sv"))
    assert "Lighthouse Reports and Svenska Dagbladet" in md  # the method section names its source
    c = _run("compare", tmp_path)
    agreement = c.metrics_frame().query("metric == 'agreement'")
    overall = agreement[agreement["attributes"].map(len) == 0].iloc[0]
    assert (f"The audited engine and the second decision-maker reached the same outcome on "
            f"{overall['value'] * 100:.1f}% of {int(overall['n']):,} applications.") in _plain(
        render_markdown(c, language="en"))
