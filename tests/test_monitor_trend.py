"""Issue 21: the trend page shows the baseline band, explains alerts only when there are some, speaks Swedish,
and follows the public values by group."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.exceptions import SpecError
from audit.monitor import load_history, render_trend_html, run_monitor, trend

ROOT = Path(__file__).resolve().parents[1]
POPULATION = ROOT / "datasets" / "sweden" / "population-2026.yaml"
runner = CliRunner()


def _frame(*, alert: bool, band: bool, language: str = "en") -> pd.DataFrame:
    rows = []
    for i, period in enumerate(("2025-01", "2025-02", "2025-03", "2025-04")):
        for group, value in (("no children", 0.50 + 0.01 * i), ("3+ children", 0.70 if i < 3 else 0.93)):
            rows.append({"audit": "t", "period": period, "run_id": f"r{period}", "metric": "refer_rate",
                         "attributes": "family_size", "group": group, "n": 100.0, "value": value,
                         "ci_low": value - 0.05, "ci_high": value + 0.05, "suppressed": False, "monitored": True,
                         "baseline_value": value if band and i else np.nan,
                         "baseline_low": (0.45 if group == "no children" else 0.62) if band and i else np.nan,
                         "baseline_high": (0.58 if group == "no children" else 0.78) if band and i else np.nan,
                         "z": np.nan, "cusum_upper": 0.0, "cusum_lower": 0.0,
                         "alert": "change" if alert and i == 3 and group == "3+ children" else "",
                         "public_value": "", "reason": "", "language": language})
    return pd.DataFrame(rows)


def test_the_band_is_drawn_and_the_alert_legend_only_with_alerts() -> None:
    quiet = render_trend_html(_frame(alert=False, band=True))
    assert quiet.count('class="band"/>') == 2  # one shaded band per group
    assert "The shaded band is the range each group was expected in" in quiet
    assert "(expected 0.450 to 0.580)" in quiet  # the band in the text alternative, too
    assert "marked with a ring" not in quiet and "No alerts." in quiet
    loud = render_trend_html(_frame(alert=True, band=True))
    assert '1 point(s) with an alert, marked with a ring and "!".' in html.unescape(loud)
    assert "Alerts: 3+ children in 2025-04." in loud and 'class="alert">!</text>' in loud
    bare = render_trend_html(_frame(alert=False, band=False))
    assert 'class="band"' not in bare and "shaded band" not in bare
    # the y axis makes room for the band: the highest band edge 0.78 and the value 0.93 both fit
    assert "0.950" in loud or "1.000" in loud


def test_the_page_speaks_swedish() -> None:
    sv = render_trend_html(_frame(alert=True, band=True), language="sv")
    assert sv.startswith('<!DOCTYPE html>\n<html lang="sv">')
    assert "<title>Utveckling för t</title>" in sv
    assert "refer_rate efter family_size, 2025-01 till 2025-04" in sv
    assert "Larm: 3+ children i 2025-04." in sv and "markerade med en ring" in sv
    for english in ("Trend of", " by family_size", "Values", "period(s) from", "expected"):
        assert english not in sv
    # the language recorded in the history is the default
    assert render_trend_html(_frame(alert=False, band=False, language="sv")).startswith(
        '<!DOCTYPE html>\n<html lang="sv">')
    with pytest.raises(SpecError, match="must be one of en, sv. Got 'de'"):
        render_trend_html(_frame(alert=False, band=False), language="de")


def sv_page_text(path: Path) -> str:
    """A written page's text."""
    return path.read_text(encoding="utf-8")


def _spec(tmp_path: Path, language: str = "en") -> Path:
    data = {"name": "trend-test", "seed": 5, "population": {"synthetic": str(POPULATION), "n": 400},
            "sensitive_features": ["sex"], "engine": {"kind": "reference"}, "truth": {"reference": True},
            "statistics": {"bootstrap": 0}, "report": {"language": language},
            "monitor": {"baseline": "trailing", "periods": 3, "metrics": ["grant_rate"]}}
    path = tmp_path / "trend-test.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_public_values_are_kept_in_the_history_and_drawn_by_group(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    for period in ("2025-01", "2025-02", "2025-03", "2025-04"):
        run_monitor(_spec(tmp_path, "sv"), history=hist, period=period, write=False)
    h = load_history(hist)
    digital = h[h["metric"] == "engagement:digital_rate"]
    assert set(digital["public_value"]) == {"engagement"} and not digital["monitored"].any()
    assert set(digital["group"]) == {"all", "female", "male"} and digital["value"].between(0, 1).all()
    assert (digital.groupby("period").size() == 3).all()
    meeting = h[h["metric"] == "engagement:meeting_rate"]
    assert len(meeting) == 4 and meeting["value"].isna().all()  # one row a period, no value, never 0
    assert set(meeting["reason"]) == {"not measured: the data has no column meeting_held"}
    assert set(h["language"]) == {"sv"}
    # the monitored streams are untouched by the public values
    assert set(h.loc[h["monitored"], "metric"]) == {"grant_rate"}
    t = trend(hist, attribute="sex", values=True)
    assert "engagement:digital_rate" in set(t["metric"]) and "grant_rate" in set(t["metric"])
    page = render_trend_html(t, language="en")
    assert '<h2 id="public-values">Public values over time</h2>' in page
    assert "Applications made digitally (engagement:digital_rate) by sex, 2025-01 to 2025-04" in page
    assert "Applications with a meeting held (engagement:meeting_rate): the data has no column meeting_held" in page
    assert "Decisions appealed (engagement:appeal_rate): the data has no column appealed" in page
    res = runner.invoke(app, ["history", str(hist), "--attribute", "sex", "--out", str(tmp_path / "t.html"),
                              "--csv", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    assert "engagement:meeting_rate: not measured: the data has no column meeting_held" in res.output
    assert "(expected" not in res.output and "marked with a ring" not in sv_page_text(tmp_path / "t.html")
    sv_page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert sv_page.startswith('<!DOCTYPE html>\n<html lang="sv">')  # the spec's report language
    assert "Offentliga värden över tid" in sv_page
    assert "Ansökningar gjorda digitalt (engagement:digital_rate)" in sv_page
    assert "data saknar kolumnen meeting_held" in sv_page
    csv = pd.read_csv(tmp_path / "t.csv")
    assert "engagement:meeting_rate" not in set(csv["metric"])  # the page lists it; the CSV holds values only
    en = runner.invoke(app, ["history", str(hist), "--out", str(tmp_path / "en.html"), "--lang", "en"])
    assert en.exit_code == 0 and (tmp_path / "en.html").read_text(encoding="utf-8").startswith(
        '<!DOCTYPE html>\n<html lang="en">')
    bad = runner.invoke(app, ["history", str(hist), "--out", str(tmp_path / "x.html"), "--lang", "de"])
    assert bad.exit_code == 2 and "'de'" in bad.output and not (tmp_path / "x.html").exists()
