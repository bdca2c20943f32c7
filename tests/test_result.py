"""AuditResult: frozen, JSON-safe, and its summary of the largest disparities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from audit._json import jsonable
from audit.result import AuditResult, strip_run_metadata


def _row(metric: str, group: str, value: float, ref: float, p: float, **extra: object) -> dict:
    return {"metric": metric, "attributes": ["birth_region"], "group": group, "n": 100, "value": value,
            "ci_low": value - 0.05, "ci_high": value + 0.05, "reference_group": "sweden", "reference_value": ref,
            "difference": value - ref, "ratio": value / ref, "p_value": p, "p_adjusted": p,
            "suppressed": False, **extra}


def _result(metrics: list[dict]) -> AuditResult:
    return AuditResult.build(run_id="r1", generated_at="2026-11-24T12:00:00+00:00", spec={"name": "t"},
                             population={"kind": "file", "n_cases": 100}, engine=None, checks=[],
                             journey={"steps": []}, metrics=metrics, findings=[])


def test_jsonable_turns_nan_and_numpy_into_json() -> None:
    data = {"a": np.float64("nan"), "b": np.int64(3), "c": np.bool_(True), "d": [np.float32(0.5), math.inf]}
    assert jsonable(data) == {"a": None, "b": 3, "c": True, "d": [0.5, None]}
    json.dumps(jsonable(data), allow_nan=False)


def test_strip_run_metadata_is_recursive() -> None:
    data = {"run_id": "x", "journey": {"steps": [{"name": "s", "duration_s": 1.2, "run_uuid": "u"}]}, "v": 1}
    assert strip_run_metadata(data) == {"journey": {"steps": [{"name": "s"}]}, "v": 1}


def test_result_is_frozen() -> None:
    res = _result([_row("refer_rate", "eu", 0.3, 0.2, 0.01)])
    with pytest.raises(AttributeError):
        res.run_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        res.metrics[0]["value"] = 1.0  # type: ignore[index]
    copy = res.metrics_frame()
    copy.loc[0, "value"] = 9.0
    assert res.metrics_frame().loc[0, "value"] == 0.3


def test_largest_disparities_order_and_no_redundant_rows() -> None:
    rows = [
        _row("refer_rate", "eu", 0.30, 0.20, 0.01),
        _row("automation_rate", "eu", 0.70, 0.80, 0.01),   # 1 - refer_rate: left out
        _row("grant_rate", "outside_eu", 0.40, 0.60, 0.001),
        _row("deny_rate", "outside_eu", 0.40, 0.60, 0.001),  # same comparison, same values: left out
        _row("grant_rate", "nordic", 0.55, 0.60, 0.5),
        _row("grant_rate", "sweden", 0.60, 0.60, float("nan")),  # the reference itself
        {**_row("grant_rate", "eu", 0.10, 0.60, 0.0001), "suppressed": True},
    ]
    top = _result(rows).largest_disparities(10)
    assert list(zip(top["metric"], top["group"], strict=True)) == [
        ("grant_rate", "outside_eu"), ("refer_rate", "eu"), ("grant_rate", "nordic")]


def test_largest_disparities_ranked_by_distance_from_parity_not_p() -> None:
    """Issue 25: 'paid per krona owed 1.12x' (p 1e-12) no longer stands above 'grant rate 0.10x' (p 0.003)."""
    rows = [
        _row("amount_ratio", "eu", 1.12, 1.0, 1e-12),
        _row("grant_rate", "outside_eu", 0.06, 0.60, 0.003),
        _row("refer_rate", "nordic", 0.30, 0.20, 0.2),
        {**_row("calibration_gap", "nordic", 0.08, -0.02, 0.01), "ratio": None},   # signed: |difference| 0.10
    ]
    top = _result(rows).largest_disparities(10)
    # significant first, by distance; then the rest (refer_rate, adjusted p 0.2), by distance
    assert list(top["metric"]) == ["grant_rate", "amount_ratio", "calibration_gap", "refer_rate"]
    # by hand: |log 0.1| = 2.3026, |log 1.12| = 0.1133, |0.08 + 0.02| = 0.10, |log 1.5| = 0.4055
    assert top["distance"].round(4).tolist() == [2.3026, 0.1133, 0.1, 0.4055]
    assert top["significant"].tolist() == [True, True, True, False]
