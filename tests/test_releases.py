"""Real releases as they come (issue 25, points 1 and 2).

Suppressed cells written in every form releases use are suppressed at the
source, group by group, and the run goes on; data read from CSV, Excel,
Parquet and DuckDB is put into the case frame's types before any check, so
that ``insyn check`` and an audit agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from audit import Audit
from audit._cells import DEFAULT_SUPPRESSION_MARKERS, parse_cells
from audit._schema import coerce_case_frame
from audit.checks import check_file
from audit.population import load_population
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]

_AGG = {"aggregated": "c.csv", "attribute": "a", "group": "g",
        "cells": {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}}


def _agg_audit(tmp_path: Path, **extra: object) -> Audit:
    return Audit.from_dict({"name": "t", "population": {**_AGG, **extra}, "sensitive_features": ["sex"],
                            "statistics": {"min_group_size": 1, "bootstrap": 0}},
                           base_dir=tmp_path, source="t.yaml")


@pytest.mark.parametrize("marker", ["", "NA", "NaN", "..", ".", "-", "\u2013", "x", "*", ":", "n/a"])
def test_every_release_marker_is_a_suppressed_cell(tmp_path: Path, marker: str) -> None:
    (tmp_path / "c.csv").write_text(f"a,g,TP,FP,FN,TN\nsex,f,10,{marker},30,40\nsex,m,12,20,28,40\n",
                                    encoding="utf-8")
    pop = load_population(_agg_audit(tmp_path))
    t = pop.aggregated
    assert np.isnan(t["fp"].iloc[0]) and t["fp"].iloc[1] == 20
    assert np.isnan(t["group_size"].iloc[0])  # never recomputed from the other cells
    sup = pop.source["suppressed"]
    assert [(r["group"], r["column"], r["marker"]) for r in sup] == [("f", "FP", marker)]
    assert pop.notes[0].startswith("sex=f: cells suppressed at the source: FP suppressed")


def test_bound_marker_keeps_its_bound_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("a,g,TP,FP,FN,TN\nsex,f,10,<5,30,40\nsex,m,12,20,NA,40\n", encoding="utf-8")
    audit = _agg_audit(tmp_path)
    pop = load_population(audit)
    sup = {(r["group"], r["column"]): r for r in pop.source["suppressed"]}
    assert sup[("f", "FP")]["upper_bound"] == 5 and sup[("f", "FP")]["text"] == "fewer than 5"
    assert sup[("m", "FN")]["upper_bound"] is None and sup[("m", "FN")]["text"] == "suppressed ('NA')"
    assert pop.notes == ("sex=f: cells suppressed at the source: FP fewer than 5; metrics that need them are not "
                         "computed for this group.",
                         "sex=m: cells suppressed at the source: FN suppressed ('NA'); metrics that need them are "
                         "not computed for this group.")
    result = audit.run(out=tmp_path / "out")
    m = result.metrics_frame()
    # FPR of f needs FP: NaN with the reason; TPR of f = 10 / (10 + 30) does not need it
    fpr = m[(m["metric"] == "false_positive_rate") & (m["group"] == "f")].iloc[0]
    assert np.isnan(fpr["value"]) and "suppressed at source" in fpr["reason"]
    tpr = m[(m["metric"] == "true_positive_rate") & (m["group"] == "f")].iloc[0]
    assert tpr["value"] == pytest.approx(10 / 40)
    assert result.to_dict()["population"]["suppressed"][0]["text"] == "fewer than 5"


def test_markers_are_configurable(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("a,g,TP,FP,FN,TN\nsex,f,10,z,30,40\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"non-numeric value 'z' for sex=f .*population.suppressed"):
        load_population(_agg_audit(tmp_path))
    pop = load_population(_agg_audit(tmp_path, suppressed=["z"]))
    assert np.isnan(pop.aggregated["fp"].iloc[0])
    # a configured list replaces the defaults: NA is now a bad value
    (tmp_path / "c.csv").write_text("a,g,TP,FP,FN,TN\nsex,f,10,NA,30,40\n", encoding="utf-8")
    with pytest.raises(Exception, match="non-numeric value 'NA'"):
        load_population(_agg_audit(tmp_path, suppressed=["z"]))


def test_parse_cells_by_hand() -> None:
    p = parse_cells(pd.Series(["1 234,5", "<5", "≤3", None, "..", "7", "abc"]))
    assert p.values[0] == 1234.5 and p.values[5] == 7
    assert p.suppressed.tolist() == [False, True, True, True, True, False, False]
    assert p.bad.tolist() == [False] * 6 + [True]
    assert p.bound[1] == 5 and p.bound[2] == 4 and np.isnan(p.bound[4])
    assert "\u2013" in DEFAULT_SUPPRESSION_MARKERS and "NA" in DEFAULT_SUPPRESSION_MARKERS


# ---------------------------------------------------------------------------
# point 2: the same data passes or fails identically in insyn check and an audit


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=300, seed=5)


def _write(frame: pd.DataFrame, folder: Path, form: str) -> dict:
    if form == "csv":
        frame.to_csv(folder / "p.csv", index=False)
        return {"file": "p.csv"}
    if form == "xlsx":
        frame.to_excel(folder / "p.xlsx", index=False)
        return {"file": "p.xlsx"}
    if form == "parquet":
        frame.to_parquet(folder / "p.parquet")
        return {"file": "p.parquet"}
    con = duckdb.connect(str(folder / "p.duckdb"))
    # a DuckDB table typed as a database exporter might: every number a DOUBLE, flags as text
    loose = frame.assign(**{c: frame[c].astype("float64") for c in frame.select_dtypes("number").columns},
                         **{c: frame[c].map({True: "true", False: "false"}) for c in frame.select_dtypes("bool").columns})
    con.register("df", loose)
    con.execute("CREATE TABLE cases AS SELECT * FROM df")
    con.close()
    return {"sql": "SELECT * FROM cases", "url": "duckdb:///p.duckdb"}


@pytest.mark.parametrize("form", ["csv", "xlsx", "parquet", "duckdb"])
def test_round_trip_generate_to_file_to_audit_with_quarantine(tmp_path: Path, generated: pd.DataFrame,
                                                             form: str) -> None:
    population = _write(generated, tmp_path, form)
    audit = Audit.from_dict({
        "name": "rt", "seed": 5, "population": population, "sensitive_features": ["sex"],
        "engine": {"kind": "reference"}, "truth": {"reference": True},
        "checks": {"intake": {"suites": [str(ROOT / "checks/application.yaml")], "policy": "quarantine"}},
        "statistics": {"bootstrap": 0}, "report": {"formats": ["json"]},
    }, base_dir=tmp_path, source="rt.yaml")
    pop = load_population(audit)
    for col in ("applicant_age", "income_wages", "interpreter", "municipality_code", "child_ages"):
        assert pop.frame[col].dtype == generated[col].dtype, col
    pd.testing.assert_series_equal(pop.frame["income_wages"], generated["income_wages"], check_names=False)
    result = audit.run(out=tmp_path / "out")
    intake = result.to_dict()["checks"][0]
    assert intake["step"] == "intake" and intake["n_failed_cases"] == 0
    assert intake["n_failed_expectations"] == 0 and intake["success"]
    # the whole population was decided: nothing quarantined
    assert result.to_dict()["population"]["n_cases"] == 300
    if form in ("csv", "parquet"):
        # insyn check on the same file gives the same verdict per expectation
        checked = check_file(tmp_path / f"p.{form}", [ROOT / "checks/application.yaml"])
        inside = [(r["expectation"], r["column"], r["success"]) for r in intake["results"] if r["row_level"]]
        outside = [(r["expectation"], r["column"], r["success"]) for r in checked.results if r["row_level"]]
        assert inside == outside


def test_coercion_leaves_bad_columns_for_the_checks() -> None:
    frame = pd.DataFrame({"applicant_age": ["30", "forty"], "rent": [1000, 2000], "interpreter": ["True", "False"],
                          "municipality_code": [180.0, 1280.0]})
    out, notes = coerce_case_frame(frame, source="f.csv")
    assert out["applicant_age"].tolist() == ["30", "forty"]  # left as read: the checks name 'forty'
    assert notes == ["f.csv: column 'applicant_age' was left as read (str): not every value is a int, so the "
                     "checks report the rows that are not."] or "applicant_age" in notes[0]
    assert out["rent"].dtype == "float64" and out["interpreter"].tolist() == [True, False]
    assert out["municipality_code"].tolist() == ["180", "1280"]


def test_cli_check_and_audit_agree_on_a_generated_csv(tmp_path: Path) -> None:
    import subprocess

    subprocess.run([sys.executable, "-m", "audit.cli", "generate", str(ROOT / "datasets/sweden/population-2026.yaml"),
                    "--n", "200", "--seed", "2", "-o", str(tmp_path / "p.csv")], check=True, cwd=ROOT,
                   capture_output=True)
    r = subprocess.run([sys.executable, "-m", "audit.cli", "check", str(tmp_path / "p.csv"), "--suite",
                        str(ROOT / "checks/application.yaml")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
