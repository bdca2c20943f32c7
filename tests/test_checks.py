"""Tests of audit.checks: strict suites, custom expectations, reports, files.

Every expected value is computed independently: by hand (arithmetic in the
docstring), with pandas/numpy on the same data, or with scipy.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2_contingency
from scipy.stats.contingency import association

import audit.checks as checks
from audit.checks import CheckReport, Suite, check_file, load_suite, validate
from audit.exceptions import DataError, SpecError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("application", "engine_input", "decisions", "decision_log")


def _suite(*entries: dict, groups: list[str] | None = None) -> Suite:
    data: dict = {"name": "t", "expectations": list(entries)}
    if groups is not None:
        data["groups"] = groups
    return Suite.from_dict(data, source="t.yaml")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _fake_pnr(yy: int, mm: int, dd: int, tail: int, sep: str = "-") -> str:
    """A personnummer-shaped string, built at run time so that none is written in a file."""
    return f"{yy:02d}{mm:02d}{dd:02d}{sep}{tail:04d}"


def _only(report: CheckReport, expectation: str) -> dict:
    rows = [r for r in report.results if r["expectation"] == expectation]
    assert len(rows) == 1, rows
    return rows[0]


# --------------------------------------------------------------------------
# public surface


def test_all_is_sorted_and_complete():
    assert checks.__all__ == sorted(checks.__all__)
    for name in checks.__all__:
        assert hasattr(checks, name), name


def test_only_audit_checks_imports_great_expectations():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "audit").rglob("*.py")
        if "checks" not in p.relative_to(ROOT / "audit").parts
        and re.search(r"^\s*(import|from)\s+great_expectations", p.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


# --------------------------------------------------------------------------
# strict loading


def test_shipped_suites_load_and_round_trip_exactly():
    for name in SHIPPED:
        path = ROOT / "checks" / f"{name}.yaml"
        suite = load_suite(path)
        assert suite.name == name
        assert suite.to_dict() == yaml.safe_load(path.read_text(encoding="utf-8"))
        assert len(suite.expectations) == len(suite.to_dict()["expectations"])


def test_round_trip_keeps_defaults_and_integers(tmp_path):
    path = _write(
        tmp_path,
        "name: s\nexpectations:\n"
        "  - {type: expect_column_values_to_be_between, kwargs: {column: a, min_value: 18, mostly: 1.0}}\n",
    )
    kwargs = load_suite(path).to_dict()["expectations"][0]["kwargs"]
    assert kwargs == {"column": "a", "min_value": 18, "mostly": 1.0}
    assert type(kwargs["min_value"]) is int


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{type: expect_column_values_to_not_be_null, kwargs: {column: a}}\n"
            "  - {type: expect_column_values_to_be_betwen, kwargs: {column: a, min_value: 0}}",
            "expectations[1] (expect_column_values_to_be_betwen) is not a known expectation type. "
            "Did you mean expect_column_values_to_be_between?",
        ),
        (
            "{type: expect_column_missing_rate_gap_across_groups_to_be_at_most, kwargs: {column: a}}",
            "expectations[0] (expect_column_missing_rate_gap_across_groups_to_be_at_most): kwargs.max_gap is required.",
        ),
        (
            "{type: expect_column_missing_rate_gap_across_groups_to_be_at_most, kwargs: {column: a, max_gap: abc}}",
            "expectations[0] (expect_column_missing_rate_gap_across_groups_to_be_at_most): "
            "kwargs.max_gap must be a number. Got 'abc'.",
        ),
        (
            "{type: expect_column_proxy_strength_to_be_at_most, kwargs: {column: a, max_cramers_v: 2}}",
            "expectations[0] (expect_column_proxy_strength_to_be_at_most): "
            "kwargs.max_cramers_v must be a number <= 1. Got 2.",
        ),
        (
            "{type: expect_column_values_to_not_be_null, kwargs: {column: a, mostly: 2}}",
            "expectations[0] (expect_column_values_to_not_be_null): kwargs.mostly must be a number <= 1.0. Got 2.",
        ),
        (
            "{type: expect_column_values_to_be_in_set, kwargs: {column: a, value_set: 5}}",
            "expectations[0] (expect_column_values_to_be_in_set): kwargs.value_set must be a list. Got 5.",
        ),
        (
            "{type: expect_column_group_representation_to_be_at_least, kwargs: {column: a}}",
            "expectations[0] (expect_column_group_representation_to_be_at_least): give min_count, min_share or both.",
        ),
        (
            "{type: expect_column_values_to_not_be_null, kwargs: {column: a, result_format: COMPLETE}}",
            "expectations[0] (expect_column_values_to_not_be_null): kwargs.result_format cannot be set in a suite: "
            "the result format is set by audit.checks.validate.",
        ),
        (
            "{type: expect_column_values_to_not_be_null, kwargs: {column: a}, severity: fatal}",
            "expectations[0] (expect_column_values_to_not_be_null): severity must be one of critical, warning, "
            "info. Got 'fatal'.",
        ),
        (
            "{type: expect_column_values_to_not_be_null, kwarg: {column: a}}",
            "expectations[0] (expect_column_values_to_not_be_null): unknown key 'kwarg'. An entry has the keys "
            "type, kwargs, meta, severity. Did you mean kwargs?",
        ),
    ],
)
def test_strict_loading_messages(tmp_path, entry, message):
    path = _write(tmp_path, f"name: s\nexpectations:\n  - {entry}\n")
    with pytest.raises(SpecError) as err:
        load_suite(path)
    assert str(err.value) == f"{path}: {message}"


def test_unknown_argument_names_the_argument_and_suggests(tmp_path):
    path = _write(
        tmp_path,
        "name: s\nexpectations:\n"
        "  - {type: expect_column_values_to_be_between, kwargs: {column: a, min_value: 0, maxvalue: 3}}\n",
    )
    with pytest.raises(SpecError) as err:
        load_suite(path)
    text = str(err.value)
    assert text.startswith(
        f"{path}: expectations[0] (expect_column_values_to_be_between): kwargs.maxvalue is not an argument "
        "of expect_column_values_to_be_between. Did you mean max_value? Arguments: "
    )
    listed = text.split("Arguments: ")[1].rstrip(".").split(", ")
    assert {"column", "min_value", "max_value", "mostly"} <= set(listed)
    assert "result_format" not in listed


def test_suite_level_errors(tmp_path):
    path = _write(tmp_path, "name: s\nexpectation: []\n")
    with pytest.raises(SpecError) as err:
        load_suite(path)
    assert str(err.value) == (
        f"{path}: unknown key 'expectation'. A suite has the keys name, description, groups, expectations. "
        "Did you mean expectations?"
    )
    path = _write(tmp_path, "name: s\nexpectations: []\n")
    with pytest.raises(SpecError, match=r"expectations must be a non-empty list\. Got \[\]\."):
        load_suite(path)
    path = _write(tmp_path, "name: s\nexpectations: [\n")
    with pytest.raises(SpecError, match=r"not valid YAML at line 3"):
        load_suite(path)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=r"nope\.yaml: suite file not found"):
        load_suite(missing)


# --------------------------------------------------------------------------
# fairness-aware expectations


def _groups_frame() -> pd.DataFrame:
    """12 rows: groups a (4), b (5), c (2), and one row without a group."""
    return pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(12)],
            "g": pd.array(["a"] * 4 + ["b"] * 5 + ["c"] * 2 + [None], dtype="str"),
            "income": [1.0, np.nan, 2.0, 3.0, np.nan, np.nan, 1.0, np.nan, 5.0, np.nan, np.nan, np.nan],
            "failed": [True, False, False, False, True, True, False, True, False, True, False, False],
        }
    )


def test_missing_rate_gap_by_hand():
    """a: 1 of 4 missing = 0.25; b: 3 of 5 = 0.6; c (2 rows) is below min_group_size 3.

    The gap is 0.6 - 0.25 = 0.35; the row without a group is left out.
    """
    frame = _groups_frame()
    kwargs = {"column": "income", "group_column": "g", "min_group_size": 3}
    report = validate(
        frame,
        [_suite(*({"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
                   "kwargs": {**kwargs, "max_gap": gap}} for gap in (0.3, 0.4)))],
        step="t",
    )
    first, second = report.results
    assert first["observed_value"] == pytest.approx(0.35)
    assert first["success"] is False and second["success"] is True
    details = first["details"]
    assert details["by_group"]["a"] == {"n": 4, "count": 1, "rate": 0.25}
    assert details["by_group"]["b"] == {"n": 5, "count": 3, "rate": 0.6}
    assert details["suppressed"] == ["c"]
    assert details["n_missing_group"] == 1
    assert first["message"] == "gap 0.35 across groups of g > max_gap 0.3."
    assert report.failed_case_ids == frozenset()  # aggregate: no case is to blame
    assert report.quarantinable is False


def test_missing_rate_gap_matches_pandas_groupby():
    rng = np.random.default_rng(11)
    n = 5000
    g = rng.choice(["sweden", "nordic", "eu", "outside_eu"], n, p=[0.4, 0.1, 0.2, 0.3])
    p_missing = pd.Series(g).map({"sweden": 0.02, "nordic": 0.05, "eu": 0.08, "outside_eu": 0.15}).to_numpy()
    income = np.where(rng.random(n) < p_missing, np.nan, rng.gamma(2.0, 3000.0, n))
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "g": pd.array(g, dtype="str"), "income": income})
    rates = frame["income"].isna().groupby(frame["g"]).mean()
    report = validate(
        frame,
        [_suite({"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
                 "kwargs": {"column": "income", "group_column": "g", "max_gap": 0.05}})],
        step="t",
    )
    result = report.results[0]
    assert result["observed_value"] == pytest.approx(rates.max() - rates.min(), abs=1e-12)
    assert result["success"] is bool(rates.max() - rates.min() <= 0.05)
    for name, rate in rates.items():
        assert result["details"]["by_group"][name]["rate"] == pytest.approx(rate, abs=1e-12)


def test_failure_rate_gap_by_hand():
    """failed is True in a: 1 of 4 = 0.25; b: 3 of 5 = 0.6; c: 1 of 2 = 0.5 (min_group_size 2).

    The gap is 0.6 - 0.25 = 0.35.
    """
    report = validate(
        _groups_frame(),
        [_suite({"type": "expect_column_failure_rate_gap_across_groups_to_be_at_most",
                 "kwargs": {"column": "failed", "group_column": "g", "max_gap": 0.35, "min_group_size": 2}})],
        step="t",
    )
    result = report.results[0]
    assert result["observed_value"] == pytest.approx(0.35)
    assert result["success"] is True  # 0.35 <= 0.35
    assert result["details"]["by_group"]["c"] == {"n": 2, "count": 1, "rate": 0.5}


def test_failure_rate_gap_rejects_a_non_boolean_column():
    frame = _groups_frame().assign(failed=["yes"] * 12)
    report = validate(
        frame,
        [_suite({"type": "expect_column_failure_rate_gap_across_groups_to_be_at_most",
                 "kwargs": {"column": "failed", "group_column": "g", "max_gap": 0.1}})],
        step="t",
    )
    result = report.results[0]
    assert result["success"] is False
    assert "column 'failed' must hold booleans (True/False, or 1/0). Got 'yes'." in result["message"]


def test_gap_is_nan_with_a_reason_when_fewer_than_two_groups_qualify():
    report = validate(
        _groups_frame(),
        [_suite({"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
                 "kwargs": {"column": "income", "group_column": "g", "max_gap": 0.0, "min_group_size": 5}})],
        step="t",
    )
    result = report.results[0]
    assert result["observed_value"] is None  # NaN in JSON, never 0
    assert result["details"]["reason"].startswith("fewer than two groups")
    assert result["success"] is True


def test_group_representation_by_hand():
    """12 rows: a 4 (share 4/12 = .333), b 5 (.417), c 2 (.167), d absent (0), one missing.

    With min_count 3 and min_share 0.3, c and d are below; the smallest group has 0.
    """
    report = validate(
        _groups_frame(),
        [_suite({"type": "expect_column_group_representation_to_be_at_least",
                 "kwargs": {"column": "g", "min_count": 3, "min_share": 0.3,
                            "expected_groups": ["a", "b", "c", "d"]}})],
        step="t",
    )
    result = report.results[0]
    assert result["success"] is False
    assert result["observed_value"] == 0
    assert result["details"]["below"] == ["c", "d"]
    assert result["details"]["by_group"]["a"] == {"n": 4, "share": pytest.approx(4 / 12)}
    assert result["details"]["n_missing_group"] == 1


def _proxy(frame: pd.DataFrame, **kwargs) -> dict:
    report = validate(
        frame,
        [_suite({"type": "expect_column_proxy_strength_to_be_at_most",
                 "kwargs": {"column": "x", "sensitive_column": "s", "max_cramers_v": 0.2, **kwargs}})],
        step="t",
    )
    return report.results[0]


def _bergsma(table: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) from scipy's chi-square statistic."""
    n = table.sum()
    r, c = table.shape
    chi2 = chi2_contingency(table, correction=False).statistic
    phi2 = max(0.0, chi2 / n - (r - 1) * (c - 1) / (n - 1))
    rc, cc = r - (r - 1) ** 2 / (n - 1), c - (c - 1) ** 2 / (n - 1)
    return math.sqrt(phi2 / min(rc - 1, cc - 1))


def test_proxy_strength_matches_scipy_on_categories():
    rng = np.random.default_rng(5)
    n = 4000
    s = rng.choice(["sweden", "eu", "outside_eu"], n)
    x = np.where(rng.random(n) < 0.3, s, rng.choice(["p", "q", "r", "t"], n))
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "x": pd.array(x, dtype="str"),
                          "s": pd.array(s, dtype="str")})
    table = pd.crosstab(frame["x"], frame["s"]).to_numpy()
    plain = _proxy(frame, bias_correction=False)
    assert plain["observed_value"] == pytest.approx(association(table, method="cramer"), abs=1e-12)
    corrected = _proxy(frame)
    assert corrected["observed_value"] == pytest.approx(_bergsma(table), abs=1e-12)
    assert corrected["details"]["shape"] == [7, 3]
    assert corrected["success"] is bool(corrected["observed_value"] <= 0.2)


def test_proxy_strength_bins_numbers_at_quantiles():
    rng = np.random.default_rng(6)
    n = 3000
    s = rng.choice(["female", "male"], n)
    x = rng.normal(0, 1, n) + (s == "male") * 0.5
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "x": x, "s": pd.array(s, dtype="str")})
    table = pd.crosstab(pd.qcut(frame["x"], 5), frame["s"]).to_numpy()
    assert _proxy(frame, bias_correction=False)["observed_value"] == pytest.approx(
        association(table, method="cramer"), abs=1e-12
    )


def test_proxy_strength_keeps_a_point_mass_in_its_own_bin():
    """70 % zeros, 5 bins: quantiles 0, 0, 0, 0, q80, max, so the bins are {0}, (0, q80], (q80, max]."""
    rng = np.random.default_rng(7)
    n = 5000
    s = rng.choice(["a", "b"], n)
    x = np.where(rng.random(n) < 0.7, 0.0, rng.gamma(2.0, 1000.0, n) * np.where(s == "a", 1.0, 1.5))
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "x": x, "s": pd.array(s, dtype="str")})
    q80 = np.quantile(x, 0.8)
    bins = np.where(x == 0, 0, np.where(x <= q80, 1, 2))
    table = pd.crosstab(bins, s).to_numpy()
    result = _proxy(frame, bias_correction=False)
    assert result["details"]["shape"] == [3, 2]
    assert result["observed_value"] == pytest.approx(association(table, method="cramer"), abs=1e-12)


# --------------------------------------------------------------------------
# row-level rules and case ids


def _children_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": pd.array(["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"], dtype="str"),
            "child_ages": pd.array(["4;9", "", "1;3;12", "x", "5;25", "2", "", "7;6"], dtype="str"),
            "children_preschool_lunch": [1, 0, 3, 0, 0, 1, 1, 1],
        },
        index=[70, 71, 72, 73, 74, 75, 76, 77],
    )


def test_child_ages_format():
    """'x' is not an age list; '5;25' has an age above 20. Rows 3 and 4 (k3, k4) fail."""
    report = validate(
        _children_frame(),
        [_suite({"type": "expect_column_values_to_be_age_lists",
                 "kwargs": {"column": "child_ages", "min_age": 0, "max_age": 20}})],
        step="t",
    )
    result = report.results[0]
    assert (result["unexpected_count"], result["sample_case_ids"]) == (2, ["k3", "k4"])
    assert result["row_level"] is True
    assert report.failed_case_ids == frozenset({"k3", "k4"})


def test_preschool_lunch_at_most_children_aged_0_to_6():
    """Children aged 0-6 per row: 1, 0, 2, - (malformed), 1, 1, 0, 1.

    Lunch 1, 0, 3, 0, 0, 1, 1, 1: k2 (3 > 2), k3 (malformed list) and k6 (1 > 0) fail.
    """
    report = validate(
        _children_frame(),
        [_suite({"type": "expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b",
                 "kwargs": {"column_A": "children_preschool_lunch", "column_B": "child_ages",
                            "min_age": 0, "max_age": 6}})],
        step="t",
        sample_size=2,
    )
    result = report.results[0]
    assert result["unexpected_count"] == 3
    assert result["sample_case_ids"] == ["k2", "k3"]  # sample_size 2, in row order
    assert report.failed_case_ids == frozenset({"k2", "k3", "k6"})
    assert report.failed_rows.tolist() == [2, 3, 6]
    assert result["column"] == "children_preschool_lunch, child_ages"


def test_conditional_range_rule_by_hand():
    """Where type is renewal, months >= 1: rows 1 (renewal, 0) and 3 (renewal, missing) fail;
    row 2 (new, 0) and row 4 (missing type, 0) are not concerned.
    """
    frame = pd.DataFrame(
        {
            "case_id": ["r0", "r1", "r2", "r3", "r4"],
            "application_type": pd.array(["renewal", "renewal", "new", "renewal", None], dtype="str"),
            "months": [3.0, 0.0, 0.0, np.nan, 0.0],
        }
    )
    entry = {"type": "expect_column_pair_values_b_to_be_between_where_a_in_set",
             "kwargs": {"column_A": "application_type", "value_set": ["renewal"], "column_B": "months",
                        "min_value": 1, "allow_missing": False}}
    result = validate(frame, [_suite(entry)], step="t").results[0]
    assert result["sample_case_ids"] == ["r1", "r3"]
    entry["kwargs"]["allow_missing"] = True
    result = validate(frame, [_suite(entry)], step="t").results[0]
    assert result["sample_case_ids"] == ["r1"]


def test_sample_ids_follow_row_positions_not_index_labels():
    frame = _children_frame()
    frame.index = [5, 3, 1, 0, 2, 4, 7, 6]  # labels that are not positions
    report = validate(
        frame,
        [_suite({"type": "expect_column_values_to_be_age_lists", "kwargs": {"column": "child_ages"}})],
        step="t",
    )
    assert report.results[0]["sample_case_ids"] == ["k3", "k4"]
    cases = report.failed_cases()
    assert cases["case_id"].tolist() == ["k3", "k4"]
    assert cases["row"].tolist() == [3, 4]
    assert cases["reasons"].tolist() == ["t.expectations[0] (expect_column_values_to_be_age_lists) on child_ages"] * 2


def test_mostly_and_warnings_do_not_quarantine():
    frame = _children_frame()
    report = validate(
        frame,
        [_suite(
            {"type": "expect_column_values_to_be_age_lists", "kwargs": {"column": "child_ages", "mostly": 0.7}},
            {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": "children_preschool_lunch", "max_value": 0}, "severity": "warning"},
        )],
        step="t",
    )
    tolerated, warned = report.results
    assert tolerated["success"] is True and tolerated["unexpected_count"] == 2  # 6/8 = 0.75 >= 0.7
    assert warned["success"] is False and warned["severity"] == "warning"
    assert report.success is True
    assert report.failed_case_ids == frozenset()


def test_personnummer_scan_agrees_with_the_privacy_pattern():
    from audit._privacy import looks_like_personnummer

    texts = [
        _fake_pnr(85, 1, 1, 1234),
        "ref " + _fake_pnr(1985, 12, 31, 9876, sep=""),
        _fake_pnr(90, 2, 61, 1111, sep="+"),  # samordningsnummer: day + 60
        "1" + _fake_pnr(85, 1, 1, 1234, sep=""),  # embedded in a longer number
        _fake_pnr(85, 13, 1, 1234),  # month 13
        "NEW_APPLICATION",
        "",
        "2026-03",
        "ref \u0668\u0665" + _fake_pnr(85, 1, 1, 1234)[2:],  # the year in Arabic-Indic digits: Python's \d counts them
    ]
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(len(texts))], "note": pd.array(texts, dtype="str"),
                          "n": range(len(texts))})
    expected = looks_like_personnummer(frame["note"]).to_numpy()
    assert expected.tolist() == [True, True, True, False, False, False, False, False, True]
    report = validate(
        frame,
        [_suite({"type": "expect_table_text_values_to_not_contain_personnummer", "kwargs": {}})],
        step="t",
    )
    result = report.results[0]
    assert result["sample_case_ids"] == [f"c{i}" for i in np.flatnonzero(expected)]
    assert result["observed_value"] == {"note": 4}  # the Arabic-Indic year too, as the privacy gate masks it
    assert not any(_fake_pnr(85, 1, 1, 1234) in json.dumps(r) for r in report.to_dict()["results"])


def test_personnummer_shaped_case_ids_are_masked_in_samples():
    ids = [_fake_pnr(85, 1, 1, 1000 + i) for i in range(3)]
    frame = pd.DataFrame({"case_id": pd.array(ids, dtype="str"), "a": [1, -1, 2]})
    report = validate(
        frame, [_suite({"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}})],
        step="t",
    )
    assert report.results[0]["sample_case_ids"] == ["[personnummer removed]"]


def test_sensitive_columns_kept_from_the_engine():
    suite = load_suite(ROOT / "checks" / "engine_input.yaml")
    frame = pd.DataFrame({"case_id": ["a", "b"], "rent": [1.0, 2.0], "sex": ["female", "male"]})
    report = validate(frame, [suite], step="engine_input")
    result = _only(report, "expect_table_columns_to_not_contain_set")
    assert (result["success"], result["observed_value"]) == (False, ["sex"])
    assert report.success is False and report.quarantinable is False
    assert validate(frame.drop(columns="sex"), [suite], step="engine_input").success is True


# --------------------------------------------------------------------------
# groups, missing columns, report


def test_groups_fill_the_placeholder_and_missing_group_columns():
    suite = _suite(
        {"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "income", "max_gap": 0.5, "min_group_size": 1}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "{groups}"}},
        groups=["g"],
    )
    frame = _groups_frame().assign(h=pd.array(["x", "y"] * 6, dtype="str"))
    by_default = validate(frame, [suite], step="t")
    assert [r["kwargs"].get("group_column", r["kwargs"].get("column")) for r in by_default.results] == ["g", "g"]
    given = validate(frame, [suite], step="t", groups=["h", "g"])
    assert [r["kwargs"].get("group_column") for r in given.results[:2]] == ["h", "g"]
    assert [r["kwargs"]["column"] for r in given.results[2:]] == ["h", "g"]
    assert given.results[3]["unexpected_count"] == 1  # g has one missing value
    no_groups = validate(frame, [_suite(*suite.to_dict()["expectations"])], step="t")
    assert no_groups.results[0]["success"] is False
    assert no_groups.results[0]["message"].startswith("needs kwargs.group_column: name it in the suite, pass groups")


def test_a_missing_column_is_a_failed_result_not_a_crash():
    frame = _groups_frame().drop(columns="income")
    report = validate(
        frame,
        [_suite(
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "incme", "min_value": 0}},
            {"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
             "kwargs": {"column": "failed", "group_column": "group", "max_gap": 0.1}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "case_id"}},
        )],
        step="intake",
    )
    first, second, third = report.results
    assert (first["success"], first["message"]) == (False, "The intake frame has no column 'incme'.")
    assert second["message"] == "The intake frame has no column 'group'."
    assert third["success"] is True
    assert report.success is False
    table = report.failures_table()
    assert table["column"].tolist() == ["incme", "failed"]
    assert table["unexpected_count"].isna().all()


def test_an_expectation_that_raises_is_a_failed_result():
    frame = pd.DataFrame({"case_id": ["a", "b"], "t": pd.array(["x", "y"], dtype="str")})
    report = validate(
        frame, [_suite({"type": "expect_column_values_to_be_between", "kwargs": {"column": "t", "min_value": 0}})],
        step="t",
    )
    result = report.results[0]
    assert result["success"] is False and result["message"].startswith("could not be evaluated: ")
    assert result["row_level"] is False


def test_report_is_json_safe_and_ordered(openlineage_spec):
    import jsonschema

    frame = _children_frame()
    suites = [
        _suite({"type": "expect_column_values_to_be_age_lists", "kwargs": {"column": "child_ages"}},
               {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "case_id", "type_": "str"}}),
        Suite.from_dict({"name": "second", "expectations": [
            {"type": "expect_column_proxy_strength_to_be_at_most",
             "kwargs": {"column": "children_preschool_lunch", "sensitive_column": "child_ages",
                        "max_cramers_v": 1.0}}]}),
    ]
    report = validate(frame, suites, step="intake")
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert [(r["suite"], r["index"]) for r in data["results"]] == [("t", 0), ("t", 1), ("second", 0)]
    assert data["n_failed_cases"] == 2 and data["success"] is False
    assertions = report.to_openlineage_assertions()
    json.dumps(assertions, allow_nan=False)
    facet = json.loads((openlineage_spec / "facets" / "DataQualityAssertionsDatasetFacet.json").read_text())
    item_schema = facet["$defs"]["DataQualityAssertionsDatasetFacet"]["allOf"][1]["properties"]["assertions"]["items"]
    for item in assertions:
        jsonschema.Draft202012Validator(item_schema).validate(item)
    assert assertions[0] == {
        "assertion": "expect_column_values_to_be_age_lists",
        "success": False,
        "severity": "error",
        "name": "t.expectations[0]",
        "params": {"column": "child_ages"},
        "actual": "2 unexpected of 8",
        "column": "child_ages",
    }


def test_progress_bars_stay_off(capfd):
    validate(_children_frame(), [_suite({"type": "expect_column_values_to_not_be_null",
                                         "kwargs": {"column": "case_id"}})], step="t")
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err
    assert "%|" not in out + err


def test_bad_arguments_of_validate():
    with pytest.raises(DataError, match="frame must be a pandas DataFrame. Got list."):
        validate([1, 2], ["checks/application.yaml"], step="t")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="sample_size must be an integer >= 0. Got -1."):
        validate(_children_frame(), [ROOT / "checks/decisions.yaml"], step="t", sample_size=-1)
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="duplicate column names: a"):
        validate(frame, [ROOT / "checks/decisions.yaml"], step="t")


# --------------------------------------------------------------------------
# shipped suites on real-shaped data, and files


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets/sweden/population-2026.yaml", n=3000, seed=9)


def test_application_suite_accepts_the_synthetic_generator(synthetic):
    report = validate(synthetic, [ROOT / "checks/application.yaml"], step="intake", groups=["sex", "birth_region"])
    critical = [r for r in report.failures if r["severity"] == "critical"]
    assert critical == []
    assert report.success is True
    # the fairness-aware entries ran once per group column
    proxies = [r for r in report.results if r["expectation"] == "expect_column_proxy_strength_to_be_at_most"]
    assert {r["kwargs"]["sensitive_column"] for r in proxies} == {"sex", "birth_region"}


def test_application_suite_catches_broken_cases(synthetic):
    broken = synthetic.copy()
    ids = broken["case_id"].to_numpy()
    broken.loc[3, "municipality_code"] = "9999"
    broken.loc[5, "benefit_month"] = "2026-13"
    broken.loc[8, "applicant_age"] = 12
    with_children = np.flatnonzero((broken["child_ages"] == "").to_numpy())[0]
    broken.loc[with_children, "children_preschool_lunch"] = 1
    report = validate(broken, [ROOT / "checks/application.yaml"], step="intake")
    assert report.success is False and report.quarantinable is True
    assert report.failed_case_ids == frozenset(ids[[3, 5, 8, with_children]])
    failed = {r["expectation"] for r in report.failures if r["severity"] == "critical"}
    assert {"expect_column_values_to_match_regex", "expect_column_values_to_be_between",
            "expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b"} <= failed


def test_check_file_reads_csv_text_columns_as_text(tmp_path, synthetic):
    path = tmp_path / "cases.csv"
    synthetic.head(200).to_csv(path, index=False)
    report = check_file(path, [ROOT / "checks/application.yaml"], groups=["sex"])
    assert report.step == "check"
    assert [r for r in report.failures if r["severity"] == "critical"] == []
    parquet = tmp_path / "cases.parquet"
    synthetic.head(200).to_parquet(parquet)
    assert check_file(parquet, [ROOT / "checks/application.yaml"]).success is True


def test_check_file_refuses_other_files(tmp_path):
    with pytest.raises(DataError) as err:
        check_file(tmp_path / "cases.xlsx", [ROOT / "checks/application.yaml"])
    assert str(err.value) == f"{tmp_path / 'cases.xlsx'}: cannot check a .xlsx file. Expected a .csv or .parquet file."
    with pytest.raises(DataError, match=r"cases\.csv: file not found\."):
        check_file(tmp_path / "cases.csv", [ROOT / "checks/application.yaml"])


def test_check_file_refuses_a_repeated_column_name(tmp_path, synthetic):
    """pandas reads a repeated header 'x' as 'x' and 'x.1'; a check of such a file would pass silently."""
    path = tmp_path / "cases.csv"
    frame = synthetic.head(20)
    frame.assign(extra=frame["sex"]).rename(columns={"extra": "sex"}).to_csv(path, index=False)
    where = list(frame.columns).index("sex") + 1
    with pytest.raises(DataError, match=rf"cases\.csv: the column name 'sex' appears twice in the header \(columns "
                                        rf"{where} and {len(frame.columns) + 1}\)"):
        check_file(path, [ROOT / "checks/application.yaml"])


def test_check_file_reads_a_swedish_export_as_a_run_does(tmp_path, synthetic):
    """';' as separator, cp1252: insyn check finds the dialect as insyn run does (it read every such file as one
    column before); a file with NUL bytes (binary, or UTF-16 text) is refused by name."""
    frame = synthetic.head(200)
    comma, semi = tmp_path / "comma.csv", tmp_path / "semi.csv"
    frame.to_csv(comma, index=False)
    frame.to_csv(semi, index=False, sep=";", encoding="cp1252")
    suites = [ROOT / "checks/application.yaml"]
    a, b = check_file(comma, suites), check_file(semi, suites)
    assert b.n_rows == a.n_rows == 200
    assert [(r["expectation"], r["column"]) for r in b.failures] == [(r["expectation"], r["column"]) for r in a.failures]
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("case_id,sex\nc1,female\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"utf16\.csv: holds NUL bytes, so it is not a text CSV export"):
        check_file(utf16, suites)


def test_decisions_suite_on_a_decision_frame():
    """Rows d3 (grant without amount), d4 (unknown outcome) and d5 (bad reasons) fail."""
    frame = pd.DataFrame(
        {
            "case_id": pd.array([f"d{i}" for i in range(7)], dtype="str"),
            "outcome": pd.array(["grant", "partial", "deny", "grant", "maybe", "refer", "error"], dtype="str"),
            "amount": [5200.0, 800.0, np.nan, np.nan, np.nan, 0.0, np.nan],
            "reasons": pd.array(["", "EXPENSE_CAPPED", "NO_NEED_INCOME_SUFFICIENT", "", "", "NEW; X", ""],
                                dtype="str"),
        }
    )
    report = validate(frame, [ROOT / "checks/decisions.yaml"], step="decisions")
    assert report.failed_case_ids == frozenset({"d3", "d4", "d5"})
    assert report.quarantinable is True


def test_group_statistics_are_not_cached_outside_a_validation():
    from audit.checks._statistics import group_rates

    groups = pd.Series(pd.array(["a", "a", "b", "b"], dtype="str"))
    flags = pd.Series([1.0, np.nan, 2.0, 3.0])
    assert group_rates(flags, groups, min_group_size=1, count_missing=True)["gap"] == pytest.approx(0.5)
    groups.iloc[1] = "b"  # now a: 1 row, 0 missing; b: 3 rows, 1 missing
    assert group_rates(flags, groups, min_group_size=1, count_missing=True)["gap"] == pytest.approx(1 / 3)


def test_two_group_columns_in_one_validation_match_pandas():
    rng = np.random.default_rng(12)
    n = 2000
    frame = pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "sex": pd.array(rng.choice(["female", "male"], n), dtype="str"),
            "region": pd.array(rng.choice(["sweden", "eu", "outside_eu"], n), dtype="str"),
            "income": np.where(rng.random(n) < 0.1, np.nan, 1.0),
            "failed": rng.random(n) < 0.05,
        }
    )
    suite = _suite(
        {"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "income", "max_gap": 1.0}},
        {"type": "expect_column_failure_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "failed", "max_gap": 1.0}},
    )
    report = validate(frame, [suite], step="t", groups=["sex", "region"])
    observed = {(r["expectation"][14:21], r["kwargs"]["group_column"]): r["observed_value"] for r in report.results}
    for g in ("sex", "region"):
        miss = frame["income"].isna().groupby(frame[g]).mean()
        fail = frame["failed"].groupby(frame[g]).mean()
        assert observed[("missing", g)] == pytest.approx(miss.max() - miss.min(), abs=1e-12)
        assert observed[("failure", g)] == pytest.approx(fail.max() - fail.min(), abs=1e-12)


def test_a_feature_is_not_compared_with_itself():
    frame = _groups_frame()
    suite = _suite({"type": "expect_column_proxy_strength_to_be_at_most",
                    "kwargs": {"column": "g", "max_cramers_v": 0.1}})
    report = validate(frame, [suite], step="t", groups=["g", "failed"])
    assert [r["kwargs"]["sensitive_column"] for r in report.results] == ["failed"]


def test_decision_log_suite():
    """d2 has an impossible date (30 February), d3 a grant without amount; both are caught."""
    rng = np.random.default_rng(13)
    n = 60
    log = pd.DataFrame(
        {
            "case_id": pd.array([f"d{i}" for i in range(n)], dtype="str"),
            "benefit_month": pd.array(["2026-03"] * n, dtype="str"),
            "decision_date": pd.array(["2026-02-25"] * n, dtype="str"),
            "decision": pd.array(rng.choice(["grant", "deny", "refer"], n), dtype="str"),
            "decided_by": pd.array(rng.choice(["rpa", "caseworker"], n), dtype="str"),
            "sex": pd.array(rng.choice(["female", "male"], n), dtype="str"),
            "birth_region": pd.array(rng.choice(["sweden", "outside_eu"], n), dtype="str"),
        }
    )
    log["amount"] = np.where(log["decision"] == "grant", 4200.0, np.nan)
    assert validate(log, [ROOT / "checks/decision_log.yaml"], step="log").success is True
    log.loc[2, "decision_date"] = "2026-02-30"
    log.loc[3, ["decision", "amount"]] = ["grant", np.nan]
    report = validate(log, [ROOT / "checks/decision_log.yaml"], step="log")
    assert report.failed_case_ids == frozenset({"d2", "d3"})


def test_every_failed_case_is_found_beyond_the_sample():
    rng = np.random.default_rng(14)
    n = 400
    sex = rng.choice(["female", "male", "x"], n, p=[0.45, 0.45, 0.1])
    ids = np.array([f"c{i:03d}" for i in range(n)])
    ids[[10, 20]] = ids[5]  # three rows share one id
    note = np.full(n, "ok", dtype=object)
    note[[7, 99, 300]] = [_fake_pnr(85, 1, 1, 1234), _fake_pnr(70, 5, 5, 5555), _fake_pnr(1999, 9, 9, 9999, sep="")]
    frame = pd.DataFrame({"case_id": pd.array(ids, dtype="str"), "sex": pd.array(sex, dtype="str"),
                          "note": pd.array(note, dtype="str")})
    report = validate(
        frame,
        [_suite(
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "sex", "value_set": ["female", "male"]}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "case_id"}},
            {"type": "expect_table_text_values_to_not_contain_personnummer", "kwargs": {}},
        )],
        step="t",
        sample_size=2,
    )
    bad_sex = np.flatnonzero(sex == "x")
    in_set, unique, pnr = report.results
    assert in_set["unexpected_count"] == len(bad_sex) and in_set["sample_case_ids"] == list(ids[bad_sex[:2]])
    assert unique["unexpected_count"] == 3 and unique["sample_case_ids"] == [ids[5], ids[5]]
    assert pnr["unexpected_count"] == 3 and pnr["sample_case_ids"] == ["c007", "c099"]
    expected_rows = np.union1d(np.union1d(bad_sex, [5, 10, 20]), [7, 99, 300])
    assert report.failed_rows.tolist() == expected_rows.tolist()
    assert report.failed_case_ids == frozenset(ids[expected_rows])


def test_cramers_v_inside_a_validation_equals_each_pair_alone():
    """Codes cached per column (numpy-backed ones by their memory) give every pair the V it has on its own."""
    from scipy.stats.contingency import association

    from audit.checks._statistics import caching, cramers_v

    rng = np.random.default_rng(31)
    n = 3000
    frame = pd.DataFrame({
        "sex": pd.array(rng.choice(["female", "male"], n), dtype="str"),
        "region": pd.array(np.where(rng.random(n) < 0.05, None, rng.choice(["se", "eu", "x"], n)), dtype="str"),
        "income": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 3000.0, n)),
        "rent": rng.gamma(3.0, 2000.0, n),
        "adults": rng.integers(1, 3, n),
    })
    pairs = [(a, b) for a in ("sex", "region") for b in ("income", "rent", "adults", "sex")] * 2
    alone = [cramers_v(frame[a], frame[b], bias_correction=False) for a, b in pairs]
    with caching():
        together = [cramers_v(frame[a], frame[b], bias_correction=False) for a, b in pairs]
    for (a, b), x, y in zip(pairs, alone, together, strict=True):
        assert x == y, (a, b)
    # and one pair by hand: region against binned rent, rows with a region only
    keep = frame["region"].notna().to_numpy()
    rent = frame["rent"].to_numpy()[keep]
    edges = np.quantile(rent, np.linspace(0, 1, 6))
    table = pd.crosstab(frame["region"][keep].to_numpy(), np.searchsorted(edges[1:-1], rent, side="left"))
    assert together[pairs.index(("region", "rent"))]["value"] == pytest.approx(
        association(table.to_numpy(), method="cramer"), rel=1e-12)
