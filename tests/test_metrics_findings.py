"""Thresholds of the spec turned into PASS / FAIL / WARN / ERROR findings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.exceptions import DataError, SpecError
from audit.metrics import evaluate_thresholds, exit_status, measure
from audit.spec import StatisticsSpec, Threshold


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """refer_rate by birth_region: sweden 60/300 = 0.20, eu 30/100 = 0.30, outside_eu 15/100 = 0.15,
    nordic 2/6 (a group of 6: suppressed). Ratios to sweden: eu 1.5, outside_eu 0.75."""
    parts = []
    for region, n, referred in (("sweden", 300, 60), ("eu", 100, 30), ("outside_eu", 100, 15), ("nordic", 6, 2)):
        parts.append(pd.DataFrame({
            "birth_region": region,
            "outcome": ["refer"] * referred + ["grant"] * (n - referred),
        }))
    df = pd.concat(parts, ignore_index=True)
    df["case_id"] = [f"f{i}" for i in range(len(df))]
    df["status"] = "ok"
    df["final_outcome"] = df["outcome"].replace({"refer": "deny"})
    df["final_amount"] = np.where(df["final_outcome"] == "grant", 4000.0, np.nan)
    return measure(df, sensitive_features=["birth_region"], statistics=StatisticsSpec(bootstrap=200))


def by_group(findings: list[dict]) -> dict[str, dict]:
    return {f["group"]: f for f in findings}


def test_ratio_threshold_pass_fail_error(table: pd.DataFrame) -> None:
    findings = evaluate_thresholds(table, [Threshold(metric="refer_rate", ratio_min=0.8)])
    got = by_group(findings)
    assert set(got) == {"eu", "outside_eu", "nordic"}  # the reference group sweden is not judged
    assert got["outside_eu"]["status"] == "FAIL"
    assert got["outside_eu"]["name"] == "refer_rate ratio >= 0.8 for birth_region=outside_eu vs sweden"
    assert got["outside_eu"]["observed"] == pytest.approx(0.75, abs=1e-12)
    assert "below the minimum 0.8" in got["outside_eu"]["message"]
    assert got["eu"]["status"] == "PASS" and got["eu"]["observed"] == pytest.approx(1.5, abs=1e-12)
    assert got["nordic"]["status"] == "ERROR" and "suppressed" in got["nordic"]["message"]
    for f in findings:
        # issue 25: severity agrees with status (no severity 'fail' next to PASS); the threshold's is on_breach
        assert f["statistic"] == "ratio" and f["on_breach"] == "fail" and f["bound"] == ">= 0.8"
        assert f["severity"] == {"PASS": None, "FAIL": "fail", "ERROR": "fail"}[f["status"]]
        assert f["reference_group"] == "sweden" and f["attributes"] == ["birth_region"]
    assert exit_status(findings) == 1
    json.dumps(findings)


def test_warn_severity_and_two_sided_bounds(table: pd.DataFrame) -> None:
    t = Threshold(metric="refer_rate", attributes=["birth_region"], ratio_min=0.8, ratio_max=1.25, severity="warn")
    got = by_group(evaluate_thresholds(table, [t]))
    assert got["eu"]["status"] == "WARN" and "above the maximum 1.25" in got["eu"]["message"]
    assert got["outside_eu"]["status"] == "WARN"
    assert got["eu"]["name"] == "refer_rate ratio between 0.8 and 1.25 for birth_region=eu vs sweden"
    assert exit_status([got["eu"], got["outside_eu"]]) == 0  # warnings alone do not fail a run


def test_difference_and_value_bounds(table: pd.DataFrame) -> None:
    """difference eu - sweden = 0.30 - 0.20 = 0.10; outside_eu: 0.15 - 0.20 = -0.05.
    value bounds include the overall row: 107/506 = 0.2115 and the reference group."""
    diff = by_group(evaluate_thresholds(table, [{"metric": "refer_rate", "difference_max": 0.05}]))
    assert diff["eu"]["status"] == "FAIL" and diff["eu"]["observed"] == pytest.approx(0.10, abs=1e-12)
    assert diff["outside_eu"]["status"] == "PASS"
    value = evaluate_thresholds(table, [{"metric": "refer_rate", "value_max": 0.25}])
    got = by_group(value)
    assert got["all"]["name"] == "refer_rate value <= 0.25 for all cases"
    assert got["all"]["status"] == "PASS" and got["all"]["observed"] == pytest.approx(107 / 506, abs=1e-12)
    assert got["sweden"]["status"] == "PASS" and got["eu"]["status"] == "FAIL"
    assert got["eu"]["ci_low"] < 0.30 < got["eu"]["ci_high"]


def test_unevaluable_thresholds_are_errors(table: pd.DataFrame) -> None:
    findings = evaluate_thresholds(table, [
        {"metric": "approval_rate", "ratio_min": 0.8},
        {"metric": "wrongful_denial_rate", "ratio_min": 0.8},
        {"metric": "refer_rate", "attributes": ["sex"], "ratio_min": 0.8},
        {"metric": "share", "ratio_min": 0.8},
    ])
    assert [f["status"] for f in findings] == ["ERROR"] * 4
    assert "unknown metric 'approval_rate'" in findings[0]["message"]
    assert "was not measured" in findings[1]["message"]
    assert "no groups of sex were measured" in findings[2]["message"]
    assert "not compared with a reference group" in findings[3]["message"]
    assert exit_status(findings) == 1


def test_nan_ratio_is_an_error_never_a_pass() -> None:
    df = pd.DataFrame({
        "case_id": [f"z{i}" for i in range(60)], "sex": ["female"] * 20 + ["male"] * 40, "status": "ok",
        "outcome": ["grant"] * 10 + ["refer"] * 10 + ["grant"] * 40,
    })
    df["final_outcome"] = df["outcome"]
    out = measure(df, sensitive_features=["sex"], metrics=["refer_rate"])
    [finding] = evaluate_thresholds(out, [{"metric": "refer_rate", "ratio_max": 1.25}])
    assert finding["status"] == "ERROR" and finding["observed"] is None
    assert "reference value is 0" in finding["message"]


def test_bad_input() -> None:
    with pytest.raises(SpecError, match=r"thresholds\[0\]: a threshold needs at least one bound"):
        evaluate_thresholds(pd.DataFrame(), [{"metric": "refer_rate"}])
    with pytest.raises(DataError, match="metrics table: missing column"):
        evaluate_thresholds(pd.DataFrame({"metric": []}), [{"metric": "refer_rate", "ratio_min": 0.8}])
    assert exit_status([]) == 0


def test_metrics_of_other_modules_are_evaluated_like_any_row(table: pd.DataFrame) -> None:
    """A metric outside the registry (e.g. a selection audit's equal_burden) is judged from its rows:
    the refer_rate rows relabelled equal_burden keep their ratios (eu 1.5, outside_eu 0.75)."""
    other = table[table["metric"] == "refer_rate"].assign(metric="equal_burden")
    both = pd.concat([table, other], ignore_index=True)
    got = by_group(evaluate_thresholds(both, [Threshold(metric="equal_burden", ratio_max=1.25)]))
    assert got["eu"]["status"] == "FAIL" and got["eu"]["observed"] == pytest.approx(1.5)
    assert got["outside_eu"]["status"] == "PASS"
    unknown = evaluate_thresholds(both, [Threshold(metric="no_such_metric", ratio_max=1.25)])
    assert [f["status"] for f in unknown] == ["ERROR"]
    assert "unknown metric 'no_such_metric'" in unknown[0]["message"]
    assert "equal_burden" in unknown[0]["message"]
