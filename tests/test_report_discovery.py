"""The report section on subgroup discovery: what it says, in both languages, and what it hides.

The section's view is built from results.json's ``discovered`` list; these
tests build that list with :func:`audit.metrics.discover` on small frames
whose answer is known, then read the rendered pages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.metrics import discover
from audit.report import render_html, render_markdown
from audit.report._messages import LANGUAGES, load_catalogue
from audit.result import AuditResult
from audit.spec import DiscoverSpec, StatisticsSpec

SCRIPT = "<script>alert(1)</script>"


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Refusals: 50 % for the kind named by a script tag, 10 % for the others; region tied to the kind."""
    rng = np.random.default_rng(seed)
    kind = rng.choice([SCRIPT, "b", "c"], n, p=[0.2, 0.4, 0.4])
    region = np.where((kind == SCRIPT) & (rng.random(n) < 0.8), "outside_eu", rng.choice(["sweden", "eu"], n))
    deny = rng.random(n) < np.where(kind == SCRIPT, 0.5, 0.1)
    frame = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "status": "ok",
        "outcome": np.where(deny, "deny", "grant"),
        "kind": kind,
        "birth_region": region,
        "tiny": np.where(np.arange(n) < 8, "x", "y"),
    })
    frame["final_outcome"] = frame["outcome"]
    return frame


def _result(records: list[dict] | None, *, statistics: dict | None = None) -> AuditResult:
    spec = {"name": "r", "sensitive_features": ["birth_region"], "discover": {"top": 3},
            "statistics": statistics or {"min_group_size": 10}}
    return AuditResult.build(
        run_id="r1", generated_at="2026-01-01T00:00:00+00:00", spec=spec,
        population={"kind": "synthetic", "n_cases": 3000}, engine=None, checks=[], journey={"steps": []},
        metrics=[], findings=[], discovered=records,
    )


@pytest.fixture(scope="module")
def found() -> list[dict]:
    result = discover(_frame(), features=["kind"], sensitive_features=["birth_region"],
                      spec=DiscoverSpec(min_size=100, top=2, max_conditions=1))
    assert result.groups[0].conditions[0].value == SCRIPT
    return result.to_records()


@pytest.mark.parametrize("language", LANGUAGES)
def test_confirmed_groups_get_a_sentence_with_interval_and_makeup(found: list[dict], language: str) -> None:
    m = load_catalogue(language)
    md = render_markdown(_result(found), language=language)
    html = render_html(_result(found), language=language)
    title = m("discovered.title")
    assert f"## {title}" in md and f">{title}</h2>" in html
    section = md[md.index(f"## {title}"):]
    section = section[: section.index("\n## ")]
    assert m("discovered.status_confirmed") in section
    born_outside = m("value.birth_region.outside_eu")
    assert born_outside in section  # the make-up names the over-represented named group
    share = found[0]["makeup"][0]
    assert share["group"] == "outside_eu"
    assert m("discovered.headline_makeup", makeup="").split("{")[0].strip().rstrip(".") in section


def test_data_is_escaped_in_html_and_markdown(found: list[dict]) -> None:
    html = render_html(_result(found))
    md = render_markdown(_result(found))
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in md and "&lt;script" in md


def test_suppressed_groups_show_no_numbers() -> None:
    frame = _frame()
    frame.loc[frame["tiny"] == "x", ["outcome", "final_outcome"]] = "deny"  # 8 cases, every one refused
    result = discover(frame, features=["tiny", "kind"], sensitive_features=["birth_region"],
                      statistics=StatisticsSpec(min_group_size=10),
                      spec=DiscoverSpec(min_size=2, top=3, max_conditions=1))
    records = result.to_records()
    small = [r for r in records if r["suppressed"]]
    assert [r["group"] for r in small] == ["tiny = y"]  # its rest, the 8 refused cases, is too small to show
    assert small[0]["n"] is None and small[0]["value"] is None and small[0]["p_value"] is None
    md = render_markdown(_result(records))
    line = next(line for line in md.splitlines() if line.startswith("|") and "tiny = y" in line)
    assert "Suppressed: the group or everyone else has fewer than 10 applications" in line
    cells = [c.strip() for c in line.split("|")]
    assert cells[4:10] == ["–", "–", "–", "– (–)", "–", cells[9]] and "%" not in "".join(cells[4:9])


def test_not_run_and_nothing_found_say_why() -> None:
    m = load_catalogue("en")
    assert m("discovered.not_run") in render_markdown(_result(None))
    unescaped = render_markdown(_result([])).replace("\\", "")  # Markdown escapes the _ of min_size
    assert m("discovered.absent") in unescaped
    assert m("discovered.absent") in render_html(_result([]), language="en")
