"""Issue 21: a monitoring run's report carries its alerts, and its baseline says what it used."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.exceptions import SpecError
from audit.monitor import load_history, run_monitor
from audit.monitor._history import write_history
from audit.report import render_html, render_markdown
from audit.result import AuditResult
from audit import Audit

ROOT = Path(__file__).resolve().parents[1]
POPULATION = ROOT / "datasets" / "sweden" / "population-2026.yaml"
SCHEMA = json.loads((ROOT / "audit" / "schemas" / "results.schema.json").read_text(encoding="utf-8"))
runner = CliRunner()


def _spec(tmp_path: Path, *, name: str = "base-test", monitor: dict | None = None, **extra: object) -> Path:
    """A small monitoring spec: 400 synthetic cases a month, the law's engine, grant_rate monitored."""
    data: dict[str, object] = {
        "name": name, "seed": 5,
        "population": {"synthetic": str(POPULATION), "n": 400},
        "sensitive_features": ["sex"],
        "engine": {"kind": "reference"},
        "truth": {"reference": True},
        "statistics": {"bootstrap": 0},
        "monitor": {"baseline": "trailing", "periods": 3, "metrics": ["grant_rate"], **(monitor or {})},
        **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _run(hist: Path, run_id: str, period: str, count: int, n: int = 400, *, alert: str = "",
         audit_name: str = "base-test") -> None:
    """A crafted history run: grant_rate for all cases with a known count (and an alert mark if given)."""
    frame = pd.DataFrame([{"metric": "grant_rate", "attributes": "", "group": "all", "n": n, "count": count,
                           "value": count / n, "se": math.sqrt(count / n * (1 - count / n) / n),
                           "audit": audit_name, "period": period, "run_id": run_id, "monitored": True,
                           "generated_at": f"{period}-28T00:00:00.000000+00:00", "alert": alert}])
    write_history(hist, frame, run_id=run_id)


def _validate(data: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(data)


# --------------------------------------------------------------------------
# 1. alerts at the top of report.html, report.md and results.json; the verdict counts them


def test_a_run_with_alerts_shows_them_first_and_never_passes(tmp_path: Path) -> None:
    hist, out = tmp_path / "history", tmp_path / "reports"
    for i, period in enumerate(("2025-01", "2025-02", "2025-03")):
        _run(hist, f"c{i}", period, 0)  # nobody granted: this month's grants are a change
    res = run_monitor(_spec(tmp_path), history=hist, period="2025-04", out=out)
    assert res.exit_code == 1 and {a.kind for a in res.alerts} == {"change", "sequential"}
    folder = res.run.run_dir
    data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    _validate(data)
    assert data["alerts"] == [a.to_dict() for a in res.alerts]
    assert list(data)[:6] == ["insyn_version", "schema_version", "run_id", "generated_at", "alerts", "monitor"]
    assert data["monitor"]["period"] == "2025-04"
    assert data["monitor"]["baseline"]["periods"] == ["2025-01", "2025-02", "2025-03"]
    assert data["monitor"]["baseline"]["runs"] == ["c0", "c1", "c2"]
    assert data["monitor"]["change_limit"] == pytest.approx(res.change_limit)
    assert data["monitor"]["cusum_limit"] == pytest.approx(res.cusum_limit)
    assert all(a["baseline_periods"] for a in data["alerts"])
    # the thresholds pass (there are none), yet the run fails: the result counts the alerts
    assert not data["findings"] and AuditResult.load(folder).exit_code == 1
    html = (folder / "report.html").read_text(encoding="utf-8")
    top = html.index('id="monitor-h"')
    assert top < html.index('id="summary-figures"') and top < html.index('<section id="findings"')
    assert "The monitoring run raised 2 alert(s) for 2025-04: the period does not pass." in html
    assert "passes" not in html
    for alert in res.alerts:
        assert alert.line().replace(">", "&gt;") in html
    change = next(a for a in res.alerts if a.kind == "change")
    assert f"z = {change.score:+.1f}" in html and f"|z| &gt; {change.limit:.2f}" in html
    assert "2025-01, 2025-02, 2025-03" in html  # the baseline used
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert md.index("### Monitoring alerts for 2025-04") < md.index("### Key figures")
    assert "**The monitoring run raised 2 alert(s) for 2025-04: the period does not pass.**" in md
    assert "passes" not in md
    sv = render_html(AuditResult.load(folder), language="sv")
    assert "Larm från bevakningen av 2025-04" in sv and "Bevakningen gav 2 larm för 2025-04" in sv
    assert "godkänd:" not in sv.replace("inte godkänd", "")


def test_a_quiet_run_says_no_alert_not_that_it_passes(tmp_path: Path) -> None:
    hist, out = tmp_path / "history", tmp_path / "reports"
    first = run_monitor(_spec(tmp_path), history=hist, period="2025-01", out=out)
    assert first.alerts == () and first.exit_code == 0
    data = json.loads((first.run.run_dir / "results.json").read_text(encoding="utf-8"))
    _validate(data)
    assert data["alerts"] == [] and data["monitor"]["baseline"]["periods"] == []
    html = (first.run.run_dir / "report.html").read_text(encoding="utf-8")
    assert "No alert for 2025-01, but no group was compared with a baseline yet" in html
    assert "The audit passes" not in html
    assert "the history holds no earlier period of base-test" in html  # the note, in the report


def test_monitor_results_round_trip_and_exit_code() -> None:
    base = AuditResult.build(run_id="r", generated_at="2026-01-01T00:00:00+00:00", spec={"name": "x"},
                             population={}, engine=None, checks=[], journey={}, metrics=[], findings=[])
    warn = {"kind": "baseline", "severity": "warn", "message": "m"}
    assert base.exit_code == 0 and "alerts" not in base.to_dict() and "monitor" not in base.to_dict()
    quiet = base.with_monitor(alerts=[warn], monitor={"period": "2026-01"})
    assert quiet.exit_code == 0
    loud = base.with_monitor(alerts=[warn, {**warn, "severity": "fail"}], monitor={"period": "2026-01"})
    assert loud.exit_code == 1 and base.exit_code == 0  # a copy; the original is unchanged
    back = AuditResult.from_dict(loud.to_dict())
    assert back.to_dict() == loud.to_dict() and back.exit_code == 1


# --------------------------------------------------------------------------
# 2. the baseline says what it used


def test_a_missing_month_is_named_and_a_short_baseline_is_an_alert(tmp_path: Path) -> None:
    hist, out = tmp_path / "history", tmp_path / "reports"
    for run_id, period in (("c1", "2025-01"), ("c2", "2025-02"), ("c4", "2025-04")):  # 2025-03 never ran
        _run(hist, run_id, period, 320)
    res = run_monitor(_spec(tmp_path), history=hist, period="2025-05", out=out)
    assert res.missing_periods == ("2025-03",) and res.baseline_periods == ("2025-02", "2025-04")
    assert res.baseline == "trailing 2 of 3 periods 2025-02 to 2025-04 (missing 2025-03)"
    base_alert = [a for a in res.alerts if a.kind == "baseline"]
    assert len(base_alert) == 1 and base_alert[0].severity == "fail" and res.exit_code == 1
    assert base_alert[0].line() == (
        "ALERT base-test 2025-05 baseline: the baseline holds 2 usable period(s), 3 needed, so this period was not "
        "compared with it: the trailing 3 months 2025-03 to 2025-05 - missing (no run in the history): 2025-03. "
        "Run the missing months (insyn monitor --period YYYY-MM) or approve alerted months in the spec's "
        "monitor.approved.".replace("2025-03 to 2025-05", "2025-02 to 2025-04"))
    saved = json.loads(res.alerts_file.read_text(encoding="utf-8"))
    assert saved[0]["missing_periods"] == ["2025-03"] and saved[0]["baseline_periods"] == ["2025-02", "2025-04"]
    html = (res.run.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Missing (no run in the history)</dt><dd>2025-03</dd>" in html
    # with two periods enough, the period is compared, and the missing month is a warning that names it
    res = run_monitor(_spec(tmp_path), history=hist, period="2025-05", write=False, min_periods=2)
    warn = [a for a in res.alerts if a.kind == "baseline"]
    assert [a.severity for a in warn] == ["warn"] and warn[0].missing_periods == ("2025-03",)
    assert "missing (no run in the history): 2025-03" in warn[0].message
    row = load_history(hist).query("run_id == @res.run_id and metric == 'grant_rate' and attributes == ''").iloc[0]
    assert row["baseline_periods"] == 2 and row["baseline_value"] == pytest.approx(640 / 800)


def test_an_empty_baseline_after_a_gap_is_a_clear_alert(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    for i, period in enumerate(("2025-01", "2025-02", "2025-03")):
        _run(hist, f"c{i}", period, 320)
    res = runner.invoke(app, ["monitor", str(_spec(tmp_path)), "--history", str(hist), "--period", "2025-11",
                              "--out", str(tmp_path / "reports"), "--quiet"])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines()[0] == (
        "ALERT base-test 2025-11 baseline: the baseline is empty, 3 needed, so this period was not compared with it: "
        "the trailing 3 months 2025-08 to 2025-10 - missing (no run in the history): 2025-08, 2025-09, 2025-10. "
        "Run the missing months (insyn monitor --period YYYY-MM) or approve alerted months in the spec's "
        "monitor.approved.")
    loud = runner.invoke(app, ["monitor", str(_spec(tmp_path)), "--history", str(hist), "--period", "2025-12",
                               "--out", str(tmp_path / "reports")])
    # the month that could not be compared still counts as run: the next month's baseline holds it
    assert loud.exit_code == 1 and loud.output.splitlines()[0].startswith(
        "ALERT base-test 2025-12 baseline: the baseline holds 1 usable period(s), 3 needed")
    assert "against trailing 1 of 3 periods 2025-11 (missing 2025-09, 2025-10)" in loud.output.splitlines()[-1]


def test_an_alerted_month_is_left_out_unless_approved(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    for i, (period, count) in enumerate((("2025-01", 300), ("2025-02", 320), ("2025-03", 340))):
        _run(hist, f"c{i}", period, count)
    _run(hist, "c3", "2025-04", 390, alert="change")  # the month that raised an alert
    spec = _spec(tmp_path, monitor={"periods": 4})
    res = run_monitor(spec, history=hist, period="2025-05", write=False)
    assert res.excluded_periods == ("2025-04",) and res.baseline_runs == ("c0", "c1", "c2")
    assert res.baseline == ("trailing 3 of 4 periods 2025-01 to 2025-03 (left out after an alert that is not "
                            "approved: 2025-04)")
    assert not [a for a in res.alerts if a.kind == "baseline"]  # three usable months are enough
    row = load_history(hist).query("run_id == @res.run_id and metric == 'grant_rate' and attributes == ''").iloc[0]
    assert row["baseline_value"] == pytest.approx(960 / 1200) and row["baseline_periods"] == 3
    # approved in the spec, the month serves the baseline again
    approved = _spec(tmp_path, monitor={"periods": 4, "approved": ["2025-04"]})
    res = run_monitor(approved, history=hist, period="2025-05", write=False)
    assert res.excluded_periods == () and res.baseline_runs == ("c0", "c1", "c2", "c3")
    assert res.run.to_dict()["monitor"]["baseline"]["approved"] == ["2025-04"]
    row = load_history(hist).query("run_id == @res.run_id and metric == 'grant_rate' and attributes == ''").iloc[0]
    assert row["baseline_value"] == pytest.approx(1350 / 1600) and row["baseline_periods"] == 4


def test_approved_months_are_checked(tmp_path: Path) -> None:
    data = yaml.safe_load(_spec(tmp_path).read_text(encoding="utf-8"))
    data["monitor"]["approved"] = ["2026-3"]
    with pytest.raises(SpecError, match=r"s\.yaml: monitor\.approved must list months in the form YYYY-MM "
                                         r"\(e\.g\. 2026-03\)\. Got '2026-3'\."):
        Audit.from_dict(data, base_dir=tmp_path, source="s.yaml")
    data["monitor"]["approved"] = ["2026-03", "2026-03"]
    assert Audit.from_dict(data, base_dir=tmp_path).monitor.approved == ["2026-03"]
