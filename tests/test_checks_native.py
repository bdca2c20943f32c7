"""The native evaluation of the shipped expectation types equals great-expectations' on the same data and suites."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.checks import Suite, load_suite, validate
from audit.checks._catalogue import SHIPPED_SUITE_SHA256
from audit.checks._native import NATIVE_TYPES
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "checks").glob("*.yaml"))
FIELDS = ("success", "element_count", "unexpected_count", "unexpected_percent", "missing_count", "observed_value",
          "details", "sample_case_ids", "message", "row_level")


def _pnr() -> str:
    return f"{19:02d}{85:02d}0101-{1234:04d}"  # built at run time: no personnummer in a file


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    """5,000 synthetic cases with every kind of failure the application suite can report."""
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=5000, seed=11)
    frame.attrs = {}
    bad = frame.copy()
    rng = np.random.default_rng(5)
    rows = rng.choice(len(bad), size=60, replace=False)
    bad.loc[rows[:10], "channel"] = "fax"  # not in the set
    bad.loc[rows[10:15], "applicant_age"] = 140  # out of range
    bad.loc[rows[15:20], "benefit_month"] = "2026-13"  # regex
    bad.loc[rows[20:25], "child_ages"] = "4;x"  # not an age list
    bad.loc[rows[25:30], "case_id"] = bad.loc[rows[30:35], "case_id"].to_numpy()  # duplicates
    bad.loc[rows[35:40], "years_in_sweden"] = 200  # more years in Sweden than alive
    bad.loc[rows[40:45], "sex"] = None  # missing where not allowed
    bad.loc[rows[45:50], "municipality_code"] = _pnr()  # a personnummer in a text column
    bad.loc[rows[50:55], "rent"] = -5.0
    bad.loc[rows[55:60], "children_preschool_lunch"] = 7
    return bad


def _decisions(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    outcome = rng.choice(["grant", "partial", "deny", "refer", "maybe"], n, p=[0.4, 0.2, 0.2, 0.19, 0.01])
    amount = np.where(np.isin(outcome, ["grant", "partial"]), rng.gamma(3, 2000, n), np.nan)
    amount[rng.random(n) < 0.01] = -1.0
    amount[rng.random(n) < 0.01] = 100.0  # an amount on a refusal
    ids = np.array([f"d{i:05d}" for i in range(n)], dtype=object)
    ids[7] = ids[8]
    reasons = np.where(rng.random(n) < 0.02, "BAD CODE", "NEW_APPLICATION;EXPENSE_CAPPED").astype(object)
    reasons[rng.random(n) < 0.01] = None
    return pd.DataFrame({"case_id": pd.array(ids, dtype="str"), "outcome": pd.array(outcome, dtype="str"),
                         "amount": amount, "reasons": pd.array(reasons, dtype="str")})


def _log(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    decision = rng.choice(["grant", "partial", "deny", "refer", "x"], n, p=[0.4, 0.2, 0.2, 0.19, 0.01])
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    date = days.strftime("%Y-%m-%d").to_numpy(dtype=object)
    date[rng.random(n) < 0.01] = "2026-02-30"
    log = pd.DataFrame({
        "case_id": pd.array([f"l{i}" for i in range(n)], dtype="str"),
        "benefit_month": pd.array(days.strftime("%Y-%m"), dtype="str"),
        "decision_date": pd.array(date, dtype="str"),
        "decision": pd.array(decision, dtype="str"),
        "amount": np.where(np.isin(decision, ["grant", "partial"]), rng.gamma(3, 2000, n), np.nan),
        "decided_by": pd.array(rng.choice(["rpa", "caseworker"], n), dtype="str"),
        "sex": pd.array(rng.choice(["female", "male"], n), dtype="str"),
        "birth_region": pd.array(rng.choice(["sweden", "nordic", "eu", "outside_eu"], n), dtype="str"),
    })
    log.loc[log.index[rng.random(n) < 0.03], "amount"] = np.nan
    return log


def assert_same(frame: pd.DataFrame, suites: list, **kwargs) -> None:
    gx = validate(frame, suites, step="t", engine="gx", **kwargs)
    native = validate(frame, suites, step="t", engine="native", **kwargs)
    assert gx.engine == "great_expectations"
    assert native.engine == "native"  # every shipped type runs natively
    assert len(gx.results) == len(native.results)
    for g, n in zip(gx.results, native.results, strict=True):
        for k in FIELDS:
            assert n[k] == g[k], (g["expectation"], g["column"], k, n[k], g[k])
    assert native.success == gx.success
    # the exported result, in great-expectations' form: every key the native result writes has GX's value
    assert native.gx_result["meta"]["insyn_engine"] == "native"
    gx_rows = {r["expectation_config"]["meta"]["insyn_key"]: r for r in gx.gx_result["results"]}
    for row in native.gx_result["results"]:
        twin = gx_rows[row["expectation_config"]["meta"]["insyn_key"]]
        assert row["success"] == twin["success"]
        assert row["expectation_config"]["type"] == twin["expectation_config"]["type"]
        for k, v in row["result"].items():
            assert v == twin["result"][k], (row["expectation_config"]["type"], k, v, twin["result"][k])
    assert native.gx_result["statistics"] == gx.gx_result["statistics"]
    np.testing.assert_array_equal(native.failed_rows, gx.failed_rows)
    assert native.failed_case_ids == gx.failed_case_ids
    pd.testing.assert_frame_equal(native.failed_cases(), gx.failed_cases())


def test_application_suite_native_equals_gx(cases: pd.DataFrame) -> None:
    assert_same(cases, [ROOT / "checks/application.yaml"], groups=["sex", "birth_region"])


def test_application_suite_native_equals_gx_on_clean_data() -> None:
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=3000, seed=4)
    frame.attrs = {}
    assert_same(frame, [ROOT / "checks/application.yaml", ROOT / "checks/engine_input.yaml"],
                groups=["sex", "birth_region"])


def test_decisions_and_log_suites_native_equal_gx() -> None:
    assert_same(_decisions(), [ROOT / "checks/decisions.yaml"])
    assert_same(_log(), [ROOT / "checks/decision_log.yaml"])


def test_mostly_strict_bounds_and_ignore_row_if_native_equal_gx() -> None:
    rng = np.random.default_rng(2)
    n = 500
    frame = pd.DataFrame({"case_id": [f"k{i}" for i in range(n)], "a": rng.integers(0, 10, n).astype(float),
                          "b": rng.integers(0, 10, n).astype(float),
                          "g": pd.Series(rng.choice(["x", "y", None], n), dtype=object)})
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame.loc[rng.random(n) < 0.1, "b"] = np.nan
    suite = Suite.from_dict({"name": "edge", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 1, "max_value": 8,
                                                                   "strict_min": True, "mostly": 0.7}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 1, "mostly": 0.95}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "g", "value_set": ["x"], "mostly": 0.4}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "a", "column_B": "b"}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "a", "column_B": "b", "or_equal": True, "ignore_row_if": "either_value_is_missing"}},
        {"type": "expect_column_pair_values_b_to_be_between_where_a_in_set",
         "kwargs": {"column_A": "g", "value_set": ["x"], "column_B": "a", "max_value": 5,
                    "ignore_row_if": "both_values_are_missing"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "g", "type_": "str"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "a", "type_": "int64"}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "b", "case_id", "g"]}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "zz"], "exact_match": False}},
        {"type": "expect_column_group_representation_to_be_at_least", "kwargs": {"column": "g", "min_share": 0.5}},
        {"type": "expect_column_proxy_strength_to_be_at_most",
         "kwargs": {"column": "a", "sensitive_column": "g", "max_cramers_v": 0.1, "bias_correction": False}},
    ]})
    gx = validate(frame, [suite], step="t", engine="gx")
    native = validate(frame, [suite], step="t", engine="native")
    # an object column under a type check is a map over values: left to great-expectations
    assert [r["engine"] for r in native.results].count("great_expectations") == 1
    for g, n in zip(gx.results, native.results, strict=True):
        for k in FIELDS:
            assert n[k] == g[k], (g["expectation"], g["column"], k, n[k], g[k])
    np.testing.assert_array_equal(native.failed_rows, gx.failed_rows)


def test_shipped_suites_are_the_validated_ones() -> None:
    """Each shipped suite's bytes match SHIPPED_SUITE_SHA256, and great-expectations accepts every entry."""
    import yaml

    assert {p.name for p in SHIPPED} == set(SHIPPED_SUITE_SHA256)
    for path in SHIPPED:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert SHIPPED_SUITE_SHA256[path.name] == digest, f"{path.name} changed: its new sha256 is {digest}"
        strict = Suite.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), source=str(path))
        assert strict == load_suite(path) or strict.expectations == load_suite(path).expectations
        assert {e.type for e in strict.expectations} <= NATIVE_TYPES


def test_a_run_of_the_shipped_suites_does_not_import_great_expectations() -> None:
    code = (
        "import sys\n"
        "from audit.checks import validate\n"
        "from audit.synth import generate, load_population_spec\n"
        f"f = generate(load_population_spec({str(ROOT / 'datasets/sweden/population-2026.yaml')!r}), n=500, seed=1)\n"
        f"r = validate(f, [{str(ROOT / 'checks/application.yaml')!r}], step='intake', groups=['sex'])\n"
        "print(r.engine, 'great_expectations' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["native", "False"], out.stderr[-2000:]


@pytest.mark.parametrize("dtype", ["str", "string", "object"])
def test_age_lists_parsed_once_per_distinct_value_equal_parsing_every_row(dtype: str) -> None:
    """``parse_age_lists`` (each distinct list parsed once) equals parsing the column row by row in Arrow."""
    from audit.checks._statistics import _age_list_parts, parse_age_lists

    rng = np.random.default_rng(5)
    pool = ["", "3", "4;9", "17;2;0", "x", "1;;2", None, " 3", "999", "12;5", "007"]
    values = pd.Series([pool[i] for i in rng.integers(0, len(pool), 5000)], dtype=dtype)
    well_formed, parent, ages = _age_list_parts(values)  # every row, as it was parsed before
    for low, high in ((0, 6), (7, 17), (0, 999)):
        in_band = (ages >= low) & (ages <= high)
        got = parse_age_lists(values, min_age=low, max_age=high)
        np.testing.assert_array_equal(got[0], well_formed)
        np.testing.assert_array_equal(got[1], np.bincount(parent[in_band], minlength=len(values)))
        np.testing.assert_array_equal(got[2], np.bincount(parent, minlength=len(values)))
    assert got[0].sum() < len(values) and got[2].max() == 3  # malformed and missing lists, and a list of three
