"""great-expectations' public 1.x API and its own formats: suites in GX JSON, validation results in GX JSON,
and Insyn's custom expectations in a plain great-expectations project.

Expected values are computed independently with pandas and scipy, or read
from great-expectations' own objects.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats.contingency import association

from audit.checks import Suite, convert_suite, load_suite, validate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("application", "engine_input", "decisions", "decision_log")


def _entries(suite: Suite) -> list[tuple]:
    return [(e.type, dict(e.kwargs), dict(e.meta or {}), e.severity) for e in suite.expectations]


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    from audit.synth import generate

    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=3000, seed=12)
    # break a few things: missing wages for a part of one group, and two impossible ages
    rng = np.random.default_rng(5)
    outside = np.flatnonzero((frame["birth_region"] == "outside_eu").to_numpy())
    frame.loc[frame.index[rng.choice(outside, size=len(outside) // 5, replace=False)], "income_wages"] = np.nan
    frame.loc[frame.index[:2], "applicant_age"] = 7
    return frame


# --------------------------------------------------------------------------
# import cost


def test_importing_insyn_does_not_import_great_expectations() -> None:
    code = ("import sys, audit, audit.checks, audit.runner, audit.cli, audit.reference, audit.scaffold; "
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------
# suites in GX JSON


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suites_round_trip_through_gx_json(name: str, tmp_path: Path) -> None:
    import great_expectations as gx

    suite = load_suite(ROOT / "checks" / f"{name}.yaml")
    data = suite.to_gx_dict()
    gx_suite = gx.ExpectationSuite(**json.loads(json.dumps(data)))  # great-expectations reads it
    assert gx_suite.name == name and len(gx_suite.expectations) == len(suite.expectations)
    assert [e.expectation_type for e in gx_suite.expectations] == [e.type for e in suite.expectations]
    back = Suite.from_gx_dict(data, source="x.json")
    assert _entries(back) == _entries(suite)  # arguments exactly as written (integers stay integers)
    assert (back.name, back.description, back.groups) == (suite.name, suite.description, suite.groups)
    # and through files, with insyn suite
    json_path = convert_suite(ROOT / "checks" / f"{name}.yaml", tmp_path / f"{name}.json")
    yaml_path = convert_suite(json_path, tmp_path / f"{name}.yaml")
    assert _entries(load_suite(json_path)) == _entries(suite)
    assert yaml.safe_load(yaml_path.read_text(encoding="utf-8"))["expectations"] == [
        {k: v for k, v in e.items() if not (k == "severity" and v == "critical")}
        for e in suite.to_dict()["expectations"]
    ]


def test_a_suite_written_by_great_expectations_loads(tmp_path: Path) -> None:
    import great_expectations as gx

    import audit.checks

    audit.checks.ExpectColumnProxyStrengthToBeAtMost  # noqa: B018 - registers Insyn's expectations
    context = gx.get_context(mode="ephemeral")
    suite = context.suites.add(gx.ExpectationSuite(name="gx-made"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="applicant_age", min_value=18,
                                                                        max_value=110, severity="warning"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="case_id", notes="ids are keys"))
    path = tmp_path / "gx-made.json"
    path.write_text(json.dumps(suite.to_json_dict()), encoding="utf-8")
    loaded = load_suite(path)
    assert [(e.type, e.severity) for e in loaded.expectations] == [
        ("expect_column_values_to_be_between", "warning"), ("expect_column_values_to_not_be_null", "critical")]
    assert loaded.expectations[0].kwargs["min_value"] == 18
    assert loaded.expectations[1].meta == {"notes": "ids are keys"}


def test_a_broken_gx_json_suite_is_a_clear_error(tmp_path: Path) -> None:
    from audit.exceptions import SpecError

    path = tmp_path / "bad.json"
    path.write_text('{"name": "x", "expectations": [{"type": "expect_column_values_to_be_betwen", '
                    '"kwargs": {"column": "a"}}]}', encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.json: expectations\[0\] \(expect_column_values_to_be_betwen\) is not a "
                                        r"known expectation type. Did you mean expect_column_values_to_be_between\?"):
        load_suite(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.json: not valid JSON at line 1, column 2"):
        load_suite(path)


# --------------------------------------------------------------------------
# validation results in GX JSON


def test_the_gx_validation_result_is_great_expectations_own_and_agrees(cases: pd.DataFrame) -> None:
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema

    report = validate(cases, [ROOT / "checks/application.yaml"], step="intake", groups=["sex", "birth_region"])
    gx_result = report.gx_result
    assert gx_result is not None and gx_result["suite_name"] == "intake"
    loaded = expectationSuiteValidationResultSchema.load(json.loads(json.dumps(gx_result)))
    assert loaded.success == all(r["success"] for r in report.results)
    assert loaded.statistics["evaluated_expectations"] == len(report.results)
    assert loaded.statistics["unsuccessful_expectations"] == len(report.failures)
    by_place = {(r.expectation_config.meta["insyn"]["suite"], r.expectation_config.meta["insyn"]["index"],
                 json.dumps(r.expectation_config.kwargs.get("group_column")
                            or r.expectation_config.kwargs.get("sensitive_column"))): r for r in loaded.results}
    for row in report.results:
        key = (row["suite"], row["index"],
               json.dumps(row["kwargs"].get("group_column") or row["kwargs"].get("sensitive_column")))
        gx_row = by_place[key]
        assert gx_row.success == row["success"]
        assert gx_row.expectation_config.severity.value == row["severity"]
        observed = gx_row.result.get("observed_value")
        if isinstance(row["observed_value"], float):
            assert math.isclose(observed, row["observed_value"])
        assert gx_row.result.get("unexpected_count") == row["unexpected_count"]
    ages = [r for r in report.failures if r["expectation"] == "expect_column_values_to_be_between"
            and r["column"] == "applicant_age"]
    assert ages and ages[0]["unexpected_count"] == 2


def test_personnummer_never_reaches_the_gx_result() -> None:
    pnr = f"{80:02d}{1:02d}{15:02d}-{1234:04d}"  # built at run time: no personnummer in a file
    number = int(f"19{pnr.replace('-', '')}")  # the same, as a 12-digit number
    frame = pd.DataFrame({"case_id": ["a", "b", "c"], "note": ["ok", f"ring {pnr}", "ok"],
                          "code": ["X1", pnr, "X3"], "number": [1, number, 3]})
    suite = Suite.from_dict({"name": "t", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^X[0-9]$"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "number", "max_value": 10}},
        {"type": "expect_table_text_values_to_not_contain_personnummer"}]})
    report = validate(frame, [suite], step="intake")
    text = json.dumps(report.gx_result)
    assert pnr not in text and str(number) not in text and text.count("[personnummer removed]") >= 2
    assert report.failed_case_ids == frozenset({"b"})


def test_every_failed_row_is_found_through_the_second_validation(cases: pd.DataFrame) -> None:
    frame = cases.copy()
    bad = np.arange(0, len(frame), 7)  # far more rows than the sample of 20
    frame.loc[frame.index[bad], "channel"] = "fax"
    suite = Suite.from_dict({"name": "t", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "channel", "value_set": ["digital", "paper"]}}]})
    report = validate(frame, [suite], step="intake")
    np.testing.assert_array_equal(report.failed_rows, bad)
    assert report.failed_case_ids == frozenset(frame["case_id"].iloc[bad])


def test_checks_json_keeps_each_steps_gx_result_beside_the_summary(tmp_path: Path) -> None:
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema

    from audit import Audit

    audit = Audit.from_dict(
        {
            "name": "gx-run",
            "seed": 2,
            "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 400},
            "sensitive_features": ["sex", "birth_region"],
            "engine": {"kind": "reference"},
            "truth": {"reference": True},
            "checks": {"intake": {"suites": [str(ROOT / "checks/application.yaml")]},
                       "decisions": {"suites": [str(ROOT / "checks/decisions.yaml")]}},
            "statistics": {"bootstrap": 0},
        }
    )
    result = audit.run(out=tmp_path)
    run = Path(result.run_dir)
    checks = json.loads((run / "checks.json").read_text())
    summary = json.loads((run / "results.json").read_text())["checks"]
    assert [c["step"] for c in checks] == ["intake", "decisions"]
    assert all("gx_result" not in c for c in summary)  # results.json: Insyn's summary only
    for entry, plain in zip(checks, summary, strict=True):
        gx_result = entry.pop("gx_result")
        assert entry == plain  # the rest of the entry is the summary of results.json
        loaded = expectationSuiteValidationResultSchema.load(gx_result)  # great-expectations reads it back
        assert loaded.suite_name == entry["step"]
        assert loaded.statistics["evaluated_expectations"] == entry["n_expectations"]
        assert loaded.statistics["unsuccessful_expectations"] == entry["n_failed_expectations"]
        assert "run_id" in gx_result["meta"] and "validation_time" in gx_result["meta"]


# --------------------------------------------------------------------------
# the custom expectations in plain great-expectations


_PLAIN_GX = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    import great_expectations as gx
    from audit.checks import ExpectColumnMissingRateGapAcrossGroupsToBeAtMost  # registers Insyn's expectations

    frame = pd.read_parquet(sys.argv[1])
    context = gx.get_context(mode="ephemeral")
    batch_definition = (context.data_sources.add_pandas("kommun").add_dataframe_asset("ansokningar")
                        .add_batch_definition_whole_dataframe("alla"))
    suite = context.suites.add(gx.ExpectationSuite(**json.load(open(sys.argv[2], encoding="utf-8"))))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="granskning", data=batch_definition, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame})
    one = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        ExpectColumnMissingRateGapAcrossGroupsToBeAtMost(column="income_wages", group_column="birth_region",
                                                         max_gap=0.05))
    print(json.dumps({
        "suite": [{"type": r.expectation_config.type, "kwargs": r.expectation_config.kwargs, "success": r.success,
                   "observed": r.result.get("observed_value"), "exception": r.exception_info.get("raised_exception")}
                  for r in result.results],
        "one": {"success": one.success, "observed": one.result["observed_value"]},
    }, default=str))
    """
)


def test_the_custom_expectations_run_in_plain_great_expectations(cases: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "cases.parquet"
    cases.to_parquet(data)
    suite_json = convert_suite(ROOT / "checks/application.yaml", tmp_path / "application.json",
                               groups=["birth_region"])
    script = tmp_path / "plain_gx.py"
    script.write_text(_PLAIN_GX, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script), str(data), str(suite_json)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(r["exception"] for r in got["suite"])

    # differential missingness of income_wages by birth_region, by pandas
    missing = cases["income_wages"].isna().groupby(cases["birth_region"]).mean()
    gap = float(missing.max() - missing.min())
    assert math.isclose(got["one"]["observed"], gap, rel_tol=1e-12)
    assert got["one"]["success"] is (gap <= 0.05)

    rows = {(r["type"], r["kwargs"].get("column")): r for r in got["suite"]}
    proxy = rows[("expect_column_proxy_strength_to_be_at_most", "interpreter")]
    table = pd.crosstab(cases["interpreter"], cases["birth_region"]).to_numpy()
    plain_v = association(table, method="cramer")
    assert proxy["observed"] <= plain_v + 1e-12  # the bias-corrected V is at most the plain one
    # and great-expectations alone agrees with Insyn's validate on every expectation of the suite
    report = validate(pd.read_parquet(data), [load_suite(suite_json)], step="check")  # the same frame

    def equal(a: object, b: object) -> bool:  # great-expectations writes 18 as 18.0
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return float(a) == float(b)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    def same(mine: dict, other: dict) -> bool:  # great-expectations leaves out arguments equal to their default
        return other["type"] == mine["expectation"] and all(
            equal(other["kwargs"][k], v) for k, v in mine["kwargs"].items() if k in other["kwargs"])

    assert len(report.results) == len(got["suite"])
    for mine in report.results:  # great-expectations returns its results in its own order
        matches = [r for r in got["suite"] if same(mine, r)]
        assert len(matches) == 1, (mine["expectation"], mine["kwargs"], [r["kwargs"] for r in got["suite"]
                                                                         if r["type"] == mine["expectation"]])
        other = matches[0]
        assert other["success"] == mine["success"], mine["expectation"]
        if isinstance(mine["observed_value"], float):
            assert math.isclose(mine["observed_value"], other["observed"], rel_tol=1e-12)
